import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, devicePathUnavailable, which } from "../../helpers/lab.js";
import { ulvmAsync } from "../../helpers/run-async.js";
import { RawNbdClient } from "../nbd/raw-client.js";
import { NBD_CMD_READ, NBD_CMD_WRITE } from "../../../src/nbd/protocol.js";

/**
 * A source PV that starts failing reads in the middle of a move (issue 16).
 * The PV is a FUSE file (nbdfuse) served by nbdkit's eval plugin, whose
 * reads fail with EIO over a range of the PV while a trigger file exists:
 * a disk with bad sectors, from the moment the test says so. The move
 * stops with lvm2's "ABORTING: Mirror percentage check failed." (exit 5)
 * and leaves pvmove0 and its checkpoints; the daemon fails no PV; the LV
 * stays usable: the part already copied reads from the destination even
 * where the source cannot be read, writes go on (and reach the source
 * too); `pvmove --abort` puts everything back on the source, and once
 * the bad sectors read again, every byte there is the last one written.
 */
const MiB = 1024 * 1024;
const EXTENT = 4 * MiB;
const PE_START = MiB;
const skip = devicePathUnavailable() ?? (which("nbdkit") ? undefined : "nbdkit not installed");

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

async function nbd<T>(l: Lab, fn: (c: RawNbdClient) => Promise<T>): Promise<T> {
  const { client } = await RawNbdClient.ready(join(l.dir, "run", "nbd.sock"), { exportName: "vg/lv0" });
  try {
    return await fn(client);
  } finally {
    client.destroy();
  }
}

/** Read [off, off+len) of lv0 in 1 MiB requests: the data, or the offset of the first request that failed. */
async function readLv(l: Lab, off: number, len: number): Promise<{ data?: Buffer; failedAt?: number }> {
  return nbd(l, async (c) => {
    const out = Buffer.alloc(len);
    for (let o = 0; o < len; o += MiB) {
      const r = await c.request({ type: NBD_CMD_READ, offsetBytes: off + o, lengthBytes: Math.min(MiB, len - o) });
      if (r.error !== 0 || !r.data) return { failedAt: off + o };
      r.data.copy(out, o);
    }
    return { data: out };
  });
}

async function writeLv(l: Lab, off: number, data: Buffer): Promise<void> {
  await nbd(l, async (c) => {
    for (let o = 0; o < data.length; o += MiB) {
      const part = data.subarray(o, Math.min(data.length, o + MiB));
      const r = await c.request({ type: NBD_CMD_WRITE, offsetBytes: off + o, lengthBytes: part.length }, part);
      assert.equal(r.error, 0, `NBD write at ${off + o}`);
    }
  });
}

test("a source PV that starts failing reads mid-move: lvm2's ABORTING line, no PV failed, the LV usable, --abort loses nothing", { skip, timeout: 240_000 }, async () => {
  const l = new Lab("ulvm-pvmove-badsrc-");
  const procs: ChildProcess[] = [];
  try {
    const img = join(l.dir, "d0.img");
    writeFileSync(img, "");
    truncateSync(img, 64 * MiB);
    const trigger = join(l.dir, "bad-sectors");
    const sock = join(l.dir, "d0.nbdkit.sock");
    // Bad sectors: LV extents 2..7 of lv0 (it starts at PE 0), while the trigger exists.
    const badStart = PE_START + 2 * EXTENT;
    const badEnd = PE_START + 8 * EXTENT;
    const pread = `if [ -e ${trigger} ] && [ $4 -lt ${badEnd} ] && [ $(($4 + $3)) -gt ${badStart} ]; then echo 'EIO bad sector' >&2; exit 1; fi; exec dd if=${img} skip=$4 count=$3 iflag=skip_bytes,count_bytes status=none`;
    const pwrite = `exec dd of=${img} seek=$4 count=$3 oflag=seek_bytes iflag=count_bytes,fullblock conv=notrunc status=none`;
    procs.push(spawn("nbdkit", ["-f", "-U", sock, "eval", `get_size=stat -L -c %s ${img}`, `pread=${pread}`, `pwrite=${pwrite}`, "can_write=exit 0", "can_flush=exit 0", "flush=exit 0"], { stdio: "ignore" }));
    await waitFor(() => existsSync(sock), "nbdkit's socket");
    mkdirSync(join(l.dir, "fuse"));
    const d0 = join(l.dir, "fuse", "d0");
    procs.push(spawn("nbdfuse", [d0, "--unix", sock], { stdio: "ignore" }));
    await waitFor(() => existsSync(d0), "the nbdfuse file");
    const d1 = l.addDisk("d1", 64);
    l.writeConfig(`devices {\n\tscan = [ "${join(l.dir, "disks")}", "${d0}" ]\n}\nactivation {\n\tdevice_path = 0\n\tmirror_resync_rate = 4096\n}\n`);
    l.ok("vgcreate", "-q", "vg", d0, d1);
    l.ok("lvcreate", "-q", "-Zn", "-n", "lv0", "-l", "8", "vg", d0);
    const want = randomBytes(32 * MiB);
    await writeLv(l, 0, want);
    const seqno = (): number => Number(l.ok("vgs", "--noheadings", "-o", "vg_seqno", "vg"));

    // One 8-extent segment copies at 4 MiB/s; past 50%, extents 0..3 are on d1 and the source goes bad.
    let armed = false;
    const move = await ulvmAsync(l, ["pvmove", "-i", "1", d0, d1], (out) => {
      const last = [...out.matchAll(/Moved: (\d+\.\d\d)%/g)].pop();
      if (!armed && last && Number(last[1]) >= 50) {
        writeFileSync(trigger, "");
        armed = true;
      }
    });
    assert.ok(armed, move.stdout);
    assert.equal(move.code, 5, move.stderr);
    assert.equal(move.stderr, "  ABORTING: Mirror percentage check failed.\n");
    const seqAfterStop = seqno();
    assert.match(l.ok("lvs", "-a", "--noheadings", "-o", "lv_name,lv_attr", "vg"), /\[pvmove0\]\s+p-C-aom---/, "the move stays, as lvm2's");
    // The daemon failed no PV: both still in use.
    for (const pv of [d0, d1]) assert.equal(l.ok("pvs", "--noheadings", "-o", "pv_attr", pv).trim(), "a--", `${pv} not missing`);
    assert.match(l.ok("lvs", "--noheadings", "-o", "lv_attr", "vg/lv0"), /-wI-a-----/);

    // The copied part reads from d1 although its source sectors (extents 2..3) are bad.
    const head = await readLv(l, 0, 16 * MiB);
    assert.equal(head.failedAt, undefined, `read of the copied part failed at ${head.failedAt}`);
    assert.ok(head.data!.equals(want.subarray(0, 16 * MiB)), "the copied part, from the good copy");
    // Writes go on: over the copied part (in sync: both sides) and the rest (the source).
    const newHead = randomBytes(16 * MiB);
    await writeLv(l, 0, newHead);
    const newTailPiece = randomBytes(MiB);
    await writeLv(l, 24 * MiB, newTailPiece);
    const again = await readLv(l, 0, 16 * MiB);
    assert.ok(again.data?.equals(newHead), "the new writes read back");

    // Abort: the only segment was not finished, so all of lv0 goes back to the source, the LV stays active.
    const abort = l.ulvm("pvmove", "--abort");
    assert.equal(abort.code, 0, abort.stderr);
    assert.ok(!l.ok("lvs", "-a", "--noheadings", "-o", "lv_name", "vg").includes("pvmove"));
    assert.ok(seqno() > seqAfterStop);
    assert.match(l.ok("lvs", "--noheadings", "-o", "devices", "vg/lv0"), /fuse\/d0\(0\)/);
    // The disk reads again: every byte of lv0 is its last write (the source got them all).
    rmSync(trigger);
    const all = await readLv(l, 0, 32 * MiB);
    assert.equal(all.failedAt, undefined);
    const expect = Buffer.from(want);
    newHead.copy(expect, 0);
    newTailPiece.copy(expect, 24 * MiB);
    assert.ok(all.data!.equals(expect), "nothing lost");
    l.ok("vgchange", "-an", "vg");
    l.ok("vgck", "vg");
  } finally {
    l.cleanup();
    for (const p of procs) p.kill("SIGKILL");
  }
});
