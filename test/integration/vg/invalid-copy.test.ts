import { test } from "node:test";
import assert from "node:assert/strict";
import { Lab } from "../../helpers/lab.js";
import { openBlockDevice } from "../../../src/blockdev/open-device.js";
import { readDevice } from "../../../src/format/pv-read.js";
import { parseVgText } from "../../../src/format/vg-import.js";
import { exportVgText } from "../../../src/format/vg-export.js";
import { commitHeaders, encodeText, planCommit, writeTexts } from "../../../src/format/pv-write.js";
import type { StripedSegment } from "../../../src/model/types.js";

/**
 * A metadata copy with a good checksum that describes an impossible VG (two
 * LVs on one extent). Found by the torture suite (corrupt, overlap-one and
 * past-end-one): ulvm read the newest copy whatever it said, reported it, and
 * vgck died with an internal error. Now such a copy is skipped like one that
 * does not parse: the newest usable copy is read, with a warning naming the
 * device, and with no usable copy at all the VG is refused, never activated.
 */
async function forge(paths: readonly string[], overlap: boolean): Promise<void> {
  let vg;
  for (const p of paths) {
    const dev = await openBlockDevice(p, { write: true });
    try {
      const m = (await readDevice(dev, p)).mdas[0]!;
      vg ??= ((): ReturnType<typeof parseVgText>["vg"] => {
        const v = parseVgText(m.text!).vg;
        v.seqno++;
        const a = (v.lvs.find((l) => l.name === "b")!.segments[0] as StripedSegment).stripes[0]!;
        const first = (v.lvs.find((l) => l.name === "a")!.segments[0] as StripedSegment).stripes[0]!;
        if (overlap) Object.assign(a, first);
        return v;
      })();
      const text = encodeText(exportVgText(vg, { style: "disk", description: "forged", nowSeconds: 1 }));
      const plans = planCommit([{ dev, devName: p, header: m.header! }], text, vg.name, vg.seqno);
      await writeTexts(plans, text);
      await commitHeaders(plans);
    } finally {
      await dev.close();
    }
  }
}

test("a copy describing overlapping LVs is skipped for an older usable one; with none, the VG is refused", async () => {
  const lab = new Lab("ulvm-invalid-copy-");
  try {
    const d0 = lab.addDisk("d0", 16);
    const d1 = lab.addDisk("d1", 16);
    lab.writeConfig(`devices {\n\tscan = [ "${lab.dir}/disks" ]\n}\nactivation {\n\tdevice_path = 0\n}\n`);
    lab.ok("vgcreate", "-q", "-s", "1m", "vg", d0, d1);
    lab.ok("lvcreate", "-q", "-an", "-Zn", "-L", "2m", "-n", "a", "vg", d0);
    lab.ok("lvcreate", "-q", "-an", "-Zn", "-L", "2m", "-n", "b", "vg", d0);
    const before = lab.ok("lvs", "--noheadings", "-o", "lv_name,devices", "vg");
    await forge([d1], true);
    const r = lab.ulvm("lvs", "--noheadings", "-o", "lv_name,devices", "vg");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, before, "the older, usable copy is reported");
    assert.match(r.stderr, new RegExp(`WARNING: Metadata seqno 4 of VG vg on ${d1} is invalid: PE 0 of PV \\w+ is allocated twice \\(LV b\\)\\.`));
    assert.equal(lab.ulvm("vgck", "vg").code, 0);
    // The explicit repair rewrites the bad copy.
    assert.equal(lab.ulvm("vgck", "--updatemetadata", "vg").code, 0);
    assert.doesNotMatch(lab.ulvm("vgs", "vg").stderr, /WARNING/);
    // Every copy invalid: refused by reports and by activation alike.
    await forge([d0, d1], true);
    const none = lab.ulvm("lvs", "vg");
    assert.equal(none.code, 5);
    assert.match(none.stderr, /Volume group vg has no usable metadata: PE 0 of PV \w+ is allocated twice \(LV b\)\./);
    const act = lab.ulvm("lvchange", "-ay", "vg/a");
    assert.equal(act.code, 5, act.stderr);
  } finally {
    lab.cleanup();
  }
});
