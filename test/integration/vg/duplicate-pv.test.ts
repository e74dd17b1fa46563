import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { lvmUnavailable } from "../../helpers/lab.js";
import { Twin } from "./twin.js";

/**
 * Two devices carrying the same PV (a cloned disk). Found by the torture
 * suite (corrupt, duplicate-pv): ulvm used one of them without a word and
 * wrote metadata through it. lvm2 warns which device it does not use and
 * refuses to change the VG; so does ulvm now.
 */
const skip = lvmUnavailable();

test("a duplicate PV: reports warn which device is not used, changes are refused", { skip }, () => {
  const tw = new Twin([16, 16, 16]);
  try {
    // Each tool writes its own metadata: the PV's device hint is then the device's own name.
    for (const args of [["pvcreate", "-q", "%d0", "%d1"], ["vgcreate", "-q", "-s", "1m", "vg", "%d0", "%d1"]]) {
      const { lvm, ulvm } = tw.both(args);
      assert.equal(lvm.code, 0, lvm.stderr);
      assert.equal(ulvm.code, 0, ulvm.stderr);
    }
    for (const lab of [tw.l, tw.u]) copyFileSync(lab.disk("d0"), lab.disk("d2"));
    for (const args of [["vgs", "vg"], ["lvcreate", "-an", "-Zn", "-L", "1m", "-n", "x", "vg"]]) {
      const { lvm, ulvm } = tw.both(args);
      const what = `${args.join(" ")}\n--- lvm2 (${lvm.code})\n${lvm.stdout}${lvm.stderr}--- ulvm (${ulvm.code})\n${ulvm.stdout}${ulvm.stderr}`;
      assert.equal(ulvm.code, lvm.code, what);
      assert.equal(ulvm.stdout, lvm.stdout, what);
      // Each world made its own PV, with its own UUID.
      const uuids = (t: string): string => t.replace(/\b[\w]{6}(-[\w]{4}){5}-[\w]{6}\b/g, "<uuid>");
      assert.equal(uuids(ulvm.stderr), uuids(lvm.stderr), what);
    }
    assert.match(tw.both(["vgs", "vg"]).ulvm.stderr, /WARNING: Not using device %d2 for PV [\w-]{38}\.\n  WARNING: PV [\w-]{38} prefers device %d0 because device name matches previous\./);
  } finally {
    tw.cleanup();
  }
});
