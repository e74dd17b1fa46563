/**
 * lvconvert --repair (and later --replace, --splitmirrors, vgreduce
 * --removemissing) on raid1 LVs, differentially against the raid conversion
 * oracle (see raid1-convert-diff.test.ts). A PV is lost in both worlds by
 * zeroing its first MiB (label and metadata area). lvm2 repeats "Couldn't
 * find device with uuid" a varying number of times, also after a prompt on
 * the same line, and the UUIDs differ between the worlds: those warnings are
 * dropped and UUIDs masked before the messages are compared. Layouts (seqno
 * included) must be the same; Debian's real lvm then checks ulvm's VG.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, closeSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DiffLab, RAIDCONV_ORACLE, raidConvOracleUnavailable, type StepResult } from "./lv-diff.js";
import { assertSameLayout } from "./diff-assert.js";

const RAID1_DEFAULT = '\tmirror_segtype_default = "raid1"\n';
const UUID = /[A-Za-z0-9]{6}(-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}/g;

function norm(text: string): string[] {
  return text
    .replace(/ *WARNING: Couldn't find device with uuid \S+\./g, "")
    .replace(UUID, "UUID")
    .split("\n")
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== "" && !/WARNING: Logical volume \S+ not zeroed\./.test(l));
}

export type Step = string[] | ["LOSE", string] | ["IN", string] | ["POLICY", string];

/** Zero the first MiB of a disk in both worlds: its PV is missing from then on. */
export function lose(lab: DiffLab, disk: string): void {
  for (const l of [lab.l, lab.u]) {
    const fd = openSync(l.disk(disk), "r+");
    writeSync(fd, Buffer.alloc(1 << 20), 0, 1 << 20, 0);
    closeSync(fd);
  }
}

/** activation/raid_fault_policy in both worlds' config files (ulvm does not apply --config). */
export function setRaidFaultPolicy(lab: DiffLab, policy: string): void {
  const conf = join(lab.l.lvmDir, "lvm.conf");
  writeFileSync(conf, readFileSync(conf, "utf8").replace(/activation \{\n(\traid_fault_policy = "\w+"\n)?/, `activation {\n\traid_fault_policy = "${policy}"\n`));
  appendFileSync(join(lab.u.dir, "etc", "ulvm.conf"), `activation {\n\traid_fault_policy = "${policy}"\n}\n`);
}

export async function sameStep(lab: DiffLab, args: string[]): Promise<StepResult> {
  const r = lab.step(...args);
  const what = `step: ${args.join(" ")}\n--- lvm2 (exit ${r.lvm.code}) ---\n${r.lvm.stdout}${r.lvm.stderr}\n--- ulvm (exit ${r.ulvm.code}) ---\n${r.ulvm.stdout}${r.ulvm.stderr}\nhistory:\n${lab.log.join("\n")}`;
  assert.equal(r.ulvm.code, r.lvm.code, `exit codes differ\n${what}`);
  assert.deepEqual(norm(r.ulvm.stdout), norm(r.lvm.stdout), `stdout differs\n${what}`);
  assert.deepEqual(norm(r.ulvm.stderr), norm(r.lvm.stderr), `stderr differs\n${what}`);
  await assertSameLayout(lab, "vg", args.join(" "));
  return r;
}

export async function runSteps(sizes: number[], steps: Step[], vgck = true): Promise<void> {
  const lab = new DiffLab(sizes, { oracle: true, oraclePath: RAIDCONV_ORACLE, ulvmGlobal: RAID1_DEFAULT });
  try {
    lab.setupVg("vg", lab.names);
    for (const s of steps) {
      if (s[0] === "LOSE") lose(lab, s[1]!);
      else if (s[0] === "IN") lab.input = `${s[1]}\n`;
      else if (s[0] === "POLICY") setRaidFaultPolicy(lab, s[1]!);
      else await sameStep(lab, s);
    }
    if (vgck) {
      lab.syncDisks("u");
      // With PVs still missing vgck exits 5 ("The volume group is missing N physical volumes."): nothing else may be wrong.
      const r = lab.l.lvm("vgck", "vg");
      const rest = `${r.stdout}${r.stderr}`
        .split("\n")
        .filter((l) => l.trim() && !/Activation disabled|Couldn't find device with uuid|VG vg is missing PV|The volume group is missing \d+ physical volumes?\./.test(l));
      assert.deepEqual(rest, [], `vgck: ${r.stdout}${r.stderr}\nhistory:\n${lab.log.join("\n")}`);
      assert.ok(r.code === 0 || /The volume group is missing/.test(r.stderr), `vgck exit ${r.code}`);
    }
  } finally {
    lab.cleanup();
  }
}

const skip = raidConvOracleUnavailable();

test("lvconvert --repair on raid1: nothing to repair, prompts, --use-policies warn, PV lists, no space", { skip }, () =>
  runSteps(
    [64, 64, 64, 64],
    [
      ["lvcreate", "--type", "raid1", "-m1", "-l", "3", "-n", "r", "vg"],
      ["lvconvert", "-y", "--repair", "vg/r"],
      ["lvconvert", "--repair", "vg/r", "%d3"],
      ["LOSE", "d1"],
      ["lvconvert", "--repair", "--use-policies", "vg/r"],
      ["lvconvert", "--repair", "-y", "vg/r", "%d1"],
      ["lvconvert", "--repair", "-y", "vg/r", "%d0"],
      ["lvconvert", "--repair", "vg/r"],
      ["IN", "y"],
      ["lvconvert", "--repair", "vg/r", "%d3"],
      ["lvconvert", "--repair", "vg/r"],
    ],
  ));

test("lvconvert --repair on a 3-image raid1 with two PVs lost and room for one pair: one fewer replaced", { skip }, () =>
  runSteps(
    [64, 64, 64, 64],
    [
      ["lvcreate", "--type", "raid1", "-m2", "-l", "3", "-n", "r", "vg"],
      ["lvcreate", "-l", "2", "-n", "lin", "vg", "%d3"],
      ["LOSE", "d1"],
      ["LOSE", "d2"],
      ["lvconvert", "--repair", "-y", "vg/r"],
      ["lvconvert", "--repair", "-y", "vg/r"],
    ],
  ));

test("lvconvert --repair --use-policies with raid_fault_policy allocate (and replace), then nothing left to repair", { skip }, () =>
  runSteps(
    [64, 64, 64, 64, 64],
    [
      ["lvcreate", "--type", "raid1", "-m1", "-l", "4", "-n", "r", "vg"],
      ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "-n", "s", "vg", "%d2", "%d3"],
      ["LOSE", "d1"],
      ["POLICY", "allocate"],
      ["lvconvert", "--repair", "--use-policies", "vg/r"],
      ["POLICY", "replace"],
      ["lvconvert", "--repair", "--use-policies", "vg/r"],
    ],
  ));

test("vgreduce --removemissing [--force] with raid1 images on the lost PV: error-segment images, then lvconvert --repair replaces them", { skip }, () =>
  runSteps(
    [64, 64, 64, 64, 64],
    [
      ["lvcreate", "--type", "raid1", "-m2", "-l", "3", "-n", "r", "vg"],
      ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "-n", "s", "vg", "%d1", "%d2"],
      ["lvcreate", "-l", "1", "-n", "lin", "vg", "%d3"],
      ["LOSE", "d1"],
      ["vgreduce", "--removemissing", "vg"],
      ["vgreduce", "--removemissing", "--force", "vg"],
      ["lvconvert", "-y", "-m+1", "vg/s"],
      ["lvconvert", "-y", "--repair", "vg/s", "%d0"],
      ["lvconvert", "-y", "--repair", "vg/r"],
      ["lvconvert", "-y", "--repair", "vg/s"],
    ],
  ));

test("lvconvert --replace on raid1: refusals (not raid, no such devices, all images, no space), then replacements", { skip }, () =>
  runSteps(
    [64, 64, 64, 64],
    [
      ["lvcreate", "--type", "raid1", "-m1", "-l", "3", "-n", "r", "vg"],
      ["lvcreate", "-l", "1", "-n", "lin", "vg"],
      ["lvconvert", "--replace", "%d0", "vg/lin"],
      ["lvconvert", "--replace", "%d3", "vg/r"],
      ["lvconvert", "--replace", "%d0", "--replace", "%d1", "vg/r"],
      ["lvconvert", "--replace", "%d0", "vg/r", "%d1"],
      ["lvconvert", "--replace", "%d1", "vg/r"],
      ["lvconvert", "--replace", "%d0", "vg/r", "%d1"],
    ],
  ));
