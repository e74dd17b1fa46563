import { test } from "node:test";
import assert from "node:assert/strict";
import {
  MIRROR_MAGIC,
  NR_REGIONS_UNSET,
  decodeDiskLog,
  diskLogBitmapBytes,
  diskLogTransferBytes,
  encodeDiskLog,
} from "./disk-log-format.js";
import { FormatError } from "../../errors/errors.js";
import { clearBit, countBits, findNextZero, setBit, testBit } from "./bitset.js";

const kind = (k: string) => (e: unknown) => e instanceof FormatError && e.details["kind"] === k;

test("encodeDiskLog/decodeDiskLog round-trip header and bitmap", () => {
  const bits = new Uint8Array(diskLogBitmapBytes(40));
  for (const r of [0, 1, 7, 8, 31, 32, 39]) setBit(bits, r);
  const buf = encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: 40n }, bits, 40);
  assert.equal(buf.length, 1536);
  const { header, cleanBits } = decodeDiskLog(buf, 40);
  assert.deepEqual(header, { magic: MIRROR_MAGIC, version: 2, nrRegions: 40n });
  assert.deepEqual([...cleanBits], [...bits]);
});

test("the on-disk bytes are those of the kernel's log (fixture b: region 5 dirty of 16)", () => {
  const bits = new Uint8Array(4);
  for (let r = 0; r < 16; r++) if (r !== 5) setBit(bits, r);
  const buf = encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: 16n }, bits, 16);
  assert.deepEqual([...buf.subarray(0, 16)], [0x72, 0x52, 0x69, 0x4d, 2, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...buf.subarray(1024, 1028)], [0xdf, 0xff, 0, 0]);
  assert.ok(buf.subarray(16, 1024).every((b) => b === 0));
});

test("bitmap and transfer sizes are whole u32 words rounded to the logical block", () => {
  assert.equal(diskLogBitmapBytes(1), 4);
  assert.equal(diskLogBitmapBytes(32), 4);
  assert.equal(diskLogBitmapBytes(33), 8);
  assert.equal(diskLogTransferBytes(4096), 1536);
  assert.equal(diskLogTransferBytes(4097), 2048);
  assert.equal(diskLogTransferBytes(16, 4096), 4096);
});

test("an all-ones nr_regions (fresh LVM log) decodes as a bigint", () => {
  const buf = encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: NR_REGIONS_UNSET }, new Uint8Array(4), 16);
  assert.equal(decodeDiskLog(buf, 16).header.nrRegions, NR_REGIONS_UNSET);
});

test("version 1 is read as version 2", () => {
  const buf = encodeDiskLog({ magic: MIRROR_MAGIC, version: 1, nrRegions: 16n }, new Uint8Array(4), 16);
  assert.equal(decodeDiskLog(buf, 16).header.version, 2);
});

test("decodeDiskLog: truncated buffer", () => {
  assert.throws(() => decodeDiskLog(new Uint8Array(1024), 16), kind("truncated"));
  const buf = encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: 16n }, new Uint8Array(8), 40);
  assert.throws(() => decodeDiskLog(buf.subarray(0, 1024 + 4), 40), kind("truncated"));
});

test("decodeDiskLog: bad magic", () => {
  const buf = encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: 16n }, new Uint8Array(4), 16);
  buf[0] = 0x73;
  assert.throws(() => decodeDiskLog(buf, 16), kind("magic"));
  assert.throws(() => decodeDiskLog(new Uint8Array(1536), 16), kind("magic"), "an all-zero log has no magic");
});

test("decodeDiskLog: unknown version", () => {
  const buf = encodeDiskLog({ magic: MIRROR_MAGIC, version: 3, nrRegions: 16n }, new Uint8Array(4), 16);
  assert.throws(() => decodeDiskLog(buf, 16), kind("version"));
});

test("bitset helpers use LE bit order and find zero bits", () => {
  const b = new Uint8Array(8);
  setBit(b, 9);
  assert.equal(b[1], 2);
  assert.ok(testBit(b, 9));
  b.fill(0xff);
  clearBit(b, 37);
  assert.equal(findNextZero(b, 64, 0), 37);
  assert.equal(findNextZero(b, 64, 38), undefined);
  assert.equal(findNextZero(b, 30, 0), undefined);
  assert.equal(countBits(b, 64), 63);
  assert.equal(countBits(b, 37), 37);
});
