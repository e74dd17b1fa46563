import { test } from "node:test";
import assert from "node:assert/strict";
import { planRaid1 } from "./raid1-plan.js";
import { parseRaid1Args } from "./raid1-args.js";
import { newRaid1Superblock, withPositionFailed, MAX_SECTOR } from "../../raid/dm-raid-superblock.js";
import type { RmetaLoad } from "../../raid/rmeta-io.js";

/** The split-brain rule of planRaid1 (issue 18): a returning leg written by another side is never the authority. */
const LEN = 1 << 20;
const args = parseRaid1Args("raid1 3 0 region_size 4096 2 m0 d0 m1 d1".split(" "), LEN);

function sb(slot: number, events: bigint, failed: number[]): RmetaLoad {
  let failedDevices = 0n;
  for (const f of failed) failedDevices = withPositionFailed(failedDevices, f, true);
  const s = { ...newRaid1Superblock({ numDevices: 2, arrayPosition: slot, arraySectors: BigInt(LEN), nosync: true, eventCount: events }), failedDevices };
  assert.equal(s.arrayResyncOffsetSectors, MAX_SECTOR);
  return { kind: "valid", superblock: s, bitmap: undefined };
}

test("a returning leg with an untouched superblock (older, marks nobody failed) is recovered from the bitmap", () => {
  const plan = planRaid1([sb(0, 10n, [1]), sb(1, 8n, [])], args, LEN, { inSyncBefore: new Set([0]) });
  assert.deepEqual(plan.slots, [{ kind: "in-sync" }, { kind: "recover", recovery: "dirty", reason: "failed-bit" }]);
});

test("reload: a returning leg whose superblock marks the survivor failed, with more events, is recovered in full from the survivor", () => {
  const loads = [sb(0, 10n, [1]), sb(1, 50n, [0])];
  // dm-raid's rule alone (the highest events) would take slot 1 as the authority and recover slot 0.
  assert.equal(planRaid1(loads, args, LEN).template.arrayPosition, 1);
  const plan = planRaid1(loads, args, LEN, { inSyncBefore: new Set([0]) });
  assert.equal(plan.template.arrayPosition, 0, "the survivor's superblock is the authority");
  assert.deepEqual(plan.slots, [{ kind: "in-sync" }, { kind: "recover", recovery: "full", reason: "split" }]);
});

test("reload: a returning leg newer than the survivor, marking nobody failed, is recovered in full too", () => {
  const plan = planRaid1([sb(0, 10n, [1]), sb(1, 11n, [])], args, LEN, { inSyncBefore: new Set([0]) });
  assert.deepEqual(plan.slots[1], { kind: "recover", recovery: "full", reason: "split" });
});

test("cold activation: two superblocks marking each other failed are a split: the other side is recovered in full, never merged", () => {
  const plan = planRaid1([sb(0, 12n, [1]), sb(1, 9n, [0])], args, LEN);
  assert.deepEqual(plan.slots, [{ kind: "in-sync" }, { kind: "recover", recovery: "full", reason: "split" }]);
});

test("a healthy reload keeps every leg in sync", () => {
  const plan = planRaid1([sb(0, 10n, []), sb(1, 10n, [])], args, LEN, { inSyncBefore: new Set([0, 1]) });
  assert.deepEqual(plan.slots, [{ kind: "in-sync" }, { kind: "in-sync" }]);
});
