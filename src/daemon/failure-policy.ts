import { statSync } from "node:fs";
import { isNbdUri } from "../nbd/nbd-uri.js";
import type { MapperEvent } from "../mapper/events.js";
import type { LoadedVg } from "../commands/vg-store.js";
import { ToolContext } from "../commands/toolcontext.js";
import { MemoryOutput } from "../commands/output.js";
import { vgLockName } from "../commands/lock.js";
import { repairByPolicy } from "../commands/lvconvert.js";
import { LvmError } from "../errors/errors.js";
import { scanLabel } from "../format/label.js";
import { formatId } from "../base/uuid.js";
import { findLv, isMirrorImage, isRaidImage, pvIdsOfLv, subLvNames } from "../model/lv-info.js";
import type { VolumeGroup } from "../model/types.js";
import { splitDmName } from "../segtypes/dm-names.js";
import type { ActiveLv, Daemon } from "./daemon.js";
import { degradedEvent } from "./events/degraded-event.js";

/**
 * What the daemon does when a device fails: dmeventd's role. The mapper only
 * reports (leg-failed, log-failed); this decides.
 *
 * A PV is failed when a mirror leg on it returns an I/O error, when its
 * device vanishes, or when its label no longer carries its UUID (the seed's
 * `dd` over the start of a leg). Then, in this order:
 *   1. its device is revoked: every later I/O fails at once, so no read is
 *      ever served from it again, by any LV;
 *   2. the failure is committed to the VG metadata on the surviving PVs (the
 *      PV flagged MISSING), under the VG lock, like any other metadata change;
 *   3. only then is the mapper's event acknowledged, which releases the writes
 *      the mirror held (it acknowledges no write that missed a leg before the
 *      failure is durable, so a stale leg can never later pass for current);
 *   4. the VG's active LVs are reloaded without the failed legs (policy
 *      "remove", the default), or the legs are replaced from free space and
 *      resynced (policy "allocate", activation/mirror_image_fault_policy).
 */
interface WatchedPv {
  vg: string;
  pvId: string;
  path: string;
}

/** The LV's top device is dm-raid (a raid1 LV). */
function isRaidTop(a: ActiveLv): boolean {
  return a.nodes[a.nodes.length - 1]?.lines.some((l) => l.targetType === "raid") ?? false;
}

export class FailurePolicy {
  /** Failed PV ids per VG, for as long as the daemon runs (after that, MISSING flags remember). */
  private readonly failed = new Map<string, Set<string>>();
  private readonly recording = new Map<string, Promise<void>>();
  private readonly watched = new Map<string, WatchedPv[]>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  /** Failures being recorded, per VG: reloads of that VG wait or refuse meanwhile. */
  private readonly inFlight = new Map<string, number>();
  /** PVs failed but not yet reported as leg-failed/lv-degraded (afterFailure reports them), with why. */
  private readonly unreported = new Map<string, Map<string, { reason: string; path: string | undefined }>>();

  constructor(private readonly daemon: Daemon) {}

  start(): void {
    const ms = this.daemon.config().int("activation/pv_check_interval_ms", 500);
    if (ms > 0) this.timer = setInterval(() => void this.checkLabels(), ms);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Remember which PVs an active LV stands on, to watch their labels. */
  watch(a: ActiveLv, loaded: LoadedVg): void {
    const lv = findLv(loaded.vg, a.lv);
    const pvs: WatchedPv[] = [];
    if (lv) {
      for (const id of pvIdsOfLv(loaded.vg, lv)) {
        const d = loaded.deviceOf(id);
        if (d) pvs.push({ vg: a.vg, pvId: id, path: d.entry.name });
      }
    }
    this.watched.set(a.exportName, pvs);
  }

  unwatch(a: ActiveLv): void {
    this.watched.delete(a.exportName);
  }

  isFailed(vg: string, pvId: string): boolean {
    return this.failed.get(vg)?.has(pvId) ?? false;
  }

  busy(vg: string): boolean {
    return (this.inFlight.get(vg) ?? 0) > 0;
  }

  /**
   * PVs the committed metadata no longer flags MISSING were restored by the
   * administrator (vgextend --restoremissing, which also makes their mirror
   * images resync from an image that stayed) or left the VG: forget their
   * failure, so that the next activation or reload uses them again. Never
   * while a failure of the VG is being recorded: until that record is
   * committed, the PV that failed is not flagged yet.
   */
  forgetRestored(loaded: LoadedVg): void {
    const vg = loaded.vg.name;
    const set = this.failed.get(vg);
    if (!set?.size || this.busy(vg)) return;
    for (const id of [...set]) {
      if (loaded.vg.pvs.find((p) => p.id === id)?.flags.includes("MISSING")) continue;
      set.delete(id);
      this.recording.delete(`${vg}:${id}`);
      const pv = loaded.vg.pvs.find((p) => p.id === id);
      // A PV removed from the VG (vgreduce --removemissing) did not come back: no event.
      if (!pv) {
        this.daemon.log(`PV ${formatId(id)} left VG ${vg}`);
        continue;
      }
      this.daemon.log(`PV ${formatId(id)} of VG ${vg} is no longer flagged MISSING: using it again`);
      const name = loaded.deviceOf(id)?.entry.name ?? pv.deviceHint;
      this.daemon.emit({ name: "pv-returned", vg, pv: name ?? formatId(id), details: { pvUuid: formatId(id) }, message: "no longer flagged MISSING: in use again" });
    }
  }

  /** A VG read by the daemon: PVs it knows have failed are missing, whatever answers at their path. */
  applyKnownFailures(loaded: LoadedVg): void {
    for (const id of this.failed.get(loaded.vg.name) ?? []) if (loaded.devices.has(id)) loaded.devices.set(id, undefined);
  }

  /** Poll the labels of watched PVs (cheap: 4 KiB each, through the open descriptor). */
  private async checkLabels(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const seen = new Set<string>();
      for (const list of this.watched.values()) {
        for (const w of list) {
          const key = `${w.vg}:${w.pvId}`;
          if (seen.has(key) || this.isFailed(w.vg, w.pvId)) continue;
          seen.add(key);
          const why = await this.labelProblem(w);
          if (why) void this.failPv(w.vg, w.pvId, why).catch((e) => this.daemon.log(`recording failure of ${w.path}: ${(e as Error).message}`));
        }
      }
    } finally {
      this.checking = false;
    }
  }

  private async labelProblem(w: WatchedPv): Promise<string | undefined> {
    // An NBD export has no path to stat: the label read below (through the client, within nbd_timeout_s) is the check.
    if (!isNbdUri(w.path)) {
      try {
        statSync(w.path);
      } catch {
        return `device ${w.path} disappeared`;
      }
    }
    const dev = this.daemon.pvPool.get(w.path);
    if (!dev) return undefined;
    const buf = new Uint8Array(2048);
    try {
      await dev.inner.read(0, buf);
    } catch (e) {
      return `device ${w.path} cannot be read: ${(e as Error).message}`;
    }
    const scan = scanLabel(buf);
    if (scan.kind !== "label") return `no PV label on ${w.path}`;
    if (scan.label.pvIdRaw !== w.pvId) return `PV label on ${w.path} no longer matches UUID ${formatId(w.pvId)}`;
    return undefined;
  }

  /** Fail a PV: revoke, record MISSING durably, then reload. Resolves once the failure is on disk. */
  failPv(vg: string, pvId: string, reason: string): Promise<void> {
    const key = `${vg}:${pvId}`;
    const existing = this.recording.get(key);
    if (existing) return existing;
    let set = this.failed.get(vg);
    if (!set) this.failed.set(vg, (set = new Set()));
    set.add(pvId);
    this.daemon.log(`PV ${formatId(pvId)} of VG ${vg} failed: ${reason}`);
    const path = this.pathOf(pvId);
    this.daemon.emit({ name: "pv-missing", vg, pv: path ?? formatId(pvId), details: { pvUuid: formatId(pvId), reason }, message: `failed: ${reason}` });
    let pending = this.unreported.get(vg);
    if (!pending) this.unreported.set(vg, (pending = new Map()));
    pending.set(pvId, { reason, path });
    for (const list of this.watched.values()) for (const w of list) if (w.pvId === pvId) this.daemon.pvPool.get(w.path)?.revoke("ENXIO");
    this.inFlight.set(vg, (this.inFlight.get(vg) ?? 0) + 1);
    const p = this.record(vg, pvId).finally(() => {
      this.inFlight.set(vg, (this.inFlight.get(vg) ?? 1) - 1);
      // After the held writes are released (the caller resolves first), drop the failed legs from the live tables.
      setImmediate(() => void this.afterFailure(vg));
    });
    this.recording.set(key, p);
    return p;
  }

  private pathOf(pvId: string): string | undefined {
    for (const list of this.watched.values()) for (const w of list) if (w.pvId === pvId) return w.path;
    return undefined;
  }

  private async record(vg: string, pvId: string): Promise<void> {
    const ctx = new ToolContext(
      { paths: this.daemon.paths, out: new MemoryOutput(), argv: ["ulvmd", "--record-failure", vg, formatId(pvId)], onMetadataRepaired: (r) => this.daemon.recordMetadataRepair(r, "the daemon") },
      this.daemon.config(),
    );
    try {
      await ctx.locks.acquire(vgLockName(vg));
      const loaded = await ctx.readVg(vg, { lock: false, quietWarnings: true });
      this.applyKnownFailures(loaded);
      const pv = loaded.vg.pvs.find((p) => p.id === pvId);
      if (!pv || pv.flags.includes("MISSING")) return; // already recorded (or no longer in the VG)
      await ctx.commit(loaded);
      this.daemon.log(`recorded PV ${formatId(pvId)} as MISSING in VG ${vg} (seqno ${loaded.vg.seqno})`);
    } finally {
      await ctx.close();
    }
  }

  private async afterFailure(vg: string): Promise<void> {
    try {
      await this.daemon.perVg(vg, () => this.daemon.reload(vg, undefined, undefined, true));
    } catch (e) {
      this.daemon.log(`reload of ${vg} after a failure: ${(e as Error).message}`);
    }
    const loaded = await this.daemon.readVg(vg).catch(() => undefined);
    if (loaded) this.reportFailures(loaded.vg);
    // POLICY: "allocate" replaces the lost legs from free space, as dmeventd runs
    // `lvconvert --repair --use-policies`; "remove" (the default) stops at the reload above.
    // raid1 LVs follow activation/raid_fault_policy instead: "warn" (the default, as lvm2's)
    // only logs; "allocate" (or lvm2's alias "replace") repairs from free space.
    const mirrorPolicy = this.daemon.config().str("activation/mirror_image_fault_policy", "remove");
    const raidPolicy = this.daemon.config().str("activation/raid_fault_policy", "warn");
    // Mirrors and raid1 are the LVs built from sub-devices; lvconvert says "nothing to repair" for intact ones.
    for (const a of [...this.daemon.active.values()].filter((x) => x.vg === vg && x.nodes.length > 1)) {
      const raid = isRaidTop(a);
      if (raid ? raidPolicy === "allocate" || raidPolicy === "replace" : mirrorPolicy !== "remove") await this.repairLv(vg, a, loaded?.vg);
    }
  }

  /**
   * For the PVs failed since the last report: leg-failed for every image
   * (rimage/mimage) of an active LV on them, then lv-degraded or lv-partial
   * per LV. Reported here, once the failure is committed, rather than per I/O
   * error: a PV fails once however many errors it returns, and a PV found
   * failed by its label (not by an I/O error) fails its legs all the same.
   */
  private reportFailures(vg: VolumeGroup): void {
    const pending = this.unreported.get(vg.name);
    if (!pending?.size) return;
    this.unreported.delete(vg.name);
    const failedIds = new Set(this.failed.get(vg.name) ?? []);
    for (const a of [...this.daemon.active.values()].filter((x) => x.vg === vg.name)) {
      const lv = findLv(vg, a.lv);
      if (!lv) continue;
      let hit = false;
      for (const name of subLvNames(vg, lv)) {
        const sub = findLv(vg, name);
        if (!sub || !(isRaidImage(vg, sub) || isMirrorImage(vg, sub))) continue;
        for (const id of pvIdsOfLv(vg, sub)) {
          const failure = pending.get(id);
          if (failure === undefined) continue;
          hit = true;
          const reason = failure.reason;
          // The path it had when it failed: the metadata now says "[unknown]".
          const pv = failure.path ?? formatId(id);
          this.daemon.emit({ name: "leg-failed", vg: vg.name, lv: a.lv, pv, leg: name, details: { reason }, message: `leg ${name} on ${pv} failed (${reason})` });
        }
      }
      if (!hit && ![...pvIdsOfLv(vg, lv)].some((id) => pending.has(id))) continue;
      const ev = degradedEvent(vg, a.lv, failedIds, "a PV failed");
      if (ev) this.daemon.emit(ev);
    }
  }

  /**
   * Run the same repair the CLI runs, through the same code (commands/), in
   * the background; its outcome as events: repair-started, then
   * spare-allocated per new PV and repair-finished, or no-spare and
   * repair-failed. The resync of the new leg that follows is a recovery.
   */
  private async repairLv(vg: string, a: ActiveLv, before: VolumeGroup | undefined): Promise<void> {
    const lv = a.lv;
    const out = new MemoryOutput();
    const beforeLv = before ? findLv(before, lv) : undefined;
    const pvsBefore = before && beforeLv ? pvIdsOfLv(before, beforeLv) : new Set<string>();
    this.daemon.emit({ name: "repair-started", vg, lv, details: { command: `lvconvert --repair --use-policies ${vg}/${lv}` }, message: "lvconvert --repair --use-policies" });
    this.daemon.syncWatcher.expectRecovery(a.exportName);
    let code: number;
    const ctx = new ToolContext(
      {
        paths: this.daemon.paths,
        out,
        argv: ["lvconvert", "--repair", "--use-policies", "-b", `${vg}/${lv}`],
        onMetadataRepaired: (r) => this.daemon.recordMetadataRepair(r, "the daemon's repair"),
      },
      this.daemon.config(),
    );
    try {
      code = await repairByPolicy(ctx, vg, lv);
    } catch (e) {
      if (e instanceof LvmError) {
        if (!e.silent && e.message) out.error(e.message);
        code = e.exitCode;
      } else {
        out.error(`Internal error: ${(e as Error).message}`);
        code = 5;
      }
    } finally {
      await ctx.close().catch(() => undefined);
    }
    const text = (out.stdout + out.stderr).trim().replace(/\n\s*/g, "; ");
    this.daemon.log(`lvconvert --repair --use-policies ${vg}/${lv}: exit ${code}${text ? `: ${text}` : ""}`);
    const noSpace = /[Ii]nsufficient|Failed to replace/.test(text);
    if (noSpace) this.daemon.emit({ name: "no-spare", vg, lv, details: { output: text }, message: "no free space to replace the failed legs" });
    if (code !== 0 || noSpace) {
      this.daemon.emit({ name: "repair-failed", vg, lv, details: { exitCode: code, output: text }, message: `lvconvert --repair exited ${code}${text ? `: ${text}` : ""}` });
      return;
    }
    const after = await this.daemon.readVg(vg).catch(() => undefined);
    const afterLv = after ? findLv(after.vg, lv) : undefined;
    if (after && afterLv) {
      for (const id of pvIdsOfLv(after.vg, afterLv)) {
        if (pvsBefore.has(id)) continue;
        const pv = after.deviceOf(id)?.entry.name ?? formatId(id);
        this.daemon.emit({ name: "spare-allocated", vg, lv, pv, details: { pvUuid: formatId(id) }, message: `${pv} replaces the failed leg` });
      }
    }
    this.daemon.emit({ name: "repair-finished", vg, lv, details: { exitCode: code, output: text }, message: text || "repaired" });
  }

  onEvent(e: MapperEvent): Promise<void> | void {
    this.daemon.log(`event ${JSON.stringify(e)}`);
    if (e.kind === "rmeta-invalid") {
      const owner = splitDmName(e.device);
      const meta = splitDmName(e.metaDevice);
      this.daemon.log(
        `WARNING: raid1 LV ${owner?.vg}/${owner?.lv}: the metadata of image ${e.slot} (${meta?.vg}/${meta?.lv}) is not valid: ${e.reason}. ` +
          `The image is not used and its metadata is left as it is until a repair (lvconvert --repair ${owner?.vg}/${owner?.lv}).`,
      );
      return;
    }
    if (e.kind === "integrity-invalid") {
      // The image's dm name is VG-LV_rimage_N: the raid1 LV is LV.
      const image = splitDmName(e.device);
      const meta = splitDmName(e.metaDevice);
      const m = /^(.*)_rimage_(\d+)$/.exec(image?.lv ?? "");
      const raid = m ? `raid1 LV ${image?.vg}/${m[1]}` : `LV ${image?.vg}/${image?.lv}`;
      this.daemon.log(
        `WARNING: ${raid}: the integrity metadata of image ${m ? m[2] : "?"} (${image?.vg}/${image?.lv}, on ${meta?.vg}/${meta?.lv}) is not valid: ${e.reason}. ` +
          `The image is stale: nothing is read from or written to it until a repair (lvconvert --repair ${image?.vg}/${m ? m[1] : image?.lv}).`,
      );
      return;
    }
    if (e.kind !== "leg-failed" && e.kind !== "log-failed") return;
    const owner = splitDmName(e.device);
    const sub = splitDmName(e.kind === "leg-failed" ? e.legDevice : e.logDevice);
    const a = [...this.daemon.active.values()].find((x) => x.vg === owner?.vg && x.nodes.some((n) => n.name === e.device));
    if (!owner || !a) return;
    const pvs = this.watched.get(a.exportName) ?? [];
    // Which PVs does the failed image (or log) sit on? Those whose device is revoked or whose
    // label is bad are the culprits; if none can be told apart, all of them are failed (safe side).
    const subLv = sub?.lv;
    if (e.kind === "leg-failed" && isRaidTop(a)) {
      // dmeventd's raid plugin (daemons/dmeventd/plugins/raid/dmeventd_raid.c) says this, then
      // runs `lvconvert --repair --use-policies`, which under the "warn" policy only advises.
      this.daemon.log(`WARNING: Device #${e.leg} of raid1 array, ${e.device}, has failed.`);
      const policy = this.daemon.config().str("activation/raid_fault_policy", "warn");
      if (policy !== "allocate" && policy !== "replace") this.daemon.log(`Use 'lvconvert --repair ${owner.vg}/${owner.lv}' to replace failed device.`);
    }
    return (async () => {
      const loaded = await this.daemon.readVg(owner.vg).catch(() => undefined);
      const ownerLv = loaded ? findLv(loaded.vg, owner.lv) : undefined;
      if (e.kind === "leg-failed" && ownerLv?.status.includes("PVMOVE")) {
        // POLICY: a leg of a move's mirror (its source failing reads, its destination
        // failing writes) fails no PV. lvm2 does not monitor pvmove mirrors either: the
        // poller stops with "ABORTING: Mirror percentage check failed." and the admin
        // aborts or retries; the source keeps every write meanwhile (mirror-target.ts).
        this.daemon.log(`WARNING: ${owner.vg}/${owner.lv}: ${e.op} error (${e.errno}) on ${e.legDevice}: the move stops, no PV is failed. Use 'pvmove --abort' or 'pvmove' to retry.`);
        return;
      }
      const lv = loaded && subLv ? findLv(loaded.vg, subLv) : undefined;
      const ids = lv && loaded ? [...pvIdsOfLv(loaded.vg, lv)] : pvs.map((w) => w.pvId);
      const culprits: string[] = [];
      for (const id of ids) {
        const w = pvs.find((x) => x.pvId === id);
        if (this.isFailed(owner.vg, id) || (w && (this.daemon.pvPool.get(w.path)?.revoked || (await this.labelProblem(w))))) culprits.push(id);
      }
      const chosen = culprits.length ? culprits : ids;
      await Promise.all(chosen.map((id) => this.failPv(owner.vg, id, `${e.kind === "leg-failed" ? `${e.op} error on mirror leg ${e.legDevice}` : `error on mirror log ${e.logDevice}`} (${"errno" in e ? e.errno : "EIO"})`)));
    })();
  }
}
