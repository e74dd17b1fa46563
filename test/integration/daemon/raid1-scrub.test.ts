import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Lab } from "../../helpers/lab.js";
import { pread, pwrite } from "../../helpers/raid1.js";
import { RawNbdClient } from "../nbd/raw-client.js";
import { NBD_CMD_FLUSH, NBD_CMD_WRITE } from "../../../src/nbd/protocol.js";

/**
 * `lvchange --syncaction check|repair` end to end: a raid1 written through
 * NBD, chosen sectors of rimage_1 corrupted in its PV file while the LV is
 * inactive, then check finds exactly those 64 KiB units (in sectors, as md
 * counts) and names where they are; repair copies leg 0 over them; the legs
 * are byte-identical and a second check finds nothing.
 */
const MIB = 1 << 20;
const LV_BYTES = 8 * MIB;

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(Math.imul(i + 1, 2654435761) >>> 0, i);
  return b;
}

async function writeAll(sock: string, data: Buffer): Promise<void> {
  const { client } = await RawNbdClient.ready(sock, { exportName: "vg/r" });
  try {
    for (let off = 0; off < data.length; off += MIB) {
      const r = await client.request({ type: NBD_CMD_WRITE, offsetBytes: off, lengthBytes: MIB }, data.subarray(off, off + MIB));
      assert.equal(r.error, 0);
    }
    assert.equal((await client.request({ type: NBD_CMD_FLUSH, offsetBytes: 0, lengthBytes: 0 })).error, 0);
  } finally {
    client.destroy();
  }
}

test("lvchange --syncaction check finds the corrupted sectors of rimage_1 and says where; repair fixes them; check again finds none", { timeout: 120_000 }, async () => {
  const lab = new Lab("ulvm-scrub-");
  try {
    const d1 = lab.addDisk("d1", 24);
    const d2 = lab.addDisk("d2", 24);
    lab.writeConfig(`devices {\n\tscan = [ "${lab.dir}/disks" ]\n}\nactivation {\n\tdevice_path = 0\n}\n`);
    lab.ok("pvcreate", "-q", d1, d2);
    lab.ok("vgcreate", "-q", "vg", d1, d2);
    lab.ok("lvcreate", "-q", "--type", "raid1", "-m1", "-L", "8m", "-n", "r", "vg", d1, d2);
    const lvs = (fields: string): string[] => lab.ok("lvs", "--noheadings", "--separator", ";", "-o", fields, "vg/r").trim().split(";");
    const waitIdle = async (): Promise<void> => {
      for (let i = 0; i < 600; i++) {
        if (lvs("raid_sync_action")[0] === "idle") return;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.fail("raid1 never became idle");
    };
    await waitIdle();
    // Where rimage_1 is: d2, after its rmeta (pe_start 1 MiB, 4 MiB extents).
    const devs = lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name,devices", "--separator", ";", "vg");
    assert.match(devs, /\[r_rimage_1\];.*d2\(1\)/);
    const image0 = MIB + 4 * MIB;
    const image1 = MIB + 4 * MIB;

    await writeAll(`${lab.dir}/run/nbd.sock`, pattern(LV_BYTES));
    lab.ok("lvchange", "-an", "vg/r");
    pwrite(d2, image1 + 100 * 512, Buffer.alloc(8 * 512, 0xee)); // unit [0, 128)
    pwrite(d2, image1 + 9000 * 512, Buffer.alloc(512, 0xee)); // unit [8960, 9088)
    lab.ok("lvchange", "-ay", "vg/r");

    // Refusals: not idle is checked against the target's state; only check|repair parse.
    const bad = lab.ulvm("lvchange", "--syncaction", "resync", "vg/r");
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /Invalid argument for --syncaction: resync/);

    lab.ok("lvchange", "--syncaction", "check", "vg/r");
    await waitIdle();
    const [count, action, health, attr] = lvs("raid_mismatch_count,raid_sync_action,lv_health_status,lv_attr").map((s) => s.trim());
    assert.equal(count, "256");
    assert.equal(action, "idle");
    assert.equal(health, "mismatches exist");
    assert.equal(attr![8], "m");
    assert.equal(lvs("raid_mismatch_places")[0]!.trim(), "0+128@1,8960+128@1");
    const json = JSON.parse(lab.ok("lvs", "--reportformat", "json", "-o", "lv_name,raid_mismatch_places", "vg/r")) as { report: Array<{ lv: Array<Record<string, string>> }> };
    assert.equal(json.report[0]!.lv[0]!.raid_mismatch_places, "0+128@1,8960+128@1");
    const log = readFileSync(`${lab.dir}/run/ulvmd.log`, "utf8");
    assert.match(log, /vg\/r: check done: 256 mismatched sectors in 2 places: LV sector 0\+128 leg 1 \(r_rimage_1 on \S*d2 PE 1\) differs from leg 0; LV sector 8960\+128 leg 1 \(r_rimage_1 on \S*d2 PE 2\) differs from leg 0/);

    lab.ok("lvchange", "--syncaction", "repair", "vg/r");
    await waitIdle();
    assert.equal(lvs("raid_mismatch_count")[0]!.trim(), "0", "dm-raid reports 0 after a repair");
    assert.equal(lvs("raid_mismatch_places")[0]!.trim(), "0+128@1,8960+128@1", "the places the repair rewrote");
    lab.ok("lvchange", "-an", "vg/r");
    assert.ok(pread(d1, image0, LV_BYTES).equals(pread(d2, image1, LV_BYTES)), "legs byte-identical after repair");
    assert.ok(pread(d1, image0, LV_BYTES).equals(pattern(LV_BYTES)));

    lab.ok("lvchange", "-ay", "vg/r");
    lab.ok("lvchange", "--syncaction", "check", "vg/r");
    await waitIdle();
    const after = lvs("raid_mismatch_count,lv_health_status,raid_mismatch_places").map((s) => s.trim());
    assert.deepEqual(after, ["0", "", ""]);

    // lvm2's refusals on a linear LV and on an inactive raid1.
    lab.ok("lvcreate", "-q", "-L", "4m", "-n", "lin", "vg");
    const lin = lab.ulvm("lvchange", "--syncaction", "check", "vg/lin");
    assert.notEqual(lin.code, 0);
    assert.match(lin.stderr, /Command on LV vg\/lin does not accept LV type linear\.\n.*Command not permitted on LV vg\/lin\./);
    lab.ok("lvchange", "-an", "vg/r");
    const inactive = lab.ulvm("lvchange", "--syncaction", "check", "vg/r");
    assert.notEqual(inactive.code, 0);
    assert.match(inactive.stderr, /Unable to send message to an inactive logical volume\./);
  } finally {
    lab.cleanup();
  }
});
