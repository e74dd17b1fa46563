import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { TagThreads, TAG_THREADS_MIN_BYTES } from "./tag-threads.js";
import { crc32cTags } from "./integrity-format.js";
import { MemoryBlockDevice } from "../../blockdev/memory-block-device.js";
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
