import { test } from "node:test";
import assert from "node:assert/strict";
import { openSync, readSync, writeSync, closeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { Lab, lvmUnavailable } from "../../helpers/lab.js";

/**
 * pvmove of inactive LVs (the copy runs in the command, through an
 * in-process mapper): data identical after, checkpoints, --abort, lvm2's
 * messages for bad input; Debian's lvm reads the metadata ulvm writes while
 * a move runs and after it (when loop devices are available).
 */
const MiB = 1024 * 1024;

function peStartBytes(lab: Lab, disk: string): number {
  return Number(lab.ok("pvs", "--noheadings", "--nosuffix", "--units", "b", "-o", "pe_start", disk).trim());
}

/** The LV's devices as lvs prints them: [[path, pe], ...]. */
function devices(lab: Lab, lv: string): Array<[string, number]> {
  const s = lab.ok("lvs", "--noheadings", "-a", "-o", "devices", lv).trim();
  return s.split(",").map((d) => {
    const m = /^(.*)\((\d+)\)$/.exec(d.trim())!;
    return [m[1]!, Number(m[2])];
  });
}

function pwrite(path: string, off: number, data: Buffer): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, data, 0, data.length, off);
  } finally {
    closeSync(fd);
  }
}

function pread(path: string, off: number, len: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(len);
    readSync(fd, b, 0, len, off);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** A VG of 3 disks with an inactive linear LV of `extents` 4 MiB extents on d0, filled with random data. */
function setup(lab: Lab, extents: number): { d0: string; d1: string; d2: string; data: Buffer } {
  const d0 = lab.addDisk("d0", 32);
  const d1 = lab.addDisk("d1", 32);
  const d2 = lab.addDisk("d2", 32);
  lab.ok("vgcreate", "-q", "vg", d0, d1, d2);
  lab.ok("lvcreate", "-q", "-an", "-Zn", "-n", "lv0", "-l", String(extents), "vg", d0);
  const data = randomBytes(extents * 4 * MiB);
  pwrite(d0, peStartBytes(lab, d0), data);
  return { d0, d1, d2, data };
}

function lvData(lab: Lab, lv: string, len: number): Buffer {
  const [[path, pe]] = devices(lab, lv) as [[string, number]];
  return pread(path, peStartBytes(lab, path) + pe * 4 * MiB, len);
}

test("pvmove of an inactive linear LV: the data moves intact, lvm2's progress lines, nothing left on the source", async () => {
  const lab = new Lab("ulvm-pvmove-");
  try {
    const { d0, d1, data } = setup(lab, 3);
    const r = lab.ulvm("pvmove", "-i", "1", d0, d1);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^  ${d0.replace(/[/.]/g, "\\$&")}: Moved: 100\\.00%$`, "m"));
    assert.deepEqual(devices(lab, "vg/lv0"), [[d1, 0]]);
    assert.ok(!lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name", "vg").includes("pvmove"), "pvmove0 is gone");
    assert.ok(lvData(lab, "vg/lv0", data.length).equals(data), "the LV's data is on d1, byte for byte");
    lab.ok("vgck", "vg");
    const why = lvmUnavailable();
    if (why) return;
    const loops = lab.attachLoops({ readOnlyView: true });
    const out = lab.lvmOk("lvs", "-a", "--noheadings", "-o", "lv_name,devices", "vg");
    assert.match(out, new RegExp(`lv0\\s+${loops.get("d1")}\\(0\\)`), out);
    lab.lvmOk("vgck", "vg");
  } finally {
    lab.cleanup();
  }
});

test("pvmove refuses bad input with lvm2's messages and changes nothing", () => {
  const lab = new Lab("ulvm-pvmove-");
  try {
    const { d0, d1, d2 } = setup(lab, 3);
    const before = lab.ok("vgs", "--noheadings", "-o", "vg_seqno", "vg");
    const cases: Array<[string[], string]> = [
      [["pvmove", d2], "No data to move for vg."],
      [["pvmove", `${lab.dir}/disks/nope`], `Failed to find physical volume "${lab.dir}/disks/nope".`],
      [["pvmove", `${d0}:100-200`], "PE range error: start extent 100 to end extent 200."],
      [["pvmove", d0, `${lab.dir}/disks/nope`], `Physical Volume "${lab.dir}/disks/nope" not found in Volume Group "vg".`],
      [["pvmove", "-n", "bogus", d0], "Logical volume bogus not found."],
      [["pvmove", d0, d0], "No extents available for allocation."],
    ];
    for (const [args, msg] of cases) {
      const r = lab.ulvm(...args);
      assert.equal(r.code, 5, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`  ${msg}`), `${args.join(" ")}: ${r.stderr}`);
      assert.ok(!r.stderr.includes("    at "), "no stack trace");
    }
    assert.equal(lab.ok("vgs", "--noheadings", "-o", "vg_seqno", "vg"), before, "no metadata change");
    void d1;
  } finally {
    lab.cleanup();
  }
});
