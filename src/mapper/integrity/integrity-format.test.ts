import { test } from "node:test";
import assert from "node:assert/strict";
import { crc32cSoftware } from "../../base/crc32c.js";
import {
  SB_FLAG_DIRTY_BITMAP,
  SB_FLAG_FIXED_HMAC,
  SB_FLAG_FIXED_PADDING,
  SB_FLAG_RECALCULATING,
  checkSuperblockAgainst,
  crc32cTag,
  crc32cTags,
  decodeSuperblock,
  encodeSuperblock,
  formatSuperblock,
  journalGeometry,
  metaLayout,
  superblockVersion,
  tagOffsetBytes,
} from "./integrity-format.js";

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

test("superblock of lvm2's 8 MiB raid1 image, journal mode, recalculating: every field at the kernel's offset", () => {
  // 8 MiB iorig (16384 sectors), 8 MiB imeta, tag 4, block 512, first activation with `recalculate`.
  const r = formatSuperblock({ dataDeviceSectors: 16384, metaDeviceSectors: 16384, tagSize: 4, blockSize: 512, mode: "J", recalculate: true });
  assert.ok("superblock" in r);
  if (!("superblock" in r)) return;
  const bytes = encodeSuperblock(r.superblock);
  assert.equal(bytes.length, 4096);
  // Hand-assembled from struct superblock: default journal min(131072, 16384 >> 7) = 128 sectors is
  // less than one 176-sector section, so 1 section; bitmap bit 32768 sectors (log2 15) fits.
  const golden =
    "696e746567727400" + // magic "integrt\0"
    "02" + // version 2: meta_dev (no fixed padding with a metadata device)
    "00" + // log2_interleave_sectors: 0 with meta_dev
    "0400" + // integrity_tag_size le16
    "01000000" + // journal_sections le32
    "0040000000000000" + // provided_data_sectors le64 = 16384
    "02000000" + // flags: RECALCULATING
    "00" + // log2_sectors_per_block
    "0f" + // log2_blocks_per_bitmap_bit
    "0000" + // pad
    "0000000000000000" + // recalc_sector
    "0000000000000000" + // pad2
    "00000000000000000000000000000000"; // salt
  assert.equal(hex(bytes.subarray(0, 64)), golden);
  assert.ok(bytes.subarray(64).every((x) => x === 0), "the rest of the 8 sectors is zero");
  assert.equal(r.layout.initialSectors, 8 + 176);
  assert.equal(r.layout.tagAreaSectors, 128, "16384 tags x 4 bytes = one 64 KiB buffer");
  assert.equal(tagOffsetBytes(r.layout, 4, 0), 184 * 512);
  assert.equal(tagOffsetBytes(r.layout, 4, 1000), 184 * 512 + 4000);
});

test("bitmap mode: version 3, the dirty-bitmap flag; 4 KiB blocks; a 600 MiB image in lvm2's 16 MiB imeta gets the default journal (24 sections)", () => {
  const r = formatSuperblock({ dataDeviceSectors: 1228800, metaDeviceSectors: 32768, tagSize: 4, blockSize: 4096, mode: "B", recalculate: false });
  assert.ok("superblock" in r);
  if (!("superblock" in r)) return;
  const sb = r.superblock;
  assert.equal(sb.version, 3);
  assert.equal(sb.flags, SB_FLAG_DIRTY_BITMAP);
  assert.equal(sb.log2SectorsPerBlock, 3);
  // 4 KiB blocks: 8 + 8*8 + 4 -> 80-byte entries, 6 per sector, 48 per section, 8 + 48*8 = 392 sectors per section.
  assert.deepEqual(journalGeometry(4, 8), { entrySize: 80, entriesPerSector: 6, sectionEntries: 48, sectionSectors: 392 });
  // Default journal min(131072, 1228800 >> 7 = 9600) sectors -> 24 sections; they fit.
  assert.equal(sb.journalSections, 24);
  assert.equal(sb.log2BlocksPerBitmapBit, 15 - 3);
  const bytes = encodeSuperblock(sb);
  assert.equal(hex(bytes.subarray(8, 30)), "03" + "00" + "0400" + "18000000" + "00c0120000000000" + "04000000" + "03" + "0c");
});

test("journal geometry for 512-byte blocks and 4-byte tags: 24-byte entries, 21 per sector, 168 per section, 176 sectors", () => {
  assert.deepEqual(journalGeometry(4, 1), { entrySize: 24, entriesPerSector: 21, sectionEntries: 168, sectionSectors: 176 });
  // A journal MAC takes 8 bytes of every sector.
  assert.equal(journalGeometry(4, 1, true).entriesPerSector, 20);
});

test("journal sections: the largest count up to the request that fits, bit by bit as the kernel searches", () => {
  // Room for exactly 5 sections beside the tags: 8 + 5*176 + tags(128) + padding check.
  const meta = 8 + 5 * 176 + 128;
  const r = formatSuperblock({ dataDeviceSectors: 16384, metaDeviceSectors: meta, tagSize: 4, blockSize: 512, mode: "J", journalSectors: 7 * 176, recalculate: false });
  assert.ok("superblock" in r && r.superblock.journalSections === 5);
  const tiny = formatSuperblock({ dataDeviceSectors: 16384, metaDeviceSectors: 100, tagSize: 4, blockSize: 512, mode: "J", recalculate: false });
  assert.deepEqual(tiny, { error: "the metadata device is too small" });
});

test("decode: round trip, a blank area, and each kind of corruption", () => {
  const r = formatSuperblock({ dataDeviceSectors: 16384, metaDeviceSectors: 16384, tagSize: 4, blockSize: 512, mode: "J", recalculate: true });
  assert.ok("superblock" in r);
  if (!("superblock" in r)) return;
  const bytes = encodeSuperblock({ ...r.superblock, recalcSector: 4096 });
  const back = decodeSuperblock(bytes);
  assert.deepEqual(back, { kind: "superblock", superblock: { ...r.superblock, recalcSector: 4096 } });
  assert.deepEqual(decodeSuperblock(new Uint8Array(4096)), { kind: "blank" });
  const junk = new Uint8Array(4096);
  junk[300] = 1;
  assert.equal(decodeSuperblock(junk).kind, "corrupt", "not all-zero and no magic: not initialized");
  const badVersion = bytes.slice();
  badVersion[8] = 9;
  assert.deepEqual(decodeSuperblock(badVersion), { kind: "corrupt", reason: "unknown version 9" });
  const noJournal = bytes.slice();
  noJournal.fill(0, 12, 16);
  assert.equal(decodeSuperblock(noJournal).kind, "corrupt");
  assert.equal(checkSuperblockAgainst(r.superblock, { tagSize: 4, blockSize: 512, metaDev: true }), undefined);
  assert.match(checkSuperblockAgainst(r.superblock, { tagSize: 8, blockSize: 512, metaDev: true })!, /tag size 4/);
  assert.match(checkSuperblockAgainst(r.superblock, { tagSize: 4, blockSize: 4096, metaDev: true })!, /block size 512/);
});

test("sb_set_version: the flag that needs the newest version wins", () => {
  assert.equal(superblockVersion(0, "J", true), 2);
  assert.equal(superblockVersion(SB_FLAG_RECALCULATING, "J", false), 2);
  assert.equal(superblockVersion(0, "J", false), 1);
  assert.equal(superblockVersion(0, "B", true), 3);
  assert.equal(superblockVersion(SB_FLAG_FIXED_PADDING, "B", false), 4);
  assert.equal(superblockVersion(SB_FLAG_FIXED_HMAC | SB_FLAG_FIXED_PADDING, "J", false), 5);
});

test("crc32c tag: the hash of le64(first logical sector) then the block, stored little-endian", () => {
  const block = new Uint8Array(512);
  for (let i = 0; i < 512; i++) block[i] = (i * 7) & 0xff;
  const head = new Uint8Array([0x39, 0x30, 0, 0, 0, 0, 0, 0]); // sector 12345 as le64
  const want = crc32cSoftware(block, crc32cSoftware(head));
  const tag = crc32cTag(12345, block);
  assert.equal(hex(tag), hex(new Uint8Array([want & 0xff, (want >>> 8) & 0xff, (want >>> 16) & 0xff, want >>> 24])));
  // The sector is part of the tag: the same data elsewhere has another tag.
  assert.notEqual(hex(crc32cTag(12346, block)), hex(tag));
  // All-zero block at sector 0: crc32c of 520 zero bytes.
  const z = crc32cSoftware(new Uint8Array(520));
  assert.equal(hex(crc32cTag(0, new Uint8Array(512))), hex(new Uint8Array([z & 0xff, (z >>> 8) & 0xff, (z >>> 16) & 0xff, z >>> 24])));
  // Longer tags are zero-padded after the 4-byte digest; shorter ones keep its first bytes.
  assert.equal(hex(crc32cTag(12345, block, 8).subarray(0, 4)), hex(tag));
  assert.equal(hex(crc32cTag(12345, block, 8).subarray(4)), "00000000");
  assert.equal(hex(crc32cTag(12345, block, 2)), hex(tag.subarray(0, 2)));
  // 4 KiB blocks hash all 4096 bytes after the block's first sector number.
  const big = new Uint8Array(4096).fill(0xa5);
  const w2 = crc32cSoftware(big, crc32cSoftware(new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0])));
  assert.equal(Buffer.from(crc32cTag(8, big)).readUInt32LE(0), w2);
});

test("crc32c tags of a run in one pass: the same bytes as crc32cTag block by block, for every tag and block size, sectors past 2^32 too", () => {
  const run = new Uint8Array(16 * 1024);
  for (let i = 0; i < run.length; i++) run[i] = (i * 131 + (i >> 9)) & 0xff;
  for (const bs of [512, 1024, 4096])
    for (const ts of [2, 4, 8])
      for (const first of [0, 7 * (bs / 512), 2 ** 32 + bs / 512, 3 * 2 ** 40]) {
        const n = run.length / bs;
        // A Uint8Array and a Buffer view of the same bytes, into a dirty tag array: every byte is written.
        for (const blocks of [run, Buffer.from(run)]) {
          const got = crc32cTags(first, blocks, bs, ts, new Uint8Array(n * ts).fill(0xee));
          for (let i = 0; i < n; i++)
            assert.equal(hex(got.subarray(i * ts, (i + 1) * ts)), hex(crc32cTag(first + (i * bs) / 512, run.subarray(i * bs, (i + 1) * bs), ts)), `bs ${bs} ts ${ts} first ${first} block ${i}`);
        }
      }
  // The sector head is le64 in full: sector 2^32 + 1 is not sector 1.
  const one = run.subarray(0, 512);
  const head = new Uint8Array([1, 0, 0, 0, 1, 0, 0, 0]);
  assert.equal(Buffer.from(crc32cTags(2 ** 32 + 1, one, 512, 4, new Uint8Array(4))).readUInt32LE(0), crc32cSoftware(one, crc32cSoftware(head)));
});

test("metaLayout refuses a metadata device that cannot hold superblock, journal and tags", () => {
  const r = formatSuperblock({ dataDeviceSectors: 16384, metaDeviceSectors: 16384, tagSize: 4, blockSize: 512, mode: "J", recalculate: false });
  assert.ok("superblock" in r);
  if (!("superblock" in r)) return;
  assert.equal(metaLayout(r.superblock, 8 + 176 + 100), undefined, "tags need 128 sectors");
  assert.ok(metaLayout(r.superblock, 8 + 176 + 128));
  assert.equal(metaLayout({ ...r.superblock, providedDataSectors: 1 << 30 }, 16384), undefined, "a superblock claiming more data than the tag area holds");
});
