import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, ULVM_BIN, lvmUnavailable, type RunResult } from "../../helpers/lab.js";
import { scratchShmBase } from "../../helpers/scratch.js";
import { DaemonClient } from "../../../src/daemon/control-client.js";
import type { ActiveLvStatus } from "../../../src/daemon/protocol.js";
import type { Paths } from "../../../src/config/paths.js";
import { DeviceScan } from "../../../src/commands/scan.js";
import { listNamedDevices } from "../../../src/commands/device-list.js";
import { loadVg, type LoadedVg } from "../../../src/commands/vg-store.js";
import { findLv, isIntegritySeg, isMirrorSeg, isRaidSeg, isStripedSeg, lvExtents } from "../../../src/model/lv-info.js";
import { MAX_SECTOR, decodeDmRaidSuperblock, isPositionFailed, type DmRaidSuperblock } from "../../../src/mapper/raid/dm-raid-superblock.js";
import { BITMAP_STALE, BITMAP_SUPERBLOCK_BYTES, RMETA_BITMAP_OFFSET_BYTES, decodeMdBitmapSuperblock, type MdBitmapSuperblock } from "../../../src/mapper/raid/md-bitmap-format.js";
import { decodeDiskLog, diskLogTransferBytes } from "../../../src/mapper/dirty-log/disk-log-format.js";
import { testBit } from "../../../src/mapper/dirty-log/bitset.js";

/**
 * A torture world: a Lab (temporary directory with image files, ulvm.conf,
 * run and dev directories) plus what the scenarios ask of it again and
 * again: the daemon's pid and status, killing it, where each mirror leg and
 * log lives on the PV files, the on-disk dirty log, leg comparison and a
 * hash of every metadata area.
 */
export interface WorldOptions {
  readonly prefix: string;
  readonly disks: ReadonlyArray<{ name: string; sizeMiB: number }>;
  /** activation/device_path (nbdfuse + loop); default off. */
  readonly devicePath?: boolean;
  readonly faultPolicy?: "remove" | "allocate";
  readonly pvCheckIntervalMs?: number;
  /** Directory the disks live in (a small tmpfs for ENOSPC); default the lab's disks/. */
  readonly diskDir?: string;
  /** Put the disks in a fresh directory under /dev/shm (tmpfs: flushes cost nothing). */
  readonly tmpfsDisks?: boolean;
  readonly extraConfig?: string;
}

/** Where one logical extent of an LV is: a PV file and byte offset, or undefined on a missing PV. */
export type ExtentLoc = { path: string; offsetBytes: number } | undefined;

export interface MirrorLayout {
  readonly extentBytes: number;
  readonly extentCount: number;
  readonly regionBytes: number;
  readonly regionCount: number;
  /** Per leg (metadata order), per logical extent. */
  readonly legs: ExtentLoc[][];
  readonly legNames: string[];
  /** The disk log's first extent, or undefined for a core log. */
  readonly log: ExtentLoc;
}

/** A raid1 LV: its images as "legs" (rimage_N, slot order) and each slot's rmeta (its first byte). */
export interface Raid1Layout extends MirrorLayout {
  readonly rmetas: ExtentLoc[];
  readonly rmetaNames: string[];
}

/** One rmeta as the PV file holds it (decoded with the target's own codecs). */
export type RmetaOnDisk =
  | { kind: "missing" }
  | { kind: "fresh" }
  | { kind: "invalid"; reason: string }
  | { kind: "valid"; sb: DmRaidSuperblock; bitmap: MdBitmapSuperblock | undefined; bitmapProblem?: string; dirty: number[] };

/** What the raid1's rmetas say on disk: per slot, the freshest superblock, and the regions activation will recover. */
export interface RaidMetaOnDisk {
  readonly slots: RmetaOnDisk[];
  /** Slot with the highest dm-raid events (ties: the lowest), or undefined. */
  readonly freshest: number | undefined;
  /** The freshest superblock. */
  readonly sb: DmRaidSuperblock | undefined;
  /** Slot whose bitmap the target loads (highest bitmap events among valid ones of the LV's geometry). */
  readonly bitmapSlot: number | undefined;
  /** Set bits of that bitmap (regions that may differ between the images). */
  readonly dirty: number[];
  /** Why activation will resync everything (no valid bitmap, STALE, bitmap events behind), or undefined. */
  readonly full: string | undefined;
  /** Regions from the freshest superblock's array_resync_offset on (the initial sync had not finished), else []. */
  readonly pastResyncOffset: number[];
  /** The regions the next activation recovers: dirty ∪ pastResyncOffset, or all with `full`. */
  readonly toRecover: number[];
  /** Failed slots in the freshest superblock's failed_devices. */
  readonly failedSlots: number[];
}

export class World {
  /** Worlds not yet cleaned up (the runner cleans them if it is interrupted). */
  static readonly live = new Set<World>();
  readonly lab: Lab;
  readonly diskDir: string;
  private readonly diskPaths: string[] = [];
  private ownedDiskDir: string | undefined;

  constructor(readonly opts: WorldOptions) {
    this.lab = new Lab(opts.prefix);
    World.live.add(this);
    const shm = opts.tmpfsDisks ? scratchShmBase() : undefined;
    if (shm) {
      this.ownedDiskDir = mkdtempSync(join(shm, opts.prefix));
      // Loops the real lvm reads these disks through, and anything else over them, go with the lab.
      this.lab.extraRoots.push(this.ownedDiskDir);
    }
    this.diskDir = opts.diskDir ?? this.ownedDiskDir ?? join(this.lab.dir, "disks");
    mkdirSync(this.diskDir, { recursive: true });
    for (const d of opts.disks) this.addDisk(d.name, d.sizeMiB);
    this.writeConfig();
  }

  get dir(): string {
    return this.lab.dir;
  }

  get paths(): Paths {
    return { systemDir: join(this.dir, "etc"), runDir: join(this.dir, "run"), devDir: join(this.dir, "dev") };
  }

  get nbdSocket(): string {
    return join(this.dir, "run", "nbd.sock");
  }

  uri(exportName: string): string {
    return `nbd+unix:///${exportName}?socket=${this.nbdSocket}`;
  }

  writeConfig(scan: readonly string[] = [this.diskDir]): void {
    const o = this.opts;
    this.lab.writeConfig(
      `devices {\n\tscan = [ ${scan.map((s) => `"${s}"`).join(", ")} ]\n}\n` +
        `activation {\n\tdevice_path = ${o.devicePath ? 1 : 0}\n\tmirror_image_fault_policy = "${o.faultPolicy ?? "remove"}"\n\tpv_check_interval_ms = ${o.pvCheckIntervalMs ?? 200}\n}\n` +
        (o.extraConfig ?? ""),
    );
  }

  addDisk(name: string, sizeMiB: number): string {
    const p = join(this.diskDir, name);
    spawnSync("truncate", ["-s", `${sizeMiB}M`, p]);
    this.lab.disks.set(name, p);
    this.diskPaths.push(p);
    return p;
  }

  disk(name: string): string {
    return this.lab.disk(name);
  }

  /** Take a disk away (moved out of the scanned directory): its PV goes missing. */
  hide(name: string): void {
    const p = this.disk(name);
    // A subdirectory of the scanned one: same file system, and scans do not recurse.
    mkdirSync(join(this.diskDir, ".away"), { recursive: true });
    renameSync(p, join(this.diskDir, ".away", name));
  }

  /** Bring a hidden disk back. */
  unhide(name: string): void {
    renameSync(join(this.diskDir, ".away", name), this.disk(name));
  }

  /** The bytes of every disk (present ones), to restore later. */
  snapshot(): Map<string, Buffer> {
    const m = new Map<string, Buffer>();
    for (const p of this.diskPaths) if (existsSync(p)) m.set(p, readFileSync(p));
    return m;
  }

  restore(snap: Map<string, Buffer>): void {
    for (const p of this.diskPaths) {
      const b = snap.get(p);
      if (b) writeFileSync(p, b);
      else rmSync(p, { force: true });
    }
  }

  /** Paths of the disks currently present. */
  get disks(): string[] {
    return this.diskPaths.filter((p) => existsSync(p));
  }

  ulvm(...args: string[]): RunResult {
    return this.lab.ulvm(...args);
  }

  ok(...args: string[]): string {
    return this.lab.ok(...args);
  }

  /** ulvm without blocking the event loop. */
  ulvmA(...args: string[]): Promise<RunResult> {
    return this.ulvmAsync(args).done;
  }

  /** Run ulvm in the background (extra environment variables allowed). */
  ulvmAsync(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<RunResult> } {
    return runAsync(process.execPath, [ULVM_BIN, ...args], { ...this.lab.env, ...extraEnv }, this.dir);
  }

  runAsync(cmd: string, args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<RunResult> } {
    return runAsync(cmd, args, { ...this.lab.env, ...extraEnv }, this.dir);
  }

  run(cmd: string, args: string[]): RunResult {
    return this.lab.run(cmd, args);
  }

  // ------------------------------------------------------------ daemon

  daemonPid(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.dir, "run", "ulvmd.pid"), "utf8").trim());
      if (!pid) return undefined;
      process.kill(pid, 0);
      return pid;
    } catch {
      return undefined;
    }
  }

  /** Kill the daemon (SIGKILL by default) and wait until it is gone. Returns whether one was running. */
  async killDaemon(signal: NodeJS.Signals = "SIGKILL"): Promise<boolean> {
    const pid = this.daemonPid();
    if (!pid) return false;
    process.kill(pid, signal);
    for (;;) {
      try {
        process.kill(pid, 0);
      } catch {
        return true;
      }
      await sleep(10);
    }
  }

  daemonLog(): string {
    try {
      return readFileSync(join(this.dir, "run", "ulvmd.log"), "utf8");
    } catch {
      return "";
    }
  }

  async status(): Promise<ActiveLvStatus[]> {
    const c = await DaemonClient.tryConnect(this.paths);
    if (!c) return [];
    try {
      const r = await c.request<{ lvs: ActiveLvStatus[] }>({ op: "status" });
      return r.lvs;
    } finally {
      c.close();
    }
  }

  /** The mirror sync state of an active LV (its top device), or undefined when not a running mirror. */
  async mirrorSync(vg: string, lv: string): Promise<{ insync: number; total: number; copied: number; legHealth: string[] } | undefined> {
    const st = (await this.status()).find((s) => s.vg === vg && s.lv === lv);
    // The LV's own device (a raid1's is not the last one: its rimage/rmeta devices are listed too).
    const top = st?.devices.find((d) => d.lvName === lv) ?? st?.devices[st.devices.length - 1];
    if (!top?.sync) return undefined;
    return { insync: top.sync.insyncRegions, total: top.sync.totalRegions, copied: top.sync.copiedRegions ?? 0, legHealth: top.sync.legHealth };
  }

  /** dm-raid's status of an active raid1 (health chars per slot, sync ratio), or undefined. */
  async raidStatus(vg: string, lv: string): Promise<NonNullable<ActiveLvStatus["devices"][number]["raid"]> | undefined> {
    const st = (await this.status()).find((s) => s.vg === vg && s.lv === lv);
    return st?.devices.find((d) => d.lvName === lv)?.raid;
  }

  /** Wait (polling the daemon) until an active mirror is in sync; a liveness limit, not a timing assertion. */
  async waitInSync(vg: string, lv: string, limitMs = 300_000): Promise<{ insync: number; total: number; copied: number }> {
    const t0 = Date.now();
    for (;;) {
      const s = await this.mirrorSync(vg, lv);
      if (s && s.insync === s.total) return s;
      if (Date.now() - t0 > limitMs) throw new Error(`${vg}/${lv} not in sync after ${limitMs} ms: ${JSON.stringify(s)}`);
      await sleep(50);
    }
  }

  /**
   * Wait until the on-disk log of an active mirror calls every region clean
   * (the cleaner ages regions before it cleans them): a mirror that has been
   * in sync for a while, as a crash test's starting point.
   */
  async waitLogClean(vg: string, lv: string, limitMs = 120_000): Promise<void> {
    const t0 = Date.now();
    for (;;) {
      const layout = this.mirrorLayout(await this.loadVg(vg), lv);
      const log = this.diskLog(layout);
      if (log && log.dirty.length === 0) return;
      if (Date.now() - t0 > limitMs) throw new Error(`${vg}/${lv}: on-disk log still has ${log?.dirty.length} dirty regions after ${limitMs} ms`);
      await sleep(100);
    }
  }

  // ------------------------------------------------------------ metadata

  async loadVg(vg: string, devices: readonly string[] = this.diskPaths): Promise<LoadedVg> {
    const scan = await DeviceScan.run(listNamedDevices(devices.filter((d) => existsSync(d))));
    const loaded = loadVg(scan, vg);
    if (!loaded) throw new Error(`VG ${vg} not found on ${devices.join(", ")}`);
    return loaded;
  }

  /** Where every logical extent of an LV lives, following linear sub-LVs (one stripe). */
  extentLocs(loaded: LoadedVg, lvName: string, depth = 0): ExtentLoc[] {
    const vg = loaded.vg;
    const lv = findLv(vg, lvName);
    if (!lv || depth > 8) throw new Error(`no LV ${lvName}`);
    const extentBytes = vg.extentSizeSectors * 512;
    const out: ExtentLoc[] = new Array(lvExtents(lv)).fill(undefined);
    for (const seg of lv.segments) {
      // A raid1 image with integrity: its data is the `_iorig` LV's (the tags are on `_imeta`).
      if (isIntegritySeg(seg)) {
        const origin = this.extentLocs(loaded, seg.origin, depth + 1);
        for (let i = 0; i < seg.extentCount; i++) out[seg.startExtent + i] = origin[i];
        continue;
      }
      if (!isStripedSeg(seg) || seg.stripes.length !== 1) throw new Error(`${lvName}: only linear segments are mapped here`);
      const a = seg.stripes[0]!;
      for (let i = 0; i < seg.extentCount; i++) {
        if (a.kind === "lv") {
          out[seg.startExtent + i] = this.extentLocs(loaded, a.lvName, depth + 1)[a.startLe + i];
          continue;
        }
        const pv = vg.pvs.find((p) => p.id === a.pvId)!;
        const dev = loaded.deviceOf(a.pvId);
        out[seg.startExtent + i] =
          dev && !pv.flags.includes("MISSING") ? { path: dev.entry.name, offsetBytes: pv.peStartSectors * 512 + (a.startPe + i) * extentBytes } : undefined;
      }
    }
    return out;
  }

  /** The legs and log of a mirror LV (one mirror segment per extent range). */
  mirrorLayout(loaded: LoadedVg, lvName: string): MirrorLayout {
    const vg = loaded.vg;
    const lv = findLv(vg, lvName);
    if (!lv) throw new Error(`no LV ${lvName}`);
    const extentBytes = vg.extentSizeSectors * 512;
    const extentCount = lvExtents(lv);
    let legs: ExtentLoc[][] = [];
    let legNames: string[] = [];
    let regionBytes = extentBytes;
    let log: ExtentLoc;
    for (const seg of lv.segments) {
      if (!isMirrorSeg(seg)) throw new Error(`${lvName} is not a mirror`);
      regionBytes = seg.regionSizeSectors * 512;
      if (legs.length === 0) {
        legs = seg.mirrors.map(() => new Array<ExtentLoc>(extentCount).fill(undefined));
        legNames = seg.mirrors.map((a) => (a.kind === "lv" ? a.lvName : a.pvId));
      }
      seg.mirrors.forEach((a, i) => {
        const locs = a.kind === "lv" ? this.extentLocs(loaded, a.lvName) : [];
        for (let e = 0; e < seg.extentCount; e++) legs[i]![seg.startExtent + e] = a.kind === "lv" ? locs[a.startLe + e] : undefined;
      });
      if (seg.mirrorLog) log = this.extentLocs(loaded, seg.mirrorLog)[0];
    }
    const lengthBytes = extentCount * extentBytes;
    return { extentBytes, extentCount, regionBytes, regionCount: Math.ceil(lengthBytes / regionBytes), legs, legNames, log };
  }

  /** The images and rmetas of a raid1 LV (one raid1 segment). */
  raid1Layout(loaded: LoadedVg, lvName: string): Raid1Layout {
    const vg = loaded.vg;
    const lv = findLv(vg, lvName);
    if (!lv) throw new Error(`no LV ${lvName}`);
    const seg = lv.segments[0];
    if (lv.segments.length !== 1 || !seg || !isRaidSeg(seg)) throw new Error(`${lvName} is not a one-segment raid1`);
    const extentBytes = vg.extentSizeSectors * 512;
    const extentCount = lvExtents(lv);
    const regionBytes = seg.regionSizeSectors * 512;
    const legs = seg.raids.map((r) => this.extentLocs(loaded, r.image));
    const rmetas = seg.raids.map((r) => (r.meta === undefined ? undefined : this.extentLocs(loaded, r.meta)[0]));
    return {
      extentBytes,
      extentCount,
      regionBytes,
      regionCount: Math.ceil((extentCount * extentBytes) / regionBytes),
      legs,
      legNames: seg.raids.map((r) => r.image),
      log: undefined,
      rmetas,
      rmetaNames: seg.raids.map((r) => r.meta ?? "-"),
    };
  }

  /**
   * Every rmeta of a raid1 as the PV files hold it now: dm-raid superblock
   * (byte 0), md bitmap superblock (4096) and bits (4352, little-endian, set =
   * dirty); and what the next activation must recover by the target's
   * rules: the set bits of the freshest bitmap, every region from
   * array_resync_offset on while the initial sync has not finished, or all
   * when there is no usable bitmap.
   */
  raidMeta(layout: Raid1Layout): RaidMetaOnDisk {
    return raidMetaOf(layout);
  }

  /** Wait until the freshest on-disk bitmap of an active raid1 has no bit set (its cleaner ages regions first). */
  async waitRaidBitmapClean(vg: string, lv: string, limitMs = 120_000): Promise<void> {
    const t0 = Date.now();
    for (;;) {
      const m = this.raidMeta(this.raid1Layout(await this.loadVg(vg), lv));
      if (m.dirty.length === 0 && !m.full && m.pastResyncOffset.length === 0) return;
      if (Date.now() - t0 > limitMs) throw new Error(`${vg}/${lv}: on-disk bitmap still has ${m.dirty.length} set bits after ${limitMs} ms (${m.full ?? ""})`);
      await sleep(100);
    }
  }

  /** The mirror's on-disk dirty log as the PV file holds it now. */
  diskLog(layout: MirrorLayout): { dirty: number[]; clean: (r: number) => boolean; nrRegions: bigint } | undefined {
    if (!layout.log) return undefined;
    const buf = preadFile(layout.log.path, layout.log.offsetBytes, diskLogTransferBytes(layout.regionCount));
    let decoded;
    try {
      decoded = decodeDiskLog(buf, layout.regionCount);
    } catch {
      return undefined;
    }
    const { cleanBits, header } = decoded;
    const dirty: number[] = [];
    for (let r = 0; r < layout.regionCount; r++) if (!testBit(cleanBits, r)) dirty.push(r);
    return { dirty, clean: (r) => testBit(cleanBits, r), nrRegions: header.nrRegions };
  }

  /** Byte offset (in the LV) of the first difference between two legs, within `regions` (default all), or -1. */
  legDiff(layout: MirrorLayout, a = 0, b = 1, regions?: readonly number[]): number {
    const ranges = regions
      ? regions.map((r) => [r * layout.regionBytes, Math.min((r + 1) * layout.regionBytes, layout.extentCount * layout.extentBytes)] as const)
      : [[0, layout.extentCount * layout.extentBytes] as const];
    for (const [start, end] of ranges) {
      for (let off = start; off < end; ) {
        const e = Math.floor(off / layout.extentBytes);
        const within = off - e * layout.extentBytes;
        const n = Math.min(end - off, layout.extentBytes - within, 1 << 20);
        const la = layout.legs[a]![e];
        const lb = layout.legs[b]![e];
        if (!la || !lb) throw new Error(`extent ${e} of a leg is on a missing PV`);
        const ba = preadFile(la.path, la.offsetBytes + within, n);
        const bb = preadFile(lb.path, lb.offsetBytes + within, n);
        if (!ba.equals(bb)) {
          for (let i = 0; i < n; i++) if (ba[i] !== bb[i]) return off + i;
        }
        off += n;
      }
    }
    return -1;
  }

  /** Read LV bytes from one leg's PV file directly (bypassing ulvm). */
  readLeg(layout: MirrorLayout, leg: number, offsetBytes: number, lengthBytes: number): Buffer {
    const out = Buffer.alloc(lengthBytes);
    for (let done = 0; done < lengthBytes; ) {
      const off = offsetBytes + done;
      const e = Math.floor(off / layout.extentBytes);
      const within = off - e * layout.extentBytes;
      const n = Math.min(lengthBytes - done, layout.extentBytes - within);
      const loc = layout.legs[leg]![e];
      if (!loc) throw new Error(`extent ${e} of leg ${leg} is on a missing PV`);
      preadFile(loc.path, loc.offsetBytes + within, n).copy(out, done);
      done += n;
    }
    return out;
  }

  /**
   * sha256 over every disk's label and metadata area (the first MiB, before
   * pe_start), plus the VG's backup file: "metadata byte-identical".
   */
  metadataHash(vg?: string): string {
    const h = createHash("sha256");
    for (const p of this.diskPaths) {
      if (!existsSync(p)) {
        h.update(`${p}: absent\n`);
        continue;
      }
      const n = Math.min(statSync(p).size, 1 << 20);
      h.update(p).update(preadFile(p, 0, n));
    }
    if (vg) {
      const b = join(this.dir, "etc", "backup", vg);
      h.update(existsSync(b) ? readFileSync(b) : Buffer.from("no backup"));
    }
    return h.digest("hex");
  }

  /** sha256 of whole disk files (nothing written at all). */
  diskHash(): string {
    const h = createHash("sha256");
    for (const p of this.diskPaths) {
      if (!existsSync(p)) continue;
      const size = statSync(p).size;
      h.update(`${p}:${size}`);
      const fd = openSync(p, "r");
      try {
        const buf = Buffer.allocUnsafe(1 << 22);
        for (let off = 0; off < size; off += buf.length) {
          const n = readSync(fd, buf, 0, Math.min(buf.length, size - off), off);
          h.update(buf.subarray(0, n));
        }
      } finally {
        closeSync(fd);
      }
    }
    return h.digest("hex");
  }

  /**
   * Debian's lvm2 reading the same disks (read-only loop devices over the
   * present disk files, lvm2 confined to them): `lvm vgck VG`, or undefined
   * when lvm2 or loop devices are unavailable.
   */
  lvm2(...args: string[]): RunResult | undefined {
    if (lvmUnavailable()) return undefined;
    for (const [name, p] of [...this.lab.disks]) if (!existsSync(p)) this.lab.disks.delete(name);
    this.lab.attachLoops({ readOnlyView: true });
    return this.lab.lvm(...args);
  }

  /** Copy the disks (sparse) and the daemon log somewhere that outlives cleanup; returns the directory. */
  preserve(tag: string): string {
    const dest = join(existsSync("/var/tmp") ? "/var/tmp" : "/tmp", `ulvm-torture-kept-${tag}-${Date.now()}`);
    mkdirSync(dest, { recursive: true });
    for (const p of this.diskPaths) if (existsSync(p)) spawnSync("cp", ["--sparse=always", p, dest]);
    for (const f of ["run/ulvmd.log", "etc/ulvm.conf"]) if (existsSync(join(this.dir, f))) cpSync(join(this.dir, f), join(dest, f.replace("/", "-")));
    return dest;
  }

  cleanup(): void {
    World.live.delete(this);
    this.lab.cleanup(); // the tmpfs disk folder too (lab.extraRoots)
  }
}

/** World.raidMeta over any reader of the PV bytes (crash states built in memory, for one). */
export function raidMetaOf(layout: Raid1Layout, read?: (path: string, offsetBytes: number, lengthBytes: number) => Buffer): RaidMetaOnDisk {
  const pread = read ?? preadFile;
  const dataSectors = BigInt((layout.extentCount * layout.extentBytes) / 512);
  const bitsBytes = Math.ceil(layout.regionCount / 8);
  const slots: RmetaOnDisk[] = layout.rmetas.map((loc): RmetaOnDisk => {
    if (!loc || (!read && !existsSync(loc.path))) return { kind: "missing" };
    const head = pread(loc.path, loc.offsetBytes, RMETA_BITMAP_OFFSET_BYTES + BITMAP_SUPERBLOCK_BYTES);
    let sb: DmRaidSuperblock;
    try {
      const d = decodeDmRaidSuperblock(head.subarray(0, RMETA_BITMAP_OFFSET_BYTES));
      if (d.kind === "fresh") return { kind: "fresh" };
      sb = d.superblock;
    } catch (e) {
      return { kind: "invalid", reason: e instanceof Error ? e.message : String(e) };
    }
    let bitmap: MdBitmapSuperblock | undefined;
    let bitmapProblem: string | undefined;
    try {
      bitmap = decodeMdBitmapSuperblock(head.subarray(RMETA_BITMAP_OFFSET_BYTES), { areaBytes: layout.extentBytes - RMETA_BITMAP_OFFSET_BYTES });
    } catch (e) {
      bitmapProblem = e instanceof Error ? e.message : String(e);
    }
    const bits = pread(loc.path, loc.offsetBytes + RMETA_BITMAP_OFFSET_BYTES + BITMAP_SUPERBLOCK_BYTES, bitsBytes);
    const dirty: number[] = [];
    for (let r = 0; r < layout.regionCount; r++) if (bits[r >>> 3]! & (1 << (r & 7))) dirty.push(r);
    return { kind: "valid", sb, bitmap, ...(bitmapProblem ? { bitmapProblem } : {}), dirty };
  });
  let freshest: number | undefined;
  slots.forEach((s, i) => {
    if (s.kind === "valid" && (freshest === undefined || s.sb.eventCount > (slots[freshest] as { sb: DmRaidSuperblock }).sb.eventCount)) freshest = i;
  });
  const sb = freshest === undefined ? undefined : (slots[freshest] as { sb: DmRaidSuperblock }).sb;
  let bitmapSlot: number | undefined;
  slots.forEach((s, i) => {
    if (s.kind !== "valid" || !s.bitmap || s.bitmap.chunkBytes !== layout.regionBytes || s.bitmap.syncSectors !== dataSectors) return;
    if (sb && isPositionFailed(sb.failedDevices, i)) return;
    const best = bitmapSlot === undefined ? undefined : (slots[bitmapSlot] as { bitmap: MdBitmapSuperblock }).bitmap;
    if (!best || s.bitmap.eventCount > best.eventCount) bitmapSlot = i;
  });
  const chosen = bitmapSlot === undefined ? undefined : (slots[bitmapSlot] as Extract<RmetaOnDisk, { kind: "valid" }>);
  const all = Array.from({ length: layout.regionCount }, (_, r) => r);
  let full: string | undefined;
  if (!sb) full = "no valid superblock";
  else if (!chosen) full = "no valid bitmap";
  else if ((chosen.bitmap!.state & BITMAP_STALE) !== 0) full = "bitmap STALE";
  else if (chosen.bitmap!.eventCount < sb.eventCount) full = `bitmap events ${chosen.bitmap!.eventCount} < superblock events ${sb.eventCount}`;
  const dirty = chosen?.dirty ?? [];
  const pastResyncOffset = sb && sb.arrayResyncOffsetSectors !== MAX_SECTOR ? all.filter((r) => BigInt(r * (layout.regionBytes / 512)) >= sb.arrayResyncOffsetSectors) : [];
  const union = new Set([...dirty, ...pastResyncOffset]);
  const failedSlots = sb ? layout.rmetas.map((_, i) => i).filter((i) => isPositionFailed(sb.failedDevices, i)) : [];
  return { slots, freshest, sb, bitmapSlot, dirty, full, pastResyncOffset, toRecover: full ? all : all.filter((r) => union.has(r)), failedSlots };
}

export function preadFile(path: string, offsetBytes: number, lengthBytes: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(lengthBytes);
    let done = 0;
    while (done < lengthBytes) {
      const n = readSync(fd, b, done, lengthBytes - done, offsetBytes + done);
      if (n === 0) break;
      done += n;
    }
    return b;
  } finally {
    closeSync(fd);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function runAsync(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd: string, input = ""): { child: ChildProcess; done: Promise<RunResult> } {
  const child = spawn(cmd, args as string[], { env, cwd, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin!.on("error", () => undefined);
  child.stdin!.end(input);
  const done = new Promise<RunResult>((resolve) =>
    child.on("close", (code, signal) => resolve({ code: code ?? (signal === "SIGKILL" ? 137 : 128), stdout, stderr })),
  );
  return { child, done };
}

/** Lines of stderr that betray a crash rather than a clean failure. */
export function crashTrace(stderr: string): string | undefined {
  const m = /(TypeError|ReferenceError|RangeError|SyntaxError|Internal error|InternalError|Assertion|    at .+\(.*\.js:\d+:\d+\)|Unhandled|uncaught)/.exec(stderr);
  return m ? stderr.slice(Math.max(0, m.index - 200), m.index + 400) : undefined;
}
