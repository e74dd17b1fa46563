import type { DeviceUse, Target, TargetContext, TargetType } from "../target.js";
import type { TargetStatus } from "../status.js";
import { TableError } from "../table-error.js";
import { IoError } from "../../errors/errors.js";

/** `zero`: reads return zeroes, writes are discarded (dm-zero.c). */
class ZeroTarget implements Target {
  readonly type = "zero";
  constructor(readonly lengthSectors: number) {}
  async read(_sector: number, into: Uint8Array): Promise<void> {
    into.fill(0);
  }
  async write(): Promise<void> {}
  async flush(): Promise<void> {}
  async destroy(): Promise<void> {}
  status(): TargetStatus {
    return { type: "zero" };
  }
  tableArgs(): readonly string[] {
    return [];
  }
  devices(): readonly DeviceUse[] {
    return [];
  }
}

/** `error`: every read and write fails with EIO (dm-target.c io_err). */
class ErrorTarget implements Target {
  readonly type = "error";
  constructor(readonly lengthSectors: number, private readonly deviceName: string) {}
  async read(sector: number): Promise<void> {
    throw new IoError(`${this.deviceName}: error target at sector ${sector}`, "EIO");
  }
  async write(sector: number): Promise<void> {
    throw new IoError(`${this.deviceName}: error target at sector ${sector}`, "EIO");
  }
  async flush(): Promise<void> {}
  async destroy(): Promise<void> {}
  status(): TargetStatus {
    return { type: "error" };
  }
  tableArgs(): readonly string[] {
    return [];
  }
  devices(): readonly DeviceUse[] {
    return [];
  }
}

export const zeroTargetType: TargetType = {
  name: "zero",
  async create(args: readonly string[], ctx: TargetContext): Promise<Target> {
    if (args.length !== 0) throw new TableError("zero: No arguments required");
    return new ZeroTarget(ctx.lengthSectors);
  },
};

export const errorTargetType: TargetType = {
  name: "error",
  async create(args: readonly string[], ctx: TargetContext): Promise<Target> {
    if (args.length !== 0) throw new TableError("error: No arguments required");
    return new ErrorTarget(ctx.lengthSectors, ctx.deviceName);
  },
};
