import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import fc from "fast-check";
import { fixtureFile, readFixture } from "../../test/helpers/fixtures.js";
import { LvmError } from "../errors/errors.js";
import { parseVgText } from "./vg-import.js";
import { parseConfig } from "./text/parser.js";
import { decodeLabelSector, scanLabel } from "./label.js";
import { decodeMdaHeader } from "./mda.js";
import { readDevice } from "./pv-read.js";
import { MemoryBlockDevice } from "../blockdev/memory-block-device.js";
import { lvmCrc } from "../base/crc.js";

/**
 * Hostile input for every parser of on-disk bytes: random and mutated
 * metadata text, label sectors, mda headers and whole devices. The only
 * acceptable outcomes are a value or an LvmError (lvm2-style message): never
 * another exception, never a hang (each run is bounded by the test timeout).
 */
function onlyCleanErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof LvmError)) throw new Error(`unclean error: ${(e as Error)?.stack ?? String(e)}`);
    assert.ok(e.message.length > 0);
  }
}

const TEXTS = [
  readFixture("a-linear", "disk1.mda0-committed.raw"),
  readFixture("b-mirror", "disk1.mda0-committed.raw"),
  readFixture("b-mirror", "vgcfgbackup.vg"),
  readFixture("e-mda-wrap", "disk1.mda0-committed.raw"),
];

const mutation = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), s: fc.constantFrom("{", "}", "[", "]", "=", ",", '"', "'", "#", "\0", "-", "0", "00777", "99999999999999999999", "-1", "1.5", "x y", "\n", "segment1 {", "stripes = [", "type = \"mirror\"") }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 40 }) }),
);

function mutate(text: string, ms: ReadonlyArray<{ kind: string; at: number; bit?: number; s?: string; n?: number }>): string {
  let t = text;
  for (const m of ms) {
    const at = t.length ? m.at % t.length : 0;
    if (m.kind === "flip") t = t.slice(0, at) + String.fromCharCode(t.charCodeAt(at) ^ (1 << m.bit!)) + t.slice(at + 1);
    else if (m.kind === "cut") t = t.slice(0, at);
    else if (m.kind === "insert") t = t.slice(0, at) + m.s + t.slice(at);
    else t = t.slice(0, at) + t.slice(at + m.n!);
  }
  return t;
}

test("mutated metadata text: a VG or an lvm2-style error, nothing else", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: TEXTS.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 }), (i, ms) => {
      onlyCleanErrors(() => parseVgText(mutate(TEXTS[i]!, ms)));
    }),
    { numRuns: 1500, seed: 1 },
  );
});

test("random text through the config parser: a tree or a parse error", () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(..."ab01 \t\n{}[]=,\"'#\\.-+\0x".split("")), maxLength: 300 }), (s) => {
      onlyCleanErrors(() => parseConfig(s));
      onlyCleanErrors(() => parseConfig(s, { mergeDuplicates: true }));
      onlyCleanErrors(() => parseVgText(s));
    }),
    { numRuns: 3000, seed: 2 },
  );
});

test("deeply nested or huge inputs do not overflow the stack", () => {
  onlyCleanErrors(() => parseConfig("a {".repeat(100000)));
  onlyCleanErrors(() => parseConfig("a = [" + "1,".repeat(200000) + "]"));
  onlyCleanErrors(() => parseVgText("vg {" + " x = 1 ".repeat(50000) + "}"));
});

const disk1 = gunzipSync(readFileSync(fixtureFile("a-linear", "disk1.img.gz")));

test("mutated label sectors and mda headers: decoded, reported as bad, or a FormatError", () => {
  const label = disk1.subarray(512, 1024);
  const header = disk1.subarray(4096, 4608);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 511 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.uint8Array({ minLength: 512, maxLength: 512 }), (edits, random) => {
      const l = Uint8Array.from(label);
      const h = Uint8Array.from(header);
      for (const [at, v] of edits) {
        l[at] = v;
        h[at] = v;
      }
      for (const sec of [l, random]) {
        onlyCleanErrors(() => decodeLabelSector(sec, 1));
        const four = new Uint8Array(2048);
        four.set(sec, 512);
        onlyCleanErrors(() => scanLabel(four));
      }
      onlyCleanErrors(() => decodeMdaHeader(h, 4096));
      onlyCleanErrors(() => decodeMdaHeader(random, 4096));
    }),
    { numRuns: 2000, seed: 3 },
  );
});

test("whole devices with corrupted headers and texts read without throwing anything but clean errors", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: 16383 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 }), async (edits) => {
      const img = Uint8Array.from(disk1.subarray(0, 1 << 20));
      for (const [at, v] of edits) img[at < 8192 ? at : 8192 + ((at * 37) % (img.length - 8192))] = v;
      const dev = new MemoryBlockDevice("fuzz", img);
      try {
        const r = await readDevice(dev, "fuzz");
        for (const m of r.mdas) if (m.text !== undefined) onlyCleanErrors(() => parseVgText(m.text!));
      } catch (e) {
        if (!(e instanceof LvmError)) throw e;
      }
    }),
    { numRuns: 500, seed: 4 },
  );
});

test("an mda header with a valid checksum but absurd 64-bit fields is reported, not trusted", async () => {
  const img = Uint8Array.from(disk1.subarray(0, 1 << 20));
  const h = img.subarray(4096, 4608);
  new DataView(h.buffer, h.byteOffset).setBigUint64(32, 0xffffffffffffffffn, true);
  new DataView(h.buffer, h.byteOffset).setUint32(0, lvmCrc(h.subarray(4)), true);
  const r = await readDevice(new MemoryBlockDevice("fuzz", img), "fuzz");
  assert.equal(r.mdas.length, 1);
  assert.match(r.mdas[0]!.problem ?? "", /size/);
  assert.equal(r.mdas[0]!.text, undefined);
});
