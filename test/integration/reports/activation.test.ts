import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { FIXTURES_DIR } from "../../helpers/fixtures.js";
import { Lab } from "../../helpers/lab.js";

/**
 * Reports of active LVs: ulvm's daemon holds them the way device-mapper holds
 * lvm2's, and pvs/lvs/lvdisplay/lvscan read its state as lvm2 reads dm's
 * (attr characters 5-6, Cpy%Sync of a mirror, "LV Status", "# open", ACTIVE).
 * Uses the b-mirror fixture disks; no device paths, so nothing beyond the
 * daemon itself is needed.
 */
function mirrorLab(): Lab {
  const lab = new Lab("ulvm-rep-act-");
  for (const f of ["disk1", "disk2", "disk3"]) {
    writeFileSync(join(lab.dir, "disks", `${f}.img`), gunzipSync(readFileSync(join(FIXTURES_DIR, "b-mirror", `${f}.img.gz`))));
  }
  lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 0\n}\n`);
  return lab;
}

function attrs(lab: Lab): Map<string, { attr: string; sync: string; active: string }> {
  const out = lab.ok("lvs", "-a", "--noheadings", "--separator", "|", "-o", "lv_name,lv_attr,copy_percent,lv_active", "fxmirror");
  const m = new Map<string, { attr: string; sync: string; active: string }>();
  for (const line of out.split("\n").filter((l) => l.trim())) {
    const [name, attr, sync, active] = line.trim().split("|");
    m.set(name!, { attr: attr!, sync: sync!, active: active! });
  }
  return m;
}

test("an active mirror reports as lvm2 reports one with device-mapper: mwi-a-m---, legs and log open, Cpy%Sync", () => {
  const lab = mirrorLab();
  try {
    let a = attrs(lab);
    assert.equal(a.get("lv_mirror")?.attr, "mwi---m---");
    assert.equal(a.get("lv_mirror")?.sync, "");
    assert.equal(a.get("lv_mirror")?.active, "");

    const r = lab.ulvm("lvchange", "-ay", "fxmirror/lv_mirror");
    assert.equal(r.code, 0, r.stderr);
    a = attrs(lab);
    assert.match(a.get("lv_mirror")!.attr, /^mwi-a[-o]m---$/);
    assert.match(a.get("[lv_mirror_mimage_0]")!.attr, /^[iI]wi-aom---$/);
    assert.match(a.get("[lv_mirror_mimage_1]")!.attr, /^[iI]wi-aom---$/);
    assert.equal(a.get("[lv_mirror_mlog]")!.attr, "lwi-aom---");
    assert.match(a.get("lv_mirror")!.sync, /^(100\.00|[0-9]{1,2}\.[0-9]{2})$/);
    assert.equal(a.get("lv_mirror")!.active, "active");
    // The images are 'i' exactly when the mirror is fully in sync.
    const synced = a.get("lv_mirror")!.sync === "100.00";
    assert.equal(a.get("[lv_mirror_mimage_1]")!.attr[0], synced ? "i" : "I");
    // Other LVs stay inactive.
    assert.equal(a.get("lv_lin")?.attr, "-wi-------");

    const scan = lab.ok("lvscan");
    assert.match(scan, /^ {2}ACTIVE {12}'.*\/fxmirror\/lv_mirror' \[8\.00 MiB\] inherit$/m);
    assert.match(scan, /^ {2}inactive {10}'.*\/fxmirror\/lv_lin' \[2\.00 MiB\] inherit$/m);

    const disp = lab.ok("lvdisplay", "-m", "fxmirror/lv_mirror");
    assert.match(disp, /^ {2}LV Status {14}available$/m);
    assert.match(disp, /^ {2}# open {17}\d+$/m);
    assert.match(disp, /^ {4}Monitoring\t\tmonitored$/m);
    assert.match(lab.ok("lvdisplay", "fxmirror/lv_lin"), /^ {2}LV Status {14}NOT available$/m);
    assert.match(lab.ok("vgdisplay", "fxmirror"), /^ {2}Open LV {15}\d+$/m);

    assert.equal(lab.ulvm("lvchange", "-an", "fxmirror/lv_mirror").code, 0);
    a = attrs(lab);
    assert.equal(a.get("lv_mirror")?.attr, "mwi---m---");
    assert.equal(a.get("[lv_mirror_mimage_0]")?.attr, "Iwi---m---");
    assert.match(lab.ok("lvscan"), /^ {2}inactive {10}'.*\/fxmirror\/lv_mirror'/m);
  } finally {
    lab.cleanup();
  }
});

test("without a daemon nothing is active and no daemon is started by a report", () => {
  const lab = mirrorLab();
  try {
    assert.match(lab.ok("lvs", "-o", "lv_name,lv_attr", "fxmirror/lv_lin"), /lv_lin -wi-------/);
    assert.equal(existsSync(join(lab.dir, "run", "ulvmd.sock")), false);
  } finally {
    lab.cleanup();
  }
});
