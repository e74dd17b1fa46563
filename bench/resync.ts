/**
 * Resync benchmark (issue 4, "Speed"): the initial sync of a ulvm mirror,
 * against a plain sequential copy of the same size, in the same run.
 *
 * Layout: three non-sparse files in a fresh directory under /var/tmp: src
 * and dst of N GiB + 4 MiB each, and a small log PV. A linear LV of N GiB
 * on src is activated (the daemon starts). Each repetition then
 *   1. plain copy: `dd bs=1M` of the LV's N GiB from src to dst, at the
 *      offsets the mirror will use (page cache, no sync; neither side syncs);
 *   2. resync: `lvconvert -m1 -b VG/LV dst log`, with the daemon's status
 *      polled every 10 ms over the control socket meanwhile: the copy phase
 *      runs from the first status that shows the two-leg mirror until every
 *      region is in sync (the ratio's figure); the time from the command's
 *      start to 100% (metadata commit, log reset and reload included) is
 *      printed beside it;
 *   3. `lvconvert -m0` drops the new leg again.
 * The page cache is warmed (both files read) before each repetition.
 * Prints MB/s (10^6 bytes/s) of both, median over the repetitions, and the
 * ratio resync / plain copy (median of the per-repetition ratios).
 *
 *   node dist/bench/resync.js [--gib N=1] [--reps R=3]
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { Lab, ULVM_BIN } from "../test/helpers/lab.js";
import { DaemonClient } from "../src/daemon/control-client.js";
import type { ActiveLvStatus } from "../src/daemon/protocol.js";
import { makeFile, median } from "./bench-files.js";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const GIB = opt("gib", 1);
const REPS = opt("reps", 3);
const MiB = 1 << 20;
const LV_MIB = GIB * 1024;
const PE_START_MIB = 1; // ulvm's pvcreate default (as lvm2's): data starts at 1 MiB



function must(r: { code: number; stdout: string; stderr: string }, what: string): string {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/**
 * Run `lvconvert -m1 -b` and poll the daemon's status every 10 ms meanwhile.
 * Returns the seconds from the command's start, and from the first status
 * showing the two-leg mirror (the copy running), until every region is in sync.
 */
async function convertAndWait(lab: Lab, vg: string, lv: string, args: string[]): Promise<{ totalS: number; copyS: number }> {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [ULVM_BIN, "lvconvert", ...args], { env: lab.env, cwd: lab.dir, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 128)));
  const paths = { systemDir: lab.env.ULVM_SYSTEM_DIR!, runDir: lab.env.ULVM_RUN_DIR!, devDir: lab.env.ULVM_DEV_DIR! };
  const client = await DaemonClient.tryConnect(paths);
  if (client === undefined) throw new Error("daemon not reachable");
  let copyStart: bigint | undefined;
  try {
    for (;;) {
      const { lvs } = await client.request<{ lvs: ActiveLvStatus[] }>({ op: "status" });
      const s = lvs.find((l) => l.vg === vg && l.lv === lv)?.devices.at(-1)?.sync;
      if (s !== undefined && s.legHealth.length >= 2) {
        copyStart ??= process.hrtime.bigint();
        if (s.insyncRegions === s.totalRegions) break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    client.close();
  }
  const t1 = process.hrtime.bigint();
  const code = await exited;
  if (code !== 0) throw new Error(`lvconvert ${args.join(" ")} exited ${code}\n${stderr}`);
  return { totalS: Number(t1 - t0) / 1e9, copyS: Number(t1 - copyStart!) / 1e9 };
}

async function main(): Promise<void> {
  const lab = new Lab("ulvm-bench-resync-");
  try {
    const src = join(lab.dir, "disks", "src.img");
    const dst = join(lab.dir, "disks", "dst.img");
    const log = join(lab.dir, "disks", "log.img");
    makeFile(src, LV_MIB + 4);
    makeFile(dst, LV_MIB + 4);
    makeFile(log, 8);
    lab.writeConfig(`devices {\n\tscan = [ "${src}", "${dst}", "${log}" ]\n}\nactivation {\n\tdevice_path = 0\n}\n`);
    must(lab.ulvm("pvcreate", "-q", src, dst, log), "pvcreate");
    must(lab.ulvm("vgcreate", "-q", "rsvg", src, dst, log), "vgcreate");
    must(lab.ulvm("lvcreate", "-q", "-an", "-L", `${LV_MIB}m`, "-n", "lv", "rsvg", src), "lvcreate");
    must(lab.ulvm("lvchange", "-ay", "rsvg/lv"), "lvchange -ay");
    const copyMBps: number[] = [];
    const resyncMBps: number[] = [];
    const totalMBps: number[] = [];
    const ratios: number[] = [];
    const bytes = LV_MIB * MiB;
    for (let r = 0; r < REPS; r++) {
      for (const f of [src, dst]) execFileSync("cat", [f], { stdio: ["ignore", "ignore", "inherit"] });
      spawnSync("sync");
      let t0 = process.hrtime.bigint();
      execFileSync("dd", [`if=${src}`, `of=${dst}`, "bs=1M", `count=${LV_MIB}`, `skip=${PE_START_MIB}`, `seek=${PE_START_MIB}`, "conv=notrunc", "status=none"]);
      const copyS = Number(process.hrtime.bigint() - t0) / 1e9;
      spawnSync("sync");
      const { totalS, copyS: resyncS } = await convertAndWait(lab, "rsvg", "lv", ["-m1", "-b", "rsvg/lv", dst, log]);
      must(lab.ulvm("lvconvert", "-y", "-m0", "rsvg/lv"), "lvconvert -m0");
      copyMBps.push(bytes / copyS / 1e6);
      resyncMBps.push(bytes / resyncS / 1e6);
      totalMBps.push(bytes / totalS / 1e6);
      ratios.push(copyS / resyncS);
      console.log(
        `resync bench: rep ${r + 1}/${REPS}: plain copy ${(bytes / copyS / 1e6).toFixed(0)} MB/s, resync ${(bytes / resyncS / 1e6).toFixed(0)} MB/s` +
          ` (lvconvert to 100%: ${(bytes / totalS / 1e6).toFixed(0)} MB/s)`,
      );
    }
    const lo = Math.min(...ratios);
    const hi = Math.max(...ratios);
    console.log(`resync bench: ${GIB} GiB, ${REPS} repetitions, MB/s (median)`);
    console.log(`${"copy".padEnd(34)} ${"MB/s".padStart(8)}`);
    console.log(`${"plain copy (dd bs=1M, page cache)".padEnd(34)} ${median(copyMBps).toFixed(0).padStart(8)}`);
    console.log(`${"mirror resync (copy phase)".padEnd(34)} ${median(resyncMBps).toFixed(0).padStart(8)}`);
    console.log(`${"lvconvert -m1, start to 100%".padEnd(34)} ${median(totalMBps).toFixed(0).padStart(8)}`);
    console.log(`RESYNC_RATIO ${median(ratios).toFixed(2)} ${lo.toFixed(2)} ${hi.toFixed(2)}`);
  } finally {
    lab.cleanup();
  }
}

await main();
