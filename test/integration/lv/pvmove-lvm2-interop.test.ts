import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { Lab, loopUnavailable, lvmUnavailable } from "../../helpers/lab.js";
import { ulvmAsync } from "../../helpers/run-async.js";
import { readLvFromPvs, writeLvToPvs } from "../../helpers/lv-bytes.js";
import { lv0SplitByLv1 } from "../../helpers/pvmove-layout.js";
import { backupBody } from "../../helpers/metadata-backup.js";

/**
 * pvmove between ulvm and Debian's lvm2 on the same disks (loop devices).
 *
 * lvm2 without device-mapper (activation disabled, as everywhere in these
 * tests) still begins a move: it commits pvmove0 and the LOCKED LVs, then
 * stops ("Interrupted: No longer active"). So a move that lvm2 began is real
 * lvm2 metadata, and ulvm must resume it or abort it. The other direction,
 * lvm2 resuming or aborting a move ulvm began, needs device-mapper: lvm2
 * only polls pvmove LVs that are active, and here it prints "Skipping
 * inactive LV". In its place, the metadata ulvm commits when it begins a
 * move is compared with lvm2's for the same VG and the same command: equal
 * byte for byte but for the new LV's random id and the timestamps, so lvm2
 * would take ulvm's move for its own.
 */
const MiB = 1024 * 1024;
const skip = loopUnavailable() ?? lvmUnavailable();

/**
 * d0 holds lv0 in two pieces with lv1 between them (pvmove0 gets three
 * segments); d1 is empty. Throttled (16 KiB/s) so that a move ulvm begins
 * stays at its start. Returns the data written to each LV and the loops.
 */
function setup(lab: Lab): { want: Record<string, Buffer>; loops: Map<string, string> } {
  const d0 = lab.addDisk("d0", 64);
  const d1 = lab.addDisk("d1", 64);
  lab.ok("vgcreate", "-q", "vg", d0, d1);
  lv0SplitByLv1(lab, d0);
  const want = { lv0: randomBytes(32 * MiB), lv1: randomBytes(8 * MiB) };
  writeLvToPvs(lab, "vg/lv0", want.lv0);
  writeLvToPvs(lab, "vg/lv1", want.lv1);
  const loops = lab.attachLoops();
  lab.writeConfig(`devices {\n\tscan = [ ${[...loops.values()].map((l) => `"${l}"`).join(", ")} ]\n}\nactivation {\n\tmirror_resync_rate = 16\n}\n`);
  return { want, loops };
}

/** lvm2 begins the move d0 → d1 and stops at once (no device-mapper). */
function lvm2Begins(lab: Lab, loops: Map<string, string>): void {
  const r = lab.lvm("pvmove", "-i", "1", loops.get("d0")!, loops.get("d1")!);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /Interrupted: No longer active/);
  assert.match(lab.lvmOk("lvs", "-a", "--noheadings", "-o", "lv_name", "vg"), /\[pvmove0\]/);
}

function segments(lab: Lab): string[] {
  return lab
    .ok("lvs", "--noheadings", "--segments", "-o", "lv_name,seg_pe_ranges", "vg")
    .trim()
    .split("\n")
    .map((l) => l.trim().replace(/\s+/g, " "))
    .sort();
}

function assertIntact(lab: Lab, want: Record<string, Buffer>): void {
  for (const [lv, data] of Object.entries(want)) assert.ok(readLvFromPvs(lab, `vg/${lv}`).equals(data), `${lv} intact`);
}

test("a move lvm2 began: ulvm resumes it to the end; data intact, lvm2 reads the result", { skip }, () => {
  const lab = new Lab("ulvm-pvmove-interop-");
  try {
    const { want, loops } = setup(lab);
    lab.writeConfig(`devices {\n\tscan = [ ${[...loops.values()].map((l) => `"${l}"`).join(", ")} ]\n}\n`);
    lvm2Begins(lab, loops);
    const r = lab.ulvm("pvmove", "-i", "0");
    assert.equal(r.code, 0, r.stderr);
    const d1 = loops.get("d1")!;
    assert.deepEqual(segments(lab), [`lv0 ${d1}:0-7`, `lv1 ${d1}:8-9`]);
    assertIntact(lab, want);
    lab.lvmOk("vgck", "vg");
    assert.doesNotMatch(lab.lvmOk("lvs", "-a", "--noheadings", "-o", "lv_name,lv_attr", "vg"), /pvmove|I/);
  } finally {
    lab.cleanup();
  }
});

test("a move lvm2 began: ulvm --abort puts every LV back on the source; data intact, lvm2 reads the result", { skip }, () => {
  const lab = new Lab("ulvm-pvmove-interop-");
  try {
    const { want, loops } = setup(lab);
    lvm2Begins(lab, loops);
    const r = lab.ulvm("pvmove", "--abort");
    assert.equal(r.code, 0, r.stderr);
    const d0 = loops.get("d0")!;
    assert.deepEqual(segments(lab), [`lv0 ${d0}:0-3`, `lv0 ${d0}:6-9`, `lv1 ${d0}:4-5`].sort());
    assertIntact(lab, want);
    lab.lvmOk("vgck", "vg");
    assert.doesNotMatch(lab.lvmOk("lvs", "-a", "--noheadings", "-o", "lv_name", "vg"), /pvmove/);
  } finally {
    lab.cleanup();
  }
});

test("the metadata ulvm commits to begin a move is lvm2's, byte for byte but the new LV's id and the times", { skip }, async () => {
  const lab = new Lab("ulvm-pvmove-interop-");
  try {
    const { loops } = setup(lab);
    const [d0, d1] = [lab.disk("d0"), lab.disk("d1")];
    copyFileSync(d0, `${d0}.before`);
    copyFileSync(d1, `${d1}.before`);
    lvm2Begins(lab, loops);
    lab.lvmOk("vgcfgbackup", "-f", `${lab.dir}/lvm2.vg`, "vg");

    // The same disks as before lvm2's move (the loops see the files), and ulvm's own start, stopped by kill -9 at its first progress line.
    copyFileSync(`${d0}.before`, d0);
    copyFileSync(`${d1}.before`, d1);
    const move = ulvmAsync(lab, ["pvmove", "-i", "1", loops.get("d0")!, loops.get("d1")!], (out) => {
      if (/Moved:/.test(out)) lab.run("pkill", ["-KILL", "-f", `pvmove -i 1 ${loops.get("d0")!}`]);
    });
    await move;
    lab.ok("vgcfgbackup", "-f", `${lab.dir}/ulvm.vg`, "vg");

    // The file's header and the command that wrote it go (backupBody); the new LV's creation time and host are each tool's own.
    const normalise = (text: string): string =>
      backupBody(text)
        .split("\n")
        .map((l) => l.replace(/^(\s*creation_time = )\d+.*$/, "$1T").replace(/^(\s*creation_host = ).*$/, "$1H"))
        .join("\n");
    const lvm2Text = normalise(readFileSync(`${lab.dir}/lvm2.vg`, "utf8"));
    const ulvmText = normalise(readFileSync(`${lab.dir}/ulvm.vg`, "utf8"));
    // pvmove0's id is random in both.
    const pvmoveId = (t: string): string => /pvmove0 \{\n\s*id = "([^"]+)"/.exec(t)?.[1] ?? "";
    assert.notEqual(pvmoveId(lvm2Text), "", lvm2Text);
    assert.equal(ulvmText.replace(pvmoveId(ulvmText), "ID"), lvm2Text.replace(pvmoveId(lvm2Text), "ID"));
  } finally {
    lab.cleanup();
  }
});
