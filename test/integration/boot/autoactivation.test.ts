import { test } from "node:test";
import assert from "node:assert/strict";
import { Lab, lvmUnavailable } from "../../helpers/lab.js";

/**
 * Autoactivation (vgchange -aay, what ulvm-activate.service runs at boot):
 * the NOAUTOACTIVATE flag of a VG or LV, and activation/auto_activation_volume_list.
 */
function activeLvs(lab: Lab): string[] {
  return lab
    .ok("lvs", "--noheadings", "-o", "vg_name,lv_name,lv_active")
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((w) => w[2] === "active")
    .map((w) => `${w[0]}/${w[1]}`)
    .sort();
}

function setup(lab: Lab): void {
  for (const d of ["a", "b"]) lab.addDisk(d, 16);
  lab.ok("vgcreate", "vga", lab.disk("a"));
  lab.ok("vgcreate", "--setautoactivation", "n", "vgb", lab.disk("b"));
  for (const [vg, lv] of [["vga", "l1"], ["vga", "l2"], ["vga", "l3"], ["vgb", "m1"]]) lab.ok("lvcreate", "-an", "-Zn", "-L", "4m", "-n", lv!, vg!);
  lab.ok("lvchange", "--setautoactivation", "n", "vga/l2");
  lab.ok("lvchange", "--addtag", "boot", "vga/l3");
}

test("vgchange -aay skips a NOAUTOACTIVATE VG and LV; -ay does not", () => {
  const lab = new Lab("ulvm-aay-");
  try {
    setup(lab);
    assert.match(lab.ok("vgchange", "-aay"), /2 logical volume\(s\) in volume group "vga" now active/);
    assert.deepEqual(activeLvs(lab), ["vga/l1", "vga/l3"]);
    lab.ok("vgchange", "-an");
    lab.ok("vgchange", "-ay", "vgb");
    assert.deepEqual(activeLvs(lab), ["vgb/m1"]);
    lab.ok("vgchange", "-an");
    // lvchange -aay follows the same rules; --setautoactivation y clears the flag.
    lab.ok("lvchange", "-aay", "vga/l2");
    assert.deepEqual(activeLvs(lab), []);
    lab.ok("lvchange", "--setautoactivation", "y", "vga/l2");
    lab.ok("lvchange", "-aay", "vga/l2");
    assert.deepEqual(activeLvs(lab), ["vga/l2"]);
    lab.ok("vgchange", "-an");
  } finally {
    lab.cleanup();
  }
});

test("vgchange -aay honours activation/auto_activation_volume_list", () => {
  const lab = new Lab("ulvm-aay-");
  try {
    setup(lab);
    const scan = `devices {\n\tscan = [ "${lab.dir}/disks" ]\n}\n`;
    const cases: Array<[string, string[]]> = [
      [`[ "vga/l1" ]`, ["vga/l1"]],
      [`[ "@boot" ]`, ["vga/l3"]],
      [`[ "vga" ]`, ["vga/l1", "vga/l3"]], // l2 is NOAUTOACTIVATE: the list does not override it
      [`[ "vgb" ]`, []], // vgb is NOAUTOACTIVATE
      [`[ ]`, []],
    ];
    for (const [list, want] of cases) {
      lab.writeConfig(`${scan}activation {\n\tauto_activation_volume_list = ${list}\n}\n`);
      lab.ok("vgchange", "-aay");
      assert.deepEqual(activeLvs(lab), want, list);
      lab.ok("vgchange", "-an");
    }
  } finally {
    lab.cleanup();
  }
});

/** The VG's, PVs' and LVs' status and flags lines of the metadata text on the disk (lvm2's pvck --dump). */
function flagLines(lab: Lab, loop: string): string[] {
  const text = lab.lvmOk("pvck", "--dump", "metadata", loop);
  return text.split("\n").filter((l) => /^\s*(status|flags) = /.test(l));
}

const noAuto = (lab: Lab, dev: string): number => flagLines(lab, dev).filter((x) => x.trim() === 'flags = ["NOAUTOACTIVATE"]').length;

test("NOAUTOACTIVATE is written byte for byte as lvm2 writes it (vgcreate, lvchange, vgchange --setautoactivation)", { skip: lvmUnavailable() }, () => {
  const l = new Lab("ulvm-aay-lvm-");
  const u = new Lab("ulvm-aay-ulvm-");
  try {
    l.addDisk("d", 16);
    u.addDisk("d", 16);
    const ld = l.attachLoops().get("d")!;
    const ud = u.attachLoops().get("d")!;
    l.lvmOk("vgcreate", "--setautoactivation", "n", "vgd", ld);
    u.ok("vgcreate", "--setautoactivation", "n", "vgd", ud);
    assert.deepEqual(flagLines(u, ud), flagLines(l, ld));
    assert.equal(noAuto(u, ud), 1, flagLines(u, ud).join("\n"));
    // lvm2 cannot create an LV without device-mapper here: ulvm makes it in both, then each tool flags it.
    for (const lab of [l, u]) lab.ok("lvcreate", "-an", "-Zn", "-L", "4m", "-n", "lv", "vgd");
    l.lvmOk("lvchange", "--setautoactivation", "n", "vgd/lv");
    u.ok("lvchange", "--setautoactivation", "n", "vgd/lv");
    assert.deepEqual(flagLines(u, ud), flagLines(l, ld));
    assert.equal(noAuto(u, ud), 2, flagLines(u, ud).join("\n"));
    l.lvmOk("vgchange", "--setautoactivation", "y", "vgd");
    u.ok("vgchange", "--setautoactivation", "y", "vgd");
    assert.deepEqual(flagLines(u, ud), flagLines(l, ld));
    assert.equal(noAuto(u, ud), 1);
    // And ulvm reads lvm2's flag back: vgs/lvs report what lvm2 wrote.
    assert.match(l.ok("lvs", "--noheadings", "-o", "lv_autoactivation", "vgd/lv"), /^\s*$/);
    assert.match(l.ok("vgs", "--noheadings", "-o", "vg_autoactivation", "vgd"), /enabled/);
  } finally {
    l.cleanup();
    u.cleanup();
  }
});
