/**
 * raid1 benchmark (issue 14, "Speed" and "Re-add"): a raid1 LV's initial
 * sync, its check (scrub) and the re-add of an image that was away, each
 * against its plain-file peer in the same run.
 *
 * Layout: two non-sparse files in a fresh directory under /var/tmp, one PV
 * each, of N GiB + 8 MiB (pe_start 1 MiB, one 4 MiB extent of rmeta, the
 * image's N GiB): image k's data is bytes [5 MiB, 5 MiB + N GiB) of file k.
 * Each repetition:
 *   1. full sync. Peer: `dd bs=1M` of the N GiB from image 0's region of
 *      file 0 to image 1's region of file 1 (same offsets; page cache, no
 *      sync). Then `lvcreate --type raid1 -m1 -L N G` (no --nosync), with the
 *      daemon's status polled every 10 ms: the sync runs from the first
 *      status that shows the raid1 resyncing until every region is in sync
 *      (the ratio's figure: sync MB/s / dd MB/s); the time from the
 *      command's start is printed beside it.
 *   2. check. Peer: two `dd bs=1M if=<image k's region> of=/dev/null` at
 *      once, the time until both finish. Then `lvchange --syncaction check`,
 *      timed from the command's start until the daemon shows the sync action
 *      idle again with the check finished (ratio: check MB/s / dd MB/s, MB of
 *      one image); the mismatch count (must be 0) is printed.
 *   3. re-add. Once the on-disk write-intent bitmap (image 0's rmeta) is
 *      clean, file 1 leaves the scanned directory; when the daemon shows the
 *      image failed, 1% of the LV is written through NBD (qemu-io, two runs:
 *      one region-aligned, one straddling region boundaries); file 1 comes
 *      back, `vgextend --restoremissing`, `lvchange --refresh`, and once the
 *      LV is in sync again the bytes the recovery copied (copiedRegions x
 *      region size) are the figure, as a percentage of the LV (goal <= 2%).
 *      With 2 MiB regions the two runs dirty 2 + 2 regions from 0.5 GiB on
 *      (1.56% there, 1.37% at 1 GiB), but 1 + 2 at 0.25 GiB (2.34%): below
 *      0.5 GiB the figure says more about the region size than the bitmap.
 *   4. `lvremove -f` for the next repetition.
 * The page cache is warmed (both files read) before each repetition.
 * Prints MB/s (10^6 bytes/s), medians over the repetitions, and the lines
 * scripts/bench.sh's summary reads:
 *   RAID1_SYNC_RATIO med min max
 *   RAID1_CHECK_RATIO med min max
 *   RAID1_CHECK_MISMATCHES max
 *   RAID1_READD_PCT med min max
 *
 *   node dist/bench/raid1.js [--gib N=1] [--reps R=3]   (N may be a fraction, e.g. 0.25)
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { Lab, ULVM_BIN, which } from "../test/helpers/lab.js";
import { DaemonClient } from "../src/daemon/control-client.js";
import type { ActiveLvStatus, MappedDeviceStatus } from "../src/daemon/protocol.js";
import { bitmapChunkCount, decodeMdBitmapSuperblock, RMETA_BITMAP_OFFSET_BYTES, BITMAP_SUPERBLOCK_BYTES } from "../src/mapper/raid/md-bitmap-format.js";
import { makeFile, median } from "./bench-files.js";
import { pread } from "../test/helpers/raid1.js";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const GIB = opt("gib", 1);
const REPS = opt("reps", 3);
const MiB = 1 << 20;
const LV_MIB = Math.round(GIB * 1024);
if (!(LV_MIB >= 8 && LV_MIB % 4 === 0) || !(REPS >= 1)) throw new Error("raid1 bench: --gib must give a whole number of 4 MiB extents (>= 8 MiB), --reps >= 1");
const PE_START = 1 * MiB; // ulvm's pvcreate default (as lvm2's)
const RMETA_START = PE_START; // extent 0 of each PV: the image's rmeta
const DATA_START_MIB = 5; // extent 1 on: the image's data
const VG = "r1vg";
const LV = "r";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): bigint => process.hrtime.bigint();
const secsSince = (t: bigint): number => Number(now() - t) / 1e9;


function must(r: { code: number; stdout: string; stderr: string }, what: string): string {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Start a ulvm command in the background; the promise settles when it exits (throws on a failure). */
function ulvmAsync(lab: Lab, args: string[]): Promise<void> {
  const child = spawn(process.execPath, [ULVM_BIN, ...args], { env: lab.env, cwd: lab.dir, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) =>
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`ulvm ${args.join(" ")} exited ${code}\n${stderr}`)))),
  );
}

/** Run commands at once; resolves with the seconds until the last one finished. */
function runParallel(cmds: Array<[string, string[]]>): Promise<number> {
  const t0 = now();
  return Promise.all(
    cmds.map(
      ([cmd, args]) =>
        new Promise<void>((resolve, reject) => {
          const c = spawn(cmd, args, { stdio: ["ignore", "ignore", "inherit"] });
          c.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}`))));
        }),
    ),
  ).then(() => secsSince(t0));
}

/** The daemon's status of the raid1 LV's top device, over one control connection. */
class Watcher {
  private client: DaemonClient | undefined;
  constructor(private readonly lab: Lab) {}

  async top(): Promise<MappedDeviceStatus | undefined> {
    const paths = { systemDir: this.lab.env.ULVM_SYSTEM_DIR!, runDir: this.lab.env.ULVM_RUN_DIR!, devDir: this.lab.env.ULVM_DEV_DIR! };
    for (let attempt = 0; ; attempt++) {
      this.client ??= await DaemonClient.tryConnect(paths);
      if (this.client !== undefined) {
        try {
          const { lvs } = await this.client.request<{ lvs: ActiveLvStatus[] }>({ op: "status" });
          return lvs.find((l) => l.vg === VG && l.lv === LV)?.devices.find((d) => d.lvName === LV);
        } catch (e) {
          this.close();
          if (attempt >= 50) throw e;
        }
      } else if (attempt >= 500) throw new Error("the daemon is not reachable");
      await sleep(10);
    }
  }

  /** Poll every `ms` until `done` holds; throws after `timeoutS`. */
  async until(what: string, done: (d: MappedDeviceStatus | undefined) => boolean, timeoutS: number, ms = 10): Promise<MappedDeviceStatus | undefined> {
    const t0 = now();
    for (;;) {
      const d = await this.top();
      if (done(d)) return d;
      if (secsSince(t0) > timeoutS) throw new Error(`raid1 bench: timed out waiting for ${what}; last status: ${JSON.stringify(d?.raid)} ${JSON.stringify(d?.sync)}`);
      await sleep(ms);
    }
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }
}

const inSync = (d: MappedDeviceStatus | undefined): boolean =>
  d?.raid !== undefined && d.raid.health === "AA" && d.raid.syncAction === "idle" && d.sync !== undefined && d.sync.insyncRegions === d.sync.totalRegions;

interface SyncResult {
  totalS: number;
  syncS: number;
  sawResync: boolean;
}

/** lvcreate --type raid1 -m1 (activates, starts the initial sync); times the sync from the daemon's status. */
async function createAndSync(lab: Lab, w: Watcher, pv0: string, pv1: string): Promise<SyncResult> {
  const t0 = now();
  const created = ulvmAsync(lab, ["lvcreate", "-q", "--type", "raid1", "-m1", "-L", `${LV_MIB}m`, "-n", LV, VG, pv0, pv1]);
  let failed: unknown;
  created.catch((e: unknown) => (failed = e));
  let syncStart: bigint | undefined;
  let sawResync = false;
  const deadline = 600 + GIB * 600;
  for (;;) {
    if (failed !== undefined) throw failed;
    // Until the LV is active there is no daemon or no LV: keep polling.
    const d = await w.top().catch(() => undefined);
    if (d?.raid !== undefined) {
      if (d.raid.syncAction === "resync") {
        sawResync = true;
        syncStart ??= now();
      }
      if (inSync(d)) {
        syncStart ??= now(); // done before the first status: no copy phase seen
        break;
      }
    }
    if (secsSince(t0) > deadline) throw new Error("raid1 bench: the initial sync did not finish");
    await sleep(10);
  }
  const t1 = now();
  await created;
  return { totalS: Number(t1 - t0) / 1e9, syncS: Number(t1 - syncStart) / 1e9, sawResync };
}

/** lvchange --syncaction check; the seconds from the command until the check has finished (sync action idle). */
async function check(lab: Lab, w: Watcher): Promise<{ totalS: number; scanS: number; mismatches: number }> {
  const t0 = now();
  const cmd = ulvmAsync(lab, ["lvchange", "--syncaction", "check", `${VG}/${LV}`]);
  let failed: unknown;
  cmd.catch((e: unknown) => (failed = e));
  let scanStart: bigint | undefined;
  let d: MappedDeviceStatus | undefined;
  for (;;) {
    if (failed !== undefined) throw failed;
    d = await w.top();
    const r = d?.raid;
    if (r?.syncAction === "check") scanStart ??= now();
    if (r !== undefined && r.syncAction === "idle" && r.scrub?.action === "check" && !r.scrub.running) break;
    if (secsSince(t0) > 600 + GIB * 600) throw new Error(`raid1 bench: the check did not finish: ${JSON.stringify(r)}`);
    await sleep(10);
  }
  const t1 = now();
  await cmd;
  if (d?.raid?.scrub?.aborted) throw new Error("raid1 bench: the check was aborted");
  return { totalS: Number(t1 - t0) / 1e9, scanS: Number(t1 - (scanStart ?? t0)) / 1e9, mismatches: d?.raid?.mismatchCount ?? -1 };
}

/** Image 0's write-intent bitmap on disk: region size and the number of dirty bits. */
function bitmapState(pv0: string): { regionBytes: number; regions: number; dirty: number } {
  const sb = decodeMdBitmapSuperblock(pread(pv0, RMETA_START + RMETA_BITMAP_OFFSET_BYTES, BITMAP_SUPERBLOCK_BYTES));
  const regions = bitmapChunkCount(sb.syncSectors, sb.chunkBytes);
  const bits = pread(pv0, RMETA_START + RMETA_BITMAP_OFFSET_BYTES + BITMAP_SUPERBLOCK_BYTES, Math.ceil(regions / 8));
  let dirty = 0;
  for (let k = 0; k < regions; k++) if (bits[k >>> 3]! & (1 << (k & 7))) dirty++;
  return { regionBytes: sb.chunkBytes, regions, dirty };
}

interface ReaddResult {
  writtenBytes: number;
  copiedBytes: number;
  copiedRegions: number;
  dirtyBits: number;
  regionBytes: number;
  recoverS: number;
}

async function readd(lab: Lab, w: Watcher, pv0: string, pv1: string): Promise<ReaddResult> {
  // The bitmap's bits clear ~2 s after the last write to a region: start from a clean bitmap on disk.
  const t0 = now();
  let bm = bitmapState(pv0);
  while (bm.dirty > 0) {
    if (secsSince(t0) > 60) throw new Error(`raid1 bench: image 0's bitmap still has ${bm.dirty} dirty regions`);
    await sleep(50);
    bm = bitmapState(pv0);
  }
  const away = join(lab.dir, "away");
  mkdirSync(away, { recursive: true });
  const pv1Away = join(away, "pv1.img");
  renameSync(pv1, pv1Away);
  try {
    await w.until("image 1 failed", (d) => /^A[D-]$/.test(d?.raid?.health ?? ""), 120, 50);
    // 1% of the LV (rounded up to 4 KiB), in two runs: one from a region boundary, one from the middle of a region.
    const lvBytes = LV_MIB * MiB;
    const half = Math.ceil(lvBytes / 100 / 2 / 4096) * 4096;
    const r = bm.regionBytes;
    const a = Math.floor(lvBytes / 5 / r) * r;
    const b = Math.floor((lvBytes * 3) / 5 / r) * r + r / 2;
    const uri = `nbd+unix:///${VG}/${LV}?socket=${join(lab.dir, "run", "nbd.sock")}`;
    const io = lab.run("qemu-io", ["-f", "raw", "-c", `write -P 0x5a ${a} ${half}`, "-c", `write -P 0xa5 ${b} ${half}`, uri]);
    if (io.code !== 0 || /error|failed/i.test(io.stdout + io.stderr)) throw new Error(`qemu-io: ${io.stderr}${io.stdout}`);
    const st = await w.top();
    if (!/^A[D-]$/.test(st?.raid?.health ?? "")) throw new Error(`raid1 bench: image 1 is not failed after the writes: ${st?.raid?.health}`);
    renameSync(pv1Away, pv1);
    const dirtyBits = bitmapState(pv0).dirty;
    must(lab.ulvm("vgextend", "--restoremissing", VG, pv1), "vgextend --restoremissing");
    const t1 = now();
    must(lab.ulvm("lvchange", "--refresh", `${VG}/${LV}`), "lvchange --refresh");
    const d = await w.until("image 1 back in sync", inSync, 600, 20);
    const recoverS = secsSince(t1);
    const copiedRegions = d?.sync?.copiedRegions ?? 0;
    return { writtenBytes: 2 * half, copiedBytes: copiedRegions * r, copiedRegions, dirtyBits, regionBytes: r, recoverS };
  } finally {
    try {
      renameSync(pv1Away, pv1);
    } catch {
      /* already back */
    }
  }
}

async function main(): Promise<void> {
  if (!which("qemu-io")) throw new Error("raid1 bench: qemu-io not installed (apt-get install qemu-utils)");
  const lab = new Lab("ulvm-bench-raid1-");
  const w = new Watcher(lab);
  try {
    const pv0 = join(lab.dir, "disks", "pv0.img");
    const pv1 = join(lab.dir, "disks", "pv1.img");
    makeFile(pv0, LV_MIB + 8);
    makeFile(pv1, LV_MIB + 8);
    // The scanned directory (as the lab's default): re-add moves pv1 out of it. No FUSE device paths.
    lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 0\n}\n`);
    must(lab.ulvm("pvcreate", "-q", pv0, pv1), "pvcreate");
    must(lab.ulvm("vgcreate", "-q", VG, pv0, pv1), "vgcreate");
    const bytes = LV_MIB * MiB;
    const mb = (s: number): number => bytes / s / 1e6;
    const rows = { dd: [] as number[], sync: [] as number[], syncTotal: [] as number[], rd: [] as number[], chk: [] as number[], chkScan: [] as number[] };
    const syncRatios: number[] = [];
    const checkRatios: number[] = [];
    const readdPct: number[] = [];
    let maxMismatch = 0;
    let lastReadd: ReaddResult | undefined;
    const imageRegion = (f: string): string[] => [`if=${f}`, "bs=1M", `skip=${DATA_START_MIB}`, `count=${LV_MIB}`, "status=none"];
    for (let rep = 0; rep < REPS; rep++) {
      for (const f of [pv0, pv1]) execFileSync("cat", [f], { stdio: ["ignore", "ignore", "inherit"] });
      spawnSync("sync");
      // 1. full sync
      const t0 = now();
      execFileSync("dd", [...imageRegion(pv0), `of=${pv1}`, `seek=${DATA_START_MIB}`, "conv=notrunc"]);
      const ddS = secsSince(t0);
      spawnSync("sync");
      const s = await createAndSync(lab, w, pv0, pv1);
      if (!s.sawResync) console.log("raid1 bench: warning: no status showed the resync running (too fast to see?)");
      // 2. check
      const rdS = await runParallel([pv0, pv1].map((f) => ["dd", [...imageRegion(f), "of=/dev/null"]]));
      const c = await check(lab, w);
      maxMismatch = Math.max(maxMismatch, c.mismatches);
      // 3. re-add
      const ra = await readd(lab, w, pv0, pv1);
      lastReadd = ra;
      // 4. for the next repetition
      must(lab.ulvm("lvremove", "-q", "-f", `${VG}/${LV}`), "lvremove");
      w.close();

      rows.dd.push(mb(ddS));
      rows.sync.push(mb(s.syncS));
      rows.syncTotal.push(mb(s.totalS));
      rows.rd.push(mb(rdS));
      rows.chk.push(mb(c.totalS));
      rows.chkScan.push(mb(c.scanS));
      syncRatios.push(ddS / s.syncS);
      checkRatios.push(rdS / c.totalS);
      readdPct.push((100 * ra.copiedBytes) / bytes);
      console.log(
        `raid1 bench: rep ${rep + 1}/${REPS}: dd copy ${mb(ddS).toFixed(0)} MB/s, sync ${mb(s.syncS).toFixed(0)} MB/s (lvcreate to in sync ${mb(s.totalS).toFixed(0)} MB/s);` +
          ` 2x dd read ${mb(rdS).toFixed(0)} MB/s, check ${mb(c.totalS).toFixed(0)} MB/s (${c.totalS.toFixed(2)} s, scan ${c.scanS.toFixed(2)} s), ${c.mismatches} mismatches;` +
          ` re-add: wrote ${(ra.writtenBytes / MiB).toFixed(2)} MiB, ${ra.dirtyBits} dirty bits, copied ${ra.copiedRegions} regions of ${ra.regionBytes / MiB} MiB` +
          ` = ${((100 * ra.copiedBytes) / bytes).toFixed(2)}% in ${ra.recoverS.toFixed(2)} s`,
      );
    }
    const spread = (xs: number[]): string => `${median(xs).toFixed(2)} ${Math.min(...xs).toFixed(2)} ${Math.max(...xs).toFixed(2)}`;
    const line = (label: string, xs: number[]): void => console.log(`${label.padEnd(44)} ${median(xs).toFixed(0).padStart(8)}`);
    console.log(`raid1 bench: ${GIB} GiB, ${REPS} repetitions, MB/s of one image (median)`);
    console.log(`${"".padEnd(44)} ${"MB/s".padStart(8)}`);
    line("plain copy (dd bs=1M, page cache)", rows.dd);
    line("raid1 initial sync (resync phase)", rows.sync);
    line("lvcreate --type raid1 -m1, start to in sync", rows.syncTotal);
    line("2 parallel dd reads (page cache)", rows.rd);
    line("lvchange --syncaction check, to idle", rows.chk);
    line("check, first 'check' status to idle", rows.chkScan);
    if (lastReadd) console.log(`re-add: 1% of the LV written (${(lastReadd.writtenBytes / MiB).toFixed(2)} MiB), region ${lastReadd.regionBytes / MiB} MiB: median ${median(readdPct).toFixed(2)}% of the LV resynced`);
    console.log(`RAID1_SYNC_RATIO ${spread(syncRatios)}`);
    console.log(`RAID1_CHECK_RATIO ${spread(checkRatios)}`);
    console.log(`RAID1_CHECK_MISMATCHES ${maxMismatch}`);
    console.log(`RAID1_READD_PCT ${spread(readdPct)}`);
  } finally {
    w.close();
    lab.cleanup();
  }
}

await main();
