import { test } from "node:test";
import assert from "node:assert/strict";
import type { IoRecord } from "../../../src/blockdev/fault-block-device.js";
import { CrashImages } from "./crash-images.js";
import { Rng } from "./rng.js";

/** One FUA write of 4 sectors of 0xAA over zeroes, still in flight at the crash point. */
function inFlight(): { base: Map<string, Uint8Array>; records: IoRecord[] } {
  const base = new Map([["d1", new Uint8Array(8 * 512)]]);
  const records: IoRecord[] = [{ seq: 1, startSeq: 0, device: "d1", op: "write", offsetBytes: 512, data: new Uint8Array(4 * 512).fill(0xaa), fua: true }];
  return { base, records };
}

/** The torn state of that write: how many of its bytes landed (its kept sectors are whole, then the cut). */
function landedBytes(sectorAtomic?: (device: string, offsetBytes: number) => boolean): { landed: number; cutSector: number } {
  const { base, records } = inFlight();
  for (let seed = 1; ; seed++) {
    const st = new CrashImages(base, records, sectorAtomic).state({ seq: 1, prefix: false }, new Rng(seed));
    if (!st.torn) continue; // the write was dropped
    const img = st.images.get("d1")!;
    let landed = 0;
    while (img[512 + landed] === 0xaa) landed++;
    return { landed, cutSector: (st.torn.offsetBytes - 512) / 512 };
  }
}

test("a torn write is cut inside a sector, except where the format relies on whole-sector writes (dm-integrity's journal)", () => {
  const free = landedBytes();
  assert.ok(free.landed % 512 !== 0, "by default the torn sector is cut at a byte");
  assert.equal(Math.floor(free.landed / 512), free.cutSector);
  const atomic = landedBytes((device, off) => device === "d1" && off >= 512);
  assert.equal(atomic.landed, atomic.cutSector * 512, "a sector-atomic place: the torn sector does not land at all");
});
