import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { MemoryBlockDevice } from "../../blockdev/memory-block-device.js";
import { IntegrityDevice, IntegrityMismatchError } from "./integrity-device.js";
import { DirtyBitmap } from "./dirty-bitmap.js";
import { SB_FLAG_RECALCULATING, crc32cTag, decodeSuperblock } from "./integrity-format.js";

const MiB = 1 << 20;
/** With 8 MiB of data: superblock 8 sectors + one 176-sector journal section, then the tags. */
const TAGS_AT = (8 + 176) * 512;

async function rig(opts: { blockSize?: number; mode?: "J" | "B"; recalculate?: boolean; data?: Uint8Array } = {}) {
  const data = new MemoryBlockDevice("iorig", opts.data ?? 8 * MiB);
  const meta = new MemoryBlockDevice("imeta", 8 * MiB);
  const open = () =>
    IntegrityDevice.open({ name: "vg-r_rimage_0", data, meta, tagSize: 4, blockSize: opts.blockSize ?? 512, mode: opts.mode ?? "B", recalculate: opts.recalculate ?? false });
  const dev = await open();
  return { data, meta, dev, open };
}

async function readBytes(d: MemoryBlockDevice, off: number, n: number): Promise<Uint8Array> {
  const b = new Uint8Array(n);
  await d.read(off, b);
  return b;
}

test("a blank metadata device is formatted; writes land on the data device and their crc32c tags at the kernel's offsets", async () => {
  const { data, meta, dev } = await rig();
  assert.equal(dev.sizeBytes, 8 * MiB);
  const sb = decodeSuperblock(await readBytes(meta, 0, 4096));
  assert.equal(sb.kind, "superblock");
  const block = randomBytes(4096);
  await dev.write(64 * 512, block);
  assert.deepEqual(await readBytes(data, 64 * 512, 4096), new Uint8Array(block));
  const tags = await readBytes(meta, TAGS_AT + 64 * 4, 8 * 4);
  for (let i = 0; i < 8; i++) assert.deepEqual(tags.subarray(i * 4, i * 4 + 4), crc32cTag(64 + i, block.subarray(i * 512, (i + 1) * 512)));
  const back = new Uint8Array(4096);
  await dev.read(64 * 512, back);
  assert.deepEqual(back, new Uint8Array(block));
  assert.equal(dev.mismatches, 0);
});

test("flipped bits on the data device: the read fails with EILSEQ naming every bad block, counted once; the neighbours still read", async () => {
  const { data, dev } = await rig();
  await dev.write(0, randomBytes(16 * 512));
  for (const at of [5 * 512 + 100, 9 * 512 + 3]) {
    const raw = await readBytes(data, at, 1);
    await data.write(at, new Uint8Array([raw[0]! ^ 0x10]));
  }
  await assert.rejects(dev.read(0, new Uint8Array(16 * 512)), (e: unknown) => e instanceof IntegrityMismatchError && e.errno === "EILSEQ" && e.sector === 5 && e.badSectors.join() === "5,9" && e.blockSectors === 1);
  assert.equal(dev.mismatches, 1);
  await dev.read(0, new Uint8Array(5 * 512));
  await dev.read(6 * 512, new Uint8Array(3 * 512));
  await dev.write(9 * 512, new Uint8Array(512));
  // Rewriting the block (what raid1 does with the good copy) gives it a valid tag again.
  await dev.write(5 * 512, new Uint8Array(512).fill(7));
  const b = new Uint8Array(512);
  await dev.read(5 * 512, b);
  assert.ok(b.every((x) => x === 7));
  assert.equal(dev.mismatches, 1);
});

test("a corrupted tag is a mismatch too; unaligned I/O goes through whole 4 KiB blocks", async () => {
  const { meta, dev } = await rig({ blockSize: 4096 });
  await dev.write(0, new Uint8Array(8192).fill(1));
  await dev.write(4096 + 10, new Uint8Array([9, 9, 9]));
  const b = new Uint8Array(6);
  await dev.read(4096 + 8, b);
  assert.deepEqual(b, new Uint8Array([1, 1, 9, 9, 9, 1]));
  // 4 KiB blocks: the tag area starts after 8 + one 392-sector section; block 1's tag at +4.
  const at = (8 + 392) * 512 + 4;
  const t = await readBytes(meta, at, 1);
  await meta.write(at, new Uint8Array([t[0]! ^ 1]));
  await assert.rejects(dev.read(4096, new Uint8Array(4096)), IntegrityMismatchError);
  await dev.read(0, new Uint8Array(4096));
});

test("recalculate: existing data is tagged in the background, never reported as a mismatch before, verified after", async () => {
  const content = randomBytes(8 * MiB);
  const { meta, dev, open } = await rig({ recalculate: true, data: new Uint8Array(content) });
  // Whatever the recalculation has reached, every read succeeds with the data as it is.
  const b = new Uint8Array(MiB);
  for (let off = 0; off < 8 * MiB; off += MiB) {
    await dev.read(off, b);
    assert.deepEqual(b, new Uint8Array(content.subarray(off, off + MiB)));
  }
  await dev.write(3 * MiB, new Uint8Array(512).fill(3));
  await dev.recalculated();
  assert.equal(dev.status().recalcSector, undefined);
  const sb = decodeSuperblock(await readBytes(meta, 0, 4096));
  assert.ok(sb.kind === "superblock" && !(sb.superblock.flags & SB_FLAG_RECALCULATING) && sb.superblock.recalcSector === 16384);
  assert.equal(sb.kind === "superblock" ? sb.superblock.version : 0, 3);
  await dev.close();
  // Reopened (a restart): nothing to recalculate, every block verified.
  const again = await open();
  assert.equal(again.status().recalcSector, undefined);
  for (let off = 0; off < 8 * MiB; off += MiB) await again.read(off, b);
  assert.equal(again.mismatches, 0);
});

test("refusals name the LV and the metadata device: garbage, a foreign tag size, too small a metadata device", async () => {
  const data = new MemoryBlockDevice("iorig", 8 * MiB);
  const junk = new MemoryBlockDevice("imeta", 8 * MiB);
  await junk.write(100, new Uint8Array([1]));
  await assert.rejects(
    IntegrityDevice.open({ name: "vg-r_rimage_1", data, meta: junk, tagSize: 4, blockSize: 512, mode: "J", recalculate: false }),
    /vg-r_rimage_1: integrity superblock on imeta: bad magic/,
  );
  const { meta } = await rig();
  await assert.rejects(IntegrityDevice.open({ name: "vg-r_rimage_1", data, meta, tagSize: 8, blockSize: 512, mode: "B", recalculate: false }), /tag size 4 doesn't match the table's 8/);
  const small = new MemoryBlockDevice("imeta", 64 * 1024);
  await assert.rejects(
    IntegrityDevice.open({ name: "vg-r_rimage_1", data, meta: small, tagSize: 4, blockSize: 512, mode: "J", recalculate: false }),
    /cannot format integrity metadata on imeta: the metadata device is too small/,
  );
});

test("concurrent writes and reads of the same blocks never see a data/tag mismatch", async () => {
  const { dev } = await rig();
  // Without `recalculate` a new device's blocks have no valid tags until written (as in the kernel).
  await assert.rejects(dev.read(0, new Uint8Array(512)), IntegrityMismatchError);
  await dev.write(0, new Uint8Array(8 * 512));
  const ops: Promise<void>[] = [];
  for (let i = 0; i < 200; i++) {
    const off = (i % 7) * 512;
    ops.push(i % 2 ? dev.write(off, randomBytes(1024)) : dev.read(off, new Uint8Array(1024)));
  }
  await Promise.all(ops);
  assert.equal(dev.mismatches, 1, "only the read of the never-written block");
});

/** The dirty bitmap's first byte on the metadata device (sector 8, the journal area). */
async function bitmapByte(meta: MemoryBlockDevice): Promise<number> {
  return (await readBytes(meta, 8 * 512, 1))[0]!;
}

async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(what);
}

test("bitmap mode: a region's bit is on disk before its data and tags are written, and cleared lazily once idle and flushed", async () => {
  const data = new MemoryBlockDevice("iorig", 8 * MiB);
  const meta = new MemoryBlockDevice("imeta-bm1", 8 * MiB);
  // 4096 sectors (2 MiB) per bit: bit 2 covers 4..6 MiB.
  const dev = await IntegrityDevice.open({ name: "t", data, meta, tagSize: 4, blockSize: 512, mode: "B", recalculate: false, sectorsPerBit: 4096, bitmapFlushIntervalMs: 20 });
  assert.equal(await bitmapByte(meta), 0, "a new device's bitmap is clean");
  // The bit is written (FUA) before the data: watch the data device's first write.
  let bitWhenDataWritten = -1;
  const write = data.write.bind(data);
  data.write = async (off, b, o) => {
    bitWhenDataWritten = await bitmapByte(meta);
    return write(off, b, o);
  };
  await dev.write(5 * MiB, randomBytes(4096));
  assert.equal(bitWhenDataWritten, 0b100);
  await until("the bit is cleared once the region is idle", async () => (await bitmapByte(meta)) === 0);
  await dev.close();
});

test("bitmap mode, a crash between a data write and its tag write: the next activation recomputes the dirty regions' tags (no false mismatch); clean regions keep detecting rot", async () => {
  const data = new MemoryBlockDevice("iorig", 8 * MiB);
  const meta = new MemoryBlockDevice("imeta-bm2", 8 * MiB);
  const open = () => IntegrityDevice.open({ name: "t", data, meta, tagSize: 4, blockSize: 512, mode: "B", recalculate: false, sectorsPerBit: 4096, bitmapFlushIntervalMs: 60_000 });
  const dev = await open();
  await dev.write(0, randomBytes(8 * MiB));
  await dev.close(); // clean: every bit clear
  assert.equal(await bitmapByte(meta), 0);
  const dev2 = await open();
  await dev2.write(3 * MiB, randomBytes(4096)); // region 1 dirty, and stays so (long flush interval)
  assert.equal(await bitmapByte(meta), 0b10);
  // The crash: a data write to region 1 landed, its tag did not; and rot in region 3 (clean).
  await data.write(3 * MiB + 8192, randomBytes(512));
  const raw = await readBytes(data, 7 * MiB, 1);
  await data.write(7 * MiB, new Uint8Array([raw[0]! ^ 1]));
  DirtyBitmap.forgetAll();
  const after = await open();
  await after.read(2 * MiB, new Uint8Array(2 * MiB)); // region 1 reads: its tags were recomputed
  assert.equal(after.mismatches, 0);
  assert.equal(await bitmapByte(meta), 0, "recomputed, the bits are cleared");
  await assert.rejects(after.read(7 * MiB, new Uint8Array(512)), IntegrityMismatchError);
  await after.close();
});
