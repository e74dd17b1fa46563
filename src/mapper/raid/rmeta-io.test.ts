import { test } from "node:test";
import assert from "node:assert/strict";
import { freshestRmeta, loadRmeta, writeDmRaidSuperblocks, type Rmeta } from "./rmeta-io.js";
import { MAX_SECTOR, decodeDmRaidSuperblock, encodeDmRaidSuperblock, isPositionFailed, newRaid1Superblock } from "./dm-raid-superblock.js";
import { MemoryBlockDevice } from "../../blockdev/memory-block-device.js";
import { FaultBlockDevice } from "../../blockdev/fault-block-device.js";

const rm = (i: number, bytes = 1 << 16): Rmeta & { dev: MemoryBlockDevice } => ({ name: `lv_rmeta_${i}`, dev: new MemoryBlockDevice(`lv_rmeta_${i}`, bytes) });
const sbOf = (d: MemoryBlockDevice) => {
  const x = decodeDmRaidSuperblock(d.bytes.subarray(0, 4096));
  assert.equal(x.kind, "superblock");
  return x.kind === "superblock" ? x.superblock : assert.fail();
};

test("writeDmRaidSuperblocks raises events by one, sets each slot's position and keeps failed_devices", async () => {
  const rmetas = [rm(0), rm(1), rm(2)];
  const template = { ...newRaid1Superblock({ numDevices: 3, arrayPosition: 0, arraySectors: 4096n, eventCount: 7n }), failedDevices: 1n << 2n };
  const r = await writeDmRaidSuperblocks(rmetas, template, { diskRecoveryOffsetsSectors: [undefined, 128n] });
  assert.equal(r.eventCount, 8n);
  assert.deepEqual(r.errors, [undefined, undefined, undefined]);
  for (const [i, m] of rmetas.entries()) {
    const sb = sbOf(m.dev);
    assert.equal(sb.eventCount, 8n);
    assert.equal(sb.arrayPosition, i);
    assert.equal(sb.numDevices, 3);
    assert.equal(sb.failedDevices, 4n);
    assert.equal(sb.diskRecoveryOffsetSectors, i === 1 ? 128n : MAX_SECTOR);
  }
  assert.ok(rmetas[0]!.dev.bytes.subarray(148, 512).every((b) => b === 0));
  const again = await writeDmRaidSuperblocks(rmetas, sbOf(rmetas[0]!.dev));
  assert.equal(again.eventCount, 9n);
  assert.equal(sbOf(rmetas[2]!.dev).failedDevices, 4n);
});

test("writeDmRaidSuperblocks marks an absent slot failed and returns a write error for its slot", async () => {
  const a = rm(0);
  const b = new FaultBlockDevice(new MemoryBlockDevice("lv_rmeta_2", 1 << 16));
  b.addRule({ ops: ["write"] });
  const r = await writeDmRaidSuperblocks([a, undefined, { name: "lv_rmeta_2", dev: b }], newRaid1Superblock({ numDevices: 3, arrayPosition: 0, arraySectors: 8n }));
  assert.equal(r.errors[0], undefined);
  assert.equal(r.errors[2]?.errno, "EIO");
  assert.ok(isPositionFailed(sbOf(a.dev).failedDevices, 1));
  assert.ok(!isPositionFailed(sbOf(a.dev).failedDevices, 2), "the caller decides about a failed write");
});

test("loadRmeta classifies absent, fresh, valid, invalid and unreadable rmetas; freshestRmeta picks the highest events", async () => {
  const fresh = rm(0);
  const valid = rm(1);
  valid.dev.bytes.set(encodeDmRaidSuperblock(newRaid1Superblock({ numDevices: 3, arrayPosition: 1, arraySectors: 8n, eventCount: 5n })));
  const older = rm(2);
  older.dev.bytes.set(encodeDmRaidSuperblock(newRaid1Superblock({ numDevices: 3, arrayPosition: 2, arraySectors: 8n, eventCount: 4n })));
  const bad = rm(3);
  bad.dev.bytes[0] = 1;
  const gone = new FaultBlockDevice(new MemoryBlockDevice("x", 1 << 16));
  gone.vanish("ENXIO");
  const loads = await Promise.all([fresh, valid, older, bad, { name: "x", dev: gone }, undefined].map((r) => loadRmeta(r)));
  assert.deepEqual(
    loads.map((l) => l.kind),
    ["fresh", "valid", "valid", "invalid", "unreadable", "absent"],
  );
  assert.equal(loads[1]!.kind === "valid" && loads[1]!.bitmap, undefined, "no bitmap written yet");
  assert.equal(loads[3]!.kind === "invalid" && loads[3]!.corruption, "magic");
  assert.equal(loads[4]!.kind === "unreadable" && loads[4]!.errno, "ENXIO");
  assert.equal(freshestRmeta(loads), 1);
  assert.equal(freshestRmeta([{ kind: "fresh" }, { kind: "absent" }]), undefined);
});
