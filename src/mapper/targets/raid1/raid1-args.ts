import type { SyncMode } from "../../dirty-log/dirty-log.js";
import { TableError } from "../../table-error.js";
import { U32_MAX, isPowerOfTwo, parseUnsigned } from "../../args.js";

/**
 * The `raid1` table line as dm-raid's raid_ctr / parse_raid_params read it
 * and libdm's _raid_emit_segment_line writes it (reference §2):
 *
 *   raid1 <#params> <chunk_size> [sync|nosync] [rebuild <idx>]...
 *         [min_recovery_rate <KiB/s>] [max_recovery_rate <KiB/s>]
 *         [write_mostly <idx>]... [max_write_behind <n>] [region_size <sectors>]
 *         <#devs> (<rmeta> <rimage>){#devs}
 *
 * The first parameter is always the chunk size (lvm2 writes 0; the kernel
 * ignores it for raid1); #params counts every word after it, chunk size
 * included. A slot written `- -` has no devices (a split-off or missing
 * leg). Parameters may come in any order; tableArgs() prints them in the
 * order above (the kernel's raid_status STATUSTYPE_TABLE order).
 * Messages follow dm-raid's ti->error strings where we know them.
 */
export interface Raid1Args {
  readonly chunkSectors: number;
  /** region_size, or the kernel's default when it was not given (see regionSizeGiven). */
  readonly regionSectors: number;
  readonly regionSizeGiven: boolean;
  readonly syncMode: SyncMode;
  /** Slots to rebuild in full (sorted, unique). */
  readonly rebuild: readonly number[];
  readonly writeMostly: readonly number[];
  readonly minRecoveryRateKiBPerSec: number | undefined;
  readonly maxRecoveryRateKiBPerSec: number | undefined;
  /** As given in the table; dm-raid keeps half of it in the bitmap (reference §3 quirk). */
  readonly maxWriteBehind: number | undefined;
  /** One per slot; undefined = `- -`. */
  readonly devices: ReadonlyArray<Raid1Device | undefined>;
}

export interface Raid1Device {
  readonly meta: string;
  readonly data: string;
}

/** dm-raid MAX_RAID_DEVICES. */
export const MAX_RAID1_DEVICES = 253;
/** md's bitmap COUNTER_MAX: the largest max_write_behind. */
export const MAX_WRITE_BEHIND = 16383;
/** The most regions a raid set may have (dm-raid validate_region_size, lvm2 raid_ensure_min_region_size). */
export const MAX_RAID_REGIONS = 1 << 21;
/** Region size when the table gives none: 4 MiB. */
export const DEFAULT_RAID_REGION_SECTORS = 1 << 13;

function err(message: string, details?: Record<string, unknown>): TableError {
  return new TableError(`raid: ${message}`, { targetType: "raid", ...(details ?? {}) });
}

function num(text: string | undefined, what: string, max = U32_MAX): number {
  try {
    return parseUnsigned(text, what, max);
  } catch {
    throw err(what, { arg: text });
  }
}

/** dm-raid validate_region_size for a raid1 of `lengthSectors`. */
function regionSize(given: number | undefined, lengthSectors: number): number {
  const minRegionSectors = Math.ceil(lengthSectors / MAX_RAID_REGIONS);
  if (given === undefined) {
    if (minRegionSectors <= DEFAULT_RAID_REGION_SECTORS) return DEFAULT_RAID_REGION_SECTORS;
    let r = 1;
    while (r < minRegionSectors) r *= 2;
    return r;
  }
  if (given > lengthSectors) throw err("Supplied region size is too large", { regionSectors: given });
  if (given < minRegionSectors) throw err(`Supplied region_size (${given} sectors) below minimum (${minRegionSectors})`, { regionSectors: given });
  if (!isPowerOfTwo(given)) throw err("Region size is not a power of 2", { regionSectors: given });
  return given;
}

export function parseRaid1Args(args: readonly string[], lengthSectors: number): Raid1Args {
  if (args.length < 3) throw err("Too few arguments");
  if (args[0] !== "raid1") throw err(`Unrecognised raid_type "${args[0]}" (this target type is raid1)`);
  const paramCount = num(args[1], "Cannot understand number of RAID parameters");
  if (paramCount < 1) throw err("Cannot understand number of RAID parameters");
  if (args.length < 2 + paramCount + 1) throw err("Wrong number of raid parameters given");
  const params = args.slice(2, 2 + paramCount);
  const chunkSectors = num(params[0], "Bad numerical argument given for chunk_size");

  let syncMode: SyncMode = "default";
  const rebuild = new Set<number>();
  const writeMostly = new Set<number>();
  let minRate: number | undefined;
  let maxRate: number | undefined;
  let writeBehind: number | undefined;
  let region: number | undefined;
  const valued = new Set(["rebuild", "min_recovery_rate", "max_recovery_rate", "write_mostly", "max_write_behind", "region_size"]);
  const indexes: Array<{ key: "rebuild" | "write_mostly"; idx: number }> = [];
  for (let i = 1; i < params.length; i++) {
    const key = params[i]!;
    if (key === "nosync" || key === "sync") {
      if (syncMode !== "default") throw err(syncMode === key ? `Only one '${key}' argument allowed` : "Invalid flags combination: sync and nosync");
      syncMode = key;
      continue;
    }
    if (!valued.has(key)) throw err(`Unable to parse RAID parameter: ${key}`, { arg: key });
    const value = params[++i];
    if (value === undefined) throw err("Wrong number of raid parameters given", { arg: key });
    const n = num(value, "Bad numerical argument given in raid params", 0x7fffffff);
    switch (key) {
      case "rebuild":
        if (rebuild.has(n)) throw err("rebuild for this index already given", { index: n });
        rebuild.add(n);
        indexes.push({ key, idx: n });
        break;
      case "write_mostly":
        if (writeMostly.has(n)) throw err("write_mostly for this index already given", { index: n });
        writeMostly.add(n);
        indexes.push({ key, idx: n });
        break;
      case "min_recovery_rate":
        if (minRate !== undefined) throw err("Only one min_recovery_rate argument pair allowed");
        minRate = n;
        break;
      case "max_recovery_rate":
        if (maxRate !== undefined) throw err("Only one max_recovery_rate argument pair allowed");
        maxRate = n;
        break;
      case "max_write_behind":
        if (writeBehind !== undefined) throw err("Only one max_write_behind argument pair allowed");
        if (n > MAX_WRITE_BEHIND * 2) throw err("Max write-behind limit out of range", { value: n });
        writeBehind = n;
        break;
      case "region_size":
        if (region !== undefined) throw err("Only one region_size argument pair allowed");
        region = n;
        break;
    }
  }
  if (minRate !== undefined && maxRate !== undefined && minRate > maxRate) throw err("Bogus recovery rates", { minRate, maxRate });
  const regionSectors = regionSize(region, lengthSectors);

  let i = 2 + paramCount;
  const devCount = num(args[i], "Cannot understand number of raid devices parameters", MAX_RAID1_DEVICES);
  if (devCount < 1) throw err("Cannot understand number of raid devices parameters");
  i++;
  if (args.length - i !== devCount * 2)
    throw err(`Supplied RAID devices does not match the count given: ${devCount} slots need ${devCount * 2} device arguments, got ${args.length - i}`, {
      devices: devCount,
      args: args.length - i,
    });
  const devices: Array<Raid1Device | undefined> = [];
  for (let s = 0; s < devCount; s++, i += 2) {
    const meta = args[i]!;
    const data = args[i + 1]!;
    if (meta === "-" && data === "-") devices.push(undefined);
    else if (meta === "-" || data === "-")
      // POLICY: the kernel takes a data device without metadata (no
      // superblock, no bitmap); lvm2 never loads one for raid1, and without
      // an rmeta the slot's state could not persist, so it is refused.
      throw err(`slot ${s}: a raid1 slot needs both an rmeta and an rimage, or "- -"`, { slot: s });
    else devices.push({ meta, data });
  }
  for (const { key, idx } of indexes) {
    if (idx >= devCount) throw err(key === "rebuild" ? "Invalid rebuild index given" : "Invalid write_mostly index given", { index: idx, devices: devCount });
    if (key === "rebuild" && devices[idx] === undefined) throw err("Drive designated for rebuild not specified", { index: idx });
  }
  if (writeMostly.size > 0 && writeMostly.size >= devices.filter((d) => d !== undefined).length)
    throw err("Can't set all raid1 devices to write_mostly");

  const sorted = (x: Set<number>): number[] => [...x].sort((a, b) => a - b);
  return {
    chunkSectors,
    regionSectors,
    regionSizeGiven: region !== undefined,
    syncMode,
    rebuild: sorted(rebuild),
    writeMostly: sorted(writeMostly),
    minRecoveryRateKiBPerSec: minRate,
    maxRecoveryRateKiBPerSec: maxRate,
    maxWriteBehind: writeBehind,
    devices,
  };
}

/** The arguments back, as `dmsetup table` prints them. */
export function formatRaid1Args(a: Raid1Args): string[] {
  const p: string[] = [String(a.chunkSectors)];
  if (a.syncMode !== "default") p.push(a.syncMode);
  for (const r of a.rebuild) p.push("rebuild", String(r));
  if (a.minRecoveryRateKiBPerSec !== undefined) p.push("min_recovery_rate", String(a.minRecoveryRateKiBPerSec));
  if (a.maxRecoveryRateKiBPerSec !== undefined) p.push("max_recovery_rate", String(a.maxRecoveryRateKiBPerSec));
  for (const w of a.writeMostly) p.push("write_mostly", String(w));
  if (a.maxWriteBehind !== undefined) p.push("max_write_behind", String(a.maxWriteBehind));
  if (a.regionSizeGiven) p.push("region_size", String(a.regionSectors));
  const devs = a.devices.flatMap((d) => (d === undefined ? ["-", "-"] : [d.meta, d.data]));
  return ["raid1", String(p.length), ...p, String(a.devices.length), ...devs];
}
