import { test } from "node:test";
import assert from "node:assert/strict";
import { raid1Rig } from "./raid1-rig.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";

/**
 * md's read_balance in the raid1 target: reads of in-sync regions are spread
 * over the legs, a sequential stream stays on one leg, write-mostly legs and
 * stale or failed legs serve no read while another leg can. Which leg served
 * a read is told by its bytes: after the sync each image is filled with its
 * own byte behind the target's back.
 */
async function syncedRig(params: string[] = []) {
  const r = await raid1Rig({ params, sizeSectors: 2048 });
  await r.target.whenInSync();
  r.dataMems.forEach((m, i) => m.bytes.fill(i + 1));
  const servedBy = async (sector: number, sectors = 8): Promise<number> => {
    const b = new Uint8Array(sectors * SECTOR_BYTES);
    await r.dev.read(sector * SECTOR_BYTES, b);
    return b[0]! - 1;
  };
  return { r, servedBy };
}

test("raid1 reads: a sequential stream stays on one leg; scattered reads alternate between the legs", async () => {
  const { r, servedBy } = await syncedRig();
  const seq = [];
  for (let s = 0; s < 64; s += 8) seq.push(await servedBy(s));
  assert.equal(new Set(seq).size, 1, `sequential reads from one leg: ${seq}`);
  const scattered = [];
  for (const s of [1000, 300, 1500, 40, 700, 1900]) scattered.push(await servedBy(s));
  assert.deepEqual(new Set(scattered), new Set([0, 1]), `scattered reads from both legs: ${scattered}`);
  await r.dev.remove();
});

test("raid1 reads: a write-mostly leg serves none while the other can, and all once it is the only one", async () => {
  const { r, servedBy } = await syncedRig(["write_mostly", "0"]);
  for (const s of [1000, 300, 1500, 40, 0, 8, 16]) assert.equal(await servedBy(s), 1, `read at ${s} from the write-mostly leg`);
  r.data[1]!.vanish("EIO");
  assert.equal(await servedBy(500), 0, "with leg 1 failed, the write-mostly leg serves");
  assert.equal(await servedBy(600), 0);
  await r.dev.remove();
});
