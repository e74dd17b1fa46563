import type { Raid1Args } from "./raid1-args.js";
import type { RmetaLoad } from "../../raid/rmeta-io.js";
import { freshestRmeta } from "../../raid/rmeta-io.js";
import { MAX_SECTOR, isPositionFailed, newRaid1Superblock, type DmRaidSuperblock } from "../../raid/dm-raid-superblock.js";
import { TableError } from "../../table-error.js";

/** What activation does with one slot. */
export type SlotPlan =
  | { readonly kind: "absent" }
  /** Its rmeta is unreadable or not a dm-raid superblock: the leg is failed from the start. */
  | { readonly kind: "faulty"; readonly reason: string }
  | { readonly kind: "in-sync" }
  /** Not in sync: recovered from an in-sync leg, in full or only the bitmap's dirty regions. */
  | { readonly kind: "recover"; readonly recovery: "dirty" | "full"; readonly reason: "failed-bit" | "recovery-offset" | "rebuild" | "split" };

export interface Raid1Plan {
  readonly slots: readonly SlotPlan[];
  /** No rmeta held a superblock: "Superblocks created for new raid set". */
  readonly newSet: boolean;
  /** The freshest superblock (or a new one): array-wide fields for every later write. */
  readonly template: DmRaidSuperblock;
  /** array_resync_offset was MaxSector: the initial sync had finished. */
  readonly resyncDone: boolean;
}

export interface Raid1PlanOptions {
  /**
   * On a reload of a running array: the slots it holds in sync. Only they
   * can be the authority, whatever the events of a returning leg say.
   */
  readonly inSyncBefore?: ReadonlySet<number>;
}

function refuse(message: string, details?: Record<string, unknown>): TableError {
  return new TableError(`raid: ${message}`, { targetType: "raid", ...(details ?? {}) });
}

/**
 * dm-raid's analyse_superblocks / super_validate for raid1 (reference §2,
 * "Activation / stale-leg logic"), as a pure function of what each rmeta
 * held and the table:
 *
 * 1. the valid superblock with the highest events is authoritative;
 * 2. a slot whose bit is set in its failed_devices is re-admitted not in
 *    sync and recovered from the bitmap (only dirty regions);
 * 3. a slot whose own disk_recovery_offset is not MaxSector is recovered:
 *    POLICY (unconfirmed against the kernel's resume-from-offset) in full,
 *    since we do not persist recovery progress, only 0 or MaxSector;
 * 4. a fresh (zeroed) rmeta in an existing set needs `rebuild` (we have
 *    no delta_disks); `rebuild <i>` recovers slot i in full in any case;
 * 5. at least one in-sync leg, else "Insufficient redundancy".
 *
 * Split brain (issue 18; POLICY, not the kernel's): a leg that left and was
 * written by someone else meanwhile (the other side of a partition activated
 * it alone) comes back with a superblock of its own making: its events
 * raised, the survivors' slots marked failed. The kernel would take the
 * highest events as authoritative, i.e. whichever side wrote its superblock
 * more often. ulvm never lets the returning side be current:
 *   - on a reload of a running array (lvchange --refresh, the re-add of a
 *     restored PV), the authority is chosen only among the slots the running
 *     array holds in sync (`inSyncBefore`): their record of the failure
 *     decides. A returning superblock that marks one of them failed, or that
 *     is newer than the authority (a leg that left was last written
 *     before the survivors recorded its failure), has writes the survivors
 *     never saw, in regions their bitmap cannot name: it is recovered in full;
 *   - at a cold activation, two superblocks that mark each other failed are a
 *     split with no running array to decide: the freshest (dm-raid's rule)
 *     stays the authority and the other is recovered in full, never merged.
 * A returning leg whose superblock is untouched (older, marks nobody failed)
 * is recovered from the bitmap only.
 * An unreadable or undecodable rmeta fails its leg (the kernel fails the
 * rdev whose superblock it cannot load).
 */
export function planRaid1(loads: readonly RmetaLoad[], a: Raid1Args, arraySectors: number, opts: Raid1PlanOptions = {}): Raid1Plan {
  const trusted = opts.inSyncBefore;
  const trustedLoads = trusted ? loads.map((l, i): RmetaLoad => (trusted.has(i) ? l : { kind: "absent" })) : loads;
  const freshest = freshestRmeta(trustedLoads) ?? freshestRmeta(loads);
  const winner = freshest === undefined ? undefined : loads[freshest];
  const winnerSb = winner?.kind === "valid" ? winner.superblock : undefined;
  /** Did slot i's own superblock come from a side that went on without the authority? */
  const split = (i: number, sb: DmRaidSuperblock): boolean => {
    if (winnerSb === undefined || i === freshest) return false;
    const marksFailed = (s: number): boolean => isPositionFailed(sb.failedDevices, s);
    if (trusted?.has(freshest!) && !trusted.has(i)) return [...trusted].some(marksFailed) || sb.eventCount > winnerSb.eventCount;
    return marksFailed(freshest!) && isPositionFailed(winnerSb.failedDevices, i);
  };
  const rebuild = new Set(a.rebuild);
  const slots: SlotPlan[] = loads.map((l, i): SlotPlan => {
    if (l.kind === "absent") return { kind: "absent" };
    if (l.kind === "unreadable") return { kind: "faulty", reason: `rmeta unreadable: ${l.errno}` };
    if (l.kind === "invalid") return { kind: "faulty", reason: l.reason };
    if (rebuild.has(i)) return { kind: "recover", recovery: "full", reason: "rebuild" };
    if (l.kind === "fresh") {
      if (winner === undefined) return { kind: "in-sync" };
      throw refuse("New device injected into existing raid set without 'delta_disks' or 'rebuild' parameter specified", { slot: i });
    }
    const w = winner!.kind === "valid" ? winner!.superblock : l.superblock;
    if (split(i, l.superblock)) return { kind: "recover", recovery: "full", reason: "split" };
    if (isPositionFailed(w.failedDevices, i)) return { kind: "recover", recovery: "dirty", reason: "failed-bit" };
    if (l.superblock.diskRecoveryOffsetSectors !== MAX_SECTOR) return { kind: "recover", recovery: "full", reason: "recovery-offset" };
    return { kind: "in-sync" };
  });
  if (!slots.some((s) => s.kind === "in-sync")) throw refuse("Insufficient redundancy to activate array", { slots: slots.map((s) => s.kind) });
  if (winner?.kind === "valid") {
    const sb = winner.superblock;
    if (sb.level !== 1) throw refuse(`Reshaping arrays not yet supported. (RAID level change: superblock says level ${sb.level})`);
    return { slots, newSet: false, template: sb, resyncDone: sb.arrayResyncOffsetSectors === MAX_SECTOR };
  }
  const template = newRaid1Superblock({ numDevices: loads.length, arrayPosition: 0, arraySectors: BigInt(arraySectors), nosync: a.syncMode === "nosync" });
  return { slots, newSet: true, template, resyncDone: a.syncMode === "nosync" };
}
