import { test } from "node:test";
import assert from "node:assert/strict";
import { mirrorRig } from "./mirror-rig.js";
import { IoRecorder, crashImage } from "../../../blockdev/fault-block-device.js";
import { MemoryBlockDevice } from "../../../blockdev/memory-block-device.js";
import { decodeDiskLog } from "../../dirty-log/disk-log-format.js";
import { testBit } from "../../dirty-log/bitset.js";
import { Prng, equalBytes, firstDiff, tick } from "../../test-helpers.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";

/**
 * Crash consistency. A "crash" drops the mirror without any cleanup (its
 * devices vanish so it can touch nothing more) and a new mirror is built on
 * the same backing stores, as after a power cut or a SIGKILLed daemon.
 */

const R = 64 * SECTOR_BYTES;

test("killed mid-write: only the regions dirty in the log are resynced, and the legs converge", async () => {
  const a = await mirrorRig({ sizeSectors: 4096 });
  await a.dev.write(2 * R, new Uint8Array(512).fill(1));
  await a.dev.write(10 * R, new Uint8Array(512).fill(1));
  await a.target.cleanNow();
  await a.dev.write(20 * R, new Uint8Array(512).fill(2)); // dirty, never cleaned
  a.legs[1]!.hold(["write"]);
  const inflight = a.dev.write(30 * R + R / 2, new Uint8Array(R).fill(3)); // spans regions 30-31, reaches leg 0 only
  await tick();
  await tick();
  assert.equal(a.legMems[0]!.bytes[31 * R], 3);
  assert.equal(a.legMems[1]!.bytes[31 * R], 0);
  // crash
  for (const f of [...a.legs, a.log]) f.vanish();
  a.legs[1]!.release();
  await inflight.catch(() => undefined);

  const rec = new IoRecorder();
  const b = await mirrorRig({ sizeSectors: 4096, memories: { legs: a.legMems, log: a.logMem }, mirror: { resyncEnabled: false }, recorder: rec });
  const s = b.target.status();
  assert.equal(s.totalRegions - s.insyncRegions, 3, "regions 20, 30, 31 are dirty");
  for (const r of [20, 30, 31]) assert.equal(b.target.log.isInSync(r), false);
  // Until resynced, region 31 is served from leg 0 (the source), which has the data.
  const buf = new Uint8Array(512);
  await b.dev.read(31 * R, buf);
  assert.equal(buf[0], 3);
  await b.target.setResyncEnabled(true);
  await b.target.whenInSync();
  assert.equal(b.target.status().resync.copiedRegions, 3);
  const touched = new Set<number>();
  for (const x of rec.records) {
    if (x.device !== "leg1" || x.op !== "write") continue;
    for (let r = Math.floor(x.offsetBytes / R); r * R < x.offsetBytes + x.data.length; r++) touched.add(r);
  }
  assert.deepEqual([...touched].sort((p, q) => p - q), [20, 30, 31], "the resync wrote nothing else");
  assert.equal(rec.records.filter((x) => x.device === "leg0" && x.op === "write").length, 0, "the source is never written");
  assert.ok(equalBytes(b.legMems[0]!.bytes, b.legMems[1]!.bytes));
  assert.equal(b.legMems[1]!.bytes[31 * R], 3);
  // after a clean suspend nothing is dirty any more
  await b.dev.suspend();
  const bits = decodeDiskLog(b.logMem.bytes, 64).cleanBits;
  for (let r = 0; r < 64; r++) assert.equal(testBit(bits, r), true);
});

for (const seed of [21, 22, 23]) {
  test(`crash at any point: "clean" in the log implies identical legs, and recovery converges (seed ${seed})`, async () => {
    const rng = new Prng(seed);
    const sizeSectors = 2048;
    const regionSectors = 32;
    const regionCount = sizeSectors / regionSectors;
    const rec = new IoRecorder();
    const a = await mirrorRig({ sizeSectors, regionSectors, recorder: rec, mirror: { resyncEnabled: true } });
    const bases = {
      leg0: a.legMems[0]!.bytes.slice(),
      leg1: a.legMems[1]!.bytes.slice(),
      log: a.logMem.bytes.slice(),
    };
    // Slow leg flushes widen the window in which a region can be written
    // while the cleaner is flushing the legs (it must then stay dirty).
    for (const l of a.legs) l.setDelay({ flush: 1 });
    // Slow log writes: a leg write issued before its region's dirty mark is
    // durable would show up as a clean region with differing legs.
    const jitter = new Prng(seed + 1);
    a.log.setDelay((op) => (op === "write" ? jitter.int(2) : 0));
    const client = async (c: number): Promise<void> => {
      for (let i = 0; i < 60; i++) {
        const start = rng.int(sizeSectors - 1);
        const len = 1 + rng.int(Math.min(80, sizeSectors - start) - 1 || 1);
        const k = rng.int(12);
        if (k < 9) await a.dev.write(start * SECTOR_BYTES, rng.pattern(len * SECTOR_BYTES, c * 1000 + i), { fua: k === 0 });
        else if (k < 11) await a.dev.flush();
        else await a.target.cleanNow();
        if (rng.int(3) === 0) await tick();
      }
    };
    await Promise.all([0, 1, 2].map(client));
    await a.dev.suspend();
    const total = rec.nextSeq;
    const points = [total, ...Array.from({ length: 25 }, () => rng.int(total))];
    let recoveries = 0;
    for (const crashSeq of points) {
      const coin = new Prng(seed * 7919 + crashSeq);
      const keep = () => coin.int(2) === 0;
      const leg0 = crashImage(bases.leg0, rec.records, "leg0", crashSeq, keep);
      const leg1 = crashImage(bases.leg1, rec.records, "leg1", crashSeq, keep);
      const log = crashImage(bases.log, rec.records, "log", crashSeq, keep);
      // The invariant the cleaner promises: a clean bit on stable storage means identical legs.
      const { cleanBits } = decodeDiskLog(log, regionCount);
      let dirty = 0;
      for (let r = 0; r < regionCount; r++) {
        const span = [r * regionSectors * SECTOR_BYTES, (r + 1) * regionSectors * SECTOR_BYTES] as const;
        if (!testBit(cleanBits, r)) {
          dirty++;
          continue;
        }
        const d = firstDiff(leg0.subarray(...span), leg1.subarray(...span));
        assert.equal(d, -1, `crash at ${crashSeq}: region ${r} is clean in the log but the legs differ at byte ${d}`);
      }
      // Reactivate on the crash images: only dirty regions are copied; the legs converge.
      const b = await mirrorRig({
        sizeSectors,
        regionSectors,
        memories: { legs: [new MemoryBlockDevice("leg0", leg0), new MemoryBlockDevice("leg1", leg1)], log: new MemoryBlockDevice("log", log) },
      });
      await b.target.whenInSync();
      assert.equal(b.target.status().resync.copiedRegions, dirty);
      assert.ok(equalBytes(b.legMems[0]!.bytes, b.legMems[1]!.bytes), `crash at ${crashSeq}: legs differ after recovery`);
      assert.ok(equalBytes(b.legMems[0]!.bytes, leg0), "the source leg is never written by the resync");
      await b.dev.remove();
      recoveries++;
    }
    assert.equal(recoveries, points.length);
  });
}
