import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { MemoryBlockDevice } from "../../blockdev/memory-block-device.js";
import { IntegrityDevice } from "./integrity-device.js";
import { IntegrityJournal } from "./journal.js";
import { JournalImage, commitId, planReplay } from "./journal-format.js";
import { crc32cTag, journalGeometry } from "./integrity-format.js";

/**
 * Journal mode through IntegrityDevice on memory devices. A crash is
 * IntegrityJournal.forgetAll() (the process's memory is gone) with the
 * devices' writes stopped where the test wants them (a write that never
 * completes never lands).
 */
const MiB = 1 << 20;
const SECTION = 176 * 512;

function rig(journalSectors?: number) {
  const data = new MemoryBlockDevice("iorig", 8 * MiB);
  const meta = new MemoryBlockDevice(`imeta-${Math.random()}`, 8 * MiB);
  const open = () =>
    IntegrityDevice.open({ name: "vg-r_rimage_0", data, meta, tagSize: 4, blockSize: 512, mode: "J", recalculate: false, ...(journalSectors ? { journalSectors } : {}) });
  return { data, meta, open };
}

async function bytes(d: MemoryBlockDevice, off: number, n: number): Promise<Uint8Array> {
  const b = new Uint8Array(n);
  await d.read(off, b);
  return b;
}

/** Stop a device's writes from landing (they never complete): what a crash does to writes in flight. */
function freeze(d: MemoryBlockDevice): void {
  d.write = () => new Promise(() => undefined);
}

async function journalImage(meta: MemoryBlockDevice, sections: number): Promise<JournalImage> {
  return new JournalImage(journalGeometry(4, 1), sections, 1, 4, await bytes(meta, 8 * 512, sections * SECTION));
}

test("a FUA write is in the committed journal when acknowledged; after a crash before the copy, the replay puts data and tag in place", async () => {
  const { data, meta, open } = rig(4 * 176);
  const dev = await open();
  const block = randomBytes(4096);
  const realWrite = data.write.bind(data);
  freeze(data); // the copy to the data device never lands
  await dev.write(40 * 512, block, { fua: true });
  const img = await journalImage(meta, 4);
  const plan = planReplay(img);
  assert.equal(plan.kind, "ok");
  assert.equal(plan.kind === "ok" && plan.empty, false, "the committed section is on disk");
  IntegrityJournal.forgetAll();
  data.write = realWrite;
  assert.notDeepEqual(await bytes(data, 40 * 512, 4096), new Uint8Array(block), "not copied before the crash");
  const after = await open();
  assert.deepEqual(await bytes(data, 40 * 512, 4096), new Uint8Array(block), "replayed to the data device");
  const back = new Uint8Array(4096);
  await after.read(40 * 512, back);
  assert.deepEqual(back, new Uint8Array(block));
  assert.equal(after.mismatches, 0);
  await after.close();
});

test("a write neither FUA nor flushed is served from the journal while live, and after a crash reads as before: no false mismatch", async () => {
  const { data, open } = rig();
  const dev = await open();
  const old = randomBytes(8192);
  await dev.write(0, old);
  await dev.flush();
  const neu = randomBytes(8192);
  await dev.write(0, neu);
  const live = new Uint8Array(8192);
  await dev.read(0, live);
  assert.deepEqual(live, new Uint8Array(neu), "read from the journal");
  freeze(data);
  IntegrityJournal.forgetAll();
  data.write = MemoryBlockDevice.prototype.write.bind(data);
  const after = await open();
  const back = new Uint8Array(8192);
  await after.read(0, back);
  assert.deepEqual(back, new Uint8Array(old));
  assert.equal(after.mismatches, 0);
  await after.close();
});

test("a commit torn on the metadata device (half the section written) is not replayed; the journal is cleared and usable", async () => {
  const { data, meta, open } = rig(4 * 176);
  const dev = await open();
  const old = randomBytes(512);
  await dev.write(10 * 512, old, { fua: true });
  await dev.flush();
  const realMeta = meta.write.bind(meta);
  freeze(data);
  meta.write = async (off, b, o) => {
    if (off >= 8 * 512 && off < 8 * 512 + 4 * SECTION) {
      await realMeta(off, b.subarray(0, 90 * 512), o); // the first 90 sectors land, then the crash
      return new Promise(() => undefined);
    }
    return realMeta(off, b, o);
  };
  void dev.write(10 * 512, randomBytes(512), { fua: true });
  await new Promise((r) => setTimeout(r, 20));
  IntegrityJournal.forgetAll();
  meta.write = realMeta;
  data.write = MemoryBlockDevice.prototype.write.bind(data);
  const after = await open();
  const back = new Uint8Array(512);
  await after.read(10 * 512, back);
  assert.deepEqual(back, new Uint8Array(old), "the torn commit's write is not replayed");
  assert.equal(after.mismatches, 0);
  const plan = planReplay(await journalImage(meta, 4));
  assert.equal(plan.kind === "ok" && plan.empty, true, "the journal was cleared");
  const neu = randomBytes(512);
  await after.write(10 * 512, neu, { fua: true });
  await after.close();
  const again = await open();
  await again.read(10 * 512, back);
  assert.deepEqual(back, new Uint8Array(neu));
  await again.close();
});

test("many passes over a one-section journal (commit ids wrap through all four sequences), then a crash: every FUA write survives", async () => {
  const { data, open } = rig(); // 8 MiB of data: one 176-sector section
  const dev = await open();
  const blocks: Uint8Array[] = [];
  for (let i = 0; i < 11; i++) {
    blocks.push(randomBytes(512));
    if (i === 10) freeze(data);
    await dev.write(i * 4096, blocks[i]!, { fua: true });
  }
  IntegrityJournal.forgetAll();
  data.write = MemoryBlockDevice.prototype.write.bind(data);
  const after = await open();
  for (let i = 0; i < 11; i++) {
    const b = new Uint8Array(512);
    await after.read(i * 4096, b);
    assert.deepEqual(b, new Uint8Array(blocks[i]!), `block ${i}`);
  }
  assert.equal(after.mismatches, 0);
  await after.close();
});

test("a journal written by another writer in the kernel's layout (seq 1 after the format's seq 0) is replayed at activation", async () => {
  const { data, meta, open } = rig(2 * 176);
  await (await open()).close();
  // Section 0 of the journal as the kernel's integrity_commit leaves it: entries 0..2 for sectors 300..302.
  const img = await journalImage(meta, 2);
  const plan0 = planReplay(img);
  const blocks = [0, 1, 2].map(() => randomBytes(512));
  blocks.forEach((b, n) => img.putBlock(0, n, 300 + n, b, crc32cTag(300 + n, b)));
  const seq = plan0.kind === "ok" && "commitSeq" in plan0.continueAt ? plan0.continueAt.commitSeq : -1;
  const sec = plan0.kind === "ok" ? plan0.start : -1;
  for (let j = 0; j < 176; j++) img.setCommitId(sec, j, commitId(sec, j, seq));
  if (sec !== 0) throw new Error("expected the clean journal to continue at section 0");
  await meta.write(8 * 512, img.bytes.slice(0, 2 * SECTION));
  const dev = await open();
  for (let n = 0; n < 3; n++) assert.deepEqual(await bytes(data, (300 + n) * 512, 512), new Uint8Array(blocks[n]!));
  const back = new Uint8Array(3 * 512);
  await dev.read(300 * 512, back);
  assert.equal(dev.mismatches, 0);
  await dev.close();
});

test("a clean close leaves the journal whole and empty, as the kernel's postsuspend does", async () => {
  const { meta, open } = rig(4 * 176);
  const dev = await open();
  for (let i = 0; i < 5; i++) await dev.write(i * 65536, randomBytes(65536), { fua: i % 2 === 0 });
  await dev.close();
  const plan = planReplay(await journalImage(meta, 4));
  assert.equal(plan.kind, "ok");
  if (plan.kind === "ok") {
    assert.equal(plan.empty, true);
    assert.equal(plan.sections, 4);
  }
});

test("a commit whose first sector is cut before its commit id looks like the previous commit (the format needs whole-sector writes); the replay refuses it by the entry tags", async () => {
  // The state the torture's crash model made (integrity-power-loss, seed 4243): a one-section journal, commit K
  // on disk, commit K+1 in flight and cut inside its first sector before the commit id. Every sector still carries
  // K's id, so the section reads as committed, yet the entries of metadata sector 0 (entries 0, 8, 16, ...) name
  // K+1's sectors over K's data. Disks write 512-byte sectors whole, which the kernel's format relies on.
  const { meta, open } = rig();
  const dev = await open();
  const K = new Uint8Array(randomBytes(40 * 512));
  await dev.write(1000 * 512, K, { fua: true });
  const committedK = await bytes(meta, 8 * 512, SECTION);
  await dev.write(3000 * 512, randomBytes(40 * 512), { fua: true });
  const committedK1 = await bytes(meta, 8 * 512, SECTION);
  await dev.close();
  IntegrityJournal.forgetAll();
  const cut = 300; // bytes of K+1's first sector that landed: 12 whole entries and a part, not the commit id
  const torn = committedK.slice();
  torn.set(committedK1.subarray(0, cut));
  const img = new JournalImage(journalGeometry(4, 1), 1, 1, 4, torn);
  const plan = planReplay(img);
  assert.ok(plan.kind === "ok" && plan.sections === 1 && !plan.empty, "every commit id is K's: the section reads as committed");
  const e8 = img.entry(0, 8);
  assert.deepEqual(e8, { kind: "sector", sector: 3008 }, "entry 8 names K+1's sector");
  // (its last 8 bytes are in the entry, K+1's; the 504 before them are in the data sector, K's)
  assert.deepEqual(img.getBlock(0, 8, new Uint8Array(512)).subarray(0, 504), K.subarray(8 * 512, 8 * 512 + 504), "over K's data");
  assert.deepEqual(img.entry(0, 1), { kind: "sector", sector: 1001 }, "entries of the other metadata sectors are K's");
  // ulvm's replay, as the kernel's, checks each entry's tag against its data: the device fails rather than take garbage.
  await meta.write(8 * 512, torn, { fua: true });
  await assert.rejects(open(), /tag mismatch when replaying journal at sector 3000/);
  IntegrityJournal.forgetAll();
});
