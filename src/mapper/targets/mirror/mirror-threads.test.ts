import { test } from "node:test";
import assert from "node:assert/strict";
import { ftruncateSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
import { MIRROR_MAGIC, encodeDiskLog } from "../../dirty-log/disk-log-format.js";
import { bitsetBytes } from "../../dirty-log/bitset.js";

/**
 * The resync on real files, as the daemon runs it: legs are linear mapped
 * devices over FileBlockDevices, so the copy threads get their extents
 * (BlockDevice.leaseExtents) and copy off the event loop.
 */
const MiB = 1024 * 1024;
const LEG_BYTES = 12 * MiB;
const LEG_OFFSET = MiB; // the image starts 1 MiB into its file, as on a PV
const REGION_SECTORS = 1024;

async function fileMirror(dir: string) {
  const data = randomFillSync(Buffer.alloc(LEG_BYTES));
  writeFileSync(join(dir, "pv0"), Buffer.concat([Buffer.alloc(LEG_OFFSET), data]));
  writeFileSync(join(dir, "pv1"), Buffer.alloc(LEG_OFFSET + LEG_BYTES));
  const regions = LEG_BYTES / 512 / REGION_SECTORS;
  writeFileSync(join(dir, "log"), Buffer.concat([encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: BigInt(regions) }, new Uint8Array(bitsetBytes(regions)).fill(0xff), regions), Buffer.alloc(64 * 1024)]).subarray(0, 64 * 1024));
  const pvs = { pv0: await FileBlockDevice.open(join(dir, "pv0")), pv1: await FileBlockDevice.open(join(dir, "pv1")), log: await FileBlockDevice.open(join(dir, "log")) };
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

/** The shared engine, its threads up (a short resync could otherwise finish before they start, copied here). */
async function threadsUp() {
  const engine = sharedCopyEngine(2)!;
  engine.warmUp();
  for (let i = 0; i < 500 && !engine.ready; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(engine.ready);
  return engine;
}

test("a new leg on plain files is copied by the copy threads, and ends identical", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-mthreads-"));
  try {
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
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a source that cannot be read during a threaded copy fails that leg with a resync error", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-mthreads-"));
  try {
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
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a lease counts as I/O in flight: suspend waits for it, and a suspended device lends nothing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-mthreads-"));
  try {
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
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
