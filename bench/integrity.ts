/**
 * raid1 + integrity benchmark (issue 17, "Speed"), each figure against its
 * peer in the same run:
 *   1. crc32c: the hardware path ulvm uses (@node-rs/crc32, SSE4.2 / ARMv8
 *      CRC instructions) against the table-driven software baseline
 *      (src/base/crc32c.ts crc32cSoftware), MiB/s over the same 64 MiB
 *      buffer, in 4 KiB calls (the size of the tag computations).
 *   2. I/O over NBD (fio's nbd engine, RUNTIME s per test): a plain raid1
 *      LV, then raid1 --raidintegrity y in bitmap mode, then in journal mode,
 *      each made afresh on the same two PVs (lvcreate, the initial sync and
 *      the tag recalculation waited for): seq write 1 MiB QD8, rand write
 *      4 KiB QD32, seq read 1 MiB QD8. Ratios integrity / plain per rep.
 *   3. check: `lvchange --syncaction check`, timed from the command's start
 *      until the daemon shows the sync action idle; ratio plain time /
 *      integrity time (a speed ratio: >= 0.7 is the goal).
 * Prints the lines scripts/bench.sh's summary reads (median min max):
 *   INTEGRITY_CRC32C_MIBS hw sw        INTEGRITY_CRC32C_RATIO med min max
 *   INTEGRITY_BITMAP_WRITE_RATIO ...   INTEGRITY_BITMAP_RANDWRITE_RATIO ...
 *   INTEGRITY_JOURNAL_WRITE_RATIO ...  INTEGRITY_BITMAP_READ_RATIO ...
 *   INTEGRITY_CHECK_RATIO ...
 *
 *   node dist/bench/integrity.js [--mib N=256] [--reps R=3] [--runtime S=2] [--blocksize B=512]
 * (--blocksize: --raidintegrityblocksize; 512 is lvm2's default, and the
 * costliest: a crc32c call per 512 bytes.)
 */
import { spawnSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { join } from "node:path";
import { Lab, which } from "../test/helpers/lab.js";
import { DaemonClient } from "../src/daemon/control-client.js";
import type { ActiveLvStatus } from "../src/daemon/protocol.js";
import { crc32c, crc32cSoftware } from "../src/base/crc32c.js";
import { median } from "./bench-files.js";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const LV_MIB = opt("mib", 256);
const REPS = opt("reps", 3);
const RUNTIME = opt("runtime", Number(process.env["RUNTIME"] ?? 2));
const BLOCK_SIZE = opt("blocksize", 512);
if (!(LV_MIB >= 16 && LV_MIB % 4 === 0) || !(REPS >= 1) || ![512, 1024, 2048, 4096].includes(BLOCK_SIZE))
  throw new Error("integrity bench: --mib must be a multiple of 4 (>= 16), --reps >= 1, --blocksize 512, 1024, 2048 or 4096");
const VG = "ivg";
const LV = "r";
const now = (): bigint => process.hrtime.bigint();
const secsSince = (t: bigint): number => Number(now() - t) / 1e9;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function crcMiBs(fn: (b: Uint8Array, s?: number) => number, buf: Buffer, minSecs: number, chunk = 4096): number {
  let bytes = 0;
  let acc = 0;
  const t0 = now();
  do {
    for (let off = 0; off < buf.length; off += chunk) acc ^= fn(buf.subarray(off, off + chunk));
    bytes += buf.length;
  } while (secsSince(t0) < minSecs);
  if (acc === 0.5) console.log(""); // keep the result live
  return bytes / (1 << 20) / secsSince(t0);
}

async function status(lab: Lab): Promise<ActiveLvStatus | undefined> {
  const c = await DaemonClient.tryConnect({ systemDir: join(lab.dir, "etc"), runDir: join(lab.dir, "run"), devDir: join(lab.dir, "dev") });
  if (!c) throw new Error("the daemon is not reachable");
  try {
    return (await c.request<{ lvs: ActiveLvStatus[] }>({ op: "status" })).lvs.find((l) => l.vg === VG && l.lv === LV);
  } finally {
    c.close();
  }
}

/** Until the raid1 is in sync and every image's tags are computed (no recalculation running). */
async function settled(lab: Lab): Promise<void> {
  const t0 = now();
  for (;;) {
    const st = await status(lab);
    const top = st?.devices.find((d) => d.lvName === LV);
    const images = st?.devices.filter((d) => /^r_rimage_\d$/.test(d.lvName)) ?? [];
    const recalculating = images.some((d) => / integrity \d+ \d+ \d+/.test(d.status));
    if (top?.raid?.health === "AA" && top.raid.syncedSectors >= top.raid.totalSectors && top.raid.syncAction === "idle" && !recalculating) return;
    if (secsSince(t0) > 600) throw new Error(`integrity bench: not settled: ${JSON.stringify(top?.raid)}`);
    await sleep(20);
  }
}

function fio(lab: Lab, rw: string, bs: string, qd: number): number {
  const uri = `nbd+unix:///${VG}/${LV}?socket=${join(lab.dir, "run", "nbd.sock")}`;
  const args = ["--name=job", "--output-format=json", `--rw=${rw}`, `--bs=${bs}`, `--iodepth=${qd}`, `--runtime=${RUNTIME}`, "--time_based", "--norandommap", "--ioengine=nbd", `--uri=${uri}`, `--size=${LV_MIB}m`];
  const r = spawnSync("fio", args, { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`fio ${args.join(" ")}: ${r.stderr}`);
  const job = (JSON.parse(r.stdout.slice(r.stdout.indexOf("{"))) as { jobs: Array<Record<"read" | "write", { bw_bytes: number }>> }).jobs[0]!;
  return (rw.includes("read") ? job.read : job.write).bw_bytes / 1e6;
}

async function checkSecs(lab: Lab): Promise<number> {
  const t0 = now();
  lab.ok("lvchange", "--syncaction", "check", `${VG}/${LV}`);
  for (;;) {
    const top = (await status(lab))?.devices.find((d) => d.lvName === LV);
    if (top?.raid?.syncAction === "idle") return secsSince(t0);
    if (secsSince(t0) > 600) throw new Error("integrity bench: the check does not end");
    await sleep(10);
  }
}

interface Row {
  write: number;
  randwrite: number;
  read: number;
  check: number;
}

async function measure(lab: Lab, create: string[]): Promise<Row> {
  lab.ok("lvcreate", "-q", "--type", "raid1", "-m1", ...create, "-L", `${LV_MIB}m`, "-n", LV, VG);
  await settled(lab);
  const row: Row = { write: fio(lab, "write", "1m", 8), randwrite: fio(lab, "randwrite", "4k", 32), read: 0, check: 0 };
  await settled(lab);
  row.read = fio(lab, "read", "1m", 8);
  row.check = await checkSecs(lab);
  lab.ok("lvremove", "-f", `${VG}/${LV}`);
  return row;
}

function line(key: string, xs: number[]): void {
  console.log(`${key} ${median(xs).toFixed(3)} ${Math.min(...xs).toFixed(3)} ${Math.max(...xs).toFixed(3)}`);
}

async function main(): Promise<void> {
  const buf = randomFillSync(Buffer.allocUnsafe(64 << 20));
  const hw: number[] = [];
  const sw: number[] = [];
  for (let r = 0; r < REPS; r++) {
    hw.push(crcMiBs(crc32c, buf, 0.5));
    sw.push(crcMiBs(crc32cSoftware, buf, 0.5));
  }
  console.log(`crc32c over 4 KiB calls: hardware ${median(hw).toFixed(0)} MiB/s, software ${median(sw).toFixed(0)} MiB/s`);
  // The integrity layer's default block is 512 bytes: a call per block costs more than the bytes.
  console.log(`crc32c over 512-byte calls: hardware ${crcMiBs(crc32c, buf, 0.5, 512).toFixed(0)} MiB/s, software ${crcMiBs(crc32cSoftware, buf, 0.5, 512).toFixed(0)} MiB/s`);
  console.log(`INTEGRITY_CRC32C_MIBS ${median(hw).toFixed(0)} ${median(sw).toFixed(0)}`);
  line("INTEGRITY_CRC32C_RATIO", hw.map((h, i) => h / sw[i]!));
  if (!which("fio")) throw new Error("integrity bench: fio not installed");
  const lab = new Lab("ulvm-bench-integ-");
  const ratios: Record<string, number[]> = { bw: [], brw: [], jw: [], br: [], chk: [] };
  try {
    // Two PVs: the LV, its rmeta, imeta (about LV / 2 + 4 MiB per image in journal mode) and room.
    const size = 2 * LV_MIB + 32;
    const d0 = lab.addDisk("d0", size);
    const d1 = lab.addDisk("d1", size);
    lab.ok("vgcreate", "-q", VG, d0, d1);
    for (let r = 0; r < REPS; r++) {
      const plain = await measure(lab, []);
      const bs = ["--raidintegrityblocksize", String(BLOCK_SIZE)];
      const bitmap = await measure(lab, ["--raidintegrity", "y", "--raidintegritymode", "bitmap", ...bs]);
      const journal = await measure(lab, ["--raidintegrity", "y", "--raidintegritymode", "journal", ...bs]);
      const f = (x: number): string => x.toFixed(1);
      console.log(
        `rep ${r + 1}: MB/s write 1M QD8 plain ${f(plain.write)} bitmap ${f(bitmap.write)} journal ${f(journal.write)}; ` +
          `rand write 4K QD32 plain ${f(plain.randwrite)} bitmap ${f(bitmap.randwrite)}; read 1M QD8 plain ${f(plain.read)} bitmap ${f(bitmap.read)}; ` +
          `check s plain ${plain.check.toFixed(2)} bitmap ${bitmap.check.toFixed(2)}`,
      );
      ratios["bw"]!.push(bitmap.write / plain.write);
      ratios["brw"]!.push(bitmap.randwrite / plain.randwrite);
      ratios["jw"]!.push(journal.write / plain.write);
      ratios["br"]!.push(bitmap.read / plain.read);
      ratios["chk"]!.push(plain.check / bitmap.check);
    }
  } finally {
    lab.cleanup();
  }
  line("INTEGRITY_BITMAP_WRITE_RATIO", ratios["bw"]!);
  line("INTEGRITY_BITMAP_RANDWRITE_RATIO", ratios["brw"]!);
  line("INTEGRITY_JOURNAL_WRITE_RATIO", ratios["jw"]!);
  line("INTEGRITY_BITMAP_READ_RATIO", ratios["br"]!);
  line("INTEGRITY_CHECK_RATIO", ratios["chk"]!);
}

await main();
