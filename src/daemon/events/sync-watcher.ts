import type { TargetStatusLine } from "../../mapper/mapped-device.js";
import type { EventInput } from "./event-types.js";

/**
 * Resync and recovery progress as events: started, every 10%, finished with
 * its duration and the bytes copied. md's terms: a "resync" makes legs that
 * all hold data agree (a new LV's initial sync, after an unclean stop); a
 * "recovery" rebuilds a leg that was replaced or came back. Neither is a
 * failure, so all of them are info: the failure that led to a recovery was
 * its own event.
 *
 * It reads the targets' in-memory status (what `dmsetup status` prints),
 * never the devices: a poll costs no I/O and never waits for any. Start and
 * end are also checked when they happen (after a table load, on the
 * mapper's in-sync event); the poll only sees the steps in between.
 */
export interface WatchedLv {
  readonly vg: string;
  readonly lv: string;
  readonly exportName: string;
  /** Status lines of the LV's own (top) device, or undefined when it is gone. */
  statusLines(): readonly TargetStatusLine[] | undefined;
}

export type SyncKind = "resync" | "recovery";

export interface SyncSample {
  /** undefined while a scrub runs or the array is frozen: no resync/recovery to report. */
  readonly kind: SyncKind | undefined;
  readonly insyncRegions: number;
  readonly totalRegions: number;
  readonly regionBytes: number;
  /** Bytes the current target has copied since its table was loaded. */
  readonly copiedBytes: number;
}

interface Job {
  kind: SyncKind;
  startedMs: number;
  bytes: number;
  lastCopied: number;
  lastDecade: number;
}

/** The sync state of an LV's top device (mirror or raid lines), or undefined for one that does not sync. */
export function syncSample(lines: readonly TargetStatusLine[]): SyncSample | undefined {
  let insync = 0;
  let total = 0;
  let copied = 0;
  let regionBytes = 0;
  let kind: SyncKind | undefined;
  let seen = false;
  let quiet = false;
  for (const line of lines) {
    const s = line.status;
    if (s.type === "raid") {
      seen = true;
      insync += s.insyncRegions;
      total += s.totalRegions;
      copied += s.resync.copiedBytes;
      regionBytes = s.regionSectors * 512;
      // A sync needs two live devices: an array left with one after a failure keeps
      // its out-of-sync regions (for the leg that comes back), and dm-raid shows the
      // survivor 'a' while regions are out of sync, but it has nothing to copy to.
      const copyable = s.devices.filter((d) => d.health === "A" || d.health === "a").length >= 2;
      if (!copyable) quiet ||= s.insyncRegions < s.totalRegions;
      else if (s.syncAction === "recover") kind = "recovery";
      else if (s.syncAction === "resync") kind ??= "resync";
      else if (s.syncAction !== "idle") quiet = true;
    } else if (s.type === "mirror") {
      seen = true;
      insync += s.insyncRegions;
      total += s.totalRegions;
      copied += s.resync.copiedBytes;
      regionBytes = s.regionSectors * 512;
      // As for raid: with fewer than two live legs there is nothing to copy to.
      if (s.legs.filter((l) => l.health === "A").length < 2) quiet ||= s.insyncRegions < s.totalRegions;
      else if (s.insyncRegions < s.totalRegions) kind = s.legs.some((l) => l.stale && l.health === "A") ? "recovery" : (kind ?? "resync");
    }
  }
  if (!seen) return undefined;
  return { kind: quiet ? undefined : kind, insyncRegions: insync, totalRegions: total, regionBytes, copiedBytes: copied };
}

export class SyncWatcher {
  private readonly jobs = new Map<string, Job>();
  private readonly expectingRecovery = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly emit: (e: EventInput) => void,
    private readonly lvs: () => Iterable<WatchedLv>,
    private readonly now: () => number = Date.now,
  ) {}

  start(intervalMs: number): void {
    if (intervalMs > 0) this.timer = setInterval(() => this.poll(), intervalMs);
    this.timer?.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The next sync of this LV rebuilds a replaced leg (the policy repaired it), whatever the target calls it. */
  expectRecovery(exportName: string): void {
    this.expectingRecovery.add(exportName);
  }

  /** The LV went away (deactivated): its sync is not followed any more. */
  forget(exportName: string): void {
    this.jobs.delete(exportName);
    this.expectingRecovery.delete(exportName);
  }

  /** The LV was renamed while syncing. */
  rename(from: string, to: string): void {
    const j = this.jobs.get(from);
    if (j) {
      this.jobs.delete(from);
      this.jobs.set(to, j);
    }
  }

  poll(): void {
    for (const lv of this.lvs()) this.check(lv);
  }

  check(lv: WatchedLv): void {
    const lines = lv.statusLines();
    const s = lines ? syncSample(lines) : undefined;
    if (!s) return;
    let job = this.jobs.get(lv.exportName);
    const percent = s.totalRegions > 0 ? Math.floor((s.insyncRegions * 100) / s.totalRegions) : 100;
    const inSync = s.insyncRegions >= s.totalRegions;
    if (job) {
      job.bytes += s.copiedBytes >= job.lastCopied ? s.copiedBytes - job.lastCopied : s.copiedBytes; // a reload starts a new target's count at 0
      job.lastCopied = s.copiedBytes;
    }
    if (!job && !inSync && s.kind) {
      const kind = this.expectingRecovery.has(lv.exportName) ? "recovery" : s.kind;
      this.expectingRecovery.delete(lv.exportName);
      job = { kind, startedMs: this.now(), bytes: s.copiedBytes, lastCopied: s.copiedBytes, lastDecade: Math.floor(percent / 10) };
      this.jobs.set(lv.exportName, job);
      const outOfSyncBytes = (s.totalRegions - s.insyncRegions) * s.regionBytes;
      this.emit({ name: `${kind}-started`, vg: lv.vg, lv: lv.lv, details: { percent, outOfSyncBytes }, message: `${kind} started at ${percent}%` });
      return;
    }
    if (!job) return;
    if (inSync) {
      this.jobs.delete(lv.exportName);
      const durationS = Math.round((this.now() - job.startedMs) / 100) / 10;
      this.emit({ name: `${job.kind}-finished`, vg: lv.vg, lv: lv.lv, details: { durationS, bytes: job.bytes }, message: `${job.kind} finished in ${durationS}s, ${job.bytes} bytes copied` });
      return;
    }
    const decade = Math.floor(percent / 10);
    if (decade > job.lastDecade && decade < 10) {
      job.lastDecade = decade;
      this.emit({ name: `${job.kind}-progress`, vg: lv.vg, lv: lv.lv, details: { percent: decade * 10, bytes: job.bytes }, message: `${job.kind} at ${decade * 10}%` });
    }
  }
}
