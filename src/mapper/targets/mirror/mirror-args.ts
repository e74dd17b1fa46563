import type { SyncMode } from "../../dirty-log/dirty-log.js";
import { TableError } from "../../table-error.js";
import { U32_MAX, isPowerOfTwo, parseUnsigned } from "../../args.js";

/**
 * The mirror target's table arguments, as dm-raid1 mirror_ctr and dm-log
 * create_log_context parse them:
 *
 *   <log_type> <#log_args> <log_args...> <#legs> (<dev> <offset>){#legs} [<#features> <feature...>]
 *
 *   core 1|2 <region_size> [sync|nosync]
 *   disk 2|3 <log_dev> <region_size> [sync|nosync]
 *
 * region_size is in sectors, a power of two, >= 2 and <= the target length.
 * Legs: 2..9 (kcopyd copies to at most 8 destinations). The only feature is
 * `handle_errors`. Messages follow the kernel's ti->error strings.
 */
export interface MirrorArgs {
  readonly log: { readonly type: "core" } | { readonly type: "disk"; readonly device: string };
  readonly regionSectors: number;
  readonly syncMode: SyncMode;
  readonly legs: ReadonlyArray<{ readonly device: string; readonly offsetSectors: number }>;
  readonly handleErrors: boolean;
}

/** DM_KCOPYD_MAX_REGIONS + 1 */
export const MAX_MIRROR_LEGS = 9;

function err(message: string, details?: Record<string, unknown>): TableError {
  return new TableError(`mirror: ${message}`, { targetType: "mirror", ...(details ?? {}) });
}

export function parseMirrorArgs(args: readonly string[], lengthSectors: number): MirrorArgs {
  let i = 0;
  if (args.length < 2) throw err("Insufficient mirror log arguments");
  const logType = args[0]!;
  let logArgCount: number;
  try {
    logArgCount = parseUnsigned(args[1], "Invalid mirror log argument count", U32_MAX);
  } catch (e) {
    throw err("Invalid mirror log argument count", { arg: args[1] });
  }
  if (args.length < 2 + logArgCount) throw err("Insufficient mirror log arguments");
  const logArgs = args.slice(2, 2 + logArgCount);
  i = 2 + logArgCount;

  let log: MirrorArgs["log"];
  let rest: readonly string[];
  if (logType === "core") {
    if (logArgs.length < 1 || logArgs.length > 2) throw err("wrong number of arguments to dirty region log");
    log = { type: "core" };
    rest = logArgs;
  } else if (logType === "disk") {
    if (logArgs.length < 2 || logArgs.length > 3) throw err("wrong number of arguments to disk dirty region log");
    log = { type: "disk", device: logArgs[0]! };
    rest = logArgs.slice(1);
  } else {
    throw err(`Error creating mirror dirty log: unknown log type "${logType}"`);
  }
  let syncMode: SyncMode = "default";
  if (rest.length > 1) {
    if (rest[1] === "sync") syncMode = "sync";
    else if (rest[1] === "nosync") syncMode = "nosync";
    else throw err(`unrecognised sync argument to dirty region log: ${rest[1]}`);
  }
  let regionSectors: number;
  try {
    regionSectors = parseUnsigned(rest[0], "invalid region size", U32_MAX);
  } catch {
    throw err(`invalid region size ${rest[0]}`);
  }
  if (regionSectors < 2 || regionSectors > lengthSectors || !isPowerOfTwo(regionSectors))
    throw err(`invalid region size ${regionSectors}: must be a power of two, at least 2 and at most the target length (${lengthSectors})`);

  let legCount: number;
  try {
    legCount = parseUnsigned(args[i], "Invalid number of mirrors", U32_MAX);
  } catch {
    throw err("Invalid number of mirrors");
  }
  if (legCount < 2 || legCount > MAX_MIRROR_LEGS) throw err(`Invalid number of mirrors: ${legCount} (2..${MAX_MIRROR_LEGS})`);
  i++;
  if (args.length - i < legCount * 2) throw err("Too few mirror arguments");
  const legs: Array<{ device: string; offsetSectors: number }> = [];
  for (let m = 0; m < legCount; m++) {
    const device = args[i]!;
    let offsetSectors: number;
    try {
      offsetSectors = parseUnsigned(args[i + 1], "Invalid offset");
    } catch {
      throw err(`Invalid offset "${args[i + 1]}" for mirror leg ${m}`);
    }
    legs.push({ device, offsetSectors });
    i += 2;
  }

  let handleErrors = false;
  if (i < args.length) {
    let featureCount: number;
    try {
      featureCount = parseUnsigned(args[i], "Invalid number of features", U32_MAX);
    } catch {
      throw err("Invalid number of features");
    }
    i++;
    if (featureCount > args.length - i) throw err("Not enough arguments to support feature count");
    for (let f = 0; f < featureCount; f++) {
      const feature = args[i++]!;
      if (feature === "handle_errors") handleErrors = true;
      else throw err(`Unrecognised feature requested: ${feature}`);
    }
  }
  if (i < args.length) throw err("Too many mirror arguments");
  return { log, regionSectors, syncMode, legs, handleErrors };
}

/** The arguments back, as `dmsetup table` prints them (mirror_status STATUSTYPE_TABLE). */
export function formatMirrorArgs(a: MirrorArgs): string[] {
  const sync = a.syncMode === "default" ? [] : [a.syncMode];
  const log =
    a.log.type === "core"
      ? ["core", String(1 + sync.length), String(a.regionSectors), ...sync]
      : ["disk", String(2 + sync.length), a.log.device, String(a.regionSectors), ...sync];
  const legs = a.legs.flatMap((l) => [l.device, String(l.offsetSectors)]);
  return [...log, String(a.legs.length), ...legs, ...(a.handleErrors ? ["1", "handle_errors"] : [])];
}
