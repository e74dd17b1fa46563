import { test } from "node:test";
import assert from "node:assert/strict";
import type { BlockDevice } from "../../../blockdev/block-device.js";
import type { MirrorTarget } from "./mirror-target.js";
import { MappedDevice } from "../../mapped-device.js";
import { Table } from "../../table.js";
import { defaultTargetTypes } from "../../target-types.js";
import { FaultBlockDevice } from "../../../blockdev/fault-block-device.js";
import { MemoryBlockDevice } from "../../../blockdev/memory-block-device.js";
import { MIRROR_MAGIC, encodeDiskLog } from "../../dirty-log/disk-log-format.js";
import { Prng, equalBytes, firstDiff, testEnv } from "../../test-helpers.js";
import { mirrorLine } from "./mirror-rig.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";
import { injectLegFault, runRandomClients } from "./random-clients.js";
import { legHealth as legHealthOf } from "./mirror-leg.js";

/**
 * Differential test of the mirror: several concurrent clients do random
 * reads, writes (some FUA, many spanning regions) and flushes while legs fail
 * through fault devices and the resync runs. Checked:
 *   - no client ever sees an error (a good in-sync leg always survives);
 *   - every read returns what the reference model holds;
 *   - no read is ever issued to a failed leg, and reads of regions not in
 *     sync only go to the source leg (probes under each leg check this at
 *     the moment the read is issued);
 *   - one leg-failed event per failed leg;
 *   - after the resync, every live leg equals the reference and each other.
 */

/** Checks every read issued to a leg against the mirror's state at that instant. */
class ReadProbe implements BlockDevice {
  violations: string[] = [];
  target: MirrorTarget | undefined;
  constructor(readonly inner: FaultBlockDevice, readonly legIndex: number) {}
  get name(): string {
    return this.inner.name;
  }
  get sizeBytes(): number {
    return this.inner.sizeBytes;
  }
  get caps() {
    return this.inner.caps;
  }
  read(offsetBytes: number, into: Uint8Array): Promise<void> {
    const t = this.target;
    if (t) {
      const leg = t.legs[this.legIndex]!;
      if (leg.failed) this.violations.push(`read issued to failed leg ${this.legIndex} at ${offsetBytes}`);
      const first = t.regions.regionOf(offsetBytes / SECTOR_BYTES);
      const last = t.regions.regionOf((offsetBytes + into.length) / SECTOR_BYTES - 1);
      for (let r = first; r <= last; r++) {
        if (!t.regions.isReadableFromAnyLeg(r) && t.status().sourceLeg !== this.legIndex)
          this.violations.push(`region ${r} (not in sync) read from non-source leg ${this.legIndex}`);
      }
    }
    return this.inner.read(offsetBytes, into);
  }
  write(offsetBytes: number, data: Uint8Array, opts?: { fua?: boolean }): Promise<void> {
    return this.inner.write(offsetBytes, data, opts);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Config {
  seed: number;
  legs: number;
  log: "core" | "disk";
  handleErrors: boolean;
  initLog: "clean" | "fresh";
  /** Legs that may fail (default: all but one). */
  maxFailures?: number;
}

const CONFIGS: Config[] = [
  { seed: 11, legs: 2, log: "disk", handleErrors: true, initLog: "fresh" },
  { seed: 12, legs: 3, log: "disk", handleErrors: false, initLog: "clean" },
  { seed: 13, legs: 3, log: "core", handleErrors: true, initLog: "fresh" },
  { seed: 14, legs: 2, log: "disk", handleErrors: false, initLog: "clean" },
  { seed: 15, legs: 4, log: "disk", handleErrors: true, initLog: "clean" },
  { seed: 16, legs: 2, log: "disk", handleErrors: false, initLog: "fresh", maxFailures: 0 },
  { seed: 17, legs: 3, log: "core", handleErrors: true, initLog: "fresh", maxFailures: 1 },
];

const SIZE_SECTORS = 4096;
const REGION_SECTORS = 64;
const CLIENTS = 4;
const OPS_PER_CLIENT = 120;

for (const cfg of CONFIGS) {
  test(`mirror under random I/O with failing legs: ${cfg.legs} legs, ${cfg.log} log, handle_errors=${cfg.handleErrors}, ${cfg.initLog} (seed ${cfg.seed})`, async () => {
    const rng = new Prng(cfg.seed);
    const regionCount = SIZE_SECTORS / REGION_SECTORS;
    const mems = Array.from({ length: cfg.legs }, (_, i) => new MemoryBlockDevice(`leg${i}`, SIZE_SECTORS * SECTOR_BYTES));
    // Leg 0 starts with the "true" content; a fresh mirror copies it over the others.
    const ref = rng.bytes(SIZE_SECTORS * SECTOR_BYTES);
    mems[0]!.bytes.set(ref);
    if (cfg.initLog === "clean") for (const m of mems) m.bytes.set(ref);
    const logMem = new MemoryBlockDevice("log", 64 * 1024);
    const clean = cfg.initLog === "clean";
    logMem.bytes.set(
      encodeDiskLog(
        { magic: MIRROR_MAGIC, version: 2, nrRegions: clean ? BigInt(regionCount) : 0xffffffffffffffffn },
        new Uint8Array(8).fill(clean ? 0xff : 0),
        regionCount,
      ),
    );
    const faults = mems.map((m, i) => new FaultBlockDevice(m, { name: `leg${i}` }));
    // Some leg I/O completes a timer tick later, so client writes, the copier
    // and leg failures interleave the way real devices make them.
    const jitter = new Prng(cfg.seed + 1000);
    for (const f of faults) f.setDelay(() => (jitter.int(4) === 0 ? 1 : 0));
    const probes = faults.map((f, i) => new ReadProbe(f, i));
    const devs: Record<string, BlockDevice> = { log: new FaultBlockDevice(logMem) };
    probes.forEach((p, i) => (devs[`leg${i}`] = p));
    const env = testEnv(devs);
    if (cfg.handleErrors) env.handler = () => new Promise<void>((r) => setImmediate(r));
    const dev = new MappedDevice("vg-lv", {
      env,
      // A throttled resync keeps regions out of sync while the clients run,
      // so writes and reads meet every region state.
      targetTypes: defaultTargetTypes({
        mirror: { cleanIntervalMs: 0, resyncBatchBytes: 32 * 1024, resyncIoBytes: 16 * 1024, resyncRateBytesPerSec: 16 << 20 },
      }),
    });
    const opts = cfg.log === "core" ? { log: "core" as const, handleErrors: cfg.handleErrors } : { handleErrors: cfg.handleErrors };
    const [t] = await dev.load(Table.parse(mirrorLine(opts, SIZE_SECTORS, REGION_SECTORS, cfg.legs)));
    const target = t as MirrorTarget;
    for (const p of probes) p.target = target;
    await dev.resume();

    // Each client owns a contiguous quarter (not region-aligned, so requests span regions).
    const areaSectors = SIZE_SECTORS / CLIENTS;
    let failuresLeft = cfg.maxFailures ?? cfg.legs - 1;

    const maybeFail = (): void => {
      if (failuresLeft === 0 || rng.int(60) !== 0) return;
      const live = target.legs.filter((l) => !l.failed);
      const inSync = target.status().insyncRegions === regionCount;
      const candidates = live.filter((l) => inSync || l.index !== target.status().sourceLeg);
      if (live.length < 2 || candidates.length === 0) return;
      const victim = candidates[rng.int(candidates.length)]!;
      const f = faults[victim.index]!;
      failuresLeft--;
      injectLegFault(rng, f);
    };

    const errors = await runRandomClients({ dev, rng, clients: CLIENTS, opsPerClient: OPS_PER_CLIENT, areaSectors, regionSectors: REGION_SECTORS, ref, beforeOp: maybeFail });

    if (process.env.MIRROR_DIAG) console.log(JSON.stringify({ seed: cfg.seed, failed: target.legs.filter((l) => l.failed).map((l) => l.index + legHealthOf(l)), st: target.status().insyncRegions, copied: target.status().resync.copiedRegions }));
    assert.deepEqual(errors, [], "no client-visible error while a good leg survives");
    target.setResyncRate(0);
    await target.whenInSync();
    for (const p of probes) assert.deepEqual(p.violations, []);
    const live = target.legs.filter((l) => !l.failed);
    assert.ok(live.length >= 1);
    for (const l of live) {
      const d = firstDiff(mems[l.index]!.bytes, ref);
      assert.equal(d, -1, `live leg ${l.index} differs from the reference at byte ${d}`);
    }
    const failed = target.legs.filter((l) => l.failed).map((l) => l.index);
    const events = env.events.filter((e) => e.kind === "leg-failed").map((e) => (e.kind === "leg-failed" ? e.leg : -1));
    assert.deepEqual([...events].sort(), [...failed].sort(), "one leg-failed event per failed leg");
    // A final read through the device matches too.
    const all = new Uint8Array(ref.length);
    await dev.read(0, all);
    assert.ok(equalBytes(all, ref));
    await dev.remove();
  });
}

test("overlapping writes racing on the same sectors leave the legs identical", async () => {
  const rng = new Prng(99);
  const mems = [0, 1].map((i) => new MemoryBlockDevice(`leg${i}`, 256 * SECTOR_BYTES));
  const faults = mems.map((m, i) => new FaultBlockDevice(m, { name: `leg${i}` }));
  const dev = new MappedDevice("vg-lv", {
    env: testEnv({ leg0: faults[0]!, leg1: faults[1]! }),
    targetTypes: defaultTargetTypes({ mirror: { cleanIntervalMs: 0 } }),
  });
  await dev.load(Table.parse("0 256 mirror core 2 64 nosync 2 leg0 0 leg1 0\n"));
  await dev.resume();
  for (let round = 0; round < 20; round++) {
    // each write completes after a random delay, so legs would apply
    // overlapping writes in different orders unless they are serialised
    faults[0]!.setDelay(() => rng.int(3));
    faults[1]!.setDelay(() => rng.int(3));
    const ws = Array.from({ length: 6 }, (_, i) => {
      const start = rng.int(200);
      return dev.write(start * SECTOR_BYTES, rng.pattern((1 + rng.int(40)) * SECTOR_BYTES, round * 10 + i));
    });
    await Promise.all(ws);
    assert.ok(equalBytes(mems[0]!.bytes, mems[1]!.bytes), `legs differ after round ${round}`);
  }
});
