import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { MemoryBlockDevice } from "../../../blockdev/memory-block-device.js";
import { IoError } from "../../../errors/errors.js";
import { IntegrityDevice } from "../../integrity/integrity-device.js";
import { MappedDevice } from "../../mapped-device.js";
import { Table } from "../../table.js";
import { defaultTargetTypes } from "../../target-types.js";
import { testEnv } from "../../test-helpers.js";
import { Raid1Target } from "./raid1-target.js";
import { RMETA_BYTES, raid1Line } from "./raid1-rig.js";

/**
 * raid1 over integrity layers, as lvm2 stacks them (each rimage an integrity
 * device over its iorig, tags on its imeta): a block whose checksum fails on
 * one leg is served from the other, rewritten on the bad leg and counted; the
 * leg stays in the array. When both copies are bad the client gets EIO for
 * that request only.
 */
const SECTORS = 4096;

async function rig() {
  const iorig = [0, 1].map((i) => new MemoryBlockDevice(`iorig${i}`, SECTORS * 512));
  const imeta = [0, 1].map((i) => new MemoryBlockDevice(`imeta${i}`, 1 << 20));
  const images = await Promise.all([0, 1].map((i) => IntegrityDevice.open({ name: `vg-r_rimage_${i}`, data: iorig[i]!, meta: imeta[i]!, tagSize: 4, blockSize: 512, mode: "B", recalculate: true })));
  await Promise.all(images.map((d) => d.recalculated()));
  const env = testEnv({
    rmeta0: new MemoryBlockDevice("rmeta0", RMETA_BYTES),
    rmeta1: new MemoryBlockDevice("rmeta1", RMETA_BYTES),
    rimage0: images[0]!,
    rimage1: images[1]!,
  });
  const dev = new MappedDevice("vg-r", { env, targetTypes: defaultTargetTypes({ raid: { cleanIntervalMs: 0, resyncThreads: 0, legWriteThread: false } }) });
  const [t] = await dev.load(Table.parse(raid1Line({ params: ["nosync"] }, SECTORS, 64, 2)));
  assert.ok(Raid1Target.is(t));
  await dev.resume();
  return { dev, target: t as Raid1Target, iorig, images };
}

async function flipBit(d: MemoryBlockDevice, byte: number): Promise<void> {
  const b = new Uint8Array(1);
  await d.read(byte, b);
  b[0]! ^= 0x04;
  await d.write(byte, b);
}

test("rot on one leg: served from the other, rewritten, counted; the leg stays in the array", async () => {
  const { dev, target, iorig, images } = await rig();
  try {
    const data = randomBytes(SECTORS * 512);
    await dev.write(0, data);
    await dev.flush();
    const bad = [3, 100, 2047, 4000];
    for (const s of bad) await flipBit(iorig[0]!, s * 512 + 77);
    for (const s of [500, 3000]) await flipBit(iorig[1]!, s * 512 + 5);
    const back = new Uint8Array(SECTORS * 512);
    for (let s = 0; s < SECTORS; s += 64) await dev.read(s * 512, back.subarray(s * 512, (s + 64) * 512));
    assert.ok(Buffer.from(back).equals(data), "not one wrong byte served");
    // Whichever leg served each read, the bad copies found were healed from the good leg.
    const found = images[0]!.mismatches + images[1]!.mismatches;
    assert.equal(target.core.correctedReads, found);
    assert.equal(target.core.uncorrectableReads, 0);
    assert.ok(target.core.legs.every((l) => !l.failed), "no leg failed for a checksum mismatch");
    // Every rotten copy the reads met was rewritten: read straight from its leg it now passes; the
    // ones no read met (the other leg served those sectors) still fail, and are for a scrub to find.
    assert.ok(target.core.correctedReads >= 2, "every sector was read, so some rot was met");
    let healed = 0;
    let stillBad = 0;
    const rot: Array<[number, number[]]> = [[0, bad], [1, [500, 3000]]];
    for (const [leg, sectors] of rot)
      for (const s of sectors) {
        try {
          await images[leg]!.read(s * 512, new Uint8Array(512));
          healed++;
        } catch (e) {
          assert.ok(e instanceof IoError && e.errno === "EILSEQ");
          stillBad++;
        }
      }
    assert.equal(healed, target.core.correctedReads);
    assert.equal(healed + stillBad, 6);
  } finally {
    await dev.remove?.();
  }
});

test("the same block rotten on both legs: EIO for that request only, counted; the rest of the LV reads", async () => {
  const { dev, target, iorig } = await rig();
  try {
    const data = randomBytes(SECTORS * 512);
    await dev.write(0, data);
    await flipBit(iorig[0]!, 700 * 512 + 1);
    await flipBit(iorig[1]!, 700 * 512 + 300);
    await assert.rejects(dev.read(700 * 512, new Uint8Array(512)), (e: unknown) => e instanceof IoError && e.errno === "EIO");
    assert.equal(target.core.uncorrectableReads, 1);
    const b = new Uint8Array(512);
    await dev.read(699 * 512, b);
    assert.ok(Buffer.from(b).equals(data.subarray(699 * 512, 700 * 512)));
    await dev.read(701 * 512, b);
    assert.ok(Buffer.from(b).equals(data.subarray(701 * 512, 702 * 512)));
    assert.ok(target.core.legs.every((l) => !l.failed));
    // A client write of the block makes it whole again on both legs.
    await dev.write(700 * 512, new Uint8Array(512).fill(1));
    await dev.read(700 * 512, b);
    assert.ok(b.every((x) => x === 1));
  } finally {
    await dev.remove?.();
  }
});
