import { statSync } from "node:fs";
import type { MapperEvent } from "../mapper/events.js";
import type { LoadedVg } from "../commands/vg-store.js";
import { ToolContext } from "../commands/toolcontext.js";
import { MemoryOutput } from "../commands/output.js";
import { vgLockName } from "../commands/lock.js";
import { scanLabel } from "../format/label.js";
import { formatId } from "../base/uuid.js";
import { findLv, pvIdsOfLv } from "../model/lv-info.js";
import { splitDmName } from "../segtypes/dm-names.js";
import type { ActiveLv, Daemon } from "./daemon.js";

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
      this.daemon.log(`PV ${formatId(id)} of VG ${vg} is no longer flagged MISSING: using it again`);
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
    try {
      statSync(w.path);
    } catch {
      return `device ${w.path} disappeared`;
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

  private async record(vg: string, pvId: string): Promise<void> {
    const ctx = new ToolContext({ paths: this.daemon.paths, out: new MemoryOutput(), argv: ["ulvmd", "--record-failure", vg, formatId(pvId)] }, this.daemon.config());
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
    // POLICY: "allocate" replaces the lost legs from free space, as dmeventd runs
    // `lvconvert --repair --use-policies`; "remove" (the default) stops at the reload above.
    // raid1 LVs follow activation/raid_fault_policy instead: "warn" (the default, as lvm2's)
    // only logs; "allocate" (or lvm2's alias "replace") repairs from free space.
    const mirrorPolicy = this.daemon.config().str("activation/mirror_image_fault_policy", "remove");
    const raidPolicy = this.daemon.config().str("activation/raid_fault_policy", "warn");
    // Mirrors and raid1 are the LVs built from sub-devices; lvconvert says "nothing to repair" for intact ones.
    for (const a of [...this.daemon.active.values()].filter((x) => x.vg === vg && x.nodes.length > 1)) {
      const raid = isRaidTop(a);
      if (raid ? raidPolicy === "allocate" || raidPolicy === "replace" : mirrorPolicy !== "remove") await this.repairLv(vg, a.lv);
    }
  }

  /** Run the same repair the CLI runs, through the same code (commands/), in the background. */
  private async repairLv(vg: string, lv: string): Promise<void> {
    const { runCommand } = await import("../cli/main.js");
    const out = new MemoryOutput();
    const code = await runCommand(["lvconvert", "--repair", "--use-policies", "-b", `${vg}/${lv}`], { out, paths: this.daemon.paths, config: this.daemon.config() });
    const text = (out.stdout + out.stderr).trim().replace(/\n\s*/g, "; ");
    this.daemon.log(`lvconvert --repair --use-policies ${vg}/${lv}: exit ${code}${text ? `: ${text}` : ""}`);
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
