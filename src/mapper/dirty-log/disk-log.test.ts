import { test } from "node:test";
import assert from "node:assert/strict";
import { DiskDirtyLog } from "./disk-log.js";
import { CoreDirtyLog } from "./core-log.js";
import { MIRROR_MAGIC, NR_REGIONS_UNSET, decodeDiskLog, encodeDiskLog } from "./disk-log-format.js";
import { setBit } from "./bitset.js";
import { MemoryBlockDevice } from "../../blockdev/memory-block-device.js";
import { FaultBlockDevice, IoRecorder } from "../../blockdev/fault-block-device.js";
import type { SyncMode } from "./dirty-log.js";

function logDev(content?: Uint8Array): MemoryBlockDevice {
  const m = new MemoryBlockDevice("log", 1 << 20);
  if (content) m.bytes.set(content);
  return m;
}

function makeLog(dev: MemoryBlockDevice | FaultBlockDevice, regions = 16, sync: SyncMode = "default") {
  const failures: string[] = [];
  const log = new DiskDirtyLog(1024, regions, sync, "log", dev, (e) => failures.push(e));
  return { log, failures };
}

function inSyncList(log: DiskDirtyLog): number[] {
  const out: number[] = [];
  for (let r = 0; r < log.regionCount; r++) if (log.isInSync(r)) out.push(r);
  return out;
}

test("resume: region bits of an existing log decide what is in sync; the header is rewritten with nr_regions", async () => {
  const bits = new Uint8Array(4);
  for (let r = 0; r < 16; r++) if (r !== 5) setBit(bits, r);
  const dev = logDev(encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: 16n }, bits, 16));
  dev.bytes[100] = 0xab; // bytes 16..1023 are preserved as found
  const { log } = makeLog(dev);
  await log.resume();
  assert.equal(log.syncCount, 15);
  assert.equal(log.isInSync(5), false);
  assert.equal(log.nextToResync(0), 5);
  assert.equal(dev.bytes[100], 0xab);
  assert.equal(decodeDiskLog(dev.bytes, 16).header.nrRegions, 16n);
});

test("resume: a fresh LVM log (nr_regions all ones, zero bits) is entirely out of sync", async () => {
  const dev = logDev(encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: NR_REGIONS_UNSET }, new Uint8Array(4), 16));
  const { log } = makeLog(dev);
  await log.resume();
  assert.equal(log.syncCount, 0);
  assert.equal(decodeDiskLog(dev.bytes, 16).header.nrRegions, 16n);
});

test("resume: a fresh LVM --nosync log (nr_regions all ones, 0xff bits) keeps its bits: all in sync", async () => {
  const content = new Uint8Array(1536).fill(0xff);
  content.set(encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: NR_REGIONS_UNSET }, new Uint8Array(4), 16).subarray(0, 16));
  const dev = logDev(content);
  const { log } = makeLog(dev, 20);
  await log.resume();
  assert.equal(log.syncCount, 20);
  // bits past the last region up to the word end are cleared
  assert.deepEqual([...dev.bytes.subarray(1024, 1028)], [0xff, 0xff, 0x0f, 0x00]);
});

test("resume: regions beyond the old nr_regions (grown mirror) are dirty", async () => {
  const bits = new Uint8Array(4).fill(0xff);
  const dev = logDev(encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: 10n }, bits, 16));
  const { log } = makeLog(dev);
  await log.resume();
  assert.deepEqual(inSyncList(log), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test("resume: a log without magic is new: everything out of sync, header written", async () => {
  const bits = new Uint8Array(1536).fill(0xff);
  const dev = logDev(bits);
  const { log, failures } = makeLog(dev);
  await log.resume();
  assert.equal(log.syncCount, 0);
  assert.deepEqual(failures, []);
  assert.equal(decodeDiskLog(dev.bytes, 16).header.magic, MIRROR_MAGIC);
});

test("resume: `sync` forces a full resync, `nosync` declares everything in sync", async () => {
  const allClean = encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: 16n }, new Uint8Array(4).fill(0xff), 16);
  const a = makeLog(logDev(allClean), 16, "sync");
  await a.log.resume();
  assert.equal(a.log.syncCount, 0);
  const b = makeLog(logDev(new Uint8Array(1536)), 16, "nosync");
  await b.log.resume();
  assert.equal(b.log.syncCount, 16);
  assert.deepEqual(b.log.tableArgs(), ["disk", "3", "log", "1024", "nosync"]);
});

test("resume: an unknown log version is not overwritten; the log fails and everything is out of sync", async () => {
  const content = encodeDiskLog({ magic: MIRROR_MAGIC, version: 7, nrRegions: 16n }, new Uint8Array(4).fill(0xff), 16);
  const dev = logDev(content);
  const { log, failures } = makeLog(dev);
  await log.resume();
  assert.equal(log.health, "D");
  assert.deepEqual(failures, ["EINVAL"]);
  assert.equal(log.syncCount, 0);
  assert.deepEqual([...dev.bytes.subarray(0, 1536)], [...content]);
});

test("resume: an unreadable log fails (D), reports once and leaves everything out of sync", async () => {
  const f = new FaultBlockDevice(logDev());
  f.vanish("EIO");
  const { log, failures } = makeLog(f);
  await log.resume();
  assert.equal(log.health, "D");
  assert.equal(log.persistent, false);
  assert.deepEqual(failures, ["EIO"]);
  assert.equal(log.syncCount, 0);
  log.markDirty(3);
  assert.equal(log.isMarkDurable(3), true, "a failed log no longer holds writes back");
  await log.flush();
});

test("marks coalesce: many concurrent marks, at most two log writes, each with FUA", async () => {
  const rec = new IoRecorder();
  const f = new FaultBlockDevice(logDev(encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: 64n }, new Uint8Array(8).fill(0xff), 64)), {
    recorder: rec,
  });
  const { log } = makeLog(f, 64);
  await log.resume();
  const before = log.writesIssued;
  const flushes: Promise<void>[] = [];
  for (let r = 0; r < 32; r++) {
    log.markDirty(r);
    assert.equal(log.isMarkDurable(r), false);
    flushes.push(log.flush());
  }
  await Promise.all(flushes);
  assert.ok(log.writesIssued - before <= 2, `${log.writesIssued - before} log writes`);
  for (let r = 0; r < 32; r++) assert.equal(log.isMarkDurable(r), true);
  assert.ok(rec.records.filter((r) => r.op === "write").every((r) => r.fua));
  const { cleanBits } = decodeDiskLog(f.inner instanceof MemoryBlockDevice ? f.inner.bytes : new Uint8Array(), 64);
  assert.deepEqual([...cleanBits], [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  // a flush with nothing changed writes nothing
  const n = log.writesIssued;
  await log.flush();
  assert.equal(log.writesIssued, n);
});

test("a mark made while a log write is in flight waits for the next write", async () => {
  const f = new FaultBlockDevice(logDev(encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: 16n }, new Uint8Array(4).fill(0xff), 16)));
  const { log } = makeLog(f);
  await log.resume();
  f.hold(["write"]);
  log.markDirty(1);
  const first = log.flush();
  await new Promise((r) => setImmediate(r));
  log.markDirty(2);
  const second = log.flush();
  f.release();
  await first;
  assert.equal(log.isMarkDurable(1), true);
  // the first write did not carry region 2's mark
  f.release();
  await second;
  assert.equal(log.isMarkDurable(2), true);
  const m = f.inner as MemoryBlockDevice;
  assert.equal(m.bytes[1024]! & 0b110, 0);
});

test("a failing log write fails the log (D) and a failing log flush marks it F; I/O is never held", async () => {
  const m = logDev(encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: 16n }, new Uint8Array(4).fill(0xff), 16));
  const f = new FaultBlockDevice(m);
  const { log, failures } = makeLog(f);
  await log.resume();
  f.addRule({ ops: ["write"] });
  log.markDirty(0);
  await log.flush();
  assert.equal(log.health, "D");
  assert.deepEqual(failures, ["EIO"]);

  const m2 = logDev(encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: 16n }, new Uint8Array(4).fill(0xff), 16));
  const noFua = new FaultBlockDevice({ ...m2, caps: { ...m2.caps, fua: false }, read: m2.read.bind(m2), write: m2.write.bind(m2), flush: m2.flush.bind(m2), close: m2.close.bind(m2), name: "log", sizeBytes: m2.sizeBytes });
  const b = makeLog(noFua);
  await b.log.resume();
  noFua.addRule({ ops: ["flush"] });
  b.log.markDirty(0);
  await b.log.flush();
  assert.equal(b.log.health, "F");
});

test("core log: everything out of sync unless nosync; marks are always durable", () => {
  const c = new CoreDirtyLog(8, 10, "default");
  assert.equal(c.syncCount, 0);
  c.markDirty(1);
  assert.equal(c.isMarkDurable(1), true);
  assert.equal(c.persistent, false);
  assert.deepEqual(c.tableArgs(), ["core", "1", "8"]);
  const n = new CoreDirtyLog(8, 10, "nosync");
  assert.equal(n.syncCount, 10);
  n.setInSync(3, false);
  n.setInSync(3, false);
  assert.equal(n.syncCount, 9);
  assert.equal(n.nextToResync(0), 3);
  assert.deepEqual(n.tableArgs(), ["core", "2", "8", "nosync"]);
});
