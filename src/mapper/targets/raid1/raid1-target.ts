import type { DeviceUse, Target, TargetEnv, TargetWriteOptions } from "../../target.js";
import type { RaidDeviceHealth, RaidStatus, RaidSyncAction } from "../../status.js";
import type { MapperEvent } from "../../events.js";
import type { DeviceSet } from "../../device-set.js";
import type { ReadOptions } from "../../../blockdev/block-device.js";
import type { MirrorLeg } from "../mirror/mirror-leg.js";
import type { MdBitmapDirtyLog } from "../../dirty-log/md-bitmap-log.js";
import type { Raid1Args } from "./raid1-args.js";
import type { Raid1Plan } from "./raid1-plan.js";
import { MirrorTarget, type MirrorOptions } from "../mirror/mirror-target.js";
import { formatRaid1Args } from "./raid1-args.js";
import { MAX_SECTOR, withPositionFailed } from "../../raid/dm-raid-superblock.js";
import { IoError } from "../../../errors/errors.js";
import { TableError } from "../../table-error.js";
import { Raid1Scrubber, type ScrubAction, type ScrubReport } from "./raid1-scrub.js";
import { sharedCopyEngine } from "../../copy-threads/copy-engine.js";

/**
 * The raid1 target (dm-raid with md raid1): a thin adapter over the mirror
 * core (MirrorTarget), as dm-raid is over md. The core does the write
 * fan-out, leg failures, region tracking and the copier; this adds what
 * md persists in each leg's rmeta: the write-intent bitmap (the core's
 * DirtyLog is an MdBitmapDirtyLog) and the dm-raid superblocks, rewritten
 * (events + 1) at preresume, when a leg fails and when a recovery ends.
 *
 * Crash-safety of a leg failure: the core holds every write that missed
 * the failed leg (and every client flush) until the failure is recorded
 * (MirrorPersonality.recordFailure, the gate handle_errors uses for the
 * mirror); here the record is the superblocks with the leg's failed bit,
 * durable on every remaining rmeta. A crash after the acknowledgement finds
 * the bit and never trusts that leg's data; the bitmap keeps every region
 * written meanwhile dirty (no bit is cleared while degraded), so the leg,
 * once back, is recovered from exactly those regions.
 */
export class Raid1Target implements Target {
  readonly type = "raid";
  readonly core: MirrorTarget;
  /** Slots loaded with `write_mostly`: they serve reads only when no other leg can. */
  private readonly writeMostly: ReadonlySet<number>;
  /** Per slot: how its recovery runs (none once in sync). Kept until the recovery ends. */
  private readonly recovery: Array<"none" | "dirty" | "full">;
  private resyncDone: boolean;
  private sbChain: Promise<void> = Promise.resolve();
  /** Superblock commits done (events raised) since load, for tests. */
  superblockCommits = 0;
  readonly scrubber: Raid1Scrubber;
  /** md's last_sync_action among the scrubs: dm-raid reports the mismatch count only after a check. */
  private lastScrub: ScrubAction | undefined;
  /** `frozen` message: no sync action runs until `idle`. */
  private frozen = false;

  constructor(
    readonly lengthSectors: number,
    private readonly args: Raid1Args,
    private readonly plan: Raid1Plan,
    legs: MirrorLeg[],
    readonly log: MdBitmapDirtyLog,
    set: DeviceSet,
    private readonly env: TargetEnv,
    private readonly deviceName: string,
    opts: MirrorOptions,
  ) {
    this.resyncDone = plan.resyncDone;
    this.writeMostly = new Set(args.writeMostly);
    this.recovery = plan.slots.map((s) => (s.kind === "recover" ? s.recovery : "none"));
    this.core = new MirrorTarget(
      lengthSectors,
      {
        log: { type: "core" },
        regionSectors: args.regionSectors,
        syncMode: args.syncMode,
        legs: legs.map((l) => ({ device: l.name, offsetSectors: 0 })),
        handleErrors: false,
      },
      legs,
      log,
      set,
      env,
      deviceName,
      opts,
      {
        recordFailure: (leg, event) => this.recordFailure(leg, event),
        keepDirtyWhileDegraded: true,
        recoverOnlyStale: true,
        preresume: () => this.commit(),
        inSync: (recovered) => this.onInSync(recovered),
        readLeg: (sector, lengthSectors) => this.readLeg(sector, lengthSectors),
        // max_write_behind: dm-raid hands md half the table's value (parse_raid_params).
        ...(args.maxWriteBehind !== undefined && args.maxWriteBehind >= 2 && args.writeMostly.length > 0
          ? { writeBehind: { legs: new Set(args.writeMostly), maxBehind: Math.floor(args.maxWriteBehind / 2) } }
          : {}),
      },
    );
    plan.slots.forEach((s, i) => {
      if (s.kind === "absent" || s.kind === "faulty") this.core.markLegAbsent(i);
      else if (s.kind === "recover") this.core.markLegStale(i, s.recovery);
    });
    // md resyncs from the first readable leg that is not write-mostly: a
    // write-mostly leg may be behind (write-behind) when the set stops.
    const source = this.core.legs.find((l) => !l.failed && !l.stale && !this.writeMostly.has(l.index));
    if (source !== undefined && this.writeMostly.size > 0) this.core.setResyncSource(source.index);
    const rate = args.maxRecoveryRateKiBPerSec !== undefined && args.maxRecoveryRateKiBPerSec > 0 ? args.maxRecoveryRateKiBPerSec * 1024 : 0;
    if (rate > 0) this.core.setResyncRate(rate);
    this.scrubber = new Raid1Scrubber(
      { regions: this.core.regions, legs: this.core.legs, lengthSectors, failLeg: (leg, op, err) => this.core.failLeg(leg, op, err) },
      {
        ioBytes: opts.resyncIoBytes,
        batchBytes: opts.resyncBatchBytes,
        rateBytesPerSec: rate,
        engine: sharedCopyEngine(opts.resyncThreads),
        engineBatchBytes: opts.resyncThreadBatchBytes,
      },
      (report) => this.onScrubEnd(report),
    );
  }

  // ---- sync actions (dm-raid raid_message) ----------------------------------

  /**
   * `dmsetup message <dev> 0 <action>`: `check` / `repair` start a scrub
   * (Raid1Scrubber) and are refused (EBUSY) unless the set is idle;
   * `idle` stops a scrub (and ends `frozen`); `frozen` stops it and holds
   * any resync or recovery until `idle`.
   */
  async message(words: readonly string[]): Promise<string | void> {
    const [cmd, ...rest] = words;
    if (rest.length > 0) throw new TableError(`raid: unrecognised message "${words.join(" ")}"`);
    switch (cmd) {
      case "check":
      case "repair": {
        const now = this.syncAction();
        if (now !== "idle") throw new TableError(`raid: cannot start "${cmd}" while the sync action is "${now}"`, { errno: "EBUSY", syncAction: now });
        this.lastScrub = cmd;
        this.scrubber.start(cmd);
        return;
      }
      case "idle":
        await this.scrubber.stop();
        if (this.frozen) {
          this.frozen = false;
          await this.core.setResyncEnabled(true);
        }
        return;
      case "frozen":
        this.frozen = true;
        await this.scrubber.stop();
        await this.core.setResyncEnabled(false);
        return;
      default:
        throw new TableError(`raid: unrecognised message "${words.join(" ")}" (known: check, repair, idle, frozen)`);
    }
  }

  /** Resolves when the scrub running now (if any) has ended. */
  whenScrubDone(): Promise<void> {
    return this.scrubber.whenDone();
  }

  private onScrubEnd(report: ScrubReport): void {
    void Promise.resolve()
      .then(() =>
        this.env.onEvent?.({
          kind: "scrub-done",
          device: this.deviceName,
          action: report.action,
          aborted: report.aborted,
          mismatchSectors: report.mismatchSectors,
          rewrittenSectors: report.rewrittenSectors,
          places: report.places,
          placesOmitted: report.placesOmitted,
          legDevices: this.core.legs.map((l) => l.name),
        }),
      )
      .catch(() => undefined);
  }

  private syncAction(): RaidSyncAction {
    if (this.scrubber.running) return this.lastScrub ?? "check";
    if (this.frozen) return "frozen";
    const st = this.core.status();
    if (st.insyncRegions === st.totalRegions) return "idle";
    return this.core.legs.some((l) => l.stale && !l.failed) ? "recover" : "resync";
  }

  /** Per slot: the sector after the last read it served (md's next_seq_sect). */
  private readonly nextReadSector: number[] = [];
  private lastReadSlot = -1;

  /**
   * md's read_balance, in brief: only live legs that are not being recovered
   * serve reads; write-mostly legs only when no other can. A read that
   * continues the previous read of a leg stays on it (a sequential stream
   * keeps one leg's readahead); any other read goes to the next candidate
   * after the last one used, spreading random reads over the legs.
   */
  private readLeg(sector: number, lengthSectors: number): MirrorLeg | undefined {
    const legs = this.core.legs;
    let candidates = legs.filter((l) => !l.failed && !l.stale && !this.writeMostly.has(l.index));
    if (candidates.length === 0) candidates = legs.filter((l) => !l.failed && !l.stale);
    if (candidates.length === 0) return undefined;
    let leg = candidates.find((l) => this.nextReadSector[l.index] === sector);
    if (leg === undefined) leg = candidates.find((l) => l.index > this.lastReadSlot) ?? candidates[0]!;
    this.lastReadSlot = leg.index;
    this.nextReadSector[leg.index] = sector + lengthSectors;
    return leg;
  }

  /** The rmeta of `slot` failed (read, write or decode): md fails the whole device. */
  rmetaFailed(slot: number, errno: string): void {
    const leg = this.core.legs[slot];
    if (leg === undefined || leg.failed) return;
    this.core.failLeg(leg, "write", new IoError(`${this.deviceName}: metadata device of slot ${slot} failed: ${errno}`, errno));
  }

  // ---- superblocks --------------------------------------------------------

  /**
   * A leg failed: stop writing its rmeta (md writes no Faulty device) and
   * record its bit in every other; only then report the event. Rejects
   * (so the core fails the held writes with EIO) if no rmeta is left.
   */
  private async recordFailure(leg: MirrorLeg, event: MapperEvent): Promise<void> {
    this.log.retireSlot(leg.index);
    await this.commit();
    if (!this.log.persistent) throw new IoError(`${this.deviceName}: no metadata device left to record the failure of slot ${leg.index}`, "EIO");
    // Then the event, and its handler's record (the daemon commits the PV as
    // MISSING in the VG metadata, as for a mirror with handle_errors): the
    // writes that missed the leg are acknowledged only once both records are
    // durable. The kernel acknowledges after the superblocks alone; ulvm's
    // promise is that the VG metadata, which every tool reads, says it too.
    // A handler that fails leaves the superblocks as the record.
    await Promise.resolve()
      .then(() => this.env.onEvent?.(event))
      .catch(() => undefined);
  }

  private onInSync(recovered: readonly MirrorLeg[]): void {
    let changed = !this.resyncDone;
    this.resyncDone = true;
    for (const l of recovered) {
      if (this.recovery[l.index] !== "none") changed = true;
      this.recovery[l.index] = "none";
    }
    if (changed) void this.commit().catch(() => undefined);
  }

  /**
   * Write every live rmeta's superblock from the current state, events + 1,
   * one commit at a time (super_sync): failed bit for failed and absent
   * legs, and for a leg still being recovered from the bitmap (POLICY,
   * unconfirmed: the kernel clears it at preresume; keeping it until the
   * recovery ends makes a crash meanwhile repeat the bitmap-based recovery
   * rather than a full one); disk_recovery_offset 0 for a leg recovered in
   * full until it ends, MaxSector otherwise; array_resync_offset MaxSector
   * once the initial sync is done.
   */
  private commit(): Promise<void> {
    const run = this.sbChain.then(() => this.writeSuperblocks());
    this.sbChain = run.catch(() => undefined);
    return run;
  }

  private async writeSuperblocks(): Promise<void> {
    let failed = 0n;
    const offsets = this.core.legs.map((l, i) => {
      if (l.failed || this.recovery[i] === "dirty") failed = withPositionFailed(failed, i, true);
      return this.recovery[i] === "full" ? 0n : MAX_SECTOR;
    });
    const len = BigInt(this.lengthSectors);
    await this.log.commitSuperblocks(
      {
        ...this.plan.template,
        numDevices: this.core.legs.length,
        failedDevices: failed,
        arrayResyncOffsetSectors: this.resyncDone ? MAX_SECTOR : 0n,
        arraySectors: len,
        sectors: len,
        deltaDisks: 0,
      },
      { diskRecoveryOffsetsSectors: offsets },
    );
    this.superblockCommits++;
  }

  // ---- I/O: the core's -----------------------------------------------------

  read(sector: number, into: Uint8Array, _opts?: ReadOptions): Promise<void> {
    return this.core.read(sector, into);
  }

  write(sector: number, data: Uint8Array, opts: TargetWriteOptions): Promise<void> {
    return this.core.write(sector, data, opts);
  }

  flush(opts?: { readonly suspending?: boolean }): Promise<void> {
    return this.core.flush(opts);
  }

  presuspend(): void {
    // A reload ends a scrub, as in the kernel (it does not resume).
    this.scrubber.requestStop();
    this.core.presuspend();
  }

  async suspend(): Promise<void> {
    await this.scrubber.stop();
    await this.core.suspend();
    await this.sbChain;
  }

  resume(): Promise<void> {
    return this.core.resume();
  }

  async destroy(): Promise<void> {
    await this.scrubber.stop();
    await this.core.destroy();
    await this.sbChain;
  }

  /** Every region in sync and the superblocks that say so written. */
  async whenInSync(): Promise<void> {
    await this.core.whenInSync();
    await this.sbChain;
  }

  /** Superblock writes queued so far have finished. */
  async settled(): Promise<void> {
    await this.sbChain;
  }

  // ---- reporting ----------------------------------------------------------

  status(): RaidStatus {
    const core = this.core;
    const st = core.status();
    const inSync = st.insyncRegions === st.totalRegions;
    const recovering = core.legs.some((l) => l.stale && !l.failed);
    const syncAction = this.syncAction();
    const scrub = this.scrubber.current();
    const devices = this.args.devices.map((d, i) => {
      const leg = core.legs[i]!;
      let health: RaidDeviceHealth;
      if (d === undefined) health = "-";
      else if (leg.failed) health = "D";
      // dm-raid: a device not In_sync is 'a'; while the array resyncs (not
      // a recovery) every device is.
      else if (leg.stale || (!inSync && !recovering)) health = "a";
      else health = "A";
      return { meta: d?.meta, data: d?.data, health, recovery: this.recovery[i]! };
    });
    return {
      type: "raid",
      raidType: "raid1",
      devices,
      // While a scrub runs the ratio is its progress (md's curr_resync_completed), as lvs shows it in Cpy%Sync.
      syncedSectors: scrub?.running === true ? scrub.doneSectors : inSync ? this.lengthSectors : Math.min(this.lengthSectors, st.insyncRegions * this.args.regionSectors),
      totalSectors: this.lengthSectors,
      syncAction,
      // dm-raid raid_status: resync_mismatches only if the last action was check, else 0.
      mismatchCount: this.lastScrub === "check" && scrub !== undefined ? scrub.mismatchSectors : 0,
      ...(scrub !== undefined ? { scrub } : {}),
      dataOffsetSectors: 0,
      insyncRegions: st.insyncRegions,
      totalRegions: st.totalRegions,
      regionSectors: this.args.regionSectors,
      eventCount: this.log.eventCount.toString(),
      resync: st.resync,
    };
  }

  tableArgs(): readonly string[] {
    return formatRaid1Args(this.args);
  }

  devices(): readonly DeviceUse[] {
    return this.core.devices();
  }

  /** Narrow a Target to a Raid1Target. */
  static is(t: Target | undefined): t is Raid1Target {
    return t instanceof Raid1Target;
  }
}
