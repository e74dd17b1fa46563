import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, which } from "../../helpers/lab.js";
import { ulvmAsync } from "../../helpers/run-async.js";
import { readLvFromPvs } from "../../helpers/lv-bytes.js";

/**
 * pvmove of mirror legs, mirror logs and raid1 images (lvm2's
 * pvmove-all-segtypes.sh and pvmove-raid-segtypes.sh): the leg or image on
 * the source PV goes under pvmove0 while its mirror or raid1 stays active and
 * in sync; a raid1 image moves with its rmeta; a leg never lands on a PV
 * that a sibling leg uses (lvm2 takes those PVs out of the candidates, so
 * the move fails as for want of space when no other PV is left).
 */
const MiB = 1024 * 1024;
const skip = which("nbdcopy") ? undefined : "nbdcopy not installed (libnbd-bin)";
const uri = (l: Lab, exp: string): string => `nbd+unix:///${exp}?socket=${join(l.dir, "run", "nbd.sock")}`;

function nbdWrite(l: Lab, lv: string, data: Buffer): void {
  const src = join(l.dir, `${lv}.src`);
  writeFileSync(src, data);
  const r = l.run("nbdcopy", [src, uri(l, `vg/${lv}`)]);
  assert.equal(r.code, 0, r.stderr);
}

function nbdRead(l: Lab, lv: string): Buffer {
  const out = join(l.dir, `${lv}.read`);
  const r = l.run("nbdcopy", [uri(l, `vg/${lv}`), out]);
  assert.equal(r.code, 0, r.stderr);
  return readFileSync(out);
}

/** Sub-LV name → its devices column, with the disks' paths shortened to their names. */
function devices(l: Lab): Map<string, string> {
  let out = l.ok("lvs", "-a", "--noheadings", "-o", "lv_name,devices", "vg");
  for (const [name, p] of l.disks) out = out.split(p).join(name);
  return new Map(out.trim().split("\n").map((r) => r.trim().split(/\s+/) as [string, string]));
}

test("pvmove of a mirror leg and a raid1 image (with its rmeta) while both are active and written: sync kept, data intact, legs identical on disk", { skip, timeout: 300_000 }, async () => {
  const l = new Lab("ulvm-pvmove-legs-");
  try {
    // Throttled so that the clients' writes below land while the legs are under pvmove0.
    l.writeConfig(`devices {\n\tscan = [ "${join(l.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 0\n\tmirror_resync_rate = 4096\n}\n`);
    const d = ["d0", "d1", "d2", "d3"].map((n) => l.addDisk(n, 64));
    l.ok("vgcreate", "-q", "vg", ...d);
    l.ok("lvcreate", "-q", "-an", "-Zn", "-m1", "-l", "4", "-n", "m", "vg", d[0]!, d[1]!, d[2]!);
    l.ok("lvcreate", "-q", "-an", "-Zn", "--type", "raid1", "-m1", "-l", "4", "-n", "r", "vg", d[0]!, d[1]!);
    l.ok("vgchange", "-ay", "vg");
    for (const lv of ["m", "r"]) {
      for (let i = 0; i < 300 && !/100\.00/.test(l.ok("lvs", "--noheadings", "-o", "copy_percent", `vg/${lv}`)); i++) await new Promise((r) => setTimeout(r, 100));
    }
    const want = { m: randomBytes(16 * MiB), r: randomBytes(16 * MiB) };
    for (const [lv, data] of Object.entries(want)) nbdWrite(l, lv, data);

    // No destination given: d1 and d2 hold m's sibling leg and log, d1 r's sibling image; only d3 is left.
    let mid: Map<string, string> | undefined;
    const move = await ulvmAsync(l, ["pvmove", "-i", "1", d[0]!], (out) => {
      if (mid || !/Moved: (?!100\.00)/.test(out)) return;
      mid = devices(l);
      // New writes while the legs sit on pvmove0: they must reach both sides of the move.
      want.m = randomBytes(16 * MiB);
      want.r = randomBytes(16 * MiB);
      nbdWrite(l, "m", want.m);
      nbdWrite(l, "r", want.r);
    });
    assert.equal(move.code, 0, move.stderr);
    assert.ok(mid, move.stdout);
    assert.equal(mid.get("[m_mimage_0]"), "pvmove0(0)");
    assert.equal(mid.get("[m_mimage_1]"), "d1(0)");
    // lvm2 moves rimage_0 and rmeta_0 both: each is an area on d0.
    assert.match(mid.get("[r_rimage_0]")!, /^pvmove0\(\d+\)$/);
    assert.match(mid.get("[r_rmeta_0]")!, /^pvmove0\(\d+\)$/);

    const after = devices(l);
    assert.equal(after.get("[m_mimage_0]"), "d3(0)");
    assert.equal(after.get("[m_mimage_1]"), "d1(0)");
    assert.equal(after.get("[m_mlog]"), "d2(0)");
    assert.match(after.get("[r_rimage_0]")!, /^d3\(\d+\)$/);
    assert.match(after.get("[r_rmeta_0]")!, /^d3\(\d+\)$/);
    assert.match(after.get("[r_rimage_1]")!, /^d1\(\d+\)$/);
    // Still in sync, healthy, no resync started by the move.
    const st = l.ok("lvs", "--noheadings", "-o", "lv_name,lv_attr,copy_percent,raid_sync_action,lv_health_status", "vg/m", "vg/r");
    assert.match(st, /^\s*m\s+mwi-a-m---\s+100\.00\s*$/m, st);
    assert.match(st, /^\s*r\s+rwi-a-r---\s+100\.00\s+idle\s*$/m, st);
    for (const [lv, data] of Object.entries(want)) assert.ok(nbdRead(l, lv).equals(data), `${lv} as clients read it`);

    // Then the mirror log off d2 (the only PV m does not use is d0, now empty).
    const log = l.ulvm("pvmove", "-i", "0", d[2]!);
    assert.equal(log.code, 0, log.stderr);
    assert.equal(devices(l).get("[m_mlog]"), "d0(0)");
    assert.match(l.ok("lvs", "--noheadings", "-o", "copy_percent", "vg/m"), /100\.00/);

    l.ok("vgchange", "-an", "vg");
    // Both legs of each hold the same bytes on their new disks, and they are what the clients wrote.
    assert.ok(readLvFromPvs(l, "vg/m_mimage_0").equals(want.m), "m's moved leg on d3");
    assert.ok(readLvFromPvs(l, "vg/m_mimage_1").equals(want.m), "m's other leg on d1");
    assert.ok(readLvFromPvs(l, "vg/r_rimage_0").equals(want.r), "r's moved image on d3");
    assert.ok(readLvFromPvs(l, "vg/r_rimage_1").equals(want.r), "r's other image on d1");
    l.ok("vgck", "vg");
  } finally {
    l.cleanup();
  }
});

test("pvmove refuses to put a leg or an image on a PV that a sibling uses: lvm2's free-space messages, nothing changed", () => {
  const l = new Lab("ulvm-pvmove-siblings-");
  try {
    const d = ["d0", "d1", "d2"].map((n) => l.addDisk(n, 64));
    l.ok("vgcreate", "-q", "vg", ...d);
    l.ok("lvcreate", "-q", "-an", "-Zn", "-m1", "-l", "4", "-n", "m", "vg", d[0]!, d[1]!, d[2]!);
    l.ok("lvcreate", "-q", "-an", "-Zn", "--type", "raid1", "-m1", "-l", "4", "-n", "r", "vg", d[0]!, d[1]!);
    const before = l.ok("vgs", "--noheadings", "-o", "vg_seqno", "vg");
    const cases: Array<[string[], RegExp]> = [
      // d1 has room, but it holds m's other leg and r's other image.
      [["pvmove", d[0]!, d[1]!], /^ {2}Insufficient free space: 9 extents needed, but only 0 available\n {2}Unable to allocate mirror extents for vg\/pvmove0\.\n {2}Failed to convert pvmove LV to mirrored\.\n$/],
      [["pvmove", "-n", "r", d[0]!, d[1]!], /^ {2}Insufficient free space: 5 extents needed, but only 0 available\n {2}Unable to allocate mirror extents for vg\/pvmove0\.\n {2}Failed to convert pvmove LV to mirrored\.\n$/],
      // The log's PV: d0 and d1 hold m's legs.
      [["pvmove", d[2]!, d[0]!], /^ {2}Insufficient free space: 1 extents needed, but only 0 available\n {2}Unable to allocate mirror extents for vg\/pvmove0\.\n {2}Failed to convert pvmove LV to mirrored\.\n$/],
    ];
    for (const [args, msg] of cases) {
      const r = l.ulvm(...args);
      assert.equal(r.code, 5, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, msg, `${args.join(" ")}: ${r.stderr}`);
    }
    assert.equal(l.ok("vgs", "--noheadings", "-o", "vg_seqno", "vg"), before, "no metadata change");
    assert.ok(!l.ok("lvs", "-a", "--noheadings", "-o", "lv_name", "vg").includes("pvmove"));
  } finally {
    l.cleanup();
  }
});
