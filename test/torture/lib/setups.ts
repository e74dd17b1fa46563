import { World, sleep, type WorldOptions } from "./world.js";
import { which } from "../../helpers/lab.js";
import type { RunResult } from "../../helpers/lab.js";
import type { ChildProcess } from "node:child_process";

/** Common set-ups and tools of the scenarios. */

export const VG = "vg";

/**
 * Three PVs: d1 and d2 for the legs, d3 for the log (and spare room).
 * Returns the world with the PVs in VG "vg"; nothing created yet.
 */
export function threeDiskWorld(prefix: string, legMiB: number, extra: Partial<WorldOptions> = {}): World {
  const w = new World({
    prefix,
    disks: [
      { name: "d1", sizeMiB: legMiB + 8 },
      { name: "d2", sizeMiB: legMiB + 8 },
      { name: "d3", sizeMiB: Math.max(16, legMiB + 8) },
    ],
    ...extra,
  });
  try {
    w.ok("pvcreate", "-q", ...w.disks);
    w.ok("vgcreate", "-q", VG, ...w.disks);
  } catch (e) {
    w.cleanup();
    throw e;
  }
  return w;
}

/** lvcreate -m1 with the legs on d1, d2 and the log on d3. */
export function createMirror(w: World, name: string, sizeMiB: number, regionKiB: number, opts: { activate?: boolean; nosync?: boolean } = {}): RunResult {
  const args = ["lvcreate", "-q", "-m1", "-L", `${sizeMiB}m`, "-R", `${regionKiB}k`, "-n", name];
  if (opts.nosync) args.push("--nosync");
  if (opts.activate === false) args.push("-an", "-Zn");
  args.push(VG, w.disk("d1"), w.disk("d2"), w.disk("d3"));
  const r = w.ulvm(...args);
  if (r.code !== 0) throw new Error(`lvcreate exited ${r.code}: ${r.stderr}`);
  return r;
}

/** lvcreate --type raid1 -m1: image and rmeta 0 on d1, image and rmeta 1 on d2. */
export function createRaid1(w: World, name: string, sizeMiB: number, regionKiB: number, opts: { activate?: boolean; nosync?: boolean; maxRecoveryRate?: string } = {}): RunResult {
  const args = ["lvcreate", "-q", "--type", "raid1", "-m1", "-L", `${sizeMiB}m`, "-R", `${regionKiB}k`, "-n", name];
  if (opts.nosync) args.push("--nosync");
  if (opts.maxRecoveryRate) args.push("--maxrecoveryrate", opts.maxRecoveryRate);
  if (opts.activate === false) args.push("-an", "-Zn");
  args.push(VG, w.disk("d1"), w.disk("d2"));
  const r = w.ulvm(...args);
  if (r.code !== 0) throw new Error(`lvcreate --type raid1 exited ${r.code}: ${r.stderr}`);
  return r;
}

export const fioMissing = (): string | undefined => (which("fio") ? undefined : "fio not installed (apt-get install fio)");

export interface FioRun {
  child: ChildProcess;
  done: Promise<RunResult>;
}

/**
 * fio's nbd engine against an export: random writes of 4..64 KiB with
 * verify=crc32c, a flush every `fsync` writes, and verify_backlog so that
 * data is read back and checked while writing. `runtimeS` > 0 makes it time
 * based (it is usually ended by the scenario).
 */
export function startFio(w: World, exportName: string, o: { offsetBytes: number; sizeBytes: number; runtimeS: number; iodepth?: number; fsync?: number; seed: number; verifyOnly?: boolean }): FioRun {
  const args = [
    "--name=torture",
    "--ioengine=nbd",
    `--uri=${w.uri(exportName)}`,
    "--rw=randwrite",
    "--bsrange=4k-64k",
    `--iodepth=${o.iodepth ?? 8}`,
    `--offset=${o.offsetBytes}`,
    `--size=${o.sizeBytes}`,
    "--verify=crc32c",
    "--verify_fatal=1",
    "--verify_backlog=32",
    `--fsync=${o.fsync ?? 16}`,
    `--randseed=${o.seed}`,
    "--output-format=terse",
  ];
  if (o.runtimeS > 0) args.push("--time_based", `--runtime=${o.runtimeS}`);
  return w.runAsync("fio", args);
}

/** Lines of fio's output that report corrupt data (as opposed to a lost connection). */
export function fioVerifyErrors(r: RunResult): string | undefined {
  const m = /(verify: bad|bad magic|crc32c: verify failed|verify failed|bad header)/i.exec(r.stderr + r.stdout);
  return m ? (r.stderr + r.stdout).slice(Math.max(0, m.index - 300), m.index + 500) : undefined;
}

/** Kill a child if it is still running after `graceMs`, and wait for it. */
export async function reap(run: { child: ChildProcess; done: Promise<RunResult> }, graceMs = 3000): Promise<RunResult> {
  const t = setTimeout(() => run.child.kill("SIGKILL"), graceMs);
  const r = await run.done;
  clearTimeout(t);
  return r;
}

export { sleep };
