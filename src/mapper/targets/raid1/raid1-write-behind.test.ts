import { test } from "node:test";
import assert from "node:assert/strict";
import { raid1Rig, type Raid1Rig } from "./raid1-rig.js";
import { MemoryBlockDevice } from "../../../blockdev/memory-block-device.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";

/**
 * md's write-behind in the raid1 target (`write_mostly 0 max_write_behind N`):
 * a write is answered once the legs in front have it, while the write-mostly
 * leg's copy is still running; its region stays dirty until that copy lands;
 * a flush waits for it; and after a crash in between, the region is resynced
 * from a leg that is not write-mostly, so the acknowledged data wins.
 */
const PARAMS = ["write_mostly", "0", "max_write_behind", "16"];

/** Hold every write to leg 0 until released (the write-mostly leg is slow). */
function holdLeg0(r: Raid1Rig): { release(): void; held(): number } {
  const queue: Array<() => void> = [];
  const dev = r.data[0]!;
  const write = dev.write.bind(dev);
  dev.write = (offsetBytes, data, opts) => new Promise((resolve, reject) => queue.push(() => void write(offsetBytes, data, opts).then(resolve, reject)));
  return {
    release() {
      dev.write = write;
      for (const go of queue.splice(0)) go();
    },
    held: () => queue.length,
  };
}

const mdBit = (m: MemoryBlockDevice, region: number): number => (m.bytes[4352 + (region >> 3)]! >> (region & 7)) & 1;
const settled = async (p: Promise<unknown>): Promise<boolean> => {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return done;
};

test("write-behind: a write is answered while the write-mostly leg's copy is held; its region stays dirty; a flush waits for it", async () => {
  const r = await raid1Rig({ params: PARAMS });
  await r.target.whenInSync();
  const hold = holdLeg0(r);
  const data = new Uint8Array(8 * SECTOR_BYTES).fill(0xab);
  assert.equal(await settled(r.dev.write(0, data)), true, "answered with leg 0's write held");
  assert.equal(hold.held(), 1);
  assert.equal(r.dataMems[1]!.bytes[0], 0xab, "leg 1 has it");
  assert.equal(r.dataMems[0]!.bytes[0], 0, "leg 0 does not yet");
  assert.equal(mdBit(r.metaMems[0]!, 0), 1, "the region is dirty on disk");
  const flush = r.dev.flush();
  assert.equal(await settled(flush), false, "the flush waits for the behind write");
  hold.release();
  await flush;
  assert.equal(r.dataMems[0]!.bytes[0], 0xab);
  await r.dev.remove();
});

test("write-behind: a crash while the write-mostly leg lags resyncs the region from the other leg: the acknowledged data wins", async () => {
  const r = await raid1Rig({ params: PARAMS });
  await r.target.whenInSync();
  await r.dev.flush(); // the sync's bits cleared (no cleaner in the rig: a flush cleans idle regions)
  await r.dev.flush();
  assert.equal(mdBit(r.metaMems[1]!, 5), 0);
  const hold = holdLeg0(r);
  const region = 5;
  const off = region * r.regionSectors * SECTOR_BYTES;
  const data = new Uint8Array(4 * SECTOR_BYTES).fill(0x5a);
  assert.equal(await settled(r.dev.write(off, data)), true);
  // The crash: what is on the devices now, with leg 0's copy never written.
  const snap = (ms: MemoryBlockDevice[]) => ms.map((m) => new MemoryBlockDevice(m.name, m.bytes.slice()));
  const memories = { meta: snap(r.metaMems), data: snap(r.dataMems) };
  hold.release();
  await r.dev.remove();
  assert.equal(memories.data[0]!.bytes[off], 0);
  const again = await raid1Rig({ params: PARAMS, memories });
  await again.target.whenInSync();
  assert.equal(again.target.status().resync.copiedRegions, 1, "exactly the dirty region");
  assert.ok(again.dataMems[0]!.bytes.subarray(off, off + data.length).every((b) => b === 0x5a), "leg 0 got the acknowledged data");
  await again.dev.remove();
});

test("write-behind: at most max_write_behind/2 writes run behind; the next one waits for the oldest", async () => {
  const r = await raid1Rig({ params: ["write_mostly", "0", "max_write_behind", "4"] });
  await r.target.whenInSync();
  const hold = holdLeg0(r);
  const w = (i: number) => r.dev.write(i * r.regionSectors * SECTOR_BYTES, new Uint8Array(SECTOR_BYTES).fill(i + 1));
  assert.equal(await settled(w(0)), true);
  assert.equal(await settled(w(1)), true);
  assert.equal(await settled(w(2)), false, "a third write behind would exceed 2");
  hold.release();
  await r.dev.flush();
  for (let i = 0; i < 3; i++) assert.equal(r.dataMems[0]!.bytes[i * r.regionSectors * SECTOR_BYTES], i + 1);
  await r.dev.remove();
});
