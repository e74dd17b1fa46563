import { ensureDir } from "../config/paths.js";
import { execFile, spawn } from "node:child_process";
import { open as openAsync, stat as statAsync } from "node:fs/promises";
import { constants, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, rmdirSync, symlinkSync, unlinkSync, writeFileSync, lstatSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { BusyError, CommandError } from "../errors/errors.js";
import { devString } from "../base/dev-number.js";
import type { Paths } from "../config/paths.js";
import type { BlockDevice } from "../blockdev/block-device.js";
import { FuseMount } from "../fuse/fuse-mount.js";
import { NBD_MODULE_MISSING, freeNbdDevices, kernelHasNbd, nbdConnectArgs, nbdConnectionPid, nbdDisconnectArgs, ownsNbdConnection, type NbdOwnership } from "./kernel-nbd.js";
import type { WriteWatch } from "../blockdev/write-watched-device.js";

/**
 * What serves a device path: the daemon's own FUSE server (src/fuse/,
 * requests answered by the LV's mapped device with no NBD round trip) or
 * nbdfuse over the LV's NBD export, each under a loop device; or the kernel's
 * nbd driver, /dev/nbdX connected to the LV's NBD export (kernel-nbd.ts), no
 * FUSE and no loop.
 */
export type DevicePathServer = "fuse" | "nbdfuse" | "nbd";
export const DEVICE_PATH_SERVERS: readonly DevicePathServer[] = ["fuse", "nbdfuse", "nbd"];

/**
 * The device path of an active LV ($ULVM_DEV_DIR/VG/LV), a path that mkfs and
 * mount take. ulvm has no kernel driver, so the path is built from parts that
 * exist everywhere: nbdfuse exposes the LV's NBD export as a file, and (as
 * root) a loop device over that file makes it a block device. Without root
 * the path points at the nbdfuse file itself.
 *
 * Everything here runs asynchronously: the daemon serves the very I/O that
 * losetup, a loop detach or a FUSE unmount cause (loop → FUSE → nbdfuse → NBD
 * → daemon), so blocking its event loop on any of them would deadlock.
 *
 * Every piece is recorded in $ULVM_RUN_DIR/devices/<name>.json so that a
 * daemon that died (kill -9 included) leaves nothing the next start cannot
 * clean up: stale loop devices are detached, stale FUSE mounts unmounted.
 *
 * udev names the loop device too (udev/69-ulvm.rules, so that systemd knows
 * /dev/VG/LV as a device unit): its helper udev/ulvm-udev-id matches the
 * loop's backing file, $ULVM_RUN_DIR/fuse/<name>/dev, to a record by
 * "mountDir" and reads "vg" and "lv" from it. Keep those names and that
 * layout, and write the record before the loop exists.
 */
export interface DevicePathRecord {
  name: string;
  vg: string;
  lv: string;
  exportName: string;
  mountDir: string;
  fuseFile: string;
  fusePid: number | undefined;
  loop: string | undefined;
  link: string;
  /**
   * The FUSE file's file system ("MAJ:MIN") and inode. A loop device over it
   * is found by these even after its FUSE mount is gone: the kernel then
   * shows the loop's backing file as the path inside the lost mount ("/dev").
   */
  fuseDev?: string;
  fuseIno?: number;
  /** Which server the FUSE file has (absent in records of daemons before it could choose: nbdfuse). */
  server?: DevicePathServer;
  /**
   * server "nbd": the kernel nbd device and who connected it. No FUSE file
   * and no loop then (mountDir and fuseFile are ""): `link` points at the
   * nbd device itself.
   */
  nbd?: NbdOwnership;
}

/** The block device an LV's device path link points at, when it is one (loop or nbd). */
export function blockDeviceOf(rec: DevicePathRecord): string | undefined {
  return rec.nbd?.device ?? rec.loop;
}

/** What the link points at: the block device, or (without root) the FUSE file. */
function linkTarget(rec: DevicePathRecord): string {
  return blockDeviceOf(rec) ?? rec.fuseFile;
}

/** The LV a device path serves in-process ("fuse" server). */
export interface ServedLv {
  device: Pick<BlockDevice, "sizeBytes" | "caps" | "read" | "write" | "flush">;
  readOnly: boolean;
  /** Writes to the LV by other paths (its NBD exports): they invalidate the FUSE file's page cache. */
  otherWrites: WriteWatch;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Does `link` point at `target`, written absolute (as ulvm writes it) or
 * relative (as udev's 69-ulvm.rules writes /dev/VG/LV)? Path strings only:
 * following the link could stat a FUSE file, which this process serves.
 */
function linkPointsAt(link: string, target: string): boolean {
  try {
    return lstatSync(link).isSymbolicLink() && resolve(dirname(link), readlinkSync(link)) === target;
  } catch {
    return false;
  }
}

/**
 * Make `link` point at `target`. A link already there to the same device
 * (udev's, from udev/69-ulvm.rules) is left alone; anything else is replaced
 * by rename(), as udev does, so that neither side ever sees the path missing
 * or fails on the other's link appearing in between.
 */
function placeLink(link: string, target: string): void {
  if (linkPointsAt(link, target)) return;
  ensureDir(dirname(link), 0o755);
  const tmp = join(dirname(link), `.#${basename(link)}.ulvm-${process.pid}`);
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  try {
    renameSync(tmp, link);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Ask udev to look at a loop device again (what `udevadm trigger --action=change`
 * does): 69-ulvm.rules then names it after the LV's current name. Nothing
 * listens where udev does not run, and that is fine.
 */
async function announceChange(loop: string): Promise<void> {
  await writeFile(join("/sys/block", basename(loop), "uevent"), "change").catch(() => undefined);
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Is a block device mounted or held exclusively (what lvm2 calls "in use")? */
export async function blockDeviceBusy(dev: string): Promise<boolean> {
  try {
    const fh = await openAsync(dev, constants.O_RDONLY | constants.O_EXCL);
    await fh.close();
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EBUSY";
  }
}

/** Run a helper program without blocking the event loop. */
export function run(cmd: string, args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: "utf8", timeout: 30_000 }, (err, stdout, stderr) => {
      const status = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
      resolve({ status, stdout: stdout ?? "", stderr: stderr ?? "" });
    });
  });
}

interface LoopRow {
  name: string;
  backingFile: string;
  backingDev: string;
  backingInode: number | undefined;
}

async function loopTable(): Promise<LoopRow[]> {
  const r = await run("losetup", ["-J", "-l", "-O", "NAME,BACK-INO,BACK-MAJ:MIN,BACK-FILE"]);
  if (r.status !== 0 || !r.stdout.trim()) return [];
  try {
    type Row = { name: string; "back-ino"?: number | string | null; "back-maj:min"?: string | null; "back-file"?: string | null };
    return ((JSON.parse(r.stdout) as { loopdevices?: Row[] }).loopdevices ?? []).map((row) => ({
      name: row.name,
      backingFile: row["back-file"] ?? "",
      backingDev: (row["back-maj:min"] ?? "").trim(),
      backingInode: row["back-ino"] === null || row["back-ino"] === undefined || row["back-ino"] === "" ? undefined : Number(row["back-ino"]),
    }));
  } catch {
    return [];
  }
}

/**
 * The loop devices over a device path's FUSE file. Found by file system and
 * inode, whatever path the kernel shows (the path inside the mount, "/dev",
 * once the mount is lost). When the FUSE server is gone too, the kernel can
 * no longer tell the inode; the loop the record names is then still ours if
 * it shows that same lost path with no inode (a reused number would show a
 * file of its own).
 */
async function loopsOverFuseFile(rec: DevicePathRecord): Promise<string[]> {
  const rows = await loopTable();
  const found = new Set<string>();
  for (const l of rows) {
    if (rec.fuseDev !== undefined && rec.fuseIno !== undefined && l.backingDev === rec.fuseDev && l.backingInode === rec.fuseIno) found.add(l.name);
    else if (l.name === rec.loop && l.backingFile.startsWith(rec.mountDir + "/")) found.add(l.name);
    else if (l.name === rec.loop && l.backingInode === undefined && l.backingFile === "/" + basename(rec.fuseFile)) found.add(l.name);
  }
  return [...found];
}

/** Is `dir` a mount point (listed in /proc/self/mountinfo)? Read without touching the mount itself (a dead FUSE mount would hang or fail a stat). */
function isMountPoint(dir: string): boolean {
  try {
    const info = readFileSync("/proc/self/mountinfo", "utf8");
    const esc = dir.replace(/[ \t\n\\]/g, (c) => "\\" + c.charCodeAt(0).toString(8).padStart(3, "0"));
    return info.split("\n").some((l) => l.split(" ")[4] === esc);
  } catch {
    return false;
  }
}

export class DevicePaths {
  private readonly stateDir: string;
  private readonly fuseDir: string;
  /** The FUSE mounts this daemon serves itself, by device name. */
  private readonly mounts = new Map<string, FuseMount>();
  log: (line: string) => void = () => undefined;
  constructor(private readonly paths: Paths, private readonly nbdSocketPath: string) {
    this.stateDir = join(paths.runDir, "devices");
    this.fuseDir = join(paths.runDir, "fuse");
  }

  linkPath(vg: string, lv: string): string {
    return join(this.paths.devDir, vg, lv);
  }

  private recordFile(name: string): string {
    return join(this.stateDir, `${name}.json`);
  }

  read(name: string): DevicePathRecord | undefined {
    try {
      return JSON.parse(readFileSync(this.recordFile(name), "utf8")) as DevicePathRecord;
    } catch {
      return undefined;
    }
  }

  private write(rec: DevicePathRecord): void {
    ensureDir(this.stateDir);
    // Whole or not at all (a temporary file, then rename()): udev's helper
    // may read the record at any moment, e.g. while the loop is set up.
    const file = this.recordFile(rec.name);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(rec));
    renameSync(tmp, file);
  }

  /** Is the LV's device path in use (mounted, or held open exclusively)? */
  async inUse(name: string): Promise<boolean> {
    const rec = this.read(name);
    const dev = rec && blockDeviceOf(rec);
    if (!dev) return false;
    return blockDeviceBusy(dev);
  }

  /**
   * Build the device path. `served` given: the daemon's own FUSE server
   * serves it; otherwise nbdfuse, over the NBD export `exportName`.
   */
  async create(name: string, vg: string, lv: string, exportName: string, served?: ServedLv): Promise<DevicePathRecord> {
    if (!existsSync("/dev/fuse")) throw new CommandError(`Cannot create device path for ${vg}/${lv}: /dev/fuse is needed.`);
    if (!served && (await run("sh", ["-c", "command -v nbdfuse"])).status !== 0) {
      throw new CommandError(`Cannot create device path for ${vg}/${lv}: nbdfuse (libnbd-bin) and /dev/fuse are needed.`);
    }
    await this.destroy(name, { force: true }); // whatever a previous daemon left
    const mountDir = join(this.fuseDir, name);
    ensureDir(mountDir);
    const fuseFile = join(mountDir, "dev");
    const server: DevicePathServer = served ? "fuse" : "nbdfuse";
    const fusePid = served ? await this.mountOwn(name, vg, lv, mountDir, served) : await this.startNbdfuse(name, vg, lv, fuseFile, exportName);
    // Asynchronously: nbdfuse answers the stat itself, but never block the event loop on FUSE.
    const st = await statAsync(fuseFile);
    const fuseDev = devString(st.dev);
    const fuseIno = st.ino;
    // Recorded before the loop exists: a daemon killed between losetup and the
    // record below still leaves enough for the next start to find the loop.
    this.write({ name, vg, lv, exportName, mountDir, fuseFile, fusePid, loop: undefined, link: this.linkPath(vg, lv), fuseDev, fuseIno, server });
    let loop: string | undefined;
    if (isRoot()) {
      // Buffered on both servers. Over the daemon's own FUSE server the kernel caches the FUSE
      // file (FOPEN_KEEP_CACHE, FUSE_WRITEBACK_CACHE): reads the cache holds never reach the daemon
      // and writes are written back in requests of up to 1 MiB. (Its earlier mode, direct I/O on
      // the loop and FOPEN_DIRECT_IO, sent every read to the daemon: 1 MiB reads at QD8 were a
      // quarter of nbdfuse's, whose file is cached.) The loop's flush is vfs_fsync on the file: the
      // kernel writes the dirty pages back (WRITE requests, answered) and then sends FSYNC → the
      // LV's flush. Writes through the NBD exports invalidate the cached range (WriteWatch).
      const r = await run("losetup", ["-f", "--show", "--direct-io=off", fuseFile]);
      if (r.status !== 0) {
        await this.unmountFuse(name, mountDir);
        throw new CommandError(`Cannot create device path for ${vg}/${lv}: losetup failed: ${r.stderr.trim()}`);
      }
      loop = r.stdout.trim();
    }
    const link = this.linkPath(vg, lv);
    placeLink(link, loop ?? fuseFile);
    const rec: DevicePathRecord = { name, vg, lv, exportName, mountDir, fuseFile, fusePid, loop, link, fuseDev, fuseIno, server };
    this.write(rec);
    return rec;
  }

  /** Kernel nbd devices this daemon is connecting now (their sysfs "pid" appears only once connected). */
  private readonly connecting = new Set<string>();

  /**
   * Can the kernel nbd driver serve device paths here? /sys/module/nbd, or a
   * `modprobe nbd` that succeeds. Throws the lvm-style refusal otherwise.
   */
  async requireKernelNbd(): Promise<void> {
    if (kernelHasNbd()) return;
    if ((await run("modprobe", ["nbd"])).status === 0 && kernelHasNbd()) return;
    throw new CommandError(NBD_MODULE_MISSING);
  }

  /**
   * Build the device path on the kernel's nbd driver: a free /dev/nbdX
   * connected by nbd-client to the NBD export `exportName` on the daemon's
   * socket, and the link to it. Nothing in between: no FUSE, no loop.
   */
  async createNbd(name: string, vg: string, lv: string, exportName: string, o: { sizeBytes: number; readOnly: boolean }): Promise<DevicePathRecord> {
    await this.requireKernelNbd();
    if (!isRoot()) throw new CommandError(`Cannot create device path for ${vg}/${lv}: connecting an nbd device needs root.`);
    if ((await run("sh", ["-c", "command -v nbd-client"])).status !== 0) {
      throw new CommandError(`Cannot create device path for ${vg}/${lv}: nbd-client (package nbd-client) is needed.`);
    }
    await this.destroy(name, { force: true }); // whatever a previous daemon left
    const link = this.linkPath(vg, lv);
    const base = { name, vg, lv, exportName, mountDir: "", fuseFile: "", fusePid: undefined, loop: undefined, link, server: "nbd" as const };
    let lastError = "no free nbd device (/sys/block/nbd* all connected)";
    // Another program may connect the device we picked between our look and
    // nbd-client's connect: nbd-client then fails and the next free one is tried.
    for (let attempt = 0; attempt < 3; attempt++) {
      const device = freeNbdDevices(undefined, this.connecting)[0];
      if (!device) break;
      this.connecting.add(device);
      try {
        const { status, stderr, pid: clientPid } = await this.runRecorded(nbdConnectArgs({ socket: this.nbdSocketPath, exportName, device, ...o }), (pid) =>
          // Recorded before nbd-client can reach the kernel (it negotiates with this daemon first):
          // a daemon killed in between leaves the next start enough to disconnect what is ours.
          this.write({ ...base, nbd: { device, clientPid: pid, pid: undefined } }),
        );
        if (status !== 0) {
          lastError = `nbd-client failed on ${device}: ${stderr.trim() || `exit status ${status}`}`;
          rmSync(this.recordFile(name), { force: true });
          continue;
        }
        let pid = nbdConnectionPid(device);
        for (let i = 0; i < 80 && pid === undefined; i++) {
          await sleep(25);
          pid = nbdConnectionPid(device);
        }
        const rec: DevicePathRecord = { ...base, nbd: { device, clientPid, pid } };
        this.write(rec);
        placeLink(link, device);
        return rec;
      } finally {
        this.connecting.delete(device);
      }
    }
    throw new CommandError(`Cannot create device path for ${vg}/${lv}: ${lastError}`);
  }

  /** Run nbd-client; `started` gets its pid before it can do anything (synchronously after spawn). */
  private runRecorded(args: string[], started: (pid: number | undefined) => void): Promise<{ status: number; stderr: string; pid: number | undefined }> {
    return new Promise((resolve) => {
      const child = execFile("nbd-client", args, { encoding: "utf8", timeout: 30_000 }, (err, _stdout, stderr) => {
        const status = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
        resolve({ status, stderr: stderr ?? "", pid: child.pid });
      });
      started(child.pid);
    });
  }

  /**
   * Disconnect a kernel nbd device path's device, only while the kernel still
   * shows the connection this daemon (or a previous one) made: a device that
   * was disconnected meanwhile and connected by someone else is left alone.
   */
  private async disconnectNbd(rec: DevicePathRecord): Promise<void> {
    if (!rec.nbd) return;
    const current = nbdConnectionPid(rec.nbd.device);
    if (current === undefined) return; // not connected any more
    if (!ownsNbdConnection(rec.nbd, current)) {
      this.log(`leaving ${rec.nbd.device} alone: connected by pid ${current}, not by ulvm`);
      return;
    }
    const r = await run("nbd-client", nbdDisconnectArgs(rec.nbd.device));
    if (r.status !== 0) this.log(`nbd-client -d ${rec.nbd.device}: ${r.stderr.trim()}`);
    for (let i = 0; i < 80 && nbdConnectionPid(rec.nbd.device) !== undefined; i++) await sleep(25);
  }

  /** The daemon's own FUSE server on `mountDir`; no process of its own (fusePid undefined). */
  private async mountOwn(name: string, vg: string, lv: string, mountDir: string, served: ServedLv): Promise<undefined> {
    try {
      const m = await FuseMount.mount({ mountDir, fileName: "dev", device: served.device, readOnly: served.readOnly, cached: true, otherWrites: served.otherWrites, source: `ulvm:${vg}/${lv}`, log: (msg) => this.log(msg) });
      this.mounts.set(name, m);
    } catch (e) {
      throw new CommandError(`Cannot create device path for ${vg}/${lv}: ${(e as Error).message}`);
    }
    return undefined;
  }

  /** nbdfuse over the NBD export; its pid. */
  private async startNbdfuse(name: string, vg: string, lv: string, fuseFile: string, exportName: string): Promise<number | undefined> {
    const pidFile = join(this.fuseDir, `${name}.pid`);
    rmSync(pidFile, { force: true });
    const uri = `nbd+unix:///${encodeURIComponent(exportName).replace(/%2F/g, "/")}?socket=${this.nbdSocketPath}`;
    const child = spawn("nbdfuse", ["-P", pidFile, fuseFile, uri], { detached: true, stdio: "ignore" });
    child.unref();
    let exited = false;
    child.once("exit", () => (exited = true));
    for (let i = 0; i < 200 && !existsSync(pidFile); i++) {
      if (exited) break;
      await sleep(25);
    }
    if (!existsSync(pidFile)) {
      try {
        if (child.pid) process.kill(child.pid, "SIGTERM");
      } catch {
        /* gone */
      }
      throw new CommandError(`Cannot create device path for ${vg}/${lv}: nbdfuse did not start.`);
    }
    return Number(readFileSync(pidFile, "utf8").trim()) || child.pid;
  }

  /** Unmount the FUSE file system on `mountDir`: ours (served here) or nbdfuse's. */
  private async unmountFuse(name: string, mountDir: string): Promise<void> {
    const own = this.mounts.get(name);
    if (own) {
      this.mounts.delete(name);
      await own.unmount(run);
      return;
    }
    await run("fusermount3", ["-u", mountDir]);
  }

  /** Tear down; refuses while the device is mounted unless `force` (then it detaches lazily). */
  async destroy(name: string, opts: { force?: boolean; lvDisplayName?: string } = {}): Promise<void> {
    const rec = this.read(name);
    if (!rec) return;
    // An nbd device connected by someone else since is not ours to look at (an O_EXCL open would disturb its user).
    const dev = rec.nbd && !ownsNbdConnection(rec.nbd, nbdConnectionPid(rec.nbd.device)) ? undefined : blockDeviceOf(rec);
    if (dev && (await blockDeviceBusy(dev))) {
      if (!opts.force) throw new BusyError(`Logical volume ${opts.lvDisplayName ?? `${rec.vg}/${rec.lv}`} contains a filesystem in use.`);
    }
    // Only remove the link if it still points at our device (ours, or udev's
    // same link: udev drops its own when the loop is detached below anyway).
    try {
      if (linkPointsAt(rec.link, linkTarget(rec))) unlinkSync(rec.link);
    } catch {
      /* already gone */
    }
    try {
      const dir = dirname(rec.link);
      if (readdirSync(dir).length === 0) rmdirSync(dir);
    } catch {
      /* not empty or gone */
    }
    if (rec.server === "nbd") {
      await this.disconnectNbd(rec);
      rmSync(this.recordFile(name), { force: true });
      return;
    }
    // Every loop device still bound to our FUSE file: detach (autoclear if a
    // mount still holds it). By inode where the record has it: the recorded
    // loop number may have been given to someone else since, and a loop whose
    // FUSE mount was lost no longer shows our path.
    for (const l of await loopsOverFuseFile(rec)) await run("losetup", ["-d", l]);
    await this.unmountFuse(name, rec.mountDir);
    if (rec.server === "fuse") {
      // Ours: served by this daemon (unmounted above) or by a previous one that is gone (its connection died with it).
      if (isMountPoint(rec.mountDir)) await run("umount", ["-l", rec.mountDir]);
    } else if (alive(rec.fusePid)) {
      for (let i = 0; i < 40 && alive(rec.fusePid); i++) await sleep(25);
      if (alive(rec.fusePid)) {
        await run("fusermount3", ["-uz", rec.mountDir]);
        try {
          process.kill(rec.fusePid!, "SIGKILL");
        } catch {
          /* gone */
        }
      }
    } else {
      await run("fusermount3", ["-uz", rec.mountDir]);
    }
    rmSync(this.recordFile(name), { force: true });
    try {
      rmdirSync(rec.mountDir);
    } catch {
      /* still a mount point: lazy unmount finishes later */
    }
  }

  /** lvrename of an active LV: the link moves, the loop device and FUSE mount stay as they are. */
  rename(oldName: string, newName: string, lv: string, exportName: string): DevicePathRecord | undefined {
    const rec = this.read(oldName);
    if (!rec) return undefined;
    const link = this.linkPath(rec.vg, lv);
    placeLink(link, linkTarget(rec));
    try {
      if (link !== rec.link && lstatSync(rec.link).isSymbolicLink()) unlinkSync(rec.link);
    } catch {
      /* gone */
    }
    // The record keeps mountDir: udev/ulvm-udev-id finds it by that (the
    // loop's backing file still names the old mount) and reads the new name.
    const moved: DevicePathRecord = { ...rec, name: newName, lv, exportName, link };
    const own = this.mounts.get(oldName);
    if (own && newName !== oldName) {
      this.mounts.delete(oldName);
      this.mounts.set(newName, own);
    }
    this.write(moved);
    if (newName !== oldName) rmSync(this.recordFile(oldName), { force: true });
    if (rec.loop) void announceChange(rec.loop);
    return moved;
  }

  /** Names with a record (from this or a previous daemon). */
  recorded(): string[] {
    try {
      return readdirSync(this.stateDir).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5));
    } catch {
      return [];
    }
  }
}
