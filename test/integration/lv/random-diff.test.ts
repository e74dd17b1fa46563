/**
 * Seeded random command sequences, run with lvm2 and with ulvm on identical
 * disks: after every step the exit codes, the messages and the layouts must
 * be the same. The sequences mix creates (linear, striped, %FREE/%VG/%PVS,
 * PV lists with ranges, every allocation policy), extends, reduces, renames
 * and removes, which fragments the free space the allocator works with.
 * With the mirror oracle (build-lvm-oracle.sh) mirrors join in.
 *
 * ULVM_LV_DIFF_SEEDS=N runs N seeds per test (default 12 and 8),
 * ULVM_LV_DIFF_STEPS=N makes each sequence N commands long (default 20).
 */
import { test } from "node:test";
import { lvmUnavailable } from "../../helpers/lab.js";
import { DiffLab, between, oracleUnavailable, pick, rng } from "./lv-diff.js";
import { same } from "./diff-assert.js";

const SEEDS = Number(process.env.ULVM_LV_DIFF_SEEDS ?? 0);
const STEPS = Number(process.env.ULVM_LV_DIFF_STEPS ?? 20);
/** ULVM_LV_DIFF_SEED=N runs just that seed (to replay a failure). */
const ONLY = process.env.ULVM_LV_DIFF_SEED ? Number(process.env.ULVM_LV_DIFF_SEED) : undefined;
const seedsFrom = (first: number, n: number): number[] => (ONLY !== undefined ? [ONLY] : Array.from({ length: n }, (_, i) => first + i));

interface Gen {
  r: () => number;
  disks: string[];
  mirrors: boolean;
}

function pvArgs(g: Gen): string[] {
  const n = between(g.r, 1, Math.min(3, g.disks.length));
  const ds = [...g.disks].sort(() => g.r() - 0.5).slice(0, n);
  return ds.map((d) => {
    const u = g.r();
    if (u < 0.6) return `%${d}`;
    const a = between(g.r, 0, 12);
    if (u < 0.8) return `%${d}:${a}-${a + between(g.r, 0, 10)}`;
    if (u < 0.9) return `%${d}:${a}-`;
    return `%${d}:${a}+${between(g.r, 1, 6)}`;
  });
}

function sizeArgs(g: Gen, extend: boolean): string[] {
  const u = g.r();
  const sign = extend ? "+" : "";
  if (u < 0.55) return ["-l", `${sign}${between(g.r, 1, 12)}`];
  if (u < 0.75) return ["-L", `${sign}${between(g.r, 1, 30)}m`];
  if (u < 0.85) return ["-l", `${sign}${pick(g.r, [5, 10, 25, 50])}%FREE`];
  if (u < 0.92) return ["-l", `${extend ? "+" : ""}${pick(g.r, [5, 10, 20])}%VG`];
  return ["-l", `${sign}${pick(g.r, [10, 30, 100])}%PVS`];
}

function policyArgs(g: Gen): string[] {
  const u = g.r();
  if (u < 0.7) return [];
  if (u < 0.78) return ["-C", "y"];
  return ["--alloc", pick(g.r, ["contiguous", "cling", "normal", "anywhere", "inherit"])];
}

async function lvNames(lab: DiffLab): Promise<string[]> {
  const vg = await lab.readVg("l", "vg");
  return (vg?.lvs ?? []).filter((l) => l.status.includes("VISIBLE")).map((l) => l.name);
}

async function nextCommand(g: Gen, lab: DiffLab, n: number): Promise<string[]> {
  const lvs = await lvNames(lab);
  const u = g.r();
  const anyLv = (): string => (lvs.length && g.r() < 0.95 ? pick(g.r, lvs) : "nosuch");
  if (!lvs.length || u < 0.4) {
    const args = ["lvcreate", ...sizeArgs(g, false)];
    if (g.r() < 0.7) args.push("-n", `lv${n}`);
    if (g.mirrors && g.r() < 0.35) {
      args.push("--type", "mirror", "-m", String(between(g.r, 1, 2)));
      if (g.r() < 0.2) args.push("--mirrorlog", "core");
      if (g.r() < 0.15) args.push("-i", "2");
      if (g.r() < 0.1) args.push("--nosync");
    } else if (g.r() < 0.3) {
      args.push("-i", String(between(g.r, 2, 4)));
      if (g.r() < 0.5) args.push("-I", pick(g.r, ["4k", "8k", "64k", "256k"]));
    }
    args.push(...policyArgs(g), "vg");
    if (g.r() < 0.35) args.push(...pvArgs(g));
    return args;
  }
  if (u < 0.65) {
    const args = ["lvextend", ...sizeArgs(g, true), ...policyArgs(g).filter((a) => a !== "-C" && a !== "y")];
    if (g.r() < 0.1) args.push("-i", String(between(g.r, 1, 3)));
    args.push(`vg/${anyLv()}`);
    if (g.r() < 0.35) args.push(...pvArgs(g));
    return args;
  }
  if (u < 0.78) {
    const lv = anyLv();
    if (g.r() < 0.5) return ["lvreduce", "-f", "-l", `-${between(g.r, 1, 6)}`, `vg/${lv}`];
    return ["lvresize", "-l", String(between(g.r, 1, 25)), `vg/${lv}`];
  }
  if (u < 0.86) return ["lvrename", "vg", anyLv(), `r${n}`];
  return ["lvremove", "-f", `vg/${anyLv()}`];
}

async function runSeed(seed: number, mirrors: boolean, steps: number): Promise<void> {
  const r = rng(seed);
  const nDisks = between(r, 3, 6);
  const sizes = Array.from({ length: nDisks }, () => between(r, 24, 160));
  const lab = new DiffLab(sizes, { oracle: mirrors });
  try {
    const g: Gen = { r, disks: lab.names, mirrors };
    const extra = r() < 0.5 ? ["-s", pick(r, ["1m", "2m", "4m"])] : [];
    if (r() < 0.15) extra.push("--alloc", pick(r, ["contiguous", "cling", "anywhere"]));
    lab.setupVg("vg", lab.names, extra);
    lab.log.push(`# seed ${seed}: disks ${sizes.join(",")} MiB, vgcreate ${extra.join(" ")}`);
    for (let i = 0; i < steps; i++) {
      const cmd = await nextCommand(g, lab, i);
      await same(lab, "vg", cmd);
    }
  } finally {
    lab.cleanup();
  }
}

test("random linear/striped sequences match lvm2 step by step", { skip: lvmUnavailable() }, async (t) => {
  for (const seed of seedsFrom(1, SEEDS || 12)) await t.test(`seed ${seed}`, () => runSeed(seed, false, STEPS));
});

test("random sequences with mirrors match lvm2's allocator (mirror oracle)", { skip: oracleUnavailable() }, async (t) => {
  for (const seed of seedsFrom(1001, SEEDS || 8)) await t.test(`seed ${seed}`, () => runSeed(seed, true, STEPS));
});
