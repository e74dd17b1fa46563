import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { truncateSync } from "node:fs";
import { lvmUnavailable } from "../../helpers/lab.js";
import { Twin } from "./twin.js";

/**
 * A device shorter than the PV it carries (truncated, shrunk). Found by the
 * torture suite (corrupt, truncate): ulvm reported the VG as if nothing had
 * happened; lvm2 warns that the device was resized. Activation of an LV on
 * the missing part is refused by the table check either way.
 */
const skip = lvmUnavailable();

test("a truncated PV device: lvm2's warnings about the changed size", { skip }, () => {
  const tw = new Twin([16, 16]);
  try {
    tw.lvmOk("pvcreate", "-q", "%d0", "%d1");
    tw.lvmOk("vgcreate", "-q", "-s", "1m", "vg", "%d0", "%d1");
    tw.lvmOk("lvcreate", "-q", "-an", "-Zn", "-L", "4m", "-n", "lin", "vg", "%d1");
    tw.sync("l");
    truncateSync(tw.l.disk("d1"), 2 << 20);
    truncateSync(tw.u.disk("d1"), 2 << 20);
    spawnSync("losetup", ["-c", tw.dev("l", "d1")]);
    for (const args of [["pvs"], ["vgs", "vg"], ["lvs", "vg"]]) {
      const { lvm, ulvm } = tw.both(args);
      const what = `${args.join(" ")}\n--- lvm2 (${lvm.code})\n${lvm.stdout}${lvm.stderr}--- ulvm (${ulvm.code})\n${ulvm.stdout}${ulvm.stderr}`;
      assert.equal(ulvm.code, lvm.code, what);
      assert.equal(ulvm.stderr, lvm.stderr, what);
    }
    assert.match(tw.ulvm(["vgs", "vg"]).stderr, /WARNING: Device %d1 has size of 4096 sectors which is smaller than corresponding PV size of 32768 sectors\. Was device resized\?\n  WARNING: One or more devices used as PVs in VG vg have changed sizes\./);
  } finally {
    tw.cleanup();
  }
});
