import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Lab, loopUnavailable } from "../../helpers/lab.js";

/**
 * First run: no ulvm.conf at all. ulvm then does what lvm2 does with no
 * lvm.conf (scans the system's block devices) and also takes the devices and
 * image files named on its command line, remembering the files it made PVs in
 * $ULVM_SYSTEM_DIR/device-files for the commands that follow.
 */
function freshLab(): Lab {
  const lab = new Lab("ulvm-firstrun-");
  rmSync(join(lab.dir, "etc", "ulvm.conf"));
  return lab;
}

test("no ulvm.conf: pvcreate, vgcreate, lvcreate, lvs on image files named on the command line", () => {
  const lab = freshLab();
  try {
    lab.addDisk("a.img", 16);
    lab.addDisk("b.img", 16);
    // Relative names, as a user types them (the lab runs commands in its directory).
    assert.match(lab.ok("pvcreate", "./disks/a.img"), /Physical volume "\.\/disks\/a\.img" successfully created/);
    assert.match(lab.ok("vgcreate", "vgf", "./disks/a.img"), /Volume group "vgf" successfully created/);
    assert.match(lab.ok("pvs", "./disks/a.img"), /\.\/disks\/a\.img\s+vgf\s+lvm2/);
    // Later commands name no device: the remembered file is found.
    assert.match(lab.ok("lvcreate", "-an", "-Zn", "-L", "4m", "-n", "lv1", "vgf"), /Logical volume "lv1" created/);
    assert.match(lab.ok("lvs", "--noheadings", "-o", "lv_name,vg_name"), /lv1\s+vgf/);
    // vgcreate of a file that is not a PV yet makes it one, and remembers it too.
    lab.ok("vgcreate", "vgg", "./disks/b.img");
    const remembered = readFileSync(join(lab.dir, "etc", "device-files"), "utf8");
    assert.ok(remembered.includes(lab.disk("a.img")) && remembered.includes(lab.disk("b.img")), remembered);
    assert.match(lab.ok("vgs", "--noheadings", "-o", "vg_name"), /vgg/);
    // pvremove forgets it again.
    lab.ok("vgremove", "vgg");
    lab.ok("pvremove", "./disks/b.img");
    assert.ok(!readFileSync(join(lab.dir, "etc", "device-files"), "utf8").includes(lab.disk("b.img")));
    // No "Configuration file ... not found" anywhere.
    const r = lab.ulvm("vgs");
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /not found/);
  } finally {
    lab.cleanup();
  }
});

test("an explicit devices/scan keeps its meaning: a file outside it is rejected, not remembered", () => {
  const lab = new Lab("ulvm-firstrun-");
  try {
    lab.addDisk("in.img", 16);
    const outside = join(lab.dir, "outside.img");
    execFileSync("truncate", ["-s", "16M", outside]);
    const r = lab.ulvm("pvcreate", outside);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /rejected by filter config/);
    assert.ok(!existsSync(join(lab.dir, "etc", "device-files")));
  } finally {
    lab.cleanup();
  }
});

test("no ulvm.conf: a plain `ulvm pvs` finds a PV on a loop device", { skip: loopUnavailable() }, () => {
  const lab = freshLab();
  try {
    lab.addDisk("l.img", 16);
    lab.ok("pvcreate", "./disks/l.img");
    lab.ok("vgcreate", "vgloop", "./disks/l.img");
    const loop = lab.attachLoops().get("l.img")!;
    // attachLoops writes a config naming the loops: take it away again.
    rmSync(join(lab.dir, "etc", "ulvm.conf"));
    rmSync(join(lab.dir, "etc", "device-files"));
    const out = lab.ok("pvs", "--noheadings", "-o", "pv_name,vg_name");
    assert.match(out, new RegExp(`${loop}\\s+vgloop`));
  } finally {
    lab.cleanup();
  }
});
