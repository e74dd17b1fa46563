import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, existsSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import { Lab } from "../../helpers/lab.js";
import { RawNbdClient } from "../nbd/raw-client.js";
import { NBD_CMD_FLUSH, NBD_CMD_READ, NBD_CMD_WRITE } from "../../../src/nbd/protocol.js";

/**
 * A mirror's first leg fails (its label wiped, as in the seed's `dd`), the
 * daemon records the PV MISSING and carries on with the second leg; new data
 * is written. Then the PV comes back (label restored, `vgextend
 * --restoremissing`) and the LV is reactivated by the same daemon. Found by
 * the torture suite (leg-faults): the stale first leg used to be served and
 * copied over the good one, as the log still called its regions clean, and
 * the running daemon refused the restored PV ("partial LV") until restarted.
 */
const MIB = 1 << 20;

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE((Math.imul(i + 1, 2654435761) ^ seed) >>> 0, i);
  return b;
}

async function writeAll(sock: string, data: Buffer): Promise<void> {
  const { client } = await RawNbdClient.ready(sock, { exportName: "vg/m" });
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

async function readAll(sock: string, n: number): Promise<Buffer> {
  const { client } = await RawNbdClient.ready(sock, { exportName: "vg/m" });
  try {
    const out = Buffer.alloc(n);
    for (let off = 0; off < n; off += MIB) {
      const r = await client.request({ type: NBD_CMD_READ, offsetBytes: off, lengthBytes: MIB });
      assert.equal(r.error, 0);
      r.data!.copy(out, off);
    }
    return out;
  } finally {
    client.destroy();
  }
}

function sector(path: string, index: number, put?: Buffer): Buffer {
  const fd = openSync(path, put ? "r+" : "r");
  try {
    const b = Buffer.alloc(512);
    if (put) writeSync(fd, put, 0, 512, index * 512);
    else readSync(fd, b, 0, 512, index * 512);
    return b;
  } finally {
    closeSync(fd);
  }
}

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

test("a failed first leg that comes back is resynced from the leg that stayed, by the running daemon", async () => {
  const lab = new Lab("ulvm-restored-");
  try {
    const d1 = lab.addDisk("d1", 24);
    const d2 = lab.addDisk("d2", 24);
    const d3 = lab.addDisk("d3", 8);
    lab.writeConfig(`devices {\n\tscan = [ "${lab.dir}/disks" ]\n}\nactivation {\n\tdevice_path = 0\n\tpv_check_interval_ms = 100\n}\n`);
    lab.ok("pvcreate", "-q", d1, d2, d3);
    lab.ok("vgcreate", "-q", "vg", d1, d2, d3);
    lab.ok("lvcreate", "-q", "-m1", "-L", "8m", "-n", "m", "vg", d1, d2, d3);
    lab.ok("lvconvert", "-i", "1", "vg/m");
    const sock = `${lab.dir}/run/nbd.sock`;
    const a = pattern(8 * MIB, 1);
    await writeAll(sock, a);
    // The first leg's PV loses its label: the daemon fails it and records it MISSING.
    const label = sector(d1, 1);
    sector(d1, 1, Buffer.alloc(512));
    const backup = `${lab.dir}/etc/backup/vg`;
    for (let i = 0; i < 400 && !(existsSync(backup) && readFileSync(backup, "utf8").includes('flags = ["MISSING"]')); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(readFileSync(backup, "utf8"), /flags = \["MISSING"\]/, "the daemon recorded the failure");
    const b = pattern(8 * MIB, 2);
    await writeAll(sock, b);
    assert.equal(sha(await readAll(sock, b.length)), sha(b));
    // It comes back, holding the old data A.
    sector(d1, 1, label);
    lab.ok("lvchange", "-an", "vg/m");
    const back = lab.ulvm("vgextend", "--restoremissing", "vg", d1);
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stderr, /WARNING: Mirror vg\/m: m_mimage_0 on the restored PV missed writes; every region will be resynchronised from m_mimage_1\./);
    const on = lab.ulvm("lvchange", "-ay", "vg/m");
    assert.equal(on.code, 0, on.stderr);
    assert.equal(sha(await readAll(sock, b.length)), sha(b), "the LV holds B, never the stale A");
    lab.ok("lvconvert", "-i", "1", "vg/m");
    lab.ok("lvchange", "-an", "vg/m");
    assert.match(lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name,devices", "vg/m"), /m_mimage_1\(0\),m_mimage_0\(0\)/);
    // Both legs hold B (pe_start 1 MiB on both PVs, extents 0-1).
    const leg = (p: string): Buffer => {
      const fd = openSync(p, "r");
      try {
        const out = Buffer.alloc(8 * MIB);
        readSync(fd, out, 0, out.length, MIB);
        return out;
      } finally {
        closeSync(fd);
      }
    };
    assert.equal(sha(leg(d1)), sha(b), "the returned leg was resynced");
    assert.equal(sha(leg(d2)), sha(b), "the leg that stayed was not written over");
  } finally {
    lab.cleanup();
  }
});
