import type { BlockDevice } from "../../blockdev/block-device.js";
import type { DeviceUse, Target, TargetContext, TargetEnv, TargetType, TargetWriteOptions } from "../target.js";
import type { TargetStatus } from "../status.js";
import { DeviceSet, constructWith } from "../device-set.js";
import { U32_MAX, parseUnsigned } from "../args.js";
import { TableError } from "../table-error.js";
import { IoError } from "../../errors/errors.js";
import { SECTOR_BYTES } from "../../base/bytes.js";

/** Like dm-stripe's DM_IO_ERROR_THRESHOLD: stop raising events for a stripe after this many errors. */
const EVENT_ERROR_THRESHOLD = 15;

interface Stripe {
  readonly name: string;
  readonly dev: BlockDevice;
  readonly physicalStartSectors: number;
  errorCount: number;
}

/** Where one target sector lives: stripe index and sector on that stripe's area. */
export interface StripeLocation {
  readonly stripe: number;
  readonly sector: number;
}

/**
 * dm-stripe's stripe_map_sector: chunk = sector / chunk, the chunk index
 * rotates over the stripes (stripe = chunk mod k), and the row (chunk / k)
 * picks the chunk on that stripe. Works for any chunk size and stripe count,
 * powers of two or not, as the kernel does.
 */
export function stripeMapSector(sector: number, chunkSectors: number, stripeCount: number): StripeLocation {
  const chunk = Math.floor(sector / chunkSectors);
  const chunkOffset = sector - chunk * chunkSectors;
  const stripe = chunk % stripeCount;
  const row = (chunk - stripe) / stripeCount;
  return { stripe, sector: row * chunkSectors + chunkOffset };
}

/** `striped <count> <chunkSectors> <dev> <offset> ...` */
export class StripedTarget implements Target {
  readonly type = "striped";

  constructor(
    readonly lengthSectors: number,
    private readonly chunkSectors: number,
    private readonly stripes: readonly Stripe[],
    private readonly set: DeviceSet,
    private readonly env: TargetEnv,
    private readonly deviceName: string,
  ) {}

  /** Split [sector, sector+len) at chunk boundaries and run `op` on each piece. */
  private forEachPiece(
    sector: number,
    buf: Uint8Array,
    op: (s: Stripe, offsetBytes: number, piece: Uint8Array) => Promise<void>,
  ): Promise<void> {
    const totalSectors = buf.length / SECTOR_BYTES;
    const k = this.stripes.length;
    const pieces: Promise<void>[] = [];
    let done = 0;
    while (done < totalSectors) {
      const s = sector + done;
      const loc = stripeMapSector(s, this.chunkSectors, k);
      const inChunk = this.chunkSectors - (s % this.chunkSectors);
      const n = Math.min(inChunk, totalSectors - done);
      const stripe = this.stripes[loc.stripe]!;
      const piece = buf.subarray(done * SECTOR_BYTES, (done + n) * SECTOR_BYTES);
      pieces.push(this.track(loc.stripe, op(stripe, (stripe.physicalStartSectors + loc.sector) * SECTOR_BYTES, piece)));
      done += n;
    }
    return pieces.length === 1 ? pieces[0]! : Promise.all(pieces).then(() => undefined);
  }

  /** Count errors per stripe for the status line ('D') and raise an event, as stripe_end_io. */
  private async track(index: number, p: Promise<void>): Promise<void> {
    try {
      await p;
    } catch (e) {
      const stripe = this.stripes[index]!;
      stripe.errorCount++;
      if (stripe.errorCount < EVENT_ERROR_THRESHOLD && this.env.onEvent) {
        const errno = e instanceof IoError ? e.errno : "EIO";
        try {
          void Promise.resolve(
            this.env.onEvent({ kind: "stripe-error", device: this.deviceName, stripe: index, stripeDevice: stripe.name, errno }),
          ).catch(() => undefined);
        } catch {
          // an event handler's failure is not the I/O's failure
        }
      }
      throw e;
    }
  }

  read(sector: number, into: Uint8Array): Promise<void> {
    return this.forEachPiece(sector, into, (s, off, piece) => s.dev.read(off, piece));
  }

  write(sector: number, data: Uint8Array, opts: TargetWriteOptions): Promise<void> {
    const wo = opts.fua ? { fua: true } : undefined;
    return this.forEachPiece(sector, data, (s, off, piece) => s.dev.write(off, piece, wo));
  }

  async flush(): Promise<void> {
    await Promise.all(this.stripes.map((s, i) => this.track(i, s.dev.flush())));
  }

  async destroy(): Promise<void> {
    await this.set.releaseAll();
  }

  status(): TargetStatus {
    return { type: "striped", stripes: this.stripes.map((s) => ({ device: s.name, health: s.errorCount > 0 ? "D" : "A" })) };
  }

  tableArgs(): readonly string[] {
    const out = [String(this.stripes.length), String(this.chunkSectors)];
    for (const s of this.stripes) out.push(s.name, String(s.physicalStartSectors));
    return out;
  }

  devices(): readonly DeviceUse[] {
    return this.set.uses;
  }
}

export const stripedTargetType: TargetType = {
  name: "striped",
  async create(args: readonly string[], ctx: TargetContext): Promise<Target> {
    if (args.length < 2) throw new TableError("striped: Not enough arguments");
    let count: number;
    let chunkSectors: number;
    try {
      count = parseUnsigned(args[0], "striped: Invalid stripe count", U32_MAX);
    } catch (e) {
      throw new TableError("striped: Invalid stripe count", { arg: args[0] }, e);
    }
    if (count === 0) throw new TableError("striped: Invalid stripe count");
    try {
      chunkSectors = parseUnsigned(args[1], "striped: Invalid chunk_size", U32_MAX);
    } catch (e) {
      throw new TableError("striped: Invalid chunk_size", { arg: args[1] }, e);
    }
    if (chunkSectors === 0) throw new TableError("striped: Invalid chunk_size");
    if (ctx.lengthSectors % count !== 0) throw new TableError("striped: Target length not divisible by number of stripes");
    const widthSectors = ctx.lengthSectors / count;
    if (widthSectors % chunkSectors !== 0) throw new TableError("striped: Target length not divisible by chunk size");
    if (args.length !== 2 + 2 * count) throw new TableError("striped: Not enough destinations specified");
    const offsets: number[] = [];
    for (let i = 0; i < count; i++) {
      try {
        offsets.push(parseUnsigned(args[3 + 2 * i], "striped: Couldn't parse stripe destination"));
      } catch (e) {
        throw new TableError("striped: Couldn't parse stripe destination", { stripe: i }, e);
      }
    }
    const set = new DeviceSet(ctx);
    return constructWith(set, async () => {
      const stripes: Stripe[] = [];
      for (let i = 0; i < count; i++) {
        const name = args[2 + 2 * i]!;
        const physicalStartSectors = offsets[i]!;
        const dev = await set.open(name, physicalStartSectors, widthSectors);
        stripes.push({ name, dev, physicalStartSectors, errorCount: 0 });
      }
      return new StripedTarget(ctx.lengthSectors, chunkSectors, stripes, set, ctx.env, ctx.deviceName);
    });
  },
};
