import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  DM_RAID_MAGIC,
  FEATURE_FLAG_SUPPORTS_V190,
  MAX_SECTOR,
  decodeDmRaidSuperblock,
  encodeDmRaidSuperblock,
  isPositionFailed,
  newRaid1Superblock,
  withPositionFailed,
  type DmRaidSuperblock,
} from "./dm-raid-superblock.js";
import { FormatError } from "../../errors/errors.js";

const kind = (k: string) => (e: unknown) => e instanceof FormatError && e.details["kind"] === k;

/** Distinct values in every field, so a swapped offset shows. */
const distinct: DmRaidSuperblock = {
  compatFeatures: FEATURE_FLAG_SUPPORTS_V190,
  numDevices: 0x0000_00c8, // 200
  arrayPosition: 0x0000_00c7,
  eventCount: 0x1112_1314_1516_1718n,
  failedDevices: (0x2122_2324_2526_2728n) | (0x3132_3334_3536_3738n << 64n) | (0x4142_4344_4546_4748n << 128n) | (0x5152_5354_5556_5758n << 192n),
  diskRecoveryOffsetSectors: 0x6162_6364_6566_6768n,
  arrayResyncOffsetSectors: 0x7172_7374_7576_7778n,
  level: 0x8182_8384,
  layout: 0x8586_8788,
  stripeSectors: 0x898a_8b8c,
  flags: 0x8d8e_8f90,
  reshapePositionSectors: 0x9192_9394_9596_9798n,
  newLevel: 0xa1a2_a3a4,
  newLayout: 0xa5a6_a7a8,
  newStripeSectors: 0xa9aa_abac,
  deltaDisks: -2,
  arraySectors: 0xb1b2_b3b4_b5b6_b7b8n,
  dataOffsetSectors: 0xc1c2_c3c4_c5c6_c7c8n,
  newDataOffsetSectors: 0xd1d2_d3d4_d5d6_d7d8n,
  sectors: 0xe1e2_e3e4_e5e6_e7e8n,
  incompatFeatures: 0,
};

function u64le(v: bigint): number[] {
  const out: number[] = [];
  for (let i = 0; i < 8; i++) out.push(Number((v >> BigInt(8 * i)) & 0xffn));
  return out;
}
function u32le(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

test("encodeDmRaidSuperblock puts every field at the offset of struct dm_raid_superblock", () => {
  const b = encodeDmRaidSuperblock(distinct);
  assert.equal(b.length, 512);
  const at = (off: number, n: number) => [...b.subarray(off, off + n)];
  assert.deepEqual(at(0, 4), [0x44, 0x6d, 0x52, 0x64], '"DmRd"');
  assert.deepEqual(at(4, 4), [1, 0, 0, 0]);
  assert.deepEqual(at(8, 4), [200, 0, 0, 0]);
  assert.deepEqual(at(12, 4), [199, 0, 0, 0]);
  assert.deepEqual(at(16, 8), [0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11]);
  assert.deepEqual(at(24, 8), [0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21]);
  assert.deepEqual(at(32, 8), u64le(0x6162_6364_6566_6768n));
  assert.deepEqual(at(40, 8), u64le(0x7172_7374_7576_7778n));
  assert.deepEqual(at(48, 4), [0x84, 0x83, 0x82, 0x81]);
  assert.deepEqual(at(52, 4), u32le(0x8586_8788));
  assert.deepEqual(at(56, 4), u32le(0x898a_8b8c));
  assert.deepEqual(at(60, 4), u32le(0x8d8e_8f90));
  assert.deepEqual(at(64, 8), u64le(0x9192_9394_9596_9798n));
  assert.deepEqual(at(72, 4), u32le(0xa1a2_a3a4));
  assert.deepEqual(at(76, 4), u32le(0xa5a6_a7a8));
  assert.deepEqual(at(80, 4), u32le(0xa9aa_abac));
  assert.deepEqual(at(84, 4), [0xfe, 0xff, 0xff, 0xff], "delta_disks -2 as s32");
  assert.deepEqual(at(88, 8), u64le(0xb1b2_b3b4_b5b6_b7b8n));
  assert.deepEqual(at(96, 8), u64le(0xc1c2_c3c4_c5c6_c7c8n));
  assert.deepEqual(at(104, 8), u64le(0xd1d2_d3d4_d5d6_d7d8n));
  assert.deepEqual(at(112, 8), u64le(0xe1e2_e3e4_e5e6_e7e8n));
  assert.deepEqual(at(120, 8), u64le(0x3132_3334_3536_3738n), "extended_failed_devices[0] = positions 64..127");
  assert.deepEqual(at(128, 8), u64le(0x4142_4344_4546_4748n));
  assert.deepEqual(at(136, 8), u64le(0x5152_5354_5556_5758n));
  assert.deepEqual(at(144, 4), [0, 0, 0, 0]);
  assert.ok(b.subarray(148).every((x) => x === 0), "the rest of the block is zero");
});

test("decodeDmRaidSuperblock round-trips every field (and a 4096-byte block)", () => {
  for (const blockBytes of [512, 4096]) {
    const d = decodeDmRaidSuperblock(encodeDmRaidSuperblock(distinct, blockBytes));
    assert.equal(d.kind, "superblock");
    assert.deepEqual(d.kind === "superblock" && d.superblock, distinct);
  }
});

test("round trip holds for any valid superblock (property)", () => {
  const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
  const u64 = fc.bigInt({ min: 0n, max: MAX_SECTOR });
  const arb = fc
    .integer({ min: 1, max: 253 })
    .chain((n) =>
      fc.record({
        compatFeatures: fc.constant(FEATURE_FLAG_SUPPORTS_V190),
        numDevices: fc.constant(n),
        arrayPosition: fc.integer({ min: 0, max: n - 1 }),
        eventCount: u64,
        failedDevices: fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }),
        diskRecoveryOffsetSectors: u64,
        arrayResyncOffsetSectors: u64,
        level: u32,
        layout: u32,
        stripeSectors: u32,
        flags: u32,
        reshapePositionSectors: u64,
        newLevel: u32,
        newLayout: u32,
        newStripeSectors: u32,
        deltaDisks: fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff }),
        arraySectors: u64,
        dataOffsetSectors: u64,
        newDataOffsetSectors: u64,
        sectors: u64,
        incompatFeatures: fc.constant(0),
      }),
    );
  fc.assert(
    fc.property(arb, (sb) => {
      const d = decodeDmRaidSuperblock(encodeDmRaidSuperblock(sb));
      // fast-check records may have a null prototype: compare as a plain object.
      assert.deepEqual(d.kind === "superblock" && d.superblock, { ...sb });
    }),
  );
});

test("newRaid1Superblock is what the kernel writes for a new raid1 set", () => {
  const sb = newRaid1Superblock({ numDevices: 2, arrayPosition: 1, arraySectors: 2097152n, eventCount: 1n });
  const b = encodeDmRaidSuperblock(sb);
  assert.equal(sb.arrayResyncOffsetSectors, 0n, "recovery_cp 0: full resync");
  assert.deepEqual([...b.subarray(0, 16)], [0x44, 0x6d, 0x52, 0x64, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0]);
  assert.deepEqual([...b.subarray(32, 40)], u64le(MAX_SECTOR), "leg in sync");
  assert.deepEqual([...b.subarray(48, 52)], [1, 0, 0, 0], "level 1");
  assert.deepEqual([...b.subarray(64, 72)], u64le(MAX_SECTOR), "no reshape");
  assert.deepEqual([...b.subarray(72, 76)], [1, 0, 0, 0], "new_level 1");
  assert.deepEqual([...b.subarray(88, 96)], u64le(2097152n));
  assert.deepEqual([...b.subarray(112, 120)], u64le(2097152n));
  assert.equal(newRaid1Superblock({ numDevices: 2, arrayPosition: 0, arraySectors: 8n, nosync: true }).arrayResyncOffsetSectors, MAX_SECTOR);
});

test("failed positions are bits of one 256-bit set", () => {
  let f = 0n;
  f = withPositionFailed(f, 3, true);
  f = withPositionFailed(f, 200, true);
  assert.ok(isPositionFailed(f, 3) && isPositionFailed(f, 200) && !isPositionFailed(f, 4));
  const b = encodeDmRaidSuperblock({ ...newRaid1Superblock({ numDevices: 253, arrayPosition: 0, arraySectors: 8n }), failedDevices: f });
  assert.equal(b[24], 0x08);
  assert.equal(b[120 + 16 + 1], 0x01, "position 200 = word 3 bit 8");
  assert.equal(withPositionFailed(f, 3, false), 1n << 200n);
});

test("an all-zero area (lvm2 zeroed it at create) decodes as fresh", () => {
  assert.deepEqual(decodeDmRaidSuperblock(new Uint8Array(4096)), { kind: "fresh" });
});

test("without the V190 flag the extended failed words are ignored", () => {
  const sb = { ...newRaid1Superblock({ numDevices: 2, arrayPosition: 0, arraySectors: 8n }), failedDevices: (1n << 70n) | 1n };
  const b = encodeDmRaidSuperblock(sb);
  b[4] = 0;
  const d = decodeDmRaidSuperblock(b);
  assert.equal(d.kind === "superblock" && d.superblock.failedDevices, 1n);
});

function valid(): Uint8Array {
  return encodeDmRaidSuperblock(newRaid1Superblock({ numDevices: 2, arrayPosition: 1, arraySectors: 8n }), 4096);
}

test("decodeDmRaidSuperblock: truncated", () => {
  assert.throws(() => decodeDmRaidSuperblock(valid().subarray(0, 147)), kind("truncated"));
});

test("decodeDmRaidSuperblock: bad magic with other content is an error, not a fresh rmeta", () => {
  const b = valid();
  b[0] = 0x45;
  assert.throws(() => decodeDmRaidSuperblock(b), kind("magic"));
  const z = new Uint8Array(4096);
  z[4000] = 1;
  assert.throws(() => decodeDmRaidSuperblock(z), kind("magic"));
  assert.equal(DM_RAID_MAGIC, 0x64526d44);
});

test("decodeDmRaidSuperblock: unknown compat flags", () => {
  const b = valid();
  b[4] = 3;
  assert.throws(() => decodeDmRaidSuperblock(b), kind("compat-features"));
});

test("decodeDmRaidSuperblock: incompat features", () => {
  const b = valid();
  b[144] = 1;
  assert.throws(() => decodeDmRaidSuperblock(b), kind("incompat-features"));
});

test("decodeDmRaidSuperblock: num_devices 0 or above 253", () => {
  const b = valid();
  b[8] = 0;
  assert.throws(() => decodeDmRaidSuperblock(b), kind("num-devices"));
  b[8] = 254;
  assert.throws(() => decodeDmRaidSuperblock(b), kind("num-devices"));
});

test("decodeDmRaidSuperblock: array_position not below num_devices", () => {
  const b = valid();
  b[12] = 2;
  assert.throws(() => decodeDmRaidSuperblock(b), kind("array-position"));
});
