import { test } from "node:test";
import assert from "node:assert/strict";
import { integrityMetaBytes, integrityMetaExtents } from "./raid1-integrity.js";

const MiB = 1024 * 1024;
const E4M = 8192;

test("imeta size: 4 MiB per started 500 MiB of data plus lvm2's journal allowance", () => {
  // _lv_size_bytes_to_integrity_meta_bytes, at each boundary of its table.
  assert.equal(integrityMetaBytes(8 * MiB, 0, E4M), 8 * MiB);
  assert.equal(integrityMetaBytes(499 * MiB, 0, E4M), 8 * MiB);
  assert.equal(integrityMetaBytes(500 * MiB, 0, E4M), 12 * MiB);
  assert.equal(integrityMetaBytes(512 * MiB, 0, E4M), 12 * MiB);
  assert.equal(integrityMetaBytes(513 * MiB, 0, E4M), 16 * MiB);
  assert.equal(integrityMetaBytes(1024 * MiB, 0, E4M), 20 * MiB);
  assert.equal(integrityMetaBytes(1025 * MiB, 0, E4M), 44 * MiB);
  assert.equal(integrityMetaBytes(4096 * MiB, 0, E4M), 9 * 4 * MiB + 32 * MiB);
  assert.equal(integrityMetaBytes(4097 * MiB, 0, E4M), 9 * 4 * MiB + 64 * MiB);
  // A requested journal is rounded up to whole extents instead.
  assert.equal(integrityMetaBytes(8 * MiB, 100, E4M), 4 * MiB + 4 * MiB);
  assert.equal(integrityMetaBytes(8 * MiB, 8193, E4M), 4 * MiB + 8 * MiB);
});

test("imeta extents: whole extents of the size (not rounded up), at least one", () => {
  assert.equal(integrityMetaExtents((8 * MiB) / 512, 0, E4M), 2);
  assert.equal(integrityMetaExtents((600 * MiB) / 512, 0, E4M), 4);
  // 64 MiB extents: 8 MiB of metadata still takes one extent.
  assert.equal(integrityMetaExtents((8 * MiB) / 512, 0, 131072), 1);
  // 3 MiB extents: 8 MiB is 2 whole extents (lvm2 does not round up).
  assert.equal(integrityMetaExtents((8 * MiB) / 512, 0, 6144), 2);
});
