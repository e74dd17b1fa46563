import assert from "node:assert/strict";
import { DiffLab, RAIDCONV_ORACLE, type StepResult } from "./lv-diff.js";

/**
 * Assertions over a differential step: same exit code, same messages, then
 * (from the caller) the same layout. Messages are compared after lvm2's
 * activation-disabled noise is removed; lines that only lvm2 prints because
 * this machine cannot activate LVs are listed in `ignoreLvmOnly`.
 */
const LVM_ONLY = [/^ {2}WARNING: Logical volume \S+ not zeroed\.$/];

function lines(s: string, ignore: readonly RegExp[]): string[] {
  return s.split("\n").filter((l) => l.trim() !== "" && !ignore.some((re) => re.test(l)));
}

export function assertSameResult(r: StepResult, opts: { compareMessages?: boolean; ignoreLvmOnly?: RegExp[] } = {}): void {
  const what = `step: ${r.args.join(" ")}\n--- lvm2 (exit ${r.lvm.code}) ---\n${r.lvm.stdout}${r.lvm.stderr}\n--- ulvm (exit ${r.ulvm.code}) ---\n${r.ulvm.stdout}${r.ulvm.stderr}`;
  assert.equal(r.ulvm.code, r.lvm.code, `exit codes differ\n${what}`);
  if (opts.compareMessages === false) return;
  const ign = [...LVM_ONLY, ...(opts.ignoreLvmOnly ?? [])];
  // ulvm zeroes new LVs itself, so lvm2's "not zeroed" (activation disabled) has no ulvm counterpart,
  // unless ulvm prints it too (-an, -Zn, read-only): then both must print it.
  const uOut = lines(r.ulvm.stdout, []);
  const lOut = lines(r.lvm.stdout, []);
  assert.deepEqual(uOut, lOut, `stdout differs\n${what}`);
  const uErr = lines(r.ulvm.stderr, []);
  const lErr = lines(r.lvm.stderr, []).filter((l) => !ign.some((re) => re.test(l)) || uErr.includes(l));
  assert.deepEqual(uErr, lErr, `stderr differs\n${what}`);
}

export async function assertSameLayout(lab: DiffLab, vg: string, context: string): Promise<void> {
  const { lvm, ulvm } = await lab.layouts(vg);
  assert.equal(ulvm, lvm, `layouts differ after: ${context}\nhistory:\n${lab.log.join("\n")}`);
}

/** Run one command in both worlds and check everything. */
export async function same(lab: DiffLab, vg: string, args: string[], opts: { compareMessages?: boolean; ignoreLvmOnly?: RegExp[] } = {}): Promise<StepResult> {
  const r = lab.step(...args);
  try {
    assertSameResult(r, opts);
  } catch (e) {
    if (e instanceof Error) e.message += `\nhistory:\n${lab.log.join("\n")}`;
    throw e;
  }
  await assertSameLayout(lab, vg, args.join(" "));
  return r;
}

/**
 * Run `steps` with ulvm and the raid conversion oracle on disks of `sizes`
 * MiB (a VG "vg" on all of them), each step checked by same(); then Debian's
 * own lvm must accept the VG ulvm wrote (vgck).
 */
export async function sameWithRaidConvOracle(sizes: number[], steps: string[][], opts: { ulvmGlobal?: string } = {}): Promise<void> {
  const lab = new DiffLab(sizes, { oracle: true, oraclePath: RAIDCONV_ORACLE, ...opts });
  try {
    lab.setupVg("vg", lab.names);
    for (const s of steps) await same(lab, "vg", s);
    lab.syncDisks("u");
    const r = lab.l.lvm("vgck", "vg");
    assert.equal(r.code, 0, `vgck: ${r.stdout}${r.stderr}\nhistory:\n${lab.log.join("\n")}`);
  } finally {
    lab.cleanup();
  }
}
