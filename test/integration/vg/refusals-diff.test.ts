import { test } from "node:test";
import assert from "node:assert/strict";
import { lvmUnavailable } from "../../helpers/lab.js";
import { Twin } from "./twin.js";

/**
 * Refusals the torture suite's table of bad command lines found answered
 * differently from lvm2: vgcreate with an invalid name (lvm2 says why and
 * exits 3) and lvconvert --repair of a linear LV (refused by lvm2's command
 * definition before anything else).
 */
const skip = lvmUnavailable();

test("vgcreate with invalid names and lvconvert --repair of a linear LV: lvm2's exit codes and messages", { skip }, () => {
  const tw = new Twin([16, 16]);
  try {
    tw.lvmOk("pvcreate", "-q", "%d0", "%d1");
    tw.lvmOk("vgcreate", "-q", "vg", "%d0");
    tw.lvmOk("lvcreate", "-q", "-an", "-Zn", "-L", "4m", "-n", "lin", "vg");
    tw.sync("l");
    for (const args of [["vgcreate", "bad vg", "%d1"], ["vgcreate", "..", "%d1"], ["vgcreate", "v".repeat(130), "%d1"], ["lvconvert", "--repair", "vg/lin"]]) {
      const { lvm, ulvm } = tw.both(args);
      const what = `${args.join(" ")}\n--- lvm2 (${lvm.code})\n${lvm.stderr}--- ulvm (${ulvm.code})\n${ulvm.stderr}`;
      assert.equal(ulvm.code, lvm.code, what);
      assert.equal(ulvm.stderr, lvm.stderr, what);
    }
  } finally {
    tw.cleanup();
  }
});
