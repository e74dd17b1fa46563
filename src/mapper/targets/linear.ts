import { BULK_IO, type BlockDevice, type ExtentLease, type ReadOptions, type WriteOptions } from "../../blockdev/block-device.js";
import type { DeviceUse, Target, TargetContext, TargetType, TargetWriteOptions } from "../target.js";
import type { TargetStatus } from "../status.js";
import { DeviceSet, constructWith } from "../device-set.js";
import { parseUnsigned } from "../args.js";
import { TableError } from "../table-error.js";
import { SECTOR_BYTES } from "../../base/bytes.js";

const FUA: WriteOptions = Object.freeze({ fua: true });

/** `linear <dev> <offsetSectors>`: target sector s is device sector offset + s (dm-linear.c). */
export class LinearTarget implements Target {
  readonly type = "linear";
  private readonly offsetBytes: number;

  constructor(
    readonly lengthSectors: number,
    private readonly devName: string,
    private readonly dev: BlockDevice,
    private readonly offsetSectors: number,
    private readonly set: DeviceSet,
  ) {
    this.offsetBytes = offsetSectors * SECTOR_BYTES;
  }

  read(sector: number, into: Uint8Array, opts?: ReadOptions): Promise<void> {
    return this.dev.read(this.offsetBytes + sector * SECTOR_BYTES, into, opts);
  }

  write(sector: number, data: Uint8Array, opts: TargetWriteOptions): Promise<void> {
    return this.dev.write(this.offsetBytes + sector * SECTOR_BYTES, data, opts.fua ? FUA : opts.bulk === true ? BULK_IO : undefined);
  }

  flush(): Promise<void> {
    return this.dev.flush();
  }

  lease(sector: number, lengthSectors: number, forWrite: boolean): ExtentLease | undefined {
    return this.dev.leaseExtents?.(this.offsetBytes + sector * SECTOR_BYTES, lengthSectors * SECTOR_BYTES, forWrite);
  }

  async destroy(): Promise<void> {
    await this.set.releaseAll();
  }

  status(): TargetStatus {
    return { type: "linear" };
  }

  tableArgs(): readonly string[] {
    return [this.devName, String(this.offsetSectors)];
  }

  devices(): readonly DeviceUse[] {
    return this.set.uses;
  }
}

export const linearTargetType: TargetType = {
  name: "linear",
  async create(args: readonly string[], ctx: TargetContext): Promise<Target> {
    if (args.length !== 2) throw new TableError(`linear: Invalid argument count: expected "<dev> <offset>", got ${args.length} arguments`);
    const [devName, offsetText] = args as [string, string];
    const offsetSectors = parseUnsigned(offsetText, "linear: Invalid device sector");
    const set = new DeviceSet(ctx);
    return constructWith(set, async () => {
      const dev = await set.open(devName, offsetSectors, ctx.lengthSectors);
      return new LinearTarget(ctx.lengthSectors, devName, dev, offsetSectors, set);
    });
  },
};
