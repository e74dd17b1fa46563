import { test } from "node:test";
import assert from "node:assert/strict";
import { raid1Rig } from "./raid1-rig.js";
import { MemoryBlockDevice } from "../../../blockdev/memory-block-device.js";
import { Prng, equalBytes, firstDiff } from "../../test-helpers.js";
import { decodeDmRaidSuperblock, isPositionFailed } from "../../raid/dm-raid-superblock.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";
import { injectLegFault, runRandomClients } from "../mirror/random-clients.js";

/**
 * The differential pattern of mirror-differential.test.ts against raid1:
 * concurrent clients do random reads, writes (some FUA, many spanning
 * regions) and flushes while legs fail through fault devices and the
 * initial resync runs. Checked: no client error while a good leg survives,
 * every read matches the reference, no read reaches a failed leg, one
 * leg-failed event per failed leg, every failed leg's bit in the surviving
 * superblocks, and the live legs equal the reference at the end.
 */

const SIZE_SECTORS = 4096;
const REGION_SECTORS = 64;
const CLIENTS = 4;
const OPS_PER_CLIENT = 120;

const CONFIGS = [
  { seed: 31, legs: 2, nosync: false },
  { seed: 32, legs: 3, nosync: true },
  { seed: 33, legs: 3, nosync: false },
  { seed: 34, legs: 4, nosync: false },
];

for (const cfg of CONFIGS) {
  test(`raid1 under random I/O with failing legs: ${cfg.legs} legs, ${cfg.nosync ? "nosync" : "initial resync"} (seed ${cfg.seed})`, async () => {
    const rng = new Prng(cfg.seed);
    const ref = rng.bytes(SIZE_SECTORS * SECTOR_BYTES);
    const dataMems = Array.from({ length: cfg.legs }, (_, i) => new MemoryBlockDevice(`rimage${i}`, SIZE_SECTORS * SECTOR_BYTES));
    const metaMems = Array.from({ length: cfg.legs }, (_, i) => new MemoryBlockDevice(`rmeta${i}`, 64 * 1024));
    dataMems[0]!.bytes.set(ref);
    if (cfg.nosync) for (const m of dataMems) m.bytes.set(ref);
    const r = await raid1Rig({
      legs: cfg.legs,
      sizeSectors: SIZE_SECTORS,
      regionSectors: REGION_SECTORS,
      params: cfg.nosync ? ["nosync"] : [],
      memories: { meta: metaMems, data: dataMems },
      raid: { resyncBatchBytes: 32 * 1024, resyncIoBytes: 16 * 1024, resyncRateBytesPerSec: 16 << 20 },
      noResume: true,
    });
    const jitter = new Prng(cfg.seed + 1000);
    for (const f of [...r.data, ...r.meta]) f.setDelay(() => (jitter.int(4) === 0 ? 1 : 0));
    const violations: string[] = [];
    r.data.forEach((d, i) => {
      const orig = d.read.bind(d);
      d.read = (off, into, o) => {
        const core = r.target.core;
        if (core.legs[i]!.failed) violations.push(`read issued to failed leg ${i}`);
        const first = core.regions.regionOf(off / SECTOR_BYTES);
        const last = core.regions.regionOf((off + into.length) / SECTOR_BYTES - 1);
        for (let g = first; g <= last; g++)
          if (!core.regions.isReadableFromAnyLeg(g) && core.status().sourceLeg !== i) violations.push(`region ${g} (not in sync) read from leg ${i}`);
        return orig(off, into, o);
      };
    });
    await r.dev.resume();
    const target = r.target;
    const regionCount = SIZE_SECTORS / REGION_SECTORS;
    const areaSectors = SIZE_SECTORS / CLIENTS;
    let failuresLeft = cfg.legs - 1;

    const maybeFail = (): void => {
      if (failuresLeft === 0 || rng.int(60) !== 0) return;
      const core = target.core;
      const live = core.legs.filter((l) => !l.failed);
      const inSync = core.status().insyncRegions === regionCount;
      const candidates = live.filter((l) => inSync || l.index !== core.status().sourceLeg);
      if (live.length < 2 || candidates.length === 0) return;
      const victim = candidates[rng.int(candidates.length)]!;
      const f = r.data[victim.index]!;
      failuresLeft--;
      injectLegFault(rng, f);
    };

    const errors = await runRandomClients({ dev: r.dev, rng, clients: CLIENTS, opsPerClient: OPS_PER_CLIENT, areaSectors, regionSectors: REGION_SECTORS, ref, beforeOp: maybeFail });

    assert.deepEqual(errors, [], "no client-visible error while a good leg survives");
    target.core.setResyncRate(0);
    await target.whenInSync();
    assert.deepEqual(violations, []);
    const live = target.core.legs.filter((l) => !l.failed);
    for (const l of live) {
      const d = firstDiff(dataMems[l.index]!.bytes, ref);
      assert.equal(d, -1, `live leg ${l.index} differs from the reference at byte ${d}`);
    }
    const failed = target.core.legs.filter((l) => l.failed).map((l) => l.index);
    const events = r.env.events.filter((e) => e.kind === "leg-failed").map((e) => (e.kind === "leg-failed" ? e.leg : -1));
    assert.deepEqual([...events].sort(), [...failed].sort(), "one leg-failed event per failed leg");
    for (const l of live) {
      const sb = decodeDmRaidSuperblock(metaMems[l.index]!.bytes.subarray(0, 4096));
      assert.equal(sb.kind, "superblock");
      if (sb.kind === "superblock") for (const f of failed) assert.ok(isPositionFailed(sb.superblock.failedDevices, f), `slot ${f}'s failed bit on rmeta ${l.index}`);
    }
    const all = new Uint8Array(ref.length);
    await r.dev.read(0, all);
    assert.ok(equalBytes(all, ref));
    await r.dev.remove();
  });
}
