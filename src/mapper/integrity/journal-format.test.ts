import { test } from "node:test";
import assert from "node:assert/strict";
import { journalGeometry } from "./integrity-format.js";
import { JournalImage, commitId, planReplay } from "./journal-format.js";

/**
 * The journal's bytes against the kernel's structs (drivers/md/dm-integrity.c),
 * offsets worked out by hand from struct journal_entry / struct journal_sector,
 * access_journal_entry and access_journal_data; no kernel dm-integrity runs here.
 */
const le64 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return [...b];
};

test("geometry: 512-byte blocks with 4-byte tags give 24-byte entries, 21 a sector, 168 a section, 176 sectors; 4096-byte blocks 80, 6, 48, 392", () => {
  assert.deepEqual(journalGeometry(4, 1), { entrySize: 24, entriesPerSector: 21, sectionEntries: 168, sectionSectors: 176 });
  assert.deepEqual(journalGeometry(4, 8), { entrySize: 80, entriesPerSector: 6, sectionEntries: 48, sectionSectors: 392 });
});

test("commit ids: commit_ids[seq] XOR ((section << 32) ^ sector), stored le64 in a sector's last 8 bytes", () => {
  assert.equal(commitId(1, 3, 2), 0x3333333233333330n);
  assert.equal(commitId(0, 0, 0), 0x1111111111111111n);
  assert.equal(commitId(7, 175, 3), 0x44444443444444ebn);
});

test("golden bytes of a section: an unused entry, a used entry with last bytes and tag, its data sector carrying the commit id", () => {
  const img = new JournalImage(journalGeometry(4, 1), 2, 1, 4);
  img.initSections(0, 2, 0);
  const block = Buffer.alloc(512);
  for (let i = 0; i < 512; i++) block[i] = (i * 7 + 3) & 0xff;
  const tag = new Uint8Array([0xde, 0xad, 0xbe, 0xef]);
  img.putBlock(1, 9, 0x123456789, block, tag);
  img.stampSection(1, 2);
  const S = 176 * 512; // section 1
  const b = img.bytes;
  // Entry 0 of section 0, unused: sector_hi = 0xFFFFFFFF, the rest zero.
  assert.deepEqual([...b.subarray(0, 24)], [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, ...new Array(16).fill(0)]);
  // Sector 0 of section 0 ends with commit id (0, 0, seq 0).
  assert.deepEqual([...b.subarray(504, 512)], le64(0x1111111111111111n));
  // Entry 9 = metadata sector 9 % 8 = 1, slot 9 / 8 = 1: byte 512 + 24 of section 1.
  const e = S + 512 + 24;
  assert.deepEqual([...b.subarray(e, e + 8)], [0x89, 0x67, 0x45, 0x23, 0x01, 0, 0, 0]);
  assert.deepEqual([...b.subarray(e + 8, e + 16)], [...block.subarray(504, 512)], "last_bytes[0]: the data sector's real last 8 bytes");
  assert.deepEqual([...b.subarray(e + 16, e + 20)], [0xde, 0xad, 0xbe, 0xef]);
  assert.deepEqual([...b.subarray(e + 20, e + 24)], [0, 0, 0, 0], "padding to 8 bytes");
  // Its data: section sector 8 + 9 = 17, first 504 bytes the block's, then commit id (1, 17, seq 2).
  const d = S + 17 * 512;
  assert.deepEqual([...b.subarray(d, d + 504)], [...block.subarray(0, 504)]);
  assert.deepEqual([...b.subarray(d + 504, d + 512)], le64(0x3333333233333322n));
  assert.deepEqual([...b.subarray(S + 3 * 512 + 504, S + 4 * 512)], [0x30, 0x33, 0x33, 0x33, 0x32, 0x33, 0x33, 0x33]);
  // Read back: the block as written, commit id replaced by its last bytes.
  assert.deepEqual(img.getBlock(1, 9, new Uint8Array(512)), new Uint8Array(block));
  assert.deepEqual(img.entry(1, 9), { kind: "sector", sector: 0x123456789 });
});

function image(sections: number): JournalImage {
  const img = new JournalImage(journalGeometry(4, 1), sections, 1, 4);
  img.initSections(0, sections, 0);
  return img;
}

test("replay of a freshly initialised journal: empty, whole, continue at section 0 with sequence 1", () => {
  assert.deepEqual(planReplay(image(4)), { kind: "ok", start: 0, sections: 4, empty: true, continueAt: { section: 0, commitSeq: 1 } });
});

test("replay of committed sections: oldest pass first, the newest last; the journal continues after them", () => {
  const img = image(4);
  img.putBlock(0, 0, 100, new Uint8Array(512).fill(1), new Uint8Array(4));
  img.stampSection(0, 1);
  img.stampSection(1, 1);
  assert.deepEqual(planReplay(img), { kind: "ok", start: 2, sections: 4, empty: false, continueAt: { section: 2, commitSeq: 1 } });
});

test("a torn section (some sectors of the new sequence, some of the old) stops the replay before it; the journal is then cleared", () => {
  const img = image(4);
  img.putBlock(0, 0, 100, new Uint8Array(512).fill(1), new Uint8Array(4));
  img.stampSection(0, 1);
  for (let j = 0; j < 90; j++) img.setCommitId(1, j, commitId(1, j, 1)); // section 1 half written
  const plan = planReplay(img);
  assert.deepEqual(plan, { kind: "ok", start: 2, sections: 3, empty: false, continueAt: { eraseSeq: 3 } });
  // A never written section in the middle of the new pass stops it the same way.
  const img2 = image(4);
  img2.putBlock(0, 0, 100, new Uint8Array(512), new Uint8Array(4));
  img2.stampSection(0, 1);
  img2.stampSection(2, 1);
  const p2 = planReplay(img2);
  assert.equal(p2.kind, "ok");
  if (p2.kind === "ok") assert.deepEqual([p2.start, p2.sections], [3, 2], "sections 3 (old pass) and 0 only; 1 breaks the chain, 2 is not replayed");
});

test("commit ids wrap: sequence 3 followed by 0 is read in that order, and a garbage commit id is invalid", () => {
  const img = image(3);
  img.putBlock(0, 0, 5, new Uint8Array(512), new Uint8Array(4));
  for (let i = 0; i < 3; i++) img.stampSection(i, 3);
  img.stampSection(0, 0);
  assert.deepEqual(planReplay(img), { kind: "ok", start: 1, sections: 3, empty: false, continueAt: { section: 1, commitSeq: 0 } });
  const img2 = image(3);
  for (let i = 0; i < 3; i++) img2.stampSection(i, 1);
  img2.stampSection(0, 2);
  assert.deepEqual(planReplay(img2), { kind: "ok", start: 1, sections: 3, empty: true, continueAt: { section: 1, commitSeq: 2 } });
  img2.setCommitId(2, 5, 0x1234n);
  assert.deepEqual(planReplay(img2), { kind: "invalid", section: 2, sector: 5 });
});
