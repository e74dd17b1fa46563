/**
 * pvmove benchmark (issue 16, "Speed"), each figure against its peer in the
 * same run:
 *   1. copy: `pvmove -i 1 A B` of an N GiB linear LV, offline (the LV
 *      inactive: the command copies through its own mapper) and online (the
 *      LV active: the daemon's mirror copies), against `dd bs=1M
 *      conv=fdatasync` of the same N GiB between the same files at the same
 *      offsets, each timed as a whole command. Both make the copy durable:
 *      a move flushes the destination before it commits the checkpoint that
 *      says the extents are there, so its peer is dd with the same flush
 *      (a dd without it only fills the page cache, and the move's flush of
 *      the same bytes would then be the difference measured). The move's
 *      start-up and commits are in its time (a fixed ~0.4 s here, which
 *      weighs at 1 GiB: FULL=1 moves 4 GiB). Its copy phase alone, from its
 *      first progress line to its last, is printed beside it (those lines
 *      come a second apart). Repetitions move the LV back and forth.
 *   2. client writes: fio (nbd engine, 4 KiB random writes, QD32, the same
 *      seconds) into the active LV with no move, then while an unthrottled
 *      move runs; ratio during / without. A repetition whose move ended
 *      before fio did is flagged (its ratio would be too kind).
 *   3. rate: activation/mirror_resync_rate (KiB/s; ulvm's throttle of every
 *      mirror copy, pvmove's included: lvm2 has no rate for dm-mirror, its
 *      closest key is raid's max_recovery_rate) set to RATE MiB/s, an
 *      offline move; measured copy rate / setting (goal within 10%).
 * Prints per-repetition lines and PVMOVE_* summary lines (median min max).
 *
 *   node dist/bench/pvmove.js [--gib N=1] [--reps R=3] [--runtime S=2] [--rate MIBPS=64]
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, ULVM_BIN } from "../test/helpers/lab.js";
import { makeFile, median } from "./bench-files.js";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const GIB = opt("gib", 1);
const REPS = opt("reps", 3);
const RUNTIME = opt("runtime", 2);
const RATE_MIBPS = opt("rate", 64);
const MiB = 1 << 20;
const LV_MIB = GIB * 1024;
const PE_START_MIB = 1; // ulvm's pvcreate default (as lvm2's): data starts at 1 MiB
const VG = "pmvg";

function must(r: { code: number; stdout: string; stderr: string }, what: string): string {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

interface Move {
  /** Seconds from the first progress line to the last. */
  copyS: number;
  totalS: number;
  /** When the move's copy started and ended (now() clock). */
  copyStart: number;
  end: number;
}

/** Start `pvmove -i 1 FROM TO`; resolves when it exits. `started` when its first progress line arrives. */
function startMove(lab: Lab, from: string, to: string): { started: Promise<void>; done: Promise<Move> } {
  const t0 = now();
  const child = spawn(process.execPath, [ULVM_BIN, "pvmove", "-i", "1", from, to], { env: lab.env, cwd: lab.dir, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let first: number | undefined;
  let last: number | undefined;
  let onStart: () => void = () => undefined;
  const started = new Promise<void>((r) => (onStart = r));
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (first === undefined && /Moved: /.test(out)) {
      first = now();
      onStart();
    }
    if (/Moved: 100\.00%/.test(out)) last ??= now();
  });
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const done = new Promise<Move>((resolve, reject) =>
    child.on("close", (code) => {
      const end = now();
      onStart();
      if (code !== 0 || first === undefined) return reject(new Error(`pvmove ${from} ${to} exited ${code}\n${err}${out}`));
      resolve({ copyS: (last ?? end) - first, totalS: end - t0, copyStart: first, end });
    }),
  );
  return { started, done };
}

function dd(from: string, to: string): number {
  const t0 = now();
  execFileSync("dd", [`if=${from}`, `of=${to}`, "bs=1M", `count=${LV_MIB}`, `skip=${PE_START_MIB}`, `seek=${PE_START_MIB}`, "conv=notrunc,fdatasync", "status=none"]);
  return now() - t0;
}

/** fio 4 KiB random writes QD32 for RUNTIME s into the active LV over NBD: IOPS. */
function fio(lab: Lab): number {
  const uri = `nbd+unix:///${VG}/lv?socket=${join(lab.env.ULVM_RUN_DIR!, "nbd.sock")}`;
  // fio's nbd engine prints "connected to NBD server" on stdout: the JSON goes to a file.
  const out = join(lab.dir, "fio.json");
  const r = spawnSync(
    "fio",
    ["--name=w", "--ioengine=nbd", `--uri=${uri}`, "--rw=randwrite", "--bs=4k", "--iodepth=32", `--size=${LV_MIB}m`, "--time_based", `--runtime=${RUNTIME}`, "--output-format=json", `--output=${out}`],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`fio exited ${r.status}\n${r.stderr}${r.stdout}`);
  return (JSON.parse(readFileSync(out, "utf8")) as { jobs: Array<{ write: { iops: number } }> }).jobs[0]!.write.iops;
}

function warm(files: string[]): void {
  for (const f of files) execFileSync("cat", [f], { stdio: ["ignore", "ignore", "inherit"] });
  spawnSync("sync");
}

const stats = (xs: number[]): string => `${median(xs).toFixed(2)} ${Math.min(...xs).toFixed(2)} ${Math.max(...xs).toFixed(2)}`;

async function main(): Promise<void> {
  const lab = new Lab("ulvm-bench-pvmove-");
  try {
    const a = join(lab.dir, "disks", "a.img");
    const b = join(lab.dir, "disks", "b.img");
    makeFile(a, LV_MIB + 4);
    makeFile(b, LV_MIB + 4);
    const conf = (rateKib: number): void => lab.writeConfig(`devices {\n\tscan = [ "${a}", "${b}" ]\n}\nactivation {\n\tdevice_path = 0\n\tmirror_resync_rate = ${rateKib}\n}\n`);
    conf(0);
    must(lab.ulvm("pvcreate", "-q", a, b), "pvcreate");
    must(lab.ulvm("vgcreate", "-q", VG, a, b), "vgcreate");
    must(lab.ulvm("lvcreate", "-q", "-an", "-Zn", "-L", `${LV_MIB}m`, "-n", "lv", VG, a), "lvcreate");
    const bytes = LV_MIB * MiB;
    let on = a;
    let off = b;
    const flip = (): void => void ([on, off] = [off, on]);

    const ratios = { offline: [] as number[], online: [] as number[], writes: [] as number[], rate: [] as number[] };
    for (const mode of ["offline", "online"] as const) {
      if (mode === "online") must(lab.ulvm("lvchange", "-ay", `${VG}/lv`), "lvchange -ay");
      for (let r = 0; r < REPS; r++) {
        warm([a, b]);
        const ddS = dd(on, off);
        spawnSync("sync");
        const m = await startMove(lab, on, off).done;
        flip();
        ratios[mode].push(ddS / m.totalS);
        console.log(`pvmove bench: ${mode} rep ${r + 1}/${REPS}: dd conv=fdatasync ${(bytes / ddS / 1e6).toFixed(0)} MB/s, pvmove ${(bytes / m.totalS / 1e6).toFixed(0)} MB/s (its copy phase between progress lines ${(bytes / m.copyS / 1e6).toFixed(0)} MB/s)`);
      }
    }

    // Client writes (the LV is active): without a move, then during one.
    for (let r = 0; r < REPS; r++) {
      const alone = fio(lab);
      const mv = startMove(lab, on, off);
      await mv.started;
      const t0 = now();
      const during = fio(lab);
      const t1 = now();
      const m = await mv.done;
      flip();
      const overlap = Math.max(0, Math.min(t1, m.end) - Math.max(t0, m.copyStart)) / (t1 - t0);
      ratios.writes.push(during / alone);
      console.log(`pvmove bench: writes rep ${r + 1}/${REPS}: fio 4k randwrite QD32 alone ${alone.toFixed(0)} IOPS, during a move ${during.toFixed(0)} IOPS` + (overlap < 0.99 ? ` (the move covered only ${(overlap * 100).toFixed(0)}% of fio's run: use a larger --gib)` : ""));
    }
    must(lab.ulvm("lvchange", "-an", `${VG}/lv`), "lvchange -an");

    // The throttle: an offline move (the command reads the setting itself).
    conf(RATE_MIBPS * 1024);
    for (let r = 0; r < REPS; r++) {
      const m = await startMove(lab, on, off).done;
      flip();
      const mibps = LV_MIB / m.copyS;
      ratios.rate.push(mibps / RATE_MIBPS);
      console.log(`pvmove bench: rate rep ${r + 1}/${REPS}: mirror_resync_rate ${RATE_MIBPS} MiB/s, measured ${mibps.toFixed(1)} MiB/s`);
    }
    console.log(`PVMOVE_OFFLINE_RATIO ${stats(ratios.offline.map((x) => x))}`);
    console.log(`PVMOVE_ONLINE_RATIO ${stats(ratios.online)}`);
    console.log(`PVMOVE_WRITES_RATIO ${stats(ratios.writes)}`);
    console.log(`PVMOVE_RATE_RATIO ${stats(ratios.rate)}`);
  } finally {
    lab.cleanup();
  }
}

await main();
