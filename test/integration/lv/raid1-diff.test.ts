/**
 * raid1 LVs, differentially: lvcreate --type raid1 (and -m with
 * global/mirror_segtype_default = "raid1") run with the mirror oracle (lvm2
 * 2.03.16 allowed to lay out raid1 without device-mapper) and with ulvm on
 * disks of the same sizes; every step must give the same exit code, the same
 * messages and the same layout, seqno included (lvm2 commits once with the
 * rmeta LVs visible to wipe them, then again).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Lab, lvmUnavailable } from "../../helpers/lab.js";
import { DiffLab, raidOracleUnavailable } from "./lv-diff.js";
import { same } from "./diff-assert.js";

async function run(sizes: number[], steps: string[][], opts: { ulvmGlobal?: string } = {}): Promise<void> {
  const lab = new DiffLab(sizes, { oracle: true, ...opts });
  try {
    lab.setupVg("vg", lab.names);
    for (const s of steps) await same(lab, "vg", s);
  } finally {
    lab.cleanup();
  }
}

const CREATE: string[][] = [
  ["lvcreate", "--type", "raid1", "-m1", "-L", "8m", "-n", "r1", "vg"],
  ["lvcreate", "--type", "raid1", "-m2", "-l", "3", "-n", "r2", "vg"],
  ["lvcreate", "--type", "raid1", "-l", "2", "-n", "rdef", "vg"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "-R", "512k", "-n", "rr", "vg"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "-R", "64m", "-n", "rbig", "vg"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "--nosync", "-n", "rns", "vg"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "--minrecoveryrate", "100", "--maxrecoveryrate", "4m", "-n", "rrate", "vg"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "-n", "rpv", "vg", "%d3", "%d1"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "-n", "rpvr", "vg", "%d2:20-", "%d0"],
  ["lvcreate", "--type", "raid1", "-m3", "-l", "1", "-n", "r4", "vg"],
  ["lvcreate", "--type", "raid1", "-m1", "-L", "5m", "-n", "rround", "vg"],
  ["lvremove", "vg/r1_rimage_0"],
  ["lvremove", "vg/r1_rmeta_1"],
  ["lvremove", "-f", "vg/r2"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "4", "-n", "reuse", "vg"],
  ["lvremove", "-f", "vg"],
];

const ERRORS: string[][] = [
  ["lvcreate", "--type", "raid1", "-m2", "-l", "2", "-n", "three", "vg"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "-n", "one", "vg", "%d0"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "19", "-n", "toobig", "vg"],
  ["lvcreate", "--type", "raid1", "-m0", "-l", "2", "-n", "m0", "vg"],
  ["lvcreate", "--type", "raid1", "-m1", "-i", "2", "-l", "2", "-n", "str", "vg"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "--mirrorlog", "disk", "-n", "ml", "vg"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "-R", "3m", "-n", "r3", "vg"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "--minrecoveryrate", "200", "--maxrecoveryrate", "100", "-n", "rt", "vg"],
  ["lvcreate", "--type", "raid1", "-m65", "-l", "2", "-n", "many", "vg"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "-n", "ok", "vg"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "-n", "ok", "vg"],
  ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "-n", "ok_rimage_0", "vg"],
];

// lvextend grows every image (lvm2: "Extending 2 mirror images."), on its own PV where it can.
// (lvreduce of raid1 is left out: lvm2 asks dm-raid whether it can shrink, and without
// device-mapper it says "RAID module does not support shrinking."; ulvm's target can.)
const EXTEND: string[][] = [
  ["lvcreate", "--type", "raid1", "-m1", "-l", "3", "-n", "r", "vg", "%d0", "%d1"],
  ["lvcreate", "-l", "2", "-n", "lin", "vg", "%d0"],
  ["lvextend", "-l", "+2", "vg/r"],
  ["lvextend", "-L", "+8m", "vg/r", "%d2", "%d3"],
  ["lvextend", "-l", "+50%FREE", "vg/r"],
  ["lvcreate", "--type", "raid1", "-m2", "-l", "2", "-n", "r3", "vg"],
  ["lvextend", "-l", "+1", "-m2", "vg/r3"],
  ["lvextend", "-l", "+1", "-m1", "vg/r3"],
  ["lvextend", "-l", "+1000", "vg/r3"],
];

const raidSkip = raidOracleUnavailable();
test("lvextend of raid1: every image grows, beside its rmeta or on other PVs, as lvm2 allocates it", { skip: raidSkip }, () => run([64, 64, 64, 64], EXTEND));
test("lvcreate --type raid1: images, rmeta placement, -m2, -R, --nosync, recovery rates, PV lists", { skip: raidSkip }, () => run([64, 96, 128, 80], CREATE));
test("raid1 at its limits: too few PVs, too little space, options raid1 does not take", { skip: raidSkip }, () => run([81, 81], ERRORS));
test("-m1 makes raid1 when global/mirror_segtype_default is raid1", { skip: raidSkip }, () =>
  run([64, 64, 64], [["lvcreate", "-m1", "-l", "3", "-n", "dflt", "vg"], ["lvcreate", "-m2", "-L", "4m", "-n", "dflt2", "vg"]], { ulvmGlobal: '\tmirror_segtype_default = "raid1"\n' }));

test("Debian's lvm reads ulvm's raid1 metadata: lvs -a -o +devices and vgck", { skip: lvmUnavailable() }, () => {
  const lab = new Lab("ulvm-raid1-real-");
  try {
    for (const d of ["d0", "d1", "d2"]) lab.addDisk(d, 64);
    lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}" ]\n}\nglobal {\n\tactivation = 0\n}\n`);
    const disks = ["d0", "d1", "d2"].map((d) => lab.disk(d));
    lab.ok("pvcreate", "-y", ...disks);
    lab.ok("vgcreate", "vg", ...disks);
    lab.ok("lvcreate", "--type", "raid1", "-m2", "-l", "3", "-n", "r", "vg");
    lab.ok("lvcreate", "--type", "raid1", "-m1", "-l", "2", "--nosync", "-n", "n", "vg");
    const loops = lab.attachLoops({ readOnlyView: true });
    const out = lab.lvmOk("lvs", "-a", "--noheadings", "-o", "lv_name,segtype,devices", "vg").replace(/\s+/g, " ").trim();
    assert.match(out, /^n raid1 n_rimage_0\(0\),n_rimage_1\(0\) /);
    assert.ok(out.includes(`[r_rmeta_2] linear ${loops.get("d2")}(0)`), out);
    assert.ok(out.includes(`[r_rimage_2] linear ${loops.get("d2")}(1)`), out);
    assert.ok(out.includes(`[n_rimage_0] linear ${loops.get("d0")}(5)`), out);
    assert.equal(lab.lvm("vgck", "vg").code, 0);
  } finally {
    lab.cleanup();
  }
});

test("lvdisplay -m and lvs --reportformat json of a raid1 LV and its images, as lvm2 shows them", { skip: raidSkip }, () => {
  const lab = new DiffLab([64, 64, 64], { oracle: true });
  try {
    lab.setupVg("vg", lab.names);
    lab.step("lvcreate", "--type", "raid1", "-m2", "-l", "3", "--minrecoveryrate", "100", "-n", "r", "vg");
    // Each world made its own LVs: their UUIDs, creation times and device paths differ; lvm2
    // without device-mapper prints no "LV Status".
    const keep = (s: string): string =>
      s
        .split("\n")
        .filter((l) => !/LV (Path|UUID|Creation host|Status)/.test(l))
        .join("\n");
    for (const args of [["lvdisplay", "-m", "vg/r"], ["lvdisplay", "-a", "-m", "vg"], ["lvdisplay", "-c", "vg/r"],
      ["lvs", "-a", "--reportformat", "json", "-o", "lv_name,segtype,region_size,raid_min_recovery_rate,raid_max_recovery_rate,raid_write_behind,devices", "vg"]]) {
      const r = lab.step(...args);
      assert.equal(r.ulvm.code, r.lvm.code, args.join(" "));
      if (args[1] === "-c") {
        // lvdisplay -c: the fields past the name, VG and access (status and open count differ without dm).
        assert.equal(r.ulvm.stdout.split(":").slice(0, 3).join(":").replace(/\/.*\/vg/, "vg"), r.lvm.stdout.split(":").slice(0, 3).join(":").replace(/\/.*\/vg/, "vg"));
      } else assert.equal(keep(r.ulvm.stdout), keep(r.lvm.stdout), args.join(" "));
    }
  } finally {
    lab.cleanup();
  }
});
