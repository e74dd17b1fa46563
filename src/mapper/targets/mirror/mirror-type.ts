import type { Target, TargetContext, TargetType } from "../../target.js";
import type { DirtyLog } from "../../dirty-log/dirty-log.js";
import type { MirrorLeg } from "./mirror-leg.js";
import type { MirrorOptions } from "./mirror-target.js";
import { DEFAULT_MIRROR_OPTIONS, MirrorTarget } from "./mirror-target.js";
import { parseMirrorArgs } from "./mirror-args.js";
import { CoreDirtyLog } from "../../dirty-log/core-log.js";
import { DiskDirtyLog } from "../../dirty-log/disk-log.js";
import { DeviceSet, constructWith } from "../../device-set.js";
import { TableError } from "../../table-error.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";

/**
 * The `mirror` target type. Options apply to every mirror built by this
 * type (the daemon may build its own with other defaults); per-device
 * changes go through the MirrorTarget methods.
 */
export function createMirrorTargetType(options: Partial<MirrorOptions> = {}): TargetType {
  const opts: MirrorOptions = { ...DEFAULT_MIRROR_OPTIONS, ...options };
  return {
    name: "mirror",
    async create(args: readonly string[], ctx: TargetContext): Promise<Target> {
      const a = parseMirrorArgs(args, ctx.lengthSectors);
      const regionCount = Math.ceil(ctx.lengthSectors / a.regionSectors);
      const set = new DeviceSet(ctx);
      return constructWith(set, async () => {
        let log: DirtyLog;
        if (a.log.type === "disk") {
          const transferBytes = DiskDirtyLog.transferBytes(regionCount, opts.logLogicalBlockBytes);
          let logDev;
          try {
            logDev = await set.open(a.log.device, 0, transferBytes / SECTOR_BYTES, "log");
          } catch (e) {
            if (e instanceof TableError && e.message.includes("too small"))
              throw new TableError(`mirror: log device ${a.log.device} too small: need ${transferBytes} bytes`, { device: a.log.device }, e);
            throw e;
          }
          const logName = a.log.device;
          log = new DiskDirtyLog(a.regionSectors, regionCount, a.syncMode, logName, logDev, (errno) => {
            void Promise.resolve(ctx.env.onEvent?.({ kind: "log-failed", device: ctx.deviceName, logDevice: logName, errno })).catch(
              () => undefined,
            );
          }, opts.logLogicalBlockBytes);
        } else {
          log = new CoreDirtyLog(a.regionSectors, regionCount, a.syncMode);
        }
        const legs: MirrorLeg[] = [];
        for (let i = 0; i < a.legs.length; i++) {
          const spec = a.legs[i]!;
          const dev = await set.open(spec.device, spec.offsetSectors, ctx.lengthSectors, "data");
          legs.push({
            index: i,
            name: spec.device,
            dev,
            offsetSectors: spec.offsetSectors,
            offsetBytes: spec.offsetSectors * SECTOR_BYTES,
            failed: false,
            errors: new Set(),
            stale: false,
            ack: undefined,
          });
        }
        return new MirrorTarget(ctx.lengthSectors, a, legs, log, set, ctx.env, ctx.deviceName, opts);
      });
    },
  };
}

export const mirrorTargetType: TargetType = createMirrorTargetType();
