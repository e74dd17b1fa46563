import { test } from "node:test";
import assert from "node:assert/strict";
import { raid1Rig } from "./raid1-rig.js";
import { IoRecorder } from "../../../blockdev/fault-block-device.js";
import { decodeDmRaidSuperblock, isPositionFailed, MAX_SECTOR, type DmRaidSuperblock } from "../../raid/dm-raid-superblock.js";
import { RMETA_BITMAP_OFFSET_BYTES, BITMAP_SUPERBLOCK_BYTES } from "../../raid/md-bitmap-format.js";
import { testBit } from "../../dirty-log/bitset.js";
import { MemoryBlockDevice } from "../../../blockdev/memory-block-device.js";
import { formatStatusInfo } from "../../status.js";
import { equalBytes, tick } from "../../test-helpers.js";
import { TableError } from "../../table-error.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";

const R = 64 * SECTOR_BYTES;

function sb(m: MemoryBlockDevice): DmRaidSuperblock {
  const d = decodeDmRaidSuperblock(m.bytes.subarray(0, 4096));
  if (d.kind !== "superblock") throw new Error(`${m.name}: no superblock`);
  return d.superblock;
}

function mdBit(m: MemoryBlockDevice, region: number): boolean {
  return testBit(m.bytes.subarray(RMETA_BITMAP_OFFSET_BYTES + BITMAP_SUPERBLOCK_BYTES), region);
}

test("a new set fully syncs, then every rmeta's superblock says in sync with events raised", async () => {
  const metaMems = [0, 1].map((i) => new MemoryBlockDevice(`rmeta${i}`, 64 * 1024));
  const dataMems = [0, 1].map((i) => new MemoryBlockDevice(`rimage${i}`, 2048 * SECTOR_BYTES));
  dataMems[0]!.bytes.fill(7);
  const r = await raid1Rig({ memories: { meta: metaMems, data: dataMems } });
  assert.equal(r.target.log.loadOutcome, "fresh");
  await r.target.whenInSync();
  assert.equal(r.target.status().resync.copiedRegions, 32);
  assert.ok(equalBytes(dataMems[0]!.bytes, dataMems[1]!.bytes));
  const st = r.target.status();
  assert.equal(formatStatusInfo(st), "raid1 2 AA 2048/2048 idle 0 0 -");
  for (const m of metaMems) {
    const s = sb(m);
    assert.equal(s.arrayResyncOffsetSectors, MAX_SECTOR);
    assert.equal(s.diskRecoveryOffsetSectors, MAX_SECTOR);
    assert.equal(s.failedDevices, 0n);
    assert.ok(s.eventCount >= 2n, `events ${s.eventCount}: preresume and end of resync`);
  }
  assert.equal(sb(metaMems[0]!).arrayPosition, 0);
  assert.equal(sb(metaMems[1]!).arrayPosition, 1);
  await r.dev.remove();
});

test("while the initial sync runs the status says resync and every device 'a'", async () => {
  const r = await raid1Rig({ raid: { resyncEnabled: false } });
  assert.equal(formatStatusInfo(r.target.status()), "raid1 2 aa 0/2048 resync 0 0 -");
  assert.equal(sb(r.metaMems[0]!).arrayResyncOffsetSectors, 0n, "initial sync not done");
  await r.dev.remove();
});

test("nosync: in sync at once, no copy", async () => {
  const r = await raid1Rig({ params: ["nosync"] });
  await r.target.whenInSync();
  assert.equal(r.target.status().resync.copiedRegions, 0);
  assert.equal(formatStatusInfo(r.target.status()), "raid1 2 AA 2048/2048 idle 0 0 -");
  assert.equal(sb(r.metaMems[1]!).arrayResyncOffsetSectors, MAX_SECTOR);
  await r.dev.remove();
});

test("a write sets its region's bit durably on every rmeta before any leg sees the data", async () => {
  const rec = new IoRecorder();
  const r = await raid1Rig({ params: ["nosync"], recorder: rec });
  await r.target.whenInSync();
  rec.records.length = 0;
  await r.dev.write(5 * R, new Uint8Array(4096).fill(9));
  const firstData = rec.records.findIndex((x) => x.device.startsWith("rimage") && x.op === "write");
  assert.ok(firstData >= 0);
  for (const m of ["rmeta0", "rmeta1"]) {
    const bitWrite = rec.records.findIndex((x) => x.device === m && x.op === "write" && x.offsetBytes >= RMETA_BITMAP_OFFSET_BYTES);
    assert.ok(bitWrite >= 0 && bitWrite < firstData, `${m}'s bitmap written before the data`);
  }
  for (const m of r.metaMems) assert.equal(mdBit(m, 5), true);
  await r.dev.remove();
});

test("a leg's EIO: the write is acked only after the superblocks record its failed bit, and reads never touch it", async () => {
  const r = await raid1Rig({ params: ["nosync"] });
  await r.target.whenInSync();
  const before = sb(r.metaMems[0]!).eventCount;
  r.data[1]!.addRule({ ops: ["read", "write"] });
  r.meta[0]!.hold(["write"]); // the superblock write of the record waits
  let acked = false;
  const w = r.dev.write(3 * R, new Uint8Array(512).fill(4)).then(() => (acked = true));
  for (let i = 0; i < 10; i++) await tick();
  assert.equal(acked, false, "held until the failure is on disk");
  r.meta[0]!.release();
  await w;
  for (const m of [r.metaMems[0]!]) {
    const s = sb(m);
    assert.ok(isPositionFailed(s.failedDevices, 1));
    assert.ok(s.eventCount > before);
  }
  assert.equal(formatStatusInfo(r.target.status()), "raid1 2 AD 2048/2048 idle 0 0 -");
  assert.deepEqual(
    r.env.events.filter((e) => e.kind === "leg-failed").map((e) => (e.kind === "leg-failed" ? e.leg : -1)),
    [1],
  );
  const leg1 = r.data[1]!;
  const origRead = leg1.read.bind(leg1);
  let leg1Reads = 0;
  leg1.read = (off, into, o) => {
    leg1Reads++;
    return origRead(off, into, o);
  };
  const buf = new Uint8Array(2048 * SECTOR_BYTES);
  await r.dev.read(0, buf);
  assert.equal(buf[3 * R], 4);
  assert.equal(leg1Reads, 0, "no read from the failed leg");
  await r.dev.remove();
});

test("reopened with the failed leg readable again: only the regions written meanwhile are recovered, then its bit is cleared", async () => {
  const a = await raid1Rig({ params: ["nosync"], sizeSectors: 4096 });
  await a.target.whenInSync();
  await a.dev.write(1 * R, new Uint8Array(R).fill(1));
  await a.target.core.cleanNow();
  a.data[1]!.vanish("EIO");
  for (const region of [3, 7, 12]) await a.dev.write(region * R, new Uint8Array(1024).fill(region));
  await a.dev.write(20 * R - 512, new Uint8Array(1024).fill(20)); // spans 19 and 20
  await a.dev.flush();
  await a.dev.suspend();
  await a.dev.remove();
  assert.ok(isPositionFailed(sb(a.metaMems[0]!).failedDevices, 1));

  const rec = new IoRecorder();
  const b = await raid1Rig({ sizeSectors: 4096, memories: { meta: a.metaMems, data: a.dataMems }, recorder: rec, raid: { resyncEnabled: false } });
  const st = b.target.status();
  assert.equal(st.syncAction, "recover");
  assert.equal(formatStatusInfo(st).split(" ")[2], "Aa");
  assert.equal(st.devices[1]!.recovery, "dirty");
  await b.target.core.setResyncEnabled(true);
  await b.target.whenInSync();
  assert.equal(b.target.status().resync.copiedRegions, 5, "regions 3, 7, 12, 19, 20");
  assert.equal(rec.records.filter((x) => x.device === "rimage0" && x.op === "write").length, 0, "the in-sync leg is not written");
  assert.ok(equalBytes(a.dataMems[0]!.bytes, a.dataMems[1]!.bytes));
  for (const m of a.metaMems) assert.equal(sb(m).failedDevices, 0n);
  assert.equal(formatStatusInfo(b.target.status()), "raid1 2 AA 4096/4096 idle 0 0 -");
  await b.dev.remove();
});

test("crash mid-writes: exactly the dirty-bitmap regions resync and the legs end identical", async () => {
  const a = await raid1Rig({ params: ["nosync"], sizeSectors: 4096 });
  await a.target.whenInSync();
  await a.dev.write(2 * R, new Uint8Array(512).fill(1));
  await a.target.core.cleanNow();
  await a.dev.write(20 * R, new Uint8Array(512).fill(2)); // dirty, never cleaned
  a.data[1]!.hold(["write"]);
  const inflight = a.dev.write(30 * R + R / 2, new Uint8Array(R).fill(3)); // 30-31, reaches leg 0 only
  await tick();
  await tick();
  for (const f of [...a.data, ...a.meta]) f.vanish();
  a.data[1]!.release();
  await inflight.catch(() => undefined);
  assert.equal(a.dataMems[1]!.bytes[31 * R], 0);

  const b = await raid1Rig({ sizeSectors: 4096, memories: { meta: a.metaMems, data: a.dataMems }, raid: { resyncEnabled: false } });
  assert.equal(b.target.log.loadOutcome, "bitmap");
  const s = b.target.status();
  assert.equal(s.totalRegions - s.insyncRegions, 3);
  assert.equal(s.syncAction, "resync");
  await b.target.core.setResyncEnabled(true);
  await b.target.whenInSync();
  assert.equal(b.target.status().resync.copiedRegions, 3);
  assert.ok(equalBytes(a.dataMems[0]!.bytes, a.dataMems[1]!.bytes));
  await b.dev.remove();
});

test("a `- -` slot is failed from the start, recorded in the superblocks, and degraded writes keep their bits", async () => {
  const r = await raid1Rig({ legs: 3, absent: [1], params: ["nosync"] });
  await r.target.whenInSync();
  assert.equal(formatStatusInfo(r.target.status()), "raid1 3 A-A 2048/2048 idle 0 0 -");
  assert.ok(isPositionFailed(sb(r.metaMems[0]!).failedDevices, 1));
  await r.dev.write(4 * R, new Uint8Array(512).fill(1));
  await r.target.core.cleanNow();
  assert.equal(mdBit(r.metaMems[2]!, 4), true, "no bit cleared while degraded");
  assert.ok(equalBytes(r.dataMems[0]!.bytes, r.dataMems[2]!.bytes));
  assert.equal(r.env.events.filter((e) => e.kind === "leg-failed").length, 0);
  await r.dev.remove();
});

test("a zeroed rmeta in an existing set is refused without rebuild, and rebuilt in full with it", async () => {
  const a = await raid1Rig({ params: ["nosync"] });
  await a.target.whenInSync();
  await a.dev.write(0, new Uint8Array(2048 * SECTOR_BYTES).fill(5));
  await a.dev.suspend();
  await a.dev.remove();
  a.metaMems[1]!.bytes.fill(0, 0, 4096);
  a.dataMems[1]!.bytes.fill(0);
  await assert.rejects(
    raid1Rig({ memories: { meta: a.metaMems, data: a.dataMems } }),
    (e: unknown) => e instanceof TableError && /New device injected into existing raid set without 'delta_disks' or 'rebuild' parameter specified/.test(e.message),
  );
  const b = await raid1Rig({ params: ["rebuild", "1"], memories: { meta: a.metaMems, data: a.dataMems }, raid: { resyncEnabled: false } });
  assert.equal(sb(a.metaMems[1]!).diskRecoveryOffsetSectors, 0n, "recovering from 0");
  assert.equal(b.target.status().syncAction, "recover");
  await b.target.core.setResyncEnabled(true);
  await b.target.whenInSync();
  assert.equal(b.target.status().resync.copiedRegions, 32);
  assert.ok(equalBytes(a.dataMems[0]!.bytes, a.dataMems[1]!.bytes));
  assert.equal(sb(a.metaMems[1]!).diskRecoveryOffsetSectors, MAX_SECTOR);
  await b.dev.remove();
});

test("no in-sync leg left: Insufficient redundancy to activate array", async () => {
  const a = await raid1Rig({ params: ["nosync"] });
  await a.target.whenInSync();
  await a.dev.suspend();
  await a.dev.remove();
  a.metaMems[0]!.bytes.fill(0xee, 0, 512); // leg 0's superblock garbled: faulty
  await assert.rejects(
    raid1Rig({ memories: { meta: a.metaMems, data: a.dataMems }, absent: [1] }),
    (e: unknown) => e instanceof TableError && /Insufficient redundancy to activate array/.test(e.message),
  );
});

test("a throttled initial sync stopped as soon as its last region is in sync still records array_resync_offset MaxSector", async () => {
  const r = await raid1Rig();
  // 32 regions of 32 KiB at 4 MiB/s: the last batch ends about 250 ms in, and the copier then sleeps to keep the rate.
  r.target.core.setResyncRate(4 << 20);
  for (let i = 0; i < 2000; i++) {
    const s = r.target.status();
    if (s.insyncRegions === s.totalRegions) break;
    await new Promise((res) => setTimeout(res, 2));
  }
  assert.equal(r.target.status().insyncRegions, r.target.status().totalRegions);
  // A clean deactivation right then (lvchange -an after the status said 100%).
  await r.dev.remove();
  for (const m of r.metaMems) assert.equal(sb(m).arrayResyncOffsetSectors, MAX_SECTOR, `${m.name}: the initial sync is recorded as done`);
});
