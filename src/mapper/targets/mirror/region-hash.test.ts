import { test } from "node:test";
import assert from "node:assert/strict";
import { RegionHash } from "./region-hash.js";
import { CoreDirtyLog } from "../../dirty-log/core-log.js";

const regions = (c: ReadonlyArray<{ region: number }>): number[] => c.map((x) => x.region).sort((a, b) => a - b);

function hash(): { rh: RegionHash; log: CoreDirtyLog } {
  const log = new CoreDirtyLog(8, 16, "nosync");
  return { rh: new RegionHash(log, 8, 128), log };
}

test("cleanCandidates() without aging offers every idle, in-sync dirty region at once", () => {
  const { rh } = hash();
  rh.beginWrite(2, 3);
  assert.deepEqual(regions(rh.cleanCandidates()), [], "regions with writes in flight are not candidates");
  rh.endWrite(2, 3);
  assert.deepEqual(regions(rh.cleanCandidates()), [2, 3]);
});

test("cleanCandidates(n) offers a region only after n epochs without a write to it", () => {
  const { rh, log } = hash();
  rh.beginWrite(5, 5);
  rh.endWrite(5, 5);
  rh.beginWrite(6, 6);
  rh.endWrite(6, 6);
  rh.advanceEpoch();
  rh.advanceEpoch();
  assert.deepEqual(regions(rh.cleanCandidates(3)), [], "2 epochs idle: too young");
  // Region 6 written again: its age starts over.
  rh.beginWrite(6, 6);
  rh.endWrite(6, 6);
  rh.advanceEpoch();
  const c = rh.cleanCandidates(3);
  assert.deepEqual(regions(c), [5]);
  assert.equal(rh.commitClean(c), 1);
  assert.equal(log.isClean(5), true);
  assert.equal(log.isClean(6), false);
  rh.advanceEpoch();
  rh.advanceEpoch();
  assert.deepEqual(regions(rh.cleanCandidates(3)), [6]);
});

test("a region the resync just copied ages like a written one", () => {
  const log = new CoreDirtyLog(8, 16, "default");
  log.markAllOutOfSync();
  const rh = new RegionHash(log, 8, 128);
  rh.startRecovery(0, 1);
  rh.endRecovery(0, 1, true);
  assert.deepEqual(regions(rh.cleanCandidates()), [0, 1]);
  assert.deepEqual(regions(rh.cleanCandidates(2)), []);
  rh.advanceEpoch();
  rh.advanceEpoch();
  assert.deepEqual(regions(rh.cleanCandidates(2)), [0, 1]);
});
