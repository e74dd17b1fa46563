import { createServer, type Server, type Socket } from "node:net";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync, unlinkSync } from "node:fs";
import { daemonControlSocket, daemonPidFile, nbdSocket, type Paths, ensureDir } from "../config/paths.js";
import { loadConfig, type Config } from "../config/config.js";
import { useDeviceConfig } from "../commands/device-open.js";
import { LvmError, NotFoundError, CommandError, BusyError } from "../errors/errors.js";
import { MapperRegistry } from "../mapper/mapper-registry.js";
import { Table } from "../mapper/table.js";
import { defaultTargetTypes } from "../mapper/target-types.js";
import { MIRROR_DISK_VERSION, MIRROR_MAGIC, NR_REGIONS_UNSET } from "../mapper/dirty-log/disk-log-format.js";
import type { MapperEvent } from "../mapper/events.js";
import type { BlockDevice } from "../blockdev/block-device.js";
import { WriteWatch, WriteWatchedDevice } from "../blockdev/write-watched-device.js";
import { NbdServer } from "../nbd/server.js";
import { nbdListenerTls } from "./nbd-tls-config.js";
import { Activator } from "../activate/activator.js";
import { deviceTree, type DeviceNode } from "../activate/device-tree.js";
import { DeviceScan } from "../commands/scan.js";
import { listDevices } from "../commands/device-source.js";
import { loadVg, type LoadedVg } from "../commands/vg-store.js";
import { findLv, isIntegritySeg, isVisible } from "../model/lv-info.js";
import { findSegByLe } from "../model/allocate-walk.js";
import type { LogicalVolume, VolumeGroup } from "../model/types.js";
import { dmName } from "../segtypes/dm-names.js";
import { LockManager } from "../commands/lock.js";
import { offlineCopyLockName } from "../commands/pvmove-poll.js";
import { MissingDeviceError, UnsupportedSegmentError } from "../segtypes/table-lines.js";
import { PvPool } from "./pv-pool.js";
import type { MetadataRepair } from "../commands/metadata-repairs.js";
import { DEVICE_PATH_SERVERS, DevicePaths, blockDeviceOf, type DevicePathRecord, type DevicePathServer } from "./device-path.js";
import { kernelHasNbd } from "./kernel-nbd.js";
import type { ActivationMode, ActiveLvStatus, ControlReply, ControlRequest, MappedDeviceStatus } from "./protocol.js";
import { FailurePolicy } from "./failure-policy.js";
import { setLvActivationHooks } from "../commands/lv-activation.js";
import { daemonLvActivation } from "../commands/lv-activation-daemon.js";
import { IoStats } from "./http/io-stats.js";
import { startStatusListener } from "./http/start.js";
import type { StatusServer } from "./http/status-server.js";
import { EventHub } from "./events/event-hub.js";
import type { EventInput } from "./events/event-types.js";
import { SyncWatcher, type WatchedLv } from "./events/sync-watcher.js";
import { degradedEvent } from "./events/degraded-event.js";
import { MismatchCoalescer, type MismatchBatch } from "./events/mismatch-coalescer.js";

/**
 * The ulvm daemon: holds active LVs (device-mapper's role, in userspace),
 * serves them over NBD, keeps their device paths, and reacts to device
 * failures. One process per ULVM_RUN_DIR; its pid is in ulvmd.pid and the CLI
 * talks to it on ulvmd.sock. Everything it knows about volumes it reads from
 * the PVs' committed metadata.
 */
export interface ActiveLv {
  vg: string;
  lv: string;
  lvId: string;
  exportName: string;
  /** Device nodes, sub-devices first; the last is the LV itself. */
  nodes: DeviceNode[];
  exported: BlockDevice;
  devicePath: DevicePathRecord | undefined;
  /** PV devices (paths) the LV's tables use. */
  pvPaths: string[];
  mode: ActivationMode;
}

const DEVICE_PATH_EXPORT_PREFIX = "#dev/";
/** The daemon's own FUSE server: no NBD round trip per request (README, "Device paths"); nbdfuse stays the fallback. */
const DEFAULT_DEVICE_PATH_SERVER: DevicePathServer = "fuse";

export class Daemon {
  readonly registry: MapperRegistry;
  readonly nbd: NbdServer;
  readonly pvPool: PvPool;
  readonly activator: Activator;
  readonly devicePaths: DevicePaths;
  readonly active = new Map<string, ActiveLv>();
  private control: Server | undefined;
  private readonly vgQueues = new Map<string, Promise<unknown>>();
  private readonly policy: FailurePolicy;
  /** I/O per exported LV and errors per leg, for the metrics. */
  readonly ioStats = new IoStats();
  private statusListener: StatusServer | undefined;
  /** Events (events.log, hooks, mail, syslog); from start() on. The status page reads events.log.recent()/subscribe(). */
  events: EventHub | undefined;
  readonly syncWatcher: SyncWatcher;
  /** Integrity mismatches healed or not, gathered a moment so that a rotten area is one report, not thousands. */
  private readonly mismatches = new MismatchCoalescer((b) => void this.reportMismatches(b).catch((err) => this.log(`${b.device}: integrity mismatches could not be reported: ${(err as Error).message}`)));
  private stopped: Promise<void> | undefined;
  log: (line: string) => void = (line) => process.stderr.write(`${new Date().toISOString()} ulvmd[${process.pid}]: ${line}\n`);

  /** `openPv` opens the PV devices tables use (tests wrap them in fault-injecting devices). */
  constructor(readonly paths: Paths, opts: { openPv?: (path: string) => Promise<BlockDevice> } = {}) {
    this.pvPool = new PvPool(opts.openPv);
    // activation/mirror_resync_rate (KiB/s, 0 = as fast as the devices go) throttles every mirror's copying.
    const startConfig = loadConfig(paths, { required: false });
    const rateKib = startConfig.int("activation/mirror_resync_rate", 0);
    // devices/nbd_timeout_s: the deadline of every request to a PV on an NBD server; devices/nbd_connections: multi-conn.
    useDeviceConfig(startConfig);
    this.registry = new MapperRegistry(
      {
        openDevice: (name) => this.pvPool.open(name),
        releaseDevice: (name, dev) => this.pvPool.release(name, dev),
        onEvent: (e) => this.onEvent(e),
      },
      defaultTargetTypes({ mirror: { resyncRateBytesPerSec: Math.max(0, rateKib) * 1024 } }),
    );
    this.activator = new Activator(this.registry);
    this.nbd = new NbdServer({ log: (level, msg) => level !== "debug" && this.log(`nbd ${level}: ${msg}`) });
    this.devicePaths = new DevicePaths(paths, nbdSocket(paths));
    this.devicePaths.log = (line) => this.log(line);
    this.policy = new FailurePolicy(this);
    // Commands the daemon runs itself (the fault policy's repair) reach activation as the CLI's
    // do, through the daemon's control socket: they then queue behind the VG's other requests.
    setLvActivationHooks(daemonLvActivation);
    this.syncWatcher = new SyncWatcher(
      (e) => this.emit(e),
      () => [...this.active.values()].map((a) => this.watchedLv(a)),
    );
  }

  /** Record an event (a no-op before start()); never throws, never waits for hooks or mail. */
  emit(input: EventInput): void {
    this.events?.emit(input);
  }

  /** A metadata copy rewritten by a commit: the daemon's own (`by` "the daemon") or a command's. */
  recordMetadataRepair(r: MetadataRepair, by: string): void {
    this.emit({ name: "metadata-repaired", vg: r.vg, pv: r.pv, details: { what: r.what, by }, message: `${r.what} on ${r.pv} (by ${by})` });
  }

  private watchedLv(a: ActiveLv): WatchedLv {
    const top = a.nodes[a.nodes.length - 1]?.name;
    return { vg: a.vg, lv: a.lv, exportName: a.exportName, statusLines: () => (top ? this.registry.get(top)?.statusLines() : undefined) };
  }

  config(): Config {
    return loadConfig(this.paths, { required: false });
  }

  // ------------------------------------------------------------- life cycle

  async start(): Promise<void> {
    ensureDir(this.paths.runDir);
    const cfg = this.config();
    // nbd/tls, nbd/tls_psk_file, nbd/tls_certificates (nbd-tls-config.ts; require applies to TCP): a bad
    // setting or key file stops the start before anything is written.
    const nbdTls = nbdListenerTls(cfg);
    const pidFile = daemonPidFile(this.paths);
    const other = readPid(pidFile);
    if (other && other !== process.pid && isAlive(other)) throw new BusyError(`ulvm daemon already running (pid ${other}).`);
    writeFileSync(pidFile + ".tmp", `${process.pid}\n`);
    rmSync(pidFile, { force: true });
    writeFileSync(pidFile, `${process.pid}\n`);
    rmSync(pidFile + ".tmp", { force: true });
    this.events = new EventHub(this.paths, () => this.config(), (line) => this.log(line));
    // Whatever a previous daemon left behind: device paths first (they hold NBD connections), then sockets.
    for (const name of this.devicePaths.recorded()) {
      await this.devicePaths.destroy(name, { force: true }).catch((e) => this.log(`cleanup of ${name}: ${(e as Error).message}`));
    }
    await this.nbd.listenUnix(nbdSocket(this.paths), { mode: 0o600, tls: nbdTls.unix });
    if (cfg.bool("nbd/tcp", false)) {
      const addr = await this.nbd.listenTcp({ host: cfg.str("nbd/address", "127.0.0.1"), port: cfg.int("nbd/port", 10809), tls: nbdTls.tcp });
      this.log(`NBD on tcp ${addr.address}:${addr.port}${nbdTls.tcp.mode === "off" ? "" : `, TLS ${nbdTls.tcp.mode}`}`);
    }
    const ctl = daemonControlSocket(this.paths);
    if (existsSync(ctl)) unlinkSync(ctl);
    this.control = createServer((s) => this.serveControl(s));
    await new Promise<void>((resolve, reject) => {
      this.control!.once("error", reject);
      this.control!.listen(ctl, () => resolve());
    });
    chmodSync(ctl, 0o600);
    this.policy.start();
    this.statusListener = await startStatusListener(this, this.events.log);
    this.syncWatcher.start(Math.max(0, cfg.int("events/poll_interval_ms", 1000)));
    this.log(`started; control ${ctl}, nbd ${nbdSocket(this.paths)}`);
    this.emit({ name: "daemon-started", details: { pid: process.pid }, message: `ulvmd started (pid ${process.pid})` });
  }

  /** Stop gracefully; a second call (a second SIGTERM) waits for the first instead of exiting early. */
  stop(): Promise<void> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<void> {
    this.policy.stop();
    this.syncWatcher.stop();
    this.control?.close();
    await this.statusListener?.close();
    for (const a of [...this.active.values()].reverse()) {
      await this.devicePaths.destroy(dmName(a.vg, a.lv), { force: true }).catch(() => undefined);
    }
    for (const a of this.active.values()) await a.exported.flush().catch(() => undefined);
    await this.nbd.close({ timeoutMs: 2000 }).catch(() => undefined);
    for (const name of [...this.registry.names()].reverse()) await this.registry.remove(name).catch(() => undefined);
    await this.pvPool.closeAll();
    rmSync(daemonControlSocket(this.paths), { force: true });
    rmSync(nbdSocket(this.paths), { force: true });
    if (readPid(daemonPidFile(this.paths)) === process.pid) rmSync(daemonPidFile(this.paths), { force: true });
    this.log("stopped");
    this.emit({ name: "daemon-stopped", details: { pid: process.pid }, message: `ulvmd stopped (pid ${process.pid})` });
    // Give daemon-stopped's hooks and mail a moment to start (they run on by themselves); a hung one never holds the stop.
    for (let i = 0; i < 40 && !(this.events?.idle ?? true); i++) await new Promise((r) => setTimeout(r, 50));
    this.events?.close();
  }

  // ------------------------------------------------------------- control

  private serveControl(sock: Socket): void {
    sock.setEncoding("utf8");
    let buf = "";
    sock.on("error", () => undefined);
    sock.on("data", (chunk: string) => {
      buf += chunk;
      if (buf.length > 1 << 20) {
        sock.destroy();
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf("\n")) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let req: ControlRequest;
        try {
          req = JSON.parse(line) as ControlRequest;
        } catch {
          sock.write(JSON.stringify({ id: 0, ok: false, error: { code: "protocol", message: "malformed request", exitCode: 5 } }) + "\n");
          continue;
        }
        void this.handle(req).then((reply) => {
          if (!sock.destroyed) sock.write(JSON.stringify(reply) + "\n");
        });
      }
    });
  }

  async handle(req: ControlRequest): Promise<ControlReply> {
    try {
      switch (req.op) {
        case "ping":
          return { id: req.id, ok: true, pid: process.pid };
        case "status":
          return { id: req.id, ok: true, lvs: await this.status() };
        case "activate":
          return { id: req.id, ok: true, ...(await this.perVg(req.vg, () => this.activate(req.vg, req.lv, req.mode ?? "complete", req.devices))) };
        case "deactivate":
          await this.perVg(req.vg, () => this.deactivate(req.vg, req.lv, req.devices));
          return { id: req.id, ok: true };
        case "reload":
          await this.perVg(req.vg, () => this.reload(req.vg, req.devices, req.renamedVgFrom));
          return { id: req.id, ok: true };
        case "reset-mirror-log":
          return { id: req.id, ok: true, ...(await this.perVg(req.vg, () => this.resetMirrorLog(req.vg, req.lv))) };
        case "message":
          return { id: req.id, ok: true, ...(await this.perVg(req.vg, () => this.message(req.vg, req.lv, req.message))) };
        case "wait-sync":
          return { id: req.id, ok: true, ...(await this.waitSync(req.vg, req.lv, req.afterEvent)) };
        case "metadata-repaired":
          this.recordMetadataRepair({ vg: req.vg, pv: req.pv, what: req.what }, "a command");
          return { id: req.id, ok: true };
        case "shutdown":
          setImmediate(() => void this.stop().then(() => process.exit(0)));
          return { id: req.id, ok: true };
        default:
          return { id: (req as { id: number }).id, ok: false, error: { code: "protocol", message: `unknown operation`, exitCode: 5 } };
      }
    } catch (e) {
      const err = e instanceof LvmError ? e : new CommandError((e as Error).message);
      if (!(e instanceof LvmError)) this.log(`error in ${req.op}: ${(e as Error).stack}`);
      return { id: req.id, ok: false, error: { code: err.code, message: err.message, exitCode: err.exitCode } };
    }
  }

  /** Requests on one VG run one at a time (the CLI also holds the VG lock). */
  perVg<T>(vg: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.vgQueues.get(vg) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    this.vgQueues.set(vg, next.catch(() => undefined));
    return next;
  }

  // ------------------------------------------------------------- metadata

  async readVg(vgName: string, devices?: string[]): Promise<LoadedVg> {
    const cfg = this.config();
    const entries = listDevices(this.paths, cfg, { devices });
    // Our own device paths would be scanned as devices too: leave them out.
    const own = new Set<string>();
    for (const a of this.active.values()) {
      const dev = a.devicePath && blockDeviceOf(a.devicePath);
      if (dev) own.add(dev);
    }
    const scan = await DeviceScan.run(entries.filter((e) => !own.has(e.real)));
    const loaded = loadVg(scan, vgName);
    if (!loaded) throw new NotFoundError(`Volume group "${vgName}" not found`);
    // PVs the daemon knows to be gone stay gone even if something answers at their path,
    // unless the metadata says they were restored.
    this.policy.forgetRestored(loaded);
    this.policy.applyKnownFailures(loaded);
    return loaded;
  }

  /** PVs flagged MISSING in the metadata stay missing even when a device answers with their label. */
  private tableEnv(loaded: LoadedVg, mode: ActivationMode) {
    return {
      pvDevice: (pvId: string) => (loaded.vg.pvs.find((p) => p.id === pvId)?.flags.includes("MISSING") ? undefined : loaded.deviceOf(pvId)?.entry.name),
      mode,
      handleErrors: true,
    };
  }

  private key(vg: string, lv: string): string {
    return `${vg}/${lv}`;
  }

  async activate(vgName: string, lvName: string, mode: ActivationMode, devices?: string[]): Promise<{ devicePath?: string; exportName: string }> {
    const loaded = await this.readVg(vgName, devices);
    const vg = loaded.vg;
    const lv = findLv(vg, lvName);
    if (!lv) throw new NotFoundError(`Failed to find logical volume "${vgName}/${lvName}"`);
    const existing = this.active.get(this.key(vgName, lvName));
    if (existing) return { exportName: existing.exportName, ...(existing.devicePath ? { devicePath: existing.devicePath.link } : {}) };
    // Kernel nbd asked for and no nbd module: refused before anything is activated.
    if (this.config().bool("activation/device_path", true) && this.devicePathServer() === "nbd") await this.devicePaths.requireKernelNbd();
    let nodes: DeviceNode[];
    try {
      nodes = deviceTree(vg, lvName, this.tableEnv(loaded, mode));
    } catch (e) {
      if (e instanceof MissingDeviceError) throw new CommandError(`Refusing activation of partial LV ${vgName}/${lvName}.  Use '--activationmode partial' to override.`);
      if (e instanceof UnsupportedSegmentError) throw new CommandError(e.message);
      throw e;
    }
    // Not while a pvmove process copies one of its moves offline (two writers of the destination):
    // the copy lock is held until the LV is in `active`, where a copier that waits for it looks.
    const copyLocks = new LockManager(this.paths);
    try {
      for (const pm of vg.lvs.filter((x) => x.status.includes("PVMOVE") && nodes.some((n) => n.name === dmName(vgName, x.name)))) {
        if (!(await copyLocks.tryAcquire(offlineCopyLockName(vgName, pm.name))))
          throw new CommandError(`Cannot activate ${vgName}/${lvName} while a pvmove process copies ${pm.name} without the daemon. Try again when the move is done, or after pvmove --abort.`);
      }
      return await this.activateNodes(loaded, lv, nodes, mode);
    } finally {
      await copyLocks.releaseAll();
    }
  }

  private async activateNodes(loaded: LoadedVg, lv: LogicalVolume, nodes: DeviceNode[], mode: ActivationMode): Promise<{ devicePath?: string; exportName: string }> {
    const vgName = loaded.vg.name;
    const lvName = lv.name;
    await this.activator.apply(nodes);
    const top = this.registry.get(nodes[nodes.length - 1]!.name)!;
    const exported = top; // MappedDevice serves unaligned requests itself (read-modify-write)
    const exportName = this.key(vgName, lvName);
    // An LV without WRITE (lvchange -pr, an image split with --trackchanges) is served read-only, as lvm2 loads its table read-only.
    const readOnly = !lv.status.includes("WRITE");
    const served = this.ioStats.wrap(lv.id, exported);
    // The FUSE device path's page cache is dropped where the NBD exports write (fuse server only).
    const ownDevicePath = this.config().bool("activation/device_path", true) && this.devicePathServer() === "fuse";
    const otherWrites = new WriteWatch();
    const viaNbd = ownDevicePath ? new WriteWatchedDevice(served, otherWrites) : served;
    this.nbd.addExport({ name: exportName, device: viaNbd, readOnly, description: `ulvm logical volume ${exportName}` });
    this.nbd.addExport({ name: DEVICE_PATH_EXPORT_PREFIX + exportName, device: viaNbd, readOnly, description: `device path of ${exportName}` });
    const rec: ActiveLv = { vg: vgName, lv: lvName, lvId: lv.id, exportName, nodes, exported, devicePath: undefined, pvPaths: this.pvPathsOf(nodes), mode };
    this.active.set(exportName, rec);
    this.policy.watch(rec, loaded);
    this.reportDegradedAtActivation(rec, loaded);
    this.syncWatcher.check(this.watchedLv(rec));
    if (this.config().bool("activation/device_path", true)) {
      try {
        const server = this.devicePathServer();
        const name = dmName(vgName, lvName);
        if (server === "nbd") rec.devicePath = await this.devicePaths.createNbd(name, vgName, lvName, DEVICE_PATH_EXPORT_PREFIX + exportName, { sizeBytes: served.sizeBytes, readOnly });
        else rec.devicePath = await this.devicePaths.create(name, vgName, lvName, DEVICE_PATH_EXPORT_PREFIX + exportName, ownDevicePath ? { device: served, readOnly, otherWrites } : undefined);
      } catch (e) {
        this.log(`device path for ${exportName}: ${(e as Error).message}`);
      }
    }
    this.log(`activated ${exportName}`);
    return { exportName, ...(rec.devicePath ? { devicePath: rec.devicePath.link } : {}) };
  }

  /**
   * activation/device_path_server: what serves a device path ("fuse" or "nbdfuse" under a loop
   * device, or the kernel's "nbd"). "auto": kernel nbd where the nbd module is loaded
   * (/sys/module/nbd; auto never loads it), else the default.
   */
  private devicePathServer(): DevicePathServer {
    const v = this.config().str("activation/device_path_server", DEFAULT_DEVICE_PATH_SERVER);
    if ((DEVICE_PATH_SERVERS as readonly string[]).includes(v)) return v as DevicePathServer;
    if (v === "auto") return kernelHasNbd() ? "nbd" : DEFAULT_DEVICE_PATH_SERVER;
    this.log(`activation/device_path_server = "${v}" is not one of ${[...DEVICE_PATH_SERVERS, "auto"].join(", ")}: using "${DEFAULT_DEVICE_PATH_SERVER}"`);
    return DEFAULT_DEVICE_PATH_SERVER;
  }

  /** mdadm's DegradedArray: an LV that is already missing a PV when it is activated. */
  private reportDegradedAtActivation(a: ActiveLv, loaded: LoadedVg): void {
    const missing = new Set(loaded.vg.pvs.filter((p) => p.flags.includes("MISSING") || !loaded.deviceOf(p.id)).map((p) => p.id));
    const ev = degradedEvent(loaded.vg, a.lv, missing, `activated in ${a.mode} mode`);
    if (ev) this.emit(ev);
  }

  private pvPathsOf(nodes: readonly DeviceNode[]): string[] {
    const names = new Set(nodes.map((n) => n.name));
    const out = new Set<string>();
    for (const n of nodes) for (const d of this.registry.get(n.name)?.dependencies() ?? []) if (!names.has(d)) out.add(d);
    return [...out];
  }

  async openCount(a: ActiveLv): Promise<number> {
    return this.nbd.openCount(a.exportName) + (a.devicePath && (await this.devicePaths.inUse(dmName(a.vg, a.lv))) ? 1 : 0);
  }

  async deactivate(vgName: string, lvName: string, _devices?: string[]): Promise<void> {
    const a = this.active.get(this.key(vgName, lvName));
    if (!a) return;
    if (this.nbd.openCount(a.exportName) > 0) throw new BusyError(`Logical volume ${vgName}/${lvName} in use.`);
    await this.devicePaths.destroy(dmName(vgName, lvName), { lvDisplayName: `${vgName}/${lvName}` });
    await this.nbd.removeExport(DEVICE_PATH_EXPORT_PREFIX + a.exportName, { disconnect: true, timeoutMs: 2000 }).catch(() => undefined);
    await this.nbd.removeExport(a.exportName).catch(() => undefined);
    await a.exported.flush().catch(() => undefined);
    await this.activator.remove(a.nodes.map((n) => n.name));
    this.active.delete(a.exportName);
    this.policy.unwatch(a);
    this.ioStats.forget(a.lvId);
    this.syncWatcher.forget(a.exportName);
    this.log(`deactivated ${a.exportName}`);
  }

  /** Re-read the VG and bring every active LV of it in line with the committed metadata. */
  async reload(vgName: string, devices?: string[], renamedFrom?: string, fromPolicy = false): Promise<void> {
    // A failure being recorded needs the VG lock, which the CLI asking for this reload holds:
    // suspending a mirror whose writes wait for that record would deadlock. Refuse; the CLI retries.
    if (!fromPolicy && this.policy.busy(vgName)) throw new BusyError(`Volume group ${vgName} is handling a device failure; try again.`);
    if (renamedFrom) {
      for (const a of [...this.active.values()].filter((x) => x.vg === renamedFrom)) {
        throw new BusyError(`Cannot rename VG ${renamedFrom} while LV ${a.lv} is active.`);
      }
    }
    const mine = [...this.active.values()].filter((a) => a.vg === vgName);
    if (!mine.length) return;
    const loaded = await this.readVg(vgName, devices);
    for (const a of mine) {
      const lv = loaded.vg.lvs.find((l) => l.id === a.lvId);
      if (!lv || !isVisible(lv)) {
        await this.deactivate(a.vg, a.lv).catch((e) => this.log(`reload ${a.exportName}: ${(e as Error).message}`));
        continue;
      }
      if (lv.name !== a.lv) this.renameActive(a, lv.name);
      // A running LV that lost a device keeps running on what is left.
      const nodes = deviceTree(loaded.vg, lv.name, this.tableEnv(loaded, a.mode === "partial" ? "partial" : "degraded"));
      await this.activator.apply(nodes, a.nodes.map((n) => n.name));
      a.nodes = nodes;
      a.pvPaths = this.pvPathsOf(nodes);
      this.policy.watch(a, loaded);
      this.syncWatcher.check(this.watchedLv(a));
      this.log(`reloaded ${a.exportName}`);
    }
  }

  /**
   * Mark every region of an active mirror out of sync, durably, before the CLI
   * adds a leg to it: the mirror is suspended (its log flushed and quiet), the
   * disk log is rewritten as lvm2 initialises a new one (zeroed bitmap,
   * nr_regions all ones) through the log's own mapped device, and the same
   * table is loaded again, so the mirror re-reads the log and resyncs from its
   * first leg. Doing this before the metadata gains the new leg means a crash
   * at any point can never leave a new, empty leg that the log calls in sync.
   */
  async resetMirrorLog(vgName: string, lvName: string): Promise<{ active: boolean; reset: boolean }> {
    const a = this.active.get(this.key(vgName, lvName));
    if (!a) return { active: false, reset: false };
    const topNode = a.nodes[a.nodes.length - 1]!;
    const line = topNode.lines.find((l) => l.targetType === "mirror" && l.args[0] === "disk");
    if (!line) return { active: true, reset: false };
    const top = this.registry.get(topNode.name)!;
    const log = this.registry.get(line.args[2]!);
    if (!log) return { active: true, reset: false };
    if (this.policy.busy(vgName)) throw new BusyError(`Volume group ${vgName} is handling a device failure; try again.`);
    await top.suspend({ flush: true });
    try {
      const chunk = new Uint8Array(Math.min(log.sizeBytes, 1 << 20));
      for (let off = 0; off < log.sizeBytes; off += chunk.length) await log.write(off, chunk.subarray(0, Math.min(chunk.length, log.sizeBytes - off)));
      const header = new Uint8Array(512);
      const dv = new DataView(header.buffer);
      dv.setUint32(0, MIRROR_MAGIC, true);
      dv.setUint32(4, MIRROR_DISK_VERSION, true);
      dv.setBigUint64(8, NR_REGIONS_UNSET, true);
      await log.write(0, header);
      await log.flush();
      await top.load(Table.from(topNode.lines));
    } finally {
      await top.resume();
    }
    this.log(`reset the mirror log of ${a.exportName}: every region resyncs from leg 0`);
    return { active: true, reset: true };
  }

  /**
   * lvrename of an active LV (lvm2 renames its dm devices): mapped devices,
   * NBD exports and the device path take the new names; connected clients
   * keep their connections. Sub-LVs were renamed with their LV (new prefix).
   */
  private renameActive(a: ActiveLv, newLv: string): void {
    const oldLv = a.lv;
    const rename = (lvName: string): string => (lvName === oldLv ? newLv : lvName.startsWith(oldLv + "_") ? newLv + lvName.slice(oldLv.length) : lvName);
    for (const n of a.nodes) {
      const to = dmName(a.vg, rename(n.lvName));
      if (to !== n.name && this.registry.get(n.name)) this.registry.rename(n.name, to);
    }
    const exportName = this.key(a.vg, newLv);
    this.syncWatcher.rename(a.exportName, exportName);
    this.nbd.renameExport(a.exportName, exportName);
    this.nbd.renameExport(DEVICE_PATH_EXPORT_PREFIX + a.exportName, DEVICE_PATH_EXPORT_PREFIX + exportName);
    if (a.devicePath) a.devicePath = this.devicePaths.rename(dmName(a.vg, oldLv), dmName(a.vg, newLv), newLv, DEVICE_PATH_EXPORT_PREFIX + exportName);
    this.active.delete(a.exportName);
    a.nodes = a.nodes.map((n) => ({ ...n, name: dmName(a.vg, rename(n.lvName)), lvName: rename(n.lvName) }));
    a.lv = newLv;
    a.exportName = exportName;
    this.active.set(exportName, a);
    this.log(`renamed ${a.vg}/${oldLv} to ${exportName}`);
  }

  // ------------------------------------------------------------- status

  async status(): Promise<ActiveLvStatus[]> {
    const out: ActiveLvStatus[] = [];
    for (const a of this.active.values()) {
      const devices: MappedDeviceStatus[] = [];
      let suspended = false;
      for (const n of a.nodes) {
        const d = this.registry.get(n.name);
        if (!d) continue;
        const info = d.info();
        if (info.state === "SUSPENDED") suspended = true;
        const st: MappedDeviceStatus = {
          name: n.name,
          lvName: n.lvName,
          state: info.state,
          sizeSectors: info.sizeSectors,
          openCount: this.registry.holders(n.name).length,
          table: d.table(),
          status: d.status(),
        };
        let insync = 0;
        let total = 0;
        let copied = 0;
        let legs: string[] | undefined;
        let logHealth: string | undefined;
        for (const line of d.statusLines()) {
          const s = line.status;
          if (s.type === "raid") {
            // The regions drive lvconvert's progress as for a mirror; lvs reads the sectors, as lvm2 does.
            insync += s.insyncRegions;
            total += s.totalRegions;
            copied += s.resync.copiedRegions;
            legs = s.devices.map((x) => x.health);
            st.raid = {
              health: s.devices.map((x) => x.health).join(""),
              syncedSectors: s.syncedSectors,
              totalSectors: s.totalSectors,
              syncAction: s.syncAction,
              mismatchCount: s.mismatchCount,
              ...(s.scrub
                ? {
                    scrub: {
                      action: s.scrub.action,
                      running: s.scrub.running,
                      aborted: s.scrub.aborted,
                      mismatchSectors: s.scrub.mismatchSectors,
                      rewrittenSectors: s.scrub.rewrittenSectors,
                      places: s.scrub.places.map((p) => ({ sector: p.sector, sectors: p.sectors, legs: [...p.legs], source: p.source, readError: p.readError })),
                      placesOmitted: s.scrub.placesOmitted,
                    },
                  }
                : {}),
            };
          } else if (s.type === "mirror") {
            insync += s.insyncRegions;
            total += s.totalRegions;
            copied += s.resync.copiedRegions;
            legs = s.legs.map((l) => l.health);
            logHealth = s.log.type === "disk" ? s.log.health : undefined;
          }
        }
        if (legs) st.sync = { insyncRegions: insync, totalRegions: total, legHealth: legs, copiedRegions: copied, ...(logHealth ? { logHealth } : {}) };
        // A mirror running on one leg (the others failed or are being removed) counts as in sync, as lvm2 counts it.
        else if (n === a.nodes[a.nodes.length - 1] && a.nodes.length > 1 && n.lines.every((l) => l.targetType === "linear")) st.sync = { insyncRegions: 1, totalRegions: 1, legHealth: ["A"] };
        devices.push(st);
      }
      out.push({ vg: a.vg, lv: a.lv, lvId: a.lvId, exportName: a.exportName, devicePath: a.devicePath?.link, openCount: await this.openCount(a), suspended, devices });
    }
    return out;
  }

  /** Wait until a mirror's sync state changes (next event) and report it; used by `lvconvert` progress. */
  async waitSync(vg: string, lv: string, afterEvent?: number): Promise<{ eventNr: number; insyncRegions: number; totalRegions: number }> {
    const a = this.active.get(this.key(vg, lv));
    if (!a) throw new NotFoundError(`Logical volume ${vg}/${lv} is not active.`);
    const top = this.registry.get(a.nodes[a.nodes.length - 1]!.name)!;
    if (afterEvent !== undefined) await Promise.race([top.waitForEvent(afterEvent), new Promise((r) => setTimeout(r, 500))]);
    const st = (await this.status()).find((s) => s.exportName === a.exportName)!;
    const top2 = st.devices[st.devices.length - 1];
    return { eventNr: top.eventNr, insyncRegions: top2?.sync?.insyncRegions ?? 1, totalRegions: top2?.sync?.totalRegions ?? 1 };
  }

  /**
   * `dmsetup message` to the LV's own device (its last node), sector 0: the
   * raid1 sync actions. The target's refusals come back as errors.
   */
  async message(vg: string, lv: string, message: string): Promise<{ reply?: string }> {
    const a = this.active.get(this.key(vg, lv));
    if (!a) throw new NotFoundError(`Logical volume ${vg}/${lv} is not active.`);
    const top = this.registry.get(a.nodes[a.nodes.length - 1]!.name)!;
    try {
      const words = message.split(/\s+/).filter((w) => w !== "");
      const reply = await top.message(0, words);
      this.log(`message "${message}" to ${a.exportName}`);
      if (words[0] === "check" || words[0] === "repair") this.emit({ name: "scrub-started", vg: a.vg, lv: a.lv, details: { action: words[0] }, message: `${words[0]} started` });
      return typeof reply === "string" ? { reply } : {};
    } catch (e) {
      if (e instanceof LvmError) throw new CommandError(e.message);
      throw e;
    }
  }

  private onEvent(e: MapperEvent): Promise<void> | void {
    this.ioStats.onMapperEvent(e);
    if (e.kind === "in-sync") {
      const a = [...this.active.values()].find((x) => x.nodes[x.nodes.length - 1]?.name === e.device);
      if (a) this.syncWatcher.check(this.watchedLv(a));
    }
    if (e.kind === "integrity-mismatch") {
      this.mismatches.add(e);
      return;
    }
    if (e.kind === "scrub-done") {
      void this.logScrub(e).catch((err) => this.log(`${e.device}: scrub ended; its places could not be mapped: ${(err as Error).message}`));
      return;
    }
    return this.policy.onEvent(e);
  }

  /**
   * A log line and an event per run of bad blocks on one leg: the LV sectors,
   * the leg (rimage), the PV and extent holding them; healed ones are
   * info, uncorrectable ones (the client got EIO) an error.
   */
  private async reportMismatches(b: MismatchBatch): Promise<void> {
    const a = [...this.active.values()].find((x) => x.nodes[x.nodes.length - 1]?.name === b.device);
    const loaded = a ? await this.readVg(a.vg).catch(() => undefined) : undefined;
    const name = a?.exportName ?? b.device;
    const what = b.healed ? "healed from another leg" : "uncorrectable (no leg has a good copy; the read failed with EIO)";
    for (const r of b.runs) {
      const first = loaded && a ? rimagePlace(loaded.vg, a.lv, b.leg, r.sector) : undefined;
      const last = loaded && a ? rimagePlace(loaded.vg, a.lv, b.leg, r.sector + r.sectors - 1) : undefined;
      const leg = first?.image ?? b.legDevice;
      const extents = first?.pe === undefined ? "" : last?.pe !== undefined && last.pe !== first.pe && last.pv === first.pv ? ` PE ${first.pe}-${last.pe}` : ` PE ${first.pe}`;
      const where = `${leg}${first?.pv !== undefined ? ` on ${first.pv}${extents}` : ""}`;
      const message = `integrity mismatch at LV sector ${r.sector}+${r.sectors} on leg ${where}: ${what}`;
      this.log(`${name}: ${message}`);
      this.emit({
        name: "integrity-mismatch-healed",
        ...(b.healed ? {} : { severity: "error" as const }),
        ...(a ? { vg: a.vg, lv: a.lv } : {}),
        leg,
        ...(first?.pv !== undefined ? { pv: first.pv } : {}),
        details: { sector: r.sector, sectors: r.sectors, legIndex: b.leg, healed: b.healed, ...(first?.pe !== undefined ? { pe: first.pe, peLast: last?.pe ?? first.pe } : {}) },
        message,
      });
    }
    if (b.omittedRuns > 0) {
      const leg = (loaded && a ? rimagePlace(loaded.vg, a.lv, b.leg, 0)?.image : undefined) ?? b.legDevice;
      const message = `and ${b.omittedRuns} more places (${b.omittedSectors} sectors) on leg ${leg} ${b.healed ? "healed" : "uncorrectable"}`;
      this.log(`${name}: integrity mismatches ${message}`);
      this.emit({
        name: "integrity-mismatch-healed",
        ...(b.healed ? {} : { severity: "error" as const }),
        ...(a ? { vg: a.vg, lv: a.lv } : {}),
        leg,
        details: { legIndex: b.leg, healed: b.healed, omittedRuns: b.omittedRuns, omittedSectors: b.omittedSectors },
        message,
      });
    }
  }

  /**
   * One line per scrub end: the count and the places, each as the LV's
   * sector range, the leg (rimage) that differs, and where that is on disk
   * (PV and physical extent, from the rimage's segments in the metadata).
   */
  private async logScrub(e: Extract<MapperEvent, { kind: "scrub-done" }>): Promise<void> {
    const a = [...this.active.values()].find((x) => x.nodes[x.nodes.length - 1]?.name === e.device);
    const name = a?.exportName ?? e.device;
    const head = `${name}: ${e.action} ${e.aborted ? "aborted" : "done"}: ${e.mismatchSectors} mismatched sectors${e.action === "repair" ? `, ${e.rewrittenSectors} rewritten` : ""}`;
    let where: (leg: number, sector: number) => string = () => "";
    if (a && e.places.length > 0) {
      const loaded = await this.readVg(a.vg).catch(() => undefined);
      if (loaded) where = (leg, sector) => describeRimagePlace(loaded.vg, a.lv, leg, sector);
    }
    this.emitScrubFinished(e, a, where);
    if (e.places.length === 0) {
      this.log(head);
      return;
    }
    const MAX_LOGGED = 32;
    const shown = e.places.slice(0, MAX_LOGGED).map((p) => {
      const legs = p.legs.map((l) => `leg ${l}${where(l, p.sector)}`).join(", ");
      return `LV sector ${p.sector}+${p.sectors} ${legs}${p.readError ? " read error" : " differs"} from leg ${p.source}`;
    });
    const more = e.places.length - shown.length + e.placesOmitted;
    this.log(`${head} in ${e.places.length + e.placesOmitted} places: ${shown.join("; ")}${more > 0 ? `; and ${more} more` : ""}`);
  }

  /**
   * scrub-finished: an error only when mismatches were found (users ask that
   * a routine check that finds nothing is no alarm); an aborted one is a warning.
   */
  private emitScrubFinished(e: Extract<MapperEvent, { kind: "scrub-done" }>, a: ActiveLv | undefined, where: (leg: number, sector: number) => string): void {
    const MAX_PLACES = 32;
    const places = e.places.slice(0, MAX_PLACES).map((p) => ({
      sector: p.sector,
      sectors: p.sectors,
      legs: [...p.legs],
      source: p.source,
      readError: p.readError,
      where: p.legs.map((l) => where(l, p.sector).replace(/^ \((.*)\)$/, "$1")),
    }));
    const severity = e.mismatchSectors > 0 ? "error" : e.aborted ? "warning" : "info";
    const found = e.mismatchSectors > 0 ? `${e.mismatchSectors} mismatched sectors in ${e.places.length + e.placesOmitted} places` : "no mismatches";
    const names = a ? { vg: a.vg, lv: a.lv } : {};
    this.emit({
      name: "scrub-finished",
      severity,
      ...names,
      details: { action: e.action, aborted: e.aborted, mismatchSectors: e.mismatchSectors, rewrittenSectors: e.rewrittenSectors, places, placesOmitted: e.placesOmitted + Math.max(0, e.places.length - MAX_PLACES) },
      message: `${e.action} ${e.aborted ? "aborted" : "finished"}: ${found}${e.action === "repair" ? `, ${e.rewrittenSectors} sectors rewritten` : ""}`,
    });
  }
}

/** " (lv_rimage_N on /dev/x PE n)" for an LV sector of raid1 image `leg`, or "" when the metadata does not say. */
export function describeRimagePlace(vg: VolumeGroup, lvName: string, leg: number, sector: number): string {
  const p = rimagePlace(vg, lvName, leg, sector);
  if (!p) return "";
  return p.pv === undefined ? ` (${p.image})` : ` (${p.image} on ${p.pv} PE ${p.pe})`;
}

/**
 * Where an LV sector of raid1 image `leg` is: the rimage's name, and the PV
 * and physical extent holding it when the metadata says (through the
 * integrity layer to its _iorig when the image has one).
 */
export function rimagePlace(vg: VolumeGroup, lvName: string, leg: number, sector: number): { image: string; pv?: string; pe?: number } | undefined {
  const lv = findLv(vg, lvName);
  const seg = lv?.segments[0];
  if (!seg || seg.type !== "raid1" || !("raids" in seg)) return undefined;
  const imageName = seg.raids[leg]?.image;
  const image = imageName ? findLv(vg, imageName) : undefined;
  if (!image) return undefined;
  const top = image.segments[0];
  const dataLv = top && isIntegritySeg(top) ? findLv(vg, top.origin) : image;
  const le = Math.floor(sector / vg.extentSizeSectors);
  const iseg = dataLv ? findSegByLe(dataLv, le) : undefined;
  const area = iseg && "stripes" in iseg && iseg.stripes.length === 1 ? iseg.stripes[0] : undefined;
  if (!iseg || !area || area.kind !== "pv") return { image: image.name };
  const pv = vg.pvs.find((p) => p.id === area.pvId);
  return { image: image.name, pv: pv?.deviceHint ?? String(area.pvId), pe: area.startPe + (le - iseg.startExtent) };
}

function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, "utf8").trim());
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
