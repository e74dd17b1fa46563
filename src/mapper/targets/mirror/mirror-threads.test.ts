import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { ftruncateSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomFillSync } from "node:crypto";
import { FileBlockDevice } from "../../../blockdev/file-block-device.js";
import { MappedDevice } from "../../mapped-device.js";
import { MirrorTarget } from "./mirror-target.js";
import { Table } from "../../table.js";
import { defaultTargetTypes } from "../../target-types.js";
import { testEnv } from "../../test-helpers.js";
import { sharedCopyEngine } from "../../copy-threads/copy-engine.js";
import { sharedWriteThread } from "../../write-thread/write-thread.js";
import { MIRROR_MAGIC, encodeDiskLog } from "../../dirty-log/disk-log-format.js";
import { bitsetBytes } from "../../dirty-log/bitset.js";

/**
 * The resync and the legs' writes on real files, as the daemon runs them:
 * legs are linear mapped devices over FileBlockDevices, so the copy threads
 * and the write thread get their extents (BlockDevice.leaseExtents) and do
 * the I/O off the event loop.
 */
const MiB = 1024 * 1024;
const LEG_BYTES = 12 * MiB;
const LEG_OFFSET = MiB; // the image starts 1 MiB into its file, as on a PV
const REGION_SECTORS = 1024;

/** Run `fn` in a fresh temporary directory, removed afterwards whatever happens. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-mthreads-"));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** pv1 in `pv1Dir` (default: `dir`); with `identical`, pv1 starts as a copy of pv0 (legs in sync, as after --nosync on equal files). */
async function fileMirror(dir: string, opts: { identical?: boolean; pv1Dir?: string } = {}) {
  const data = randomFillSync(Buffer.alloc(LEG_BYTES));
  writeFileSync(join(dir, "pv0"), Buffer.concat([Buffer.alloc(LEG_OFFSET), data]));
  const pv1 = join(opts.pv1Dir ?? dir, "pv1");
  if (opts.identical) writeFileSync(pv1, Buffer.concat([Buffer.alloc(LEG_OFFSET), data]));
  else {
    // Sparse: allocated only where written.
    writeFileSync(pv1, "");
    const fd = openSync(pv1, "r+");
    ftruncateSync(fd, LEG_OFFSET + LEG_BYTES);
    closeSync(fd);
  }
  const regions = LEG_BYTES / 512 / REGION_SECTORS;
  writeFileSync(join(dir, "log"), Buffer.concat([encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: BigInt(regions) }, new Uint8Array(bitsetBytes(regions)).fill(0xff), regions), Buffer.alloc(64 * 1024)]).subarray(0, 64 * 1024));
  const pvs = { pv0: await FileBlockDevice.open(join(dir, "pv0")), pv1: await FileBlockDevice.open(pv1), log: await FileBlockDevice.open(join(dir, "log")) };
  const env = testEnv(pvs);
  const types = defaultTargetTypes({ mirror: { cleanIntervalMs: 0 } });
  const images = [0, 1].map((i) => new MappedDevice(`img${i}`, { env, targetTypes: types }));
  for (const [i, img] of images.entries()) {
    await img.load(Table.parse(`0 ${LEG_BYTES / 512} linear pv${i} ${LEG_OFFSET / 512}\n`));
    await img.resume();
    env.devices.set(`img${i}`, img);
  }
  const dev = new MappedDevice("vg-lv", { env, targetTypes: types });
  const [t] = await dev.load(Table.parse(`0 ${LEG_BYTES / 512} mirror disk 2 log ${REGION_SECTORS} 2 img0 0 img1 0\n`));
  if (!MirrorTarget.is(t)) throw new Error("not a mirror");
  const close = async (): Promise<void> => {
    await dev.remove();
    for (const img of images) await img.remove();
    for (const d of Object.values(pvs)) await d.close();
  };
  return { data, dev, target: t, close };
}

/** Threads started and up (a short resync or a few writes could otherwise finish before they start, done the other way). */
async function started<T extends { readonly ready: boolean; warmUp(): void }>(threads: T): Promise<T> {
  threads.warmUp();
  for (let i = 0; i < 500 && !threads.ready; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(threads.ready);
  return threads;
}
const threadsUp = () => started(sharedCopyEngine(2)!);
const writeThreadUp = () => started(sharedWriteThread(true)!);

test("a new leg on plain files is copied by the copy threads, and ends identical", async () => {
  await inTempDir(async (dir) => {
    const m = await fileMirror(dir);
    const engine = await threadsUp();
    const before = engine.copiedBytes;
    m.target.markLegStale(1); // lvconvert -m1: leg 1 is new
    await m.dev.resume();
    await m.target.whenInSync();
    const regions = LEG_BYTES / 512 / REGION_SECTORS;
    assert.match(m.dev.status(), new RegExp(` ${regions}/${regions} 1 AA `));
    await m.dev.suspend(); // drains, flushes the legs
    assert.deepEqual(readFileSync(join(dir, "pv1")).subarray(LEG_OFFSET), m.data);
    assert.equal(engine.copiedBytes - before, LEG_BYTES, "the threads copied it all");
    await m.close();
  });
});

test("a source that cannot be read during a threaded copy fails that leg with a resync error", async () => {
  await inTempDir(async (dir) => {
    const m = await fileMirror(dir);
    // The source PV loses its data area under the open descriptor: reads past the new end return nothing.
    const fd = openSync(join(dir, "pv0"), "r+");
    ftruncateSync(fd, LEG_OFFSET);
    closeSync(fd);
    m.target.markLegStale(1);
    const engine = await threadsUp();
    // Count the batches handed to the threads (this test is about their error path, not the in-process one).
    const copy = engine.copy.bind(engine);
    let handed = 0;
    engine.copy = (src, dsts) => {
      handed++;
      return copy(src, dsts);
    };
    try {
      await m.dev.resume();
      for (let i = 0; i < 500 && !/ SA /.test(m.dev.status()); i++) await new Promise((r) => setTimeout(r, 10));
    } finally {
      engine.copy = copy;
    }
    assert.match(m.dev.status(), / SA /, "leg 0 failed with a resync error, leg 1 alive");
    assert.ok(m.target.legs[0]!.failed);
    assert.equal(handed, 1, "the failing batch was the threads'");
    await m.close();
  });
});

test("a lease counts as I/O in flight: suspend waits for it, and a suspended device lends nothing", async () => {
  await inTempDir(async (dir) => {
    writeFileSync(join(dir, "a"), Buffer.alloc(2 * MiB));
    writeFileSync(join(dir, "b"), Buffer.alloc(2 * MiB));
    const a = await FileBlockDevice.open(join(dir, "a"));
    const b = await FileBlockDevice.open(join(dir, "b"));
    const env = testEnv({ a, b });
    const dev = new MappedDevice("lin", { env });
    // Two linear pieces on two files, and a zero target, which has no extents to lend.
    await dev.load(Table.parse(`0 1024 linear a 2048\n1024 512 linear b 0\n1536 512 zero\n`));
    await dev.resume();
    const l = dev.leaseExtents(512 * 512, 1024 * 512, true)!;
    assert.deepEqual(l.extents.map((e) => [e.offsetBytes, e.lengthBytes]), [[(2048 + 512) * 512, 512 * 512], [0, 512 * 512]]);
    assert.equal(dev.leaseExtents(1024 * 512, 1024 * 512, false), undefined, "a range over the zero target cannot be leased");
    let suspended = false;
    const s = dev.suspend().then(() => (suspended = true));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(suspended, false, "suspend waits for the lease");
    l.release();
    await s;
    assert.equal(dev.leaseExtents(0, 512, false), undefined, "a suspended device lends nothing");
    await dev.resume();
    await dev.remove();
    await a.close();
    await b.close();
  });
});

test("small writes to file legs go through the write thread, overlapping ones in order, and both legs end identical", async () => {
  await inTempDir(async (dir) => {
    const m = await fileMirror(dir, { identical: true });
    await m.dev.resume();
    const wt = await writeThreadUp();
    const before = wt.writes;
    const expected = Buffer.from(m.data);
    // 600 writes of 512 B..16 KiB in flight at once, into a 256 KiB window so that many overlap.
    const writes: Array<Promise<void>> = [];
    for (let i = 0; i < 600; i++) {
      const len = 512 * (1 + ((i * 13) % 32));
      const at = ((i * 104729) % (512 * 1024 - len)) & ~511;
      const piece = randomFillSync(Buffer.alloc(len));
      piece.copy(expected, at);
      writes.push(m.dev.write(at, piece));
    }
    await Promise.all(writes);
    await m.dev.suspend();
    assert.ok(wt.writes - before >= 2 * 100, `the thread wrote legs (${wt.writes - before} writes)`);
    assert.ok(readFileSync(join(dir, "pv0")).subarray(LEG_OFFSET).equals(expected), "leg 0");
    assert.ok(readFileSync(join(dir, "pv1")).subarray(LEG_OFFSET).equals(expected), "leg 1");
    assert.match(m.dev.status(), / AA /);
    await m.close();
  });
});

const isRoot = process.getuid?.() === 0;

test(
  "a leg whose write fails on the write thread (ENOSPC on a full tmpfs) is failed, and the write still succeeds on the other leg",
  { skip: isRoot ? false : "needs root, to mount a 1 MiB tmpfs for the failing leg" },
  async () => {
    await inTempDir(async (dir) => {
      const small = join(dir, "small");
      mkdirSync(small);
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", small]);
      try {
        // pv1 is sparse on a 1 MiB file system: its first MiB of new blocks fits, the rest is ENOSPC.
        const m = await fileMirror(dir, { pv1Dir: small });
        await m.dev.resume();
        const wt = await writeThreadUp();
        const before = wt.writes;
        const expected = Buffer.from(m.data);
        for (let i = 0; i < 512 && !m.target.legs[1]!.failed; i++) {
          const piece = randomFillSync(Buffer.alloc(4096));
          piece.copy(expected, i * 4096);
          await m.dev.write(i * 4096, piece);
        }
        assert.ok(m.target.legs[1]!.failed, "leg 1 failed once its file system was full");
        assert.ok(m.target.legs[1]!.errors.has("write"));
        assert.ok(wt.writes > before, "through the write thread");
        assert.match(m.dev.status(), / AD /);
        // Writes go on, to leg 0 alone; and everything written reads back.
        const after = randomFillSync(Buffer.alloc(8192));
        after.copy(expected, 3 * MiB);
        await m.dev.write(3 * MiB, after);
        const back = Buffer.alloc(LEG_BYTES);
        await m.dev.read(0, back);
        assert.ok(back.equals(expected));
        await m.dev.suspend();
        assert.ok(readFileSync(join(dir, "pv0")).subarray(LEG_OFFSET).equals(expected), "leg 0 has every write");
        await m.close();
      } finally {
        execFileSync("umount", [small]);
      }
    });
  },
);
