import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Lab, lvmUnavailable, type RunResult } from "../../helpers/lab.js";
import { ulvmAsync } from "../../helpers/run-async.js";
import { readLvFromPvs, writeLvToPvs } from "../../helpers/lv-bytes.js";
import { DiffLab, layoutText, oracleUnavailable } from "./lv-diff.js";

/**
 * pvmove --atomic (lvm2's MIRROR_BY_SEGMENTED_LV): pvmove0 is one mirror over
 * pvmove0_mimage_0 (every source segment) and pvmove0_mimage_1 (the copy),
 * so the copy is one unit and --abort at any point leaves everything on the
 * source. The metadata is compared with what lvm2 itself writes (the mirror
 * oracle, lvm2 2.03.16 built without device-mapper: it commits pvmove0 and
 * stops there, "Interrupted: No longer active.").
 */
const MiB = 1024 * 1024;

/** ulvm's throttled config (the copy then takes seconds: a mid-move state can be read). */
const conf = (lab: Lab, rateKib: number): string => `devices {\n\tscan = [ "${lab.dir}/disks" ]\n}\nactivation {\n\tmirror_resync_rate = ${rateKib}\n}\n`;

/** lv0 (10 + 5 extents) with lv1 (5) between its two pieces, all on d0: 1 MiB extents. */
const LAYOUT: string[][] = [
  ["lvcreate", "-q", "-an", "-Zn", "-n", "lv0", "-l", "10", "vg", "%d0"],
  ["lvcreate", "-q", "-an", "-Zn", "-n", "lv1", "-l", "5", "vg", "%d0"],
  ["lvextend", "-q", "-l", "+5", "vg/lv0", "%d0"],
];

const segRows = (lab: Lab, names: Map<string, string>): string[] =>
  lab
    .ok("lvs", "-a", "--noheadings", "--segments", "-o", "lv_name,seg_pe_ranges", "vg")
    .trim()
    .split("\n")
    .map((l) => {
      let t = l.trim().replace(/\s+/g, " ");
      for (const [n, p] of names) t = t.split(p).join(n);
      return t;
    })
    .sort();

test("pvmove --atomic: pvmove0 and its two images as lvm2 writes them; the move completes, data intact", { skip: oracleUnavailable() }, async () => {
  const d = new DiffLab([64, 64, 64], { oracle: true });
  try {
    d.setupVg("vg", ["d0", "d1", "d2"], ["-s", "1m"]);
    for (const a of LAYOUT) {
      assert.equal(d.runLvm(a).code, 0);
      assert.equal(d.runUlvm(a).code, 0);
    }
    d.u.writeConfig(conf(d.u, 4096));
    const want = { lv0: randomBytes(15 * MiB), lv1: randomBytes(5 * MiB) };
    writeLvToPvs(d.u, "vg/lv0", want.lv0);
    writeLvToPvs(d.u, "vg/lv1", want.lv1);

    // lvm2 commits pvmove0 and stops (no device-mapper to copy with).
    const l = d.runLvm(["pvmove", "--atomic", "-i", "0", "%d0", "%d1"]);
    assert.equal(l.code, 0, l.stderr);
    const lvmLayout = layoutText(await d.readVg("l", "vg"));
    assert.match(lvmLayout, /lv pvmove0_mimage_1/, "the oracle built the segmented mirror");

    let mid: Promise<string> | undefined;
    const r = await ulvmAsync(d.u, ["pvmove", "--atomic", "-i", "1", d.dev("u", "d0"), d.dev("u", "d1")], (out) => {
      if (!mid && /Moved: /.test(out)) mid = d.readVg("u", "vg").then(layoutText);
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(mid, r.stdout);
    assert.equal(await mid, lvmLayout);

    // Done: everything on d1, no pvmove LV left, the data intact.
    const names = new Map([["d0", d.dev("u", "d0")], ["d1", d.dev("u", "d1")]]);
    assert.deepEqual(segRows(d.u, names), ["lv0 d1:0-14", "lv1 d1:15-19"]);
    assert.ok(readLvFromPvs(d.u, "vg/lv0").equals(want.lv0), "lv0 intact");
    assert.ok(readLvFromPvs(d.u, "vg/lv1").equals(want.lv1), "lv1 intact");
    d.u.ok("vgck", "vg");
  } finally {
    d.cleanup();
  }
});

test("pvmove --atomic --abort after part of the copy: everything back on the source, images gone, data intact", async () => {
  const lab = new Lab("ulvm-pvmove-atomic-");
  try {
    const d0 = lab.addDisk("d0", 64);
    const d1 = lab.addDisk("d1", 64);
    lab.writeConfig(conf(lab, 2048));
    lab.ok("vgcreate", "-q", "-s", "1m", "vg", d0, d1);
    for (const a of LAYOUT) lab.ok(...a.map((x) => (x === "%d0" ? d0 : x)));
    const want = { lv0: randomBytes(15 * MiB), lv1: randomBytes(5 * MiB) };
    writeLvToPvs(lab, "vg/lv0", want.lv0);
    writeLvToPvs(lab, "vg/lv1", want.lv1);
    const names = new Map([["d0", d0], ["d1", d1]]);
    const before = segRows(lab, names);

    const loops = lvmUnavailable() ? undefined : lab.attachLoops({ readOnlyView: true });
    let midLvm = "";
    let aborted: Promise<RunResult> | undefined;
    const move = ulvmAsync(lab, ["pvmove", "--atomic", "-i", "1", d0, d1], (out) => {
      // Past 20%: part of the one mirror is copied (no checkpoint comes before 100%).
      const last = [...out.matchAll(/Moved: (\d+\.\d\d)%/g)].pop();
      if (aborted || !last || Number(last[1]) < 20 || Number(last[1]) >= 100) return;
      if (loops) midLvm = lab.lvmOk("lvs", "-a", "--noheadings", "-o", "lv_name", "vg");
      aborted = ulvmAsync(lab, ["pvmove", "--abort", d0]);
    });
    const r = await move;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(aborted, `the move was seen past 20%: ${r.stdout}`);
    const a = await aborted;
    assert.equal(a.code, 0, a.stderr);
    // Debian's lvm2 read the mid-move metadata: the segmented mirror's images.
    if (loops) assert.match(midLvm, /\[pvmove0_mimage_1\]/, midLvm);

    assert.deepEqual(segRows(lab, names), before, "every extent where it was");
    assert.equal(lab.ok("pvs", "--noheadings", "-o", "pv_used", "--units", "m", "--nosuffix", d1).trim(), "0");
    assert.ok(!lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name", "vg").includes("pvmove"), "pvmove0 and its images are gone");
    assert.ok(readLvFromPvs(lab, "vg/lv0").equals(want.lv0), "lv0 intact");
    assert.ok(readLvFromPvs(lab, "vg/lv1").equals(want.lv1), "lv1 intact");
    lab.ok("vgck", "vg");
    if (loops) lab.lvmOk("vgck", "vg");
  } finally {
    lab.cleanup();
  }
});

test("allocation/pvmove_max_segment_size_mb: longer segments move in chunks (whole stripes), each checkpointed; the LVs merge back, data intact", async () => {
  const lab = new Lab("ulvm-pvmove-maxseg-");
  try {
    const d0 = lab.addDisk("d0", 64);
    const d1 = lab.addDisk("d1", 64);
    const d2 = lab.addDisk("d2", 64);
    // 3 MiB chunks of 1 MiB extents: a 2-stripe segment gets 2-extent chunks (one extent per stripe).
    lab.writeConfig(`${conf(lab, 4096)}allocation {\n\tpvmove_max_segment_size_mb = 3\n}\n`);
    lab.ok("vgcreate", "-q", "-s", "1m", "vg", d0, d1, d2);
    for (const a of LAYOUT) lab.ok(...a.map((x) => (x === "%d0" ? d0 : x)));
    lab.ok("lvcreate", "-q", "-an", "-Zn", "-n", "lv2", "-i", "2", "-I", "64k", "-l", "6", "vg", d0, d1);
    // lv2 (striped) is checked by its layout only: the LV-bytes helper reads linear LVs.
    const want = { lv0: randomBytes(15 * MiB), lv1: randomBytes(5 * MiB) };
    for (const [n, b] of Object.entries(want)) writeLvToPvs(lab, `vg/${n}`, b);

    let mid: string | undefined;
    const r = await ulvmAsync(lab, ["pvmove", "-i", "1", d0, d2], (out) => {
      if (mid === undefined && /Moved: /.test(out)) mid = lab.ok("lvs", "-a", "--segments", "--noheadings", "-o", "lv_name,seg_size_pe", "vg");
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(mid !== undefined, r.stdout);
    const sizes = mid
      .trim()
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .filter(([n]) => n === "[pvmove0]")
      .map(([, s]) => Number(s));
    // lv0: 10 = 3+3+3+1, then its +5 = 3+2; lv1: 5 = 3+2; lv2's d0 stripe (3 extents): 1+1+1.
    assert.deepEqual(sizes, [3, 3, 3, 1, 3, 2, 3, 2, 1, 1, 1], mid);
    // One progress step per checkpoint: a line below 100% was printed for more than one segment boundary.
    assert.ok(new Set([...r.stdout.matchAll(/Moved: (\d+\.\d\d)%/g)].map((m) => m[1])).size >= 3, r.stdout);

    const names = new Map([["d0", d0], ["d1", d1], ["d2", d2]]);
    const segs = segRows(lab, names);
    assert.deepEqual(segs, ["lv0 d2:0-14", "lv1 d2:15-19", "lv2 d2:20-22 d1:0-2"].sort(), segs.join("\n"));
    for (const [n, b] of Object.entries(want)) assert.ok(readLvFromPvs(lab, `vg/${n}`).equals(b), `${n} intact`);
    lab.ok("vgck", "vg");
  } finally {
    lab.cleanup();
  }
});
