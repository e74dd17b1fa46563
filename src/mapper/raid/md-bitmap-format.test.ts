import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BITMAP_MAGIC,
  BITMAP_STALE,
  MAX_BITMAP_CHUNKS,
  bitmapChunkByte,
  bitmapChunkCount,
  bitmapPageCount,
  bitmapPageWriteBytes,
  decodeMdBitmapSuperblock,
  encodeFreshBitmapFile,
  encodeMdBitmapSuperblock,
  newMdBitmapSuperblock,
  rmetaBytesNeeded,
  type MdBitmapSuperblock,
} from "./md-bitmap-format.js";
import { FormatError } from "../../errors/errors.js";

const kind = (k: string) => (e: unknown) => e instanceof FormatError && e.details["kind"] === k;

const distinct: MdBitmapSuperblock = {
  version: 4,
  uuid: Uint8Array.from({ length: 16 }, (_, i) => 0x10 + i),
  eventCount: 0x2122_2324_2526_2728n,
  eventsClearedCount: 0x3132_3334_3536_3738n,
  syncSectors: 0x0000_0000_4546_4748n,
  state: 0x5152_5354,
  chunkBytes: 0x0010_0000, // 1 MiB
  daemonSleepSeconds: 0x6162_6364,
  writeBehind: 0x3fff,
  sectorsReserved: 0x7172_7374,
  nodes: 0x8182_8384,
  clusterName: Uint8Array.from({ length: 64 }, (_, i) => 0x90 + i),
};

test("encodeMdBitmapSuperblock puts every field at the offset of bitmap_super_t", () => {
  const b = encodeMdBitmapSuperblock(distinct);
  assert.equal(b.length, 256);
  const at = (off: number, n: number) => [...b.subarray(off, off + n)];
  assert.deepEqual(at(0, 4), [0x62, 0x69, 0x74, 0x6d], '"bitm"');
  assert.deepEqual(at(4, 4), [4, 0, 0, 0]);
  assert.deepEqual(at(8, 16), [...distinct.uuid]);
  assert.deepEqual(at(24, 8), [0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21]);
  assert.deepEqual(at(32, 8), [0x38, 0x37, 0x36, 0x35, 0x34, 0x33, 0x32, 0x31]);
  assert.deepEqual(at(40, 8), [0x48, 0x47, 0x46, 0x45, 0, 0, 0, 0]);
  assert.deepEqual(at(48, 4), [0x54, 0x53, 0x52, 0x51]);
  assert.deepEqual(at(52, 4), [0, 0, 0x10, 0]);
  assert.deepEqual(at(56, 4), [0x64, 0x63, 0x62, 0x61]);
  assert.deepEqual(at(60, 4), [0xff, 0x3f, 0, 0]);
  assert.deepEqual(at(64, 4), [0x74, 0x73, 0x72, 0x71]);
  assert.deepEqual(at(68, 4), [0x84, 0x83, 0x82, 0x81]);
  assert.deepEqual(at(72, 64), [...distinct.clusterName]);
  assert.ok(b.subarray(136).every((x) => x === 0), "pad");
});

test("decodeMdBitmapSuperblock round-trips every field", () => {
  assert.deepEqual(decodeMdBitmapSuperblock(encodeMdBitmapSuperblock(distinct)), distinct);
});

test("round trip holds for any valid superblock (property)", () => {
  const arb = fc
    .record({
      version: fc.integer({ min: 3, max: 5 }),
      log2Chunk: fc.integer({ min: 9, max: 31 }),
      eventCount: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      eventsClearedCount: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      chunks: fc.integer({ min: 0, max: MAX_BITMAP_CHUNKS }),
      state: fc.integer({ min: 0, max: 0xffff_ffff }),
      daemonSleepSeconds: fc.integer({ min: 1, max: 0xffff_ffff }),
      writeBehind: fc.integer({ min: 0, max: 16383 }),
      sectorsReserved: fc.integer({ min: 0, max: 0xffff_ffff }),
      nodes: fc.integer({ min: 0, max: 0xffff_ffff }),
      uuid: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      clusterName: fc.uint8Array({ minLength: 64, maxLength: 64 }),
    })
    .map(({ log2Chunk, chunks, ...r }) => ({ ...r, chunkBytes: 2 ** log2Chunk, syncSectors: (BigInt(chunks) * BigInt(2 ** log2Chunk)) / 512n }));
  fc.assert(
    fc.property(arb, (sb) => {
      assert.deepEqual(decodeMdBitmapSuperblock(encodeMdBitmapSuperblock(sb)), { ...sb });
    }),
  );
});

test("chunk k's bit lives at file byte 256 + k/8 (rmeta byte 4352 + k/8); pages trim at the end", () => {
  assert.equal(bitmapChunkByte(0), 256);
  assert.equal(bitmapChunkByte(30719), 4095, "page 0 holds the first 30720 bits");
  assert.equal(bitmapChunkByte(30720), 4096);
  assert.equal(bitmapChunkCount(2097152n, 2 << 20), 512, "1 GiB at 2 MiB regions");
  assert.equal(bitmapChunkCount(2097153n, 2 << 20), 513);
  assert.equal(bitmapPageCount(512), 1);
  assert.equal(bitmapPageWriteBytes(512, 0), 512, "256 + 64 bytes rounded to one sector");
  assert.equal(bitmapPageCount(30721), 2);
  assert.equal(bitmapPageWriteBytes(30721, 0), 4096);
  assert.equal(bitmapPageWriteBytes(30721, 1), 512);
  assert.equal(rmetaBytesNeeded(512), 4608);
  assert.equal(rmetaBytesNeeded(MAX_BITMAP_CHUNKS), 4096 + 64 * 4096 + 512);
  assert.ok(rmetaBytesNeeded(MAX_BITMAP_CHUNKS) <= 2 * 4096 + MAX_BITMAP_CHUNKS / 8, "lvm2's rmeta size (2 * 4096 + regions/8) covers it");
});

test("a fresh bitmap file is the superblock then 0xFF everywhere, padding bits included", () => {
  const sb = newMdBitmapSuperblock({ syncSectors: 2097152n, chunkBytes: 2 << 20, eventCount: 1n, stale: true });
  const f = encodeFreshBitmapFile(sb);
  assert.equal(f.length, 512);
  assert.equal(decodeMdBitmapSuperblock(f).state, BITMAP_STALE);
  assert.deepEqual([...f.subarray(48, 64)], [2, 0, 0, 0, 0, 0, 0x20, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
  assert.ok(f.subarray(256).every((x) => x === 0xff));
  assert.equal(BITMAP_MAGIC, 0x6d746962);
});

const good = () => encodeMdBitmapSuperblock(newMdBitmapSuperblock({ syncSectors: 2097152n, chunkBytes: 2 << 20, eventCount: 3n }));
const set32 = (b: Uint8Array, off: number, v: number) => new DataView(b.buffer).setUint32(off, v, true);

test("decodeMdBitmapSuperblock: truncated", () => {
  assert.throws(() => decodeMdBitmapSuperblock(good().subarray(0, 255)), kind("truncated"));
});

test("decodeMdBitmapSuperblock: bad magic (an all-zero area too)", () => {
  const b = good();
  b[3] = 0;
  assert.throws(() => decodeMdBitmapSuperblock(b), kind("magic"));
  assert.throws(() => decodeMdBitmapSuperblock(new Uint8Array(256)), kind("magic"));
});

test("decodeMdBitmapSuperblock: version outside 3..5", () => {
  for (const v of [2, 6]) {
    const b = good();
    set32(b, 4, v);
    assert.throws(() => decodeMdBitmapSuperblock(b), kind("version"));
  }
});

test("decodeMdBitmapSuperblock: chunksize below 512 or not a power of two", () => {
  for (const c of [256, 3 << 20, 0]) {
    const b = good();
    set32(b, 52, c);
    assert.throws(() => decodeMdBitmapSuperblock(b), kind("chunksize"));
  }
});

test("decodeMdBitmapSuperblock: daemon_sleep 0", () => {
  const b = good();
  set32(b, 56, 0);
  assert.throws(() => decodeMdBitmapSuperblock(b), kind("daemon-sleep"));
});

test("decodeMdBitmapSuperblock: write_behind above 16383", () => {
  const b = good();
  set32(b, 60, 16384);
  assert.throws(() => decodeMdBitmapSuperblock(b), kind("write-behind"));
});

test("decodeMdBitmapSuperblock: more than 2^21 chunks", () => {
  const b = good();
  set32(b, 52, 512);
  new DataView(b.buffer).setBigUint64(40, BigInt(MAX_BITMAP_CHUNKS) + 1n, true);
  assert.throws(() => decodeMdBitmapSuperblock(b), kind("chunk-count"));
});

test("decodeMdBitmapSuperblock: bits that do not fit the rmeta area", () => {
  const b = good(); // 512 chunks: 256 + 64 bytes
  assert.doesNotThrow(() => decodeMdBitmapSuperblock(b, { areaBytes: 320 }));
  assert.throws(() => decodeMdBitmapSuperblock(b, { areaBytes: 319 }), kind("area"));
});
