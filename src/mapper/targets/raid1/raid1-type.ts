import type { Target, TargetContext, TargetType } from "../../target.js";
import type { BlockDevice } from "../../../blockdev/block-device.js";
import type { MirrorLeg } from "../mirror/mirror-leg.js";
import type { MirrorOptions } from "../mirror/mirror-target.js";
import type { Rmeta } from "../../raid/rmeta-io.js";
import { DEFAULT_MIRROR_OPTIONS } from "../mirror/mirror-target.js";
import { Raid1Target } from "./raid1-target.js";
import { parseRaid1Args } from "./raid1-args.js";
import { planRaid1 } from "./raid1-plan.js";
import { loadRmeta } from "../../raid/rmeta-io.js";
import { MdBitmapDirtyLog } from "../../dirty-log/md-bitmap-log.js";
import { DeviceSet, constructWith } from "../../device-set.js";
import { IoError } from "../../../errors/errors.js";
import { staleIntegrityReason } from "../integrity.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";

/** Stands in for the devices of a `- -` slot: the core never uses a failed leg, and would get ENODEV if it did. */
function absentDevice(name: string, sizeBytes: number): BlockDevice {
  const fail = (): Promise<never> => Promise.reject(new IoError(`${name}: no device in this raid slot`, "ENODEV"));
  return { name, sizeBytes, caps: { write: true, flush: true, fua: false, trim: false }, read: fail, write: fail, flush: fail, close: () => Promise.resolve() };
}

/** The slots a running raid1 (the table being replaced) holds in sync; undefined when it is not one of this shape or holds none. */
function inSyncSlotsOf(previous: Target | undefined, slots: number): ReadonlySet<number> | undefined {
  if (!Raid1Target.is(previous)) return undefined;
  const devices = previous.status().devices;
  if (devices.length !== slots) return undefined;
  const inSync = new Set(devices.flatMap((d, i) => (d.health === "A" ? [i] : [])));
  return inSync.size ? inSync : undefined;
}

/**
 * The dm `raid` target type, raid_type raid1 (the only one so far). Load
 * (raid_ctr): parse the line, open each slot's rmeta and rimage, read the
 * superblocks and decide every slot's fate (planRaid1); refusals are
 * TableErrors at load, as the kernel's are at ctr. Resume (preresume): the
 * bitmap log loads, stale legs are applied, and the superblocks are
 * written (events + 1) before the first resync or recovery starts.
 * MirrorOptions apply as to the mirror (cleaner, copier, write thread).
 */
export function createRaid1TargetType(options: Partial<MirrorOptions> = {}): TargetType {
  const opts: MirrorOptions = { ...DEFAULT_MIRROR_OPTIONS, ...options };
  return {
    name: "raid",
    async create(args: readonly string[], ctx: TargetContext): Promise<Target> {
      const a = parseRaid1Args(args, ctx.lengthSectors);
      const regionCount = Math.ceil(ctx.lengthSectors / a.regionSectors);
      const rmetaSectors = MdBitmapDirtyLog.rmetaBytes(regionCount, opts.logLogicalBlockBytes) / SECTOR_BYTES;
      const set = new DeviceSet(ctx);
      return constructWith(set, async () => {
        const rmetas: Array<Rmeta | undefined> = [];
        const legs: MirrorLeg[] = [];
        for (let i = 0; i < a.devices.length; i++) {
          const d = a.devices[i];
          let dev: BlockDevice;
          if (d === undefined) {
            rmetas.push(undefined);
            dev = absentDevice(`-(slot ${i})`, ctx.lengthSectors * SECTOR_BYTES);
          } else {
            const meta = { name: d.meta, dev: await set.open(d.meta, 0, rmetaSectors, "log") };
            dev = await set.open(d.data, 0, ctx.lengthSectors, "data");
            // An image whose integrity layer refused its metadata (reported by that layer) is as a
            // `- -` slot: failed from the start, its rmeta neither trusted nor written until a repair.
            rmetas.push(staleIntegrityReason(dev) === undefined ? meta : undefined);
          }
          legs.push({
            index: i,
            name: d?.data ?? "-",
            dev,
            offsetSectors: 0,
            offsetBytes: 0,
            failed: false,
            errors: new Set(),
            stale: false,
            ack: undefined,
          });
        }
        const loads = await Promise.all(rmetas.map((r) => loadRmeta(r)));
        loads.forEach((l, slot) => {
          if (l.kind !== "invalid") return;
          const e = { kind: "rmeta-invalid", device: ctx.deviceName, slot, metaDevice: rmetas[slot]?.name ?? "-", reason: l.reason } as const;
          void Promise.resolve(ctx.env.onEvent?.(e)).catch(() => undefined);
        });
        const plan = planRaid1(loads, a, ctx.lengthSectors, { inSyncBefore: inSyncSlotsOf(ctx.previous, a.devices.length) });
        let target: Raid1Target | undefined;
        const log = new MdBitmapDirtyLog({
          regionSectors: a.regionSectors,
          dataSectors: ctx.lengthSectors,
          syncMode: a.syncMode,
          rmetas,
          onFailure: (slot, errno) => {
            target?.rmetaFailed(slot, errno);
            if (loads[slot]?.kind === "invalid") return; // reported as rmeta-invalid above: not a device failure
            const name = rmetas[slot]?.name ?? "-";
            void Promise.resolve(ctx.env.onEvent?.({ kind: "log-failed", device: ctx.deviceName, logDevice: name, errno })).catch(() => undefined);
          },
          writeBehind: a.maxWriteBehind === undefined ? 0 : Math.floor(a.maxWriteBehind / 2),
          logicalBlockBytes: opts.logLogicalBlockBytes,
        });
        target = new Raid1Target(ctx.lengthSectors, a, plan, legs, log, set, ctx.env, ctx.deviceName, opts);
        return target;
      });
    },
  };
}

export const raid1TargetType: TargetType = createRaid1TargetType();
