import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryBlockDevice } from "../blockdev/memory-block-device.js";
import { BAD_MDA_CHECKSUM, BAD_MDA_HEADER, BAD_MDA_MAGIC, BAD_MDA_START, BAD_MDA_TEXT, checkMdaHeader, EMPTY_LOCN, encodeMdaHeader } from "./mda.js";
import { encodeLabelSector } from "./label.js";
import { readDevice, TextCopies } from "./pv-read.js";
import { commitHeaders, encodeText, planCommit, writeTexts } from "./pv-write.js";

const MDA = 4096;
const MDA_SIZE = 1044480;

function header(): Uint8Array {
  return encodeMdaHeader({ startBytes: MDA, sizeBytes: MDA_SIZE, committed: EMPTY_LOCN, precommitted: EMPTY_LOCN });
}

/** A 4 MiB PV with one mda holding a tiny VG text (or `body` inside the VG section). */
async function pvWithText(name = "mem0", body = ""): Promise<MemoryBlockDevice> {
  const dev = new MemoryBlockDevice(name, 4 * 1024 * 1024);
  await dev.write(512, encodeLabelSector({ sector: 1, pvIdRaw: "a".repeat(32), deviceSizeBytes: dev.sizeBytes, dataAreas: [{ offsetBytes: 1048576, sizeBytes: 0 }], metadataAreas: [{ offsetBytes: MDA, sizeBytes: MDA_SIZE }], extFlags: 1, bootloaderAreas: [] }));
  await dev.write(MDA, header());
  const text = encodeText(`vg {\nid = "x"\n${body}}\ncontents = "Text Format Volume Group"\nversion = 1\n`);
  const plans = planCommit([{ dev, devName: name, header: { startBytes: MDA, sizeBytes: MDA_SIZE, committed: EMPTY_LOCN, precommitted: EMPTY_LOCN } }], text, "vg", 1);
  await writeTexts(plans, text);
  await commitHeaders(plans);
  return dev;
}

test("checkMdaHeader() accepts a header it encoded", () => {
  const c = checkMdaHeader(header(), MDA);
  assert.equal(c.badFields, 0);
  assert.deepEqual(c.problems, []);
});

test("checkMdaHeader() reports a bad checksum in lvm2's words, with the stored value in hex", () => {
  const h = header();
  h[300] = 0x5a;
  const c = checkMdaHeader(h, MDA, "/dev/x");
  assert.equal(c.badFields, BAD_MDA_CHECKSUM);
  assert.match(c.problems[0]!, /^wrong checksum [0-9a-f]+ in mda header on \/dev\/x at 4096$/);
});

test("checkMdaHeader() survives garbage with 64-bit values past 2^53 and flags magic and start", () => {
  const junk = new Uint8Array(512).map((_, i) => (i * 37 + 11) & 0xff);
  const c = checkMdaHeader(junk, MDA);
  assert.ok(c.badFields & BAD_MDA_MAGIC);
  assert.ok(c.badFields & BAD_MDA_START);
  assert.ok(c.problems.some((p) => p.startsWith("wrong start sector ")));
});

test("readDevice() keeps the label of a PV whose mda header is garbage (the PV is not lost)", async () => {
  const dev = await pvWithText();
  await dev.write(MDA, new Uint8Array(512).map((_, i) => (i * 37 + 11) & 0xff));
  const r = await readDevice(dev, "mem0");
  assert.equal(r.label?.pvIdRaw, "a".repeat(32));
  assert.ok(r.mdas[0]!.badFields & BAD_MDA_HEADER);
  assert.equal(r.mdas[0]!.text, undefined);
});

test("readDevice() marks a text whose checksum does not match as BAD_MDA_TEXT, naming the offset", async () => {
  const dev = await pvWithText();
  const good = await readDevice(dev, "mem0");
  assert.equal(good.mdas[0]!.badFields, 0);
  assert.equal(good.mdas[0]!.vgName, "vg");
  await dev.write(MDA + 512 + 3, new Uint8Array([0x23]));
  const r = await readDevice(dev, "mem0");
  assert.equal(r.mdas[0]!.badFields, BAD_MDA_TEXT);
  assert.equal(r.mdas[0]!.problem, `Checksum error on mem0 at offset ${MDA + 512}.`);
});

test("a scan reads every copy whole and checks it, but holds one buffer for copies that are byte for byte the same", async () => {
  // Over the 64 KiB verify chunk, so that copies are compared in several pieces.
  const body = `description = "${"x".repeat(150 * 1024)}"\n`;
  const devs = await Promise.all(["m0", "m1", "m2"].map((n) => pvWithText(n, body)));
  // m2: same header (checksum, size), one byte changed past the first chunk: its CRC no longer holds.
  const m2Text = MDA + 512 + 100 * 1024;
  const orig = new Uint8Array(1);
  await devs[2]!.read(m2Text, orig);
  await devs[2]!.write(m2Text, new Uint8Array([orig[0] === 0x78 ? 0x79 : 0x78]));
  const copies = new TextCopies();
  const reads = await Promise.all(devs.map((d) => readDevice(d, d.name, copies)));
  const [a, b, c] = reads.map((r) => r.mdas[0]!);
  assert.equal(a!.badFields, 0);
  assert.equal(b!.badFields, 0);
  assert.equal(a!.textBytes!.buffer, b!.textBytes!.buffer, "identical copies share one buffer");
  assert.equal(b!.text, a!.text);
  assert.equal(c!.badFields, BAD_MDA_TEXT, "a copy that differs is read on its own and fails its CRC");
  assert.equal(c!.problem, `Checksum error on m2 at offset ${MDA + 512}.`);
  // Without the shared state every copy is read alone, with the same results.
  const alone = await Promise.all(devs.map((d) => readDevice(d, d.name)));
  assert.deepEqual(alone.map((r) => r.mdas[0]!.badFields), [0, 0, BAD_MDA_TEXT]);
  assert.equal(alone[1]!.mdas[0]!.text, a!.text);
});
