import { test } from "node:test";
import assert from "node:assert/strict";
import { MismatchCoalescer, mergeRuns, type MismatchBatch } from "./mismatch-coalescer.js";

test("mergeRuns joins adjacent and overlapping runs, in order", () => {
  assert.deepEqual(
    mergeRuns([
      { sector: 16, sectors: 8 },
      { sector: 0, sectors: 8 },
      { sector: 8, sectors: 8 },
      { sector: 40, sectors: 8 },
      { sector: 44, sectors: 8 },
    ]),
    [
      { sector: 0, sectors: 24 },
      { sector: 40, sectors: 12 },
    ],
  );
});

test("a scan's thousands of reports per leg become one batch: the first runs and a count of the rest; legs and healed/uncorrectable apart", async () => {
  const got: MismatchBatch[] = [];
  const c = new MismatchCoalescer((b) => got.push(b), 10_000, 4);
  // 1000 reads of 8 sectors, every other one bad: 500 separate runs on leg 1.
  for (let i = 0; i < 1000; i += 2) c.add({ device: "vg-r", leg: 1, legDevice: "vg-r_rimage_1", healed: true, runs: [{ sector: i * 8, sectors: 8 }] });
  // A contiguous rotten area read in pieces on leg 0: one run.
  for (let i = 0; i < 100; i++) c.add({ device: "vg-r", leg: 0, legDevice: "vg-r_rimage_0", healed: true, runs: [{ sector: 100_000 + i * 8, sectors: 8 }] });
  c.add({ device: "vg-r", leg: 0, legDevice: "vg-r_rimage_0", healed: false, runs: [{ sector: 5, sectors: 1 }] });
  assert.equal(got.length, 0, "nothing before the window ends");
  c.flush();
  assert.equal(got.length, 3);
  const leg1 = got.find((b) => b.leg === 1)!;
  assert.equal(leg1.runs.length, 4);
  assert.deepEqual(leg1.runs[0], { sector: 0, sectors: 8 });
  assert.equal(leg1.omittedRuns, 496);
  assert.equal(leg1.omittedSectors, 496 * 8);
  const leg0 = got.find((b) => b.leg === 0 && b.healed)!;
  assert.deepEqual(leg0.runs, [{ sector: 100_000, sectors: 800 }]);
  assert.equal(leg0.omittedRuns, 0);
  assert.deepEqual(got.find((b) => !b.healed)!.runs, [{ sector: 5, sectors: 1 }]);
});
