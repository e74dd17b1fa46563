import type { BlockDevice, ReadOptions, WriteOptions } from "../../blockdev/block-device.js";
import type { DeviceUse, Target, TargetContext, TargetType, TargetWriteOptions } from "../target.js";
import type { TargetStatus } from "../status.js";
import { DeviceSet, constructWith } from "../device-set.js";
import { parseUnsigned } from "../args.js";
import { TableError } from "../table-error.js";
import { SECTOR_BYTES } from "../../base/bytes.js";
import { IntegrityDevice } from "../integrity/integrity-device.js";
import { IoError } from "../../errors/errors.js";

const FUA: WriteOptions = Object.freeze({ fua: true });

/** The table options of dm-integrity that ulvm reads (the rest are accepted and kept for tableArgs). */
interface IntegrityArgs {
  dataDev: string;
  tagSize: number;
  mode: "J" | "B";
  blockSize: number;
  metaDev: string;
  recalculate: boolean;
  journalSectors: number | undefined;
  sectorsPerBit: number | undefined;
  bitmapFlushIntervalMs: number | undefined;
  commitTimeMs: number | undefined;
  /** The internal_hash option (ulvm computes crc32c only; another makes the layer stale, see StaleIntegrityTarget). */
  hash: string | undefined;
  raw: readonly string[];
}

/**
 * `integrity <dev> <start> <tag_size> <mode> <#opts> <opts>...` as lvm2
 * emits it (libdm-deptree.c `_integrity_emit_segment_line`): `fix_padding
 * block_size:N internal_hash:crc32c meta_device:<dev> [recalculate]
 * [journal_sectors:N] ...`. ulvm serves lvm2's layout only: a separate
 * metadata device, start 0, crc32c, mode J or B.
 */
export function parseIntegrityArgs(args: readonly string[]): IntegrityArgs {
  if (args.length < 5) throw new TableError("integrity: Invalid argument count");
  const [dataDev, startText, tagText, mode, countText] = args as [string, string, string, string, string];
  if (parseUnsigned(startText, "integrity: Invalid starting offset") !== 0) throw new TableError("integrity: only a start of 0 is supported (with a metadata device)");
  const tagSize = parseUnsigned(tagText, "integrity: Invalid tag size");
  if (!tagSize) throw new TableError("integrity: Invalid tag size");
  if (mode !== "J" && mode !== "B") throw new TableError(`integrity: mode ${mode} is not supported by ulvm (J or B)`);
  const count = parseUnsigned(countText, "integrity: Invalid number of feature args");
  const opts = args.slice(5);
  if (opts.length !== count) throw new TableError("integrity: Invalid number of feature args");
  let blockSize = 512;
  let metaDev: string | undefined;
  let hash: string | undefined;
  let recalculate = false;
  let journalSectors: number | undefined;
  let sectorsPerBit: number | undefined;
  let bitmapFlushIntervalMs: number | undefined;
  let commitTimeMs: number | undefined;
  for (const o of opts) {
    const [k, v] = o.includes(":") ? [o.slice(0, o.indexOf(":")), o.slice(o.indexOf(":") + 1)] : [o, undefined];
    if (k === "block_size") blockSize = parseUnsigned(v ?? "", "integrity: Invalid block_size argument");
    else if (k === "meta_device" && v) metaDev = v;
    else if (k === "internal_hash" && v) hash = v;
    else if (k === "recalculate") recalculate = true;
    else if (k === "journal_sectors") journalSectors = parseUnsigned(v ?? "", "integrity: Invalid journal_sectors argument");
    else if (k === "sectors_per_bit") sectorsPerBit = parseUnsigned(v ?? "", "integrity: Invalid sectors_per_bit argument");
    else if (k === "bitmap_flush_interval") bitmapFlushIntervalMs = parseUnsigned(v ?? "", "integrity: Invalid bitmap_flush_interval argument");
    else if (k === "commit_time") commitTimeMs = parseUnsigned(v ?? "", "integrity: Invalid commit_time argument");
    else if (!["fix_padding", "interleave_sectors", "buffer_sectors", "journal_watermark", "allow_discards"].includes(k))
      throw new TableError(`integrity: Invalid argument ${o}`);
  }
  if (![512, 1024, 2048, 4096].includes(blockSize)) throw new TableError("integrity: Invalid block_size argument");
  if (!metaDev) throw new TableError("integrity: a meta_device is required by ulvm");
  return { dataDev, tagSize, mode, blockSize, metaDev, recalculate, journalSectors, sectorsPerBit, bitmapFlushIntervalMs, commitTimeMs, hash, raw: args };
}

export class IntegrityTarget implements Target {
  readonly type = "integrity";

  constructor(
    readonly lengthSectors: number,
    private readonly args: IntegrityArgs,
    readonly device: IntegrityDevice,
    private readonly set: DeviceSet,
  ) {}

  read(sector: number, into: Uint8Array, opts?: ReadOptions): Promise<void> {
    return this.device.read(sector * SECTOR_BYTES, into, opts);
  }

  write(sector: number, data: Uint8Array, opts: TargetWriteOptions): Promise<void> {
    return this.device.write(sector * SECTOR_BYTES, data, opts.fua ? FUA : undefined);
  }

  flush(): Promise<void> {
    return this.device.flush();
  }

  async destroy(): Promise<void> {
    await this.device.close();
    await this.set.releaseAll();
  }

  /** dm-integrity's INFO status: `<mismatches> <provided_data_sectors> <recalc_sector|->`. */
  status(): TargetStatus {
    const s = this.device.status();
    return { type: "other", targetType: "integrity", info: `${s.mismatches} ${s.providedDataSectors} ${s.recalcSector ?? "-"}` };
  }

  tableArgs(): readonly string[] {
    return this.args.raw;
  }

  devices(): readonly DeviceUse[] {
    return this.set.uses;
  }
}

/**
 * POLICY (issue 17; the kernel's dm_integrity_ctr fails the table, and lvm2's
 * activation with it): an integrity layer whose metadata cannot be used (a
 * corrupt superblock, a tag area too small for the data, a hash ulvm does
 * not compute) still loads, as a layer that serves nothing and writes
 * nothing. The raid1 above sees it (staleIntegrityReason) and activates
 * degraded without this image, never reading, resyncing or writing it, and
 * the metadata stays as it is for a repair to re-initialise
 * (lvconvert --repair). The reason is reported once, as an event.
 */
export class StaleIntegrityTarget implements Target {
  readonly type = "integrity";

  constructor(
    readonly lengthSectors: number,
    /** Why the layer's metadata is not used. */
    readonly stale: string,
    private readonly args: readonly string[],
    private readonly set: DeviceSet,
    private readonly deviceName: string,
  ) {}

  private refuse(): Promise<never> {
    return Promise.reject(new IoError(`${this.deviceName}: integrity metadata not usable (${this.stale}): nothing is read or written until a repair`, "EIO"));
  }

  read(): Promise<void> {
    return this.refuse();
  }

  write(): Promise<void> {
    return this.refuse();
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  async destroy(): Promise<void> {
    await this.set.releaseAll();
  }

  /** dm-integrity's INFO with no count and no size known, then ulvm's word for the state. */
  status(): TargetStatus {
    return { type: "other", targetType: "integrity", info: "0 0 - stale" };
  }

  tableArgs(): readonly string[] {
    return this.args;
  }

  devices(): readonly DeviceUse[] {
    return this.set.uses;
  }
}

/** The reason `dev` (a raid1 image) is a stale integrity layer (StaleIntegrityTarget), if it is one. */
export function staleIntegrityReason(dev: BlockDevice): string | undefined {
  // A mapped device's live targets; other block devices (PV files, NBD) have none.
  const targets = (dev as Partial<{ liveTargets(): readonly Target[] }>).liveTargets?.() ?? [];
  for (const t of targets) if (t instanceof StaleIntegrityTarget) return t.stale;
  return undefined;
}

export const integrityTargetType: TargetType = {
  name: "integrity",
  async create(args: readonly string[], ctx: TargetContext): Promise<Target> {
    const a = parseIntegrityArgs(args);
    const set = new DeviceSet(ctx);
    return constructWith(set, async () => {
      const data = await set.open(a.dataDev, 0, ctx.lengthSectors);
      const meta = await set.open(a.metaDev, 0, 0, "log");
      const stale = (reason: string): Target => {
        const e = { kind: "integrity-invalid", device: ctx.deviceName, metaDevice: a.metaDev, reason } as const;
        void Promise.resolve(ctx.env.onEvent?.(e)).catch(() => undefined);
        return new StaleIntegrityTarget(ctx.lengthSectors, reason, a.raw, set, ctx.deviceName);
      };
      if (a.hash !== "crc32c") return stale(`unknown integrity algorithm ${a.hash ?? "(none)"} (ulvm computes crc32c)`);
      let device: IntegrityDevice;
      try {
        device = await IntegrityDevice.open({
          name: ctx.deviceName,
          data,
          meta,
          tagSize: a.tagSize,
          blockSize: a.blockSize,
          mode: a.mode,
          recalculate: a.recalculate,
          ...(a.journalSectors !== undefined ? { journalSectors: a.journalSectors } : {}),
          ...(a.sectorsPerBit !== undefined ? { sectorsPerBit: a.sectorsPerBit } : {}),
          ...(a.bitmapFlushIntervalMs !== undefined ? { bitmapFlushIntervalMs: a.bitmapFlushIntervalMs } : {}),
          ...(a.commitTimeMs !== undefined ? { commitTimeMs: a.commitTimeMs } : {}),
        });
      } catch (e) {
        // A corrupt or foreign superblock, a metadata device too small for the tags: EINVAL from open.
        // Other errors (the metadata device unreadable) fail the load as before.
        if (e instanceof IoError && e.errno === "EINVAL") return stale(e.message);
        if (e instanceof IoError) throw new TableError(e.message, { device: a.metaDev }, e);
        throw e;
      }
      if (ctx.lengthSectors * SECTOR_BYTES > device.sizeBytes) {
        await device.close();
        throw new TableError(`integrity: the table (${ctx.lengthSectors} sectors) is longer than the ${device.sizeBytes / SECTOR_BYTES} sectors the device provides`);
      }
      return new IntegrityTarget(ctx.lengthSectors, a, device, set);
    });
  },
};
