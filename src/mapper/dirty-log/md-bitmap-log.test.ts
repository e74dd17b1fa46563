import { test } from "node:test";
import assert from "node:assert/strict";
import { MdBitmapDirtyLog } from "./md-bitmap-log.js";
import type { SyncMode } from "./dirty-log.js";
import { MemoryBlockDevice } from "../../blockdev/memory-block-device.js";
import { FaultBlockDevice, IoRecorder } from "../../blockdev/fault-block-device.js";
import type { BlockDevice } from "../../blockdev/block-device.js";
import { BITMAP_STALE, decodeMdBitmapSuperblock } from "../raid/md-bitmap-format.js";
import { decodeDmRaidSuperblock, encodeDmRaidSuperblock, newRaid1Superblock } from "../raid/dm-raid-superblock.js";
import type { Rmeta } from "../raid/rmeta-io.js";

const REGION_SECTORS = 8;
const RMETA_BYTES = 1 << 16;

function mem(n: number): MemoryBlockDevice[] {
  return Array.from({ length: n }, (_, i) => new MemoryBlockDevice(`lv_rmeta_${i}`, RMETA_BYTES));
}

function open(devs: readonly (BlockDevice | undefined)[], regions = 64, sync: SyncMode = "default") {
  const failures: [number, string][] = [];
  const rmetas: (Rmeta | undefined)[] = devs.map((d, i) => (d === undefined ? undefined : { name: `lv_rmeta_${i}`, dev: d }));
  const log = new MdBitmapDirtyLog({
    regionSectors: REGION_SECTORS,
    dataSectors: regions * REGION_SECTORS,
    syncMode: sync,
    rmetas,
    onFailure: (slot, errno) => failures.push([slot, errno]),
  });
  return { log, failures };
}

function outOfSync(log: MdBitmapDirtyLog): number[] {
  const out: number[] = [];
  for (let r = 0; r < log.regionCount; r++) if (!log.isInSync(r)) out.push(r);
  return out;
}

const mdBit = (d: MemoryBlockDevice, r: number) => (d.bytes[4352 + (r >> 3)]! >> (r & 7)) & 1;

/** A set as a first activation leaves it: resumed (full sync), superblocks written, resync done. */
async function syncedSet(devs: MemoryBlockDevice[], regions = 64) {
  const { log } = open(devs, regions);
  await log.resume();
  await log.commitSuperblocks(newRaid1Superblock({ numDevices: devs.length, arrayPosition: 0, arraySectors: BigInt(regions * REGION_SECTORS), nosync: true }));
  for (let r = 0; r < regions; r++) {
    log.setInSync(r, true);
    log.markClean(r);
  }
  await log.flush();
  return log;
}

test("a fresh rmeta set (first 4 KiB zero) is a full sync; the bitmap is written to every rmeta, padding bits 1", async () => {
  const devs = mem(2);
  const { log, failures } = open(devs, 40);
  await log.resume();
  assert.equal(log.loadOutcome, "fresh");
  assert.equal(log.syncCount, 0);
  assert.equal(log.isClean(0), false);
  assert.deepEqual(failures, []);
  assert.equal(log.persistent, true);
  for (const d of devs) {
    const sb = decodeMdBitmapSuperblock(d.bytes.subarray(4096, 4352));
    assert.equal(sb.version, 4);
    assert.equal(sb.chunkBytes, 4096);
    assert.equal(sb.syncSectors, 320n);
    assert.equal(sb.state & BITMAP_STALE, 0);
    assert.deepEqual([...d.bytes.subarray(4352, 4352 + 8)], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "40 bits, then padding bits left 1");
  }
  // the rest of the written sector is 0xFF padding; nothing past it is touched
  assert.equal(devs[0]!.bytes[4607], 0xff);
  assert.equal(devs[0]!.bytes[4608], 0);
  assert.deepEqual(log.tableArgs(), ["region_size", "8"]);
  assert.equal(log.devices().length, 2);
});

test("nosync declares everything in sync and clean", async () => {
  const devs = mem(2);
  const { log } = open(devs, 16, "nosync");
  await log.resume();
  assert.equal(log.syncCount, 16);
  assert.equal(mdBit(devs[1]!, 3), 0);
  assert.deepEqual(log.tableArgs(), ["nosync", "region_size", "8"]);
});

test("markDirty + flush makes the bit durable on every rmeta (FUA) before isMarkDurable", async () => {
  const devs = mem(2);
  await syncedSet(devs);
  const rec = new IoRecorder();
  const f = devs.map((d) => new FaultBlockDevice(d, { recorder: rec }));
  const { log } = open(f);
  await log.resume();
  assert.equal(log.loadOutcome, "bitmap");
  assert.equal(log.syncCount, 64);
  f[1]!.hold(["write"]);
  log.markDirty(9);
  assert.equal(log.isMarkDurable(9), false);
  const flushing = log.flush();
  await new Promise((r) => setImmediate(r));
  assert.equal(mdBit(devs[0]!, 9), 1);
  assert.equal(log.isMarkDurable(9), false, "not durable while one rmeta has not taken it");
  f[1]!.release();
  await flushing;
  assert.equal(log.isMarkDurable(9), true);
  assert.equal(mdBit(devs[1]!, 9), 1);
  const writes = rec.records.filter((r) => r.op === "write" && r.seq >= 0).slice(-2);
  assert.ok(writes.every((w) => w.fua && w.offsetBytes === 4096), "page 0 only, with FUA");
  // an already-set bit needs no new write
  const n = log.pageWritesIssued;
  log.markDirty(9);
  assert.equal(log.isMarkDurable(9), true);
  await log.flush();
  assert.equal(log.pageWritesIssued, n);
});

test("without FUA the rmeta is flushed after the page write", async () => {
  const devs = mem(1);
  await syncedSet(devs);
  const d = devs[0]!;
  const noFua: BlockDevice = { name: d.name, sizeBytes: d.sizeBytes, caps: { ...d.caps, fua: false }, read: d.read.bind(d), write: d.write.bind(d), flush: d.flush.bind(d), close: d.close.bind(d) };
  const rec = new IoRecorder();
  const f = new FaultBlockDevice(noFua, { recorder: rec });
  const { log } = open([f]);
  await log.resume();
  const start = rec.nextSeq;
  log.markDirty(1);
  await log.flush();
  assert.deepEqual(
    rec.records.filter((r) => r.seq >= start).map((r) => [r.op, r.fua]),
    [["write", false], ["flush", false]],
  );
});

test("markClean is lazy: written with a later flush, without FUA", async () => {
  const devs = mem(1);
  await syncedSet(devs);
  const rec = new IoRecorder();
  const { log } = open([new FaultBlockDevice(devs[0]!, { recorder: rec })]);
  await log.resume();
  log.markDirty(2);
  await log.flush();
  log.markClean(2);
  assert.equal(mdBit(devs[0]!, 2), 1, "not written yet");
  const start = rec.nextSeq;
  await log.flush();
  assert.equal(mdBit(devs[0]!, 2), 0);
  assert.deepEqual(rec.records.filter((r) => r.seq >= start).map((r) => r.fua), [false]);
});

test("only the changed 4 KiB pages are written", async () => {
  const regions = 70000; // 256 + 8750 bytes: pages 0..2
  const devs = mem(1);
  await syncedSet(devs, regions);
  const rec = new IoRecorder();
  const { log } = open([new FaultBlockDevice(devs[0]!, { recorder: rec })], regions);
  await log.resume();
  const start = rec.nextSeq;
  log.markDirty(40000); // byte 256 + 5000 -> page 1
  log.markDirty(69999); // byte 256 + 8749 -> page 2, trimmed to 9006 - 8192 bytes rounded to 1024
  await log.flush();
  const w = rec.records.filter((r) => r.seq >= start && r.op === "write");
  assert.deepEqual(w.map((r) => [r.offsetBytes, r.data.length]), [[8192, 4096], [12288, 1024]]);
  assert.equal(devs[0]!.bytes[4096 + 256 + 5000], 1);
  assert.equal(devs[0]!.bytes[4096 + 256 + 8749], 0x80);
});

test("a crash after writes resyncs exactly the regions left dirty", async () => {
  const devs = mem(2);
  await syncedSet(devs);
  const { log } = open(devs);
  await log.resume();
  for (const r of [3, 17, 40, 41]) log.markDirty(r);
  await log.flush();
  log.markClean(17);
  await log.flush();
  log.markClean(40); // never flushed: the crash loses it, so 40 is resynced too
  // crash: reopen from the same memory
  const again = open(devs);
  await again.log.resume();
  assert.equal(again.log.loadOutcome, "bitmap");
  assert.deepEqual(outOfSync(again.log), [3, 40, 41]);
  assert.equal(again.log.isClean(3), false);
  assert.equal(again.log.isClean(4), true);
  assert.equal(again.log.nextToResync(0), 3);
});

test("the superblock with the highest events wins; a bitmap behind it is stale: full sync", async () => {
  const devs = mem(2);
  const log = await syncedSet(devs);
  assert.equal(log.eventCount, 1n);
  // leg 1's superblock moves ahead of every bitmap (as if the bitmap write were lost)
  const sb1 = decodeDmRaidSuperblock(devs[1]!.bytes.subarray(0, 4096));
  assert.ok(sb1.kind === "superblock");
  devs[1]!.bytes.set(encodeDmRaidSuperblock({ ...sb1.superblock, eventCount: 5n }));
  const { log: again } = open(devs);
  await again.resume();
  assert.equal(again.freshestSlot, 1);
  assert.equal(again.loadOutcome, "stale");
  assert.equal(again.syncCount, 0);
  assert.equal(again.eventCount, 5n);
  assert.deepEqual(again.rmetaLoads.map((l) => l.kind), ["valid", "valid"]);
});

test("a STALE bitmap forces a full sync", async () => {
  const devs = mem(2);
  await syncedSet(devs);
  for (const d of devs) d.bytes[4096 + 48] = BITMAP_STALE;
  const { log } = open(devs);
  await log.resume();
  assert.equal(log.loadOutcome, "stale");
  assert.equal(log.syncCount, 0);
});

test("an unfinished initial sync (array_resync_offset) resyncs from there on, as well as set bits", async () => {
  const devs = mem(2);
  const first = open(devs);
  await first.log.resume();
  await first.log.commitSuperblocks({ ...newRaid1Superblock({ numDevices: 2, arrayPosition: 0, arraySectors: 512n }), arrayResyncOffsetSectors: 400n });
  for (let r = 0; r < 64; r++) first.log.markClean(r);
  first.log.markDirty(2);
  await first.log.flush();
  const { log } = open(devs);
  await log.resume();
  assert.deepEqual(outOfSync(log), [2, ...Array.from({ length: 14 }, (_, i) => 50 + i)]);
});

test("commitSuperblocks writes the bitmap events first, then each dm-raid superblock, events + 1", async () => {
  const devs = mem(2);
  const rec = new IoRecorder();
  const f = devs.map((d) => new FaultBlockDevice(d, { recorder: rec }));
  const { log } = open(f);
  await log.resume();
  const start = rec.nextSeq;
  const r = await log.commitSuperblocks(newRaid1Superblock({ numDevices: 2, arrayPosition: 0, arraySectors: 512n }));
  assert.equal(r.eventCount, 1n);
  const w = rec.records.filter((x) => x.seq >= start);
  assert.deepEqual(w.map((x) => x.offsetBytes), [4096, 4096, 0, 0]);
  for (const d of devs) {
    assert.equal(decodeMdBitmapSuperblock(d.bytes.subarray(4096)).eventCount, 1n);
    const sb = decodeDmRaidSuperblock(d.bytes.subarray(0, 4096));
    assert.equal(sb.kind === "superblock" && sb.superblock.eventCount, 1n);
  }
  await log.commitSuperblocks(newRaid1Superblock({ numDevices: 2, arrayPosition: 0, arraySectors: 512n }));
  assert.equal(log.eventCount, 2n);
});

test("a failed rmeta write is reported; the log goes on with the others", async () => {
  const devs = mem(3);
  await syncedSet(devs);
  const f = devs.map((d) => new FaultBlockDevice(d));
  const { log, failures } = open(f);
  await log.resume();
  f[1]!.addRule({ ops: ["write"], errno: "EIO" });
  log.markDirty(5);
  await log.flush();
  assert.deepEqual(failures, [[1, "EIO"]]);
  assert.deepEqual(log.rmetaStates, ["live", "failed", "live"]);
  assert.equal(log.isMarkDurable(5), true);
  assert.equal(log.persistent, true);
  assert.equal(log.health, "A");
  assert.equal(mdBit(devs[0]!, 5), 1);
  assert.equal(mdBit(devs[2]!, 5), 1);
  // later writes skip the failed rmeta and are not reported again
  log.markDirty(6);
  await log.flush();
  assert.equal(failures.length, 1);
  // superblocks record the slot the log dropped as failed
  const r = await log.commitSuperblocks(newRaid1Superblock({ numDevices: 3, arrayPosition: 0, arraySectors: 512n }));
  assert.equal(r.failedDevices, 2n);
});

test("when every rmeta has failed the log is D, not persistent, and marks no longer wait", async () => {
  const devs = mem(2);
  await syncedSet(devs);
  const f = devs.map((d) => new FaultBlockDevice(d));
  const { log, failures } = open(f);
  await log.resume();
  for (const x of f) x.addRule({ ops: ["write"] });
  log.markDirty(1);
  await log.flush();
  assert.equal(log.health, "D");
  assert.equal(log.persistent, false);
  assert.equal(log.isMarkDurable(1), true);
  assert.equal(failures.length, 2);
});

test("resume never throws: unreadable, invalid and absent rmetas are recorded, the rest used", async () => {
  const devs = mem(4);
  await syncedSet(devs.slice(0, 2));
  devs[2]!.bytes[100] = 7; // no magic, not zero: invalid
  const gone = new FaultBlockDevice(devs[3]!);
  gone.vanish("EIO");
  const { log, failures } = open([devs[0], devs[1], devs[2], gone, undefined]);
  await log.resume();
  assert.deepEqual(log.rmetaLoads.map((l) => l.kind), ["valid", "valid", "invalid", "unreadable", "absent"]);
  assert.deepEqual(failures, [[2, "EINVAL"], [3, "EIO"]]);
  assert.deepEqual(log.rmetaStates, ["live", "live", "failed", "failed", "absent"]);
  assert.equal(log.loadOutcome, "bitmap");
  assert.equal(devs[2]!.bytes[4096], 0, "an invalid rmeta is not overwritten");

  const allGone = mem(1).map((d) => new FaultBlockDevice(d));
  allGone[0]!.vanish("EIO");
  const b = open(allGone);
  await b.log.resume();
  assert.equal(b.log.health, "D");
  assert.equal(b.log.syncCount, 0);
});

test("a bitmap of another region size is not trusted: full sync", async () => {
  const devs = mem(2);
  await syncedSet(devs);
  const failures: unknown[] = [];
  const log = new MdBitmapDirtyLog({
    regionSectors: 16,
    dataSectors: 512,
    syncMode: "default",
    rmetas: devs.map((d, i) => ({ name: `m${i}`, dev: d })),
    onFailure: (s, e) => failures.push([s, e]),
  });
  await log.resume();
  assert.equal(log.loadOutcome, "no-bitmap");
  assert.equal(log.syncCount, 0);
  assert.equal(decodeMdBitmapSuperblock(devs[0]!.bytes.subarray(4096)).chunkBytes, 8192);
});

test("the LV grew (lvextend of every image): the old regions keep their bits, the new ones and the old last partial one resync", async () => {
  const devs = mem(2);
  const before = await syncedSet(devs, 40);
  before.markDirty(3);
  await before.flush();
  // 40 regions of 8 sectors, now 70.5 regions' worth: the old ones keep their state.
  const log = new MdBitmapDirtyLog({
    regionSectors: REGION_SECTORS,
    dataSectors: 70 * REGION_SECTORS + 4,
    syncMode: "default",
    rmetas: devs.map((d, i) => ({ name: `lv_rmeta_${i}`, dev: d })),
    onFailure: () => undefined,
  });
  await log.resume();
  assert.equal(log.loadOutcome, "bitmap");
  assert.deepEqual(outOfSync(log), [3, ...Array.from({ length: 31 }, (_, i) => 40 + i)]);
  assert.equal(decodeMdBitmapSuperblock(devs[0]!.bytes.subarray(4096)).syncSectors, BigInt(70 * REGION_SECTORS + 4));
});

test("the LV shrank: the regions both sizes share keep their bits, nothing else resyncs", async () => {
  const devs = mem(2);
  const before = await syncedSet(devs, 64);
  before.markDirty(5);
  before.markDirty(50);
  await before.flush();
  const { log } = open(devs, 32);
  await log.resume();
  assert.equal(log.loadOutcome, "bitmap");
  assert.deepEqual(outOfSync(log), [5]);
});
