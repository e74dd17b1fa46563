import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { TagThreads, TAG_THREADS_MIN_BYTES } from "./tag-threads.js";
import { crc32cTags } from "./integrity-format.js";
import { mkdtempSync, rmSync, openSync, readSync, writeSync, closeSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { MemoryBlockDevice } from "../../blockdev/memory-block-device.js";
import { FileBlockDevice } from "../../blockdev/file-block-device.js";
import { IntegrityDevice, IntegrityMismatchError } from "./integrity-device.js";

const MiB = 1 << 20;

/** The threads start on first use: ask until one answers (undefined until then). */
async function threadedTags(t: TagThreads, first: number, data: Uint8Array, bs: number, ts: number): Promise<Buffer> {
  for (let i = 0; i < 500; i++) {
    const p = t.tags(first, data, bs, ts);
    const got = p === undefined ? undefined : await p;
    if (got !== undefined) return got;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("no tag thread came up");
}

test("tag threads: the same tags as crc32cTags on the event loop, for each block and tag size; small and oversized requests are left to the caller", async () => {
  const t = new TagThreads();
  const data = randomBytes(MiB);
  for (const [bs, ts] of [[512, 4], [4096, 4], [1024, 8], [512, 2]] as const) {
    const got = await threadedTags(t, 2 ** 32 + 8, data, bs, ts);
    assert.deepEqual(new Uint8Array(got), crc32cTags(2 ** 32 + 8, data, bs, ts, new Uint8Array((MiB / bs) * ts)));
  }
  assert.equal(t.tags(0, new Uint8Array(TAG_THREADS_MIN_BYTES - 512), 512, 4), undefined);
  assert.equal(t.tags(0, new Uint8Array(MiB + 512), 512, 4), undefined);
});

test("a 1 MiB write and read through the integrity layer with its tags computed on the threads: a flipped bit is still found and named", async () => {
  const data = new MemoryBlockDevice("iorig", 8 * MiB);
  const meta = new MemoryBlockDevice("imeta", 8 * MiB);
  const dev = await IntegrityDevice.open({ name: "vg-r_rimage_0", data, meta, tagSize: 4, blockSize: 512, mode: "B", recalculate: false });
  // Bring the shared threads up first (IntegrityDevice uses the process's set).
  const { sharedTagThreads } = await import("./tag-threads.js");
  await threadedTags(sharedTagThreads(), 0, new Uint8Array(TAG_THREADS_MIN_BYTES), 512, 4);
  const block = randomBytes(MiB);
  await dev.write(MiB, block);
  const back = new Uint8Array(MiB);
  await dev.read(MiB, back);
  assert.deepEqual(back, new Uint8Array(block));
  const raw = new Uint8Array(1);
  await data.read(MiB + 700 * 512 + 17, raw);
  await data.write(MiB + 700 * 512 + 17, new Uint8Array([raw[0]! ^ 1]));
  await assert.rejects(dev.read(MiB, back), (e: unknown) => e instanceof IntegrityMismatchError && e.badSectors.join() === String(MiB / 512 + 700));
  await dev.close();
});

test("B mode on files, tags on the threads: a 1 MiB write reads back verified; a bit flipped in the file is found and named", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-tagthreads-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ["d", "m"]) {
    writeFileSync(join(dir, f), "");
    truncateSync(join(dir, f), 8 * MiB);
  }
  const data = await FileBlockDevice.open(join(dir, "d"));
  const meta = await FileBlockDevice.open(join(dir, "m"));
  t.after(async () => {
    await data.close();
    await meta.close();
  });
  const dev = await IntegrityDevice.open({ name: "vg-r_rimage_1", data, meta, tagSize: 4, blockSize: 512, mode: "B", recalculate: false });
  const { sharedTagThreads } = await import("./tag-threads.js");
  await threadedTags(sharedTagThreads(), 0, new Uint8Array(TAG_THREADS_MIN_BYTES), 512, 4);
  const block = randomBytes(MiB);
  await dev.write(2 * MiB, block);
  const back = new Uint8Array(MiB);
  await dev.read(2 * MiB, back);
  assert.deepEqual(back, new Uint8Array(block));
  // Behind the layer's back, as bit rot: one bit of block 1000 of the read.
  const at = 2 * MiB + 1000 * 512 + 99;
  const fd = openSync(join(dir, "d"), "r+");
  const one = Buffer.alloc(1);
  readSync(fd, one, 0, 1, at);
  one[0]! ^= 0x80;
  writeSync(fd, one, 0, 1, at);
  closeSync(fd);
  await assert.rejects(dev.read(2 * MiB, back), (e: unknown) => e instanceof IntegrityMismatchError && e.badSectors.join() === String((2 * MiB) / 512 + 1000));
  assert.equal(dev.mismatches, 1);
  await dev.close();
});

test("tag threads: a write's tags are shared with another request for the same memory and sectors only while in flight; other sectors or changed bytes get their own", async () => {
  const t = new TagThreads();
  const data = Buffer.from(randomBytes(MiB));
  await threadedTags(t, 0, data, 512, 4);
  const a = t.tags(64, data, 512, 4, true)!;
  const b = t.tags(64, data, 512, 4, true)!;
  const other = t.tags(72, data, 512, 4, true)!;
  assert.equal(a, b, "the second leg's request waits for the first one's answer");
  assert.notEqual(a, other);
  assert.deepEqual(new Uint8Array((await other)!), crc32cTags(72, data, 512, 4, new Uint8Array(2048 * 4)));
  assert.deepEqual(new Uint8Array((await a)!), crc32cTags(64, data, 512, 4, new Uint8Array(2048 * 4)));
  // Answered: the buffer may now hold other bytes, and a new request computes them.
  data[5] = data[5]! ^ 1;
  const c = t.tags(64, data, 512, 4, true)!;
  assert.notEqual(c, a);
  assert.deepEqual(new Uint8Array((await c)!), crc32cTags(64, data, 512, 4, new Uint8Array(2048 * 4)));
});
