import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ParseCache } from "./parse-cache.js";
import { parseVgText } from "../format/vg-import.js";
import { exportVgText } from "../format/vg-export.js";
import { readFixture } from "../../test/helpers/fixtures.js";

const j = (x: unknown): unknown => JSON.parse(JSON.stringify(x));
const bytes = (text: string): Buffer => Buffer.from(text, "utf8");

test("a VG stored after its commit reads back as parsing its text would give", () => {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-pc-"));
  try {
    const cache = new ParseCache(dir);
    const { vg } = parseVgText(readFixture("b-mirror", "disk1.mda0-committed.raw"));
    // Pad the VG with LVs so its text is over the caching threshold, and shuffle LV order as commands leave it.
    const base = vg.lvs.find((l) => l.name === "lv_lin")!;
    for (let i = 0; i < 200; i++) vg.lvs.push({ ...structuredClone(base), name: `pad${i}`, id: base.id.slice(0, 28) + String(1000 + i) });
    vg.lvs.reverse();
    const text = exportVgText(vg, { style: "disk", description: "Write from lvcreate -n \"x\" vg.", nowSeconds: 1700000000, hostname: "h" });
    assert.ok(text.length > 32 * 1024);
    cache.putWritten(text, vg);
    assert.equal(readdirSync(dir).length, 1);
    const cached = cache.get(bytes(text));
    assert.ok(cached);
    assert.deepEqual(j(cached), j(parseVgText(text)));
    // Another text is another entry.
    assert.equal(cache.get(bytes(text.replace("seqno = ", "seqno = 1"))), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("small texts are not cached, and an unwritable cache directory is not an error", () => {
  const cache = new ParseCache("/proc/nonexistent/cache");
  const text = readFixture("a-linear", "disk1.mda0-committed.raw").replace(/\0.*$/s, "");
  cache.put(bytes(text), parseVgText(text));
  assert.equal(cache.get(bytes(text)), undefined);
  const big = text + " ".repeat(40 * 1024);
  cache.put(bytes(big), parseVgText(big));
  assert.equal(cache.get(bytes(big)), undefined);
});

test("an entry is used only for the very bytes it holds, in this ulvm version; non-ASCII text survives", () => {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-pc-"));
  try {
    const cache = new ParseCache(dir);
    const base = readFixture("a-linear", "disk1.mda0-committed.raw").replace(/\0.*$/s, "");
    // A description with non-ASCII characters (lvm2 writes the command line there), padded over the threshold.
    const text = base.replace(/description = "[^"]*"/, 'description = "lvcreate -n «données» ✓"') + " ".repeat(40 * 1024);
    const parse = parseVgText(text);
    assert.equal(parse.description, "lvcreate -n «données» ✓");
    cache.put(bytes(text), parse);
    const [name] = readdirSync(dir);
    assert.deepEqual(j(cache.get(bytes(text))), j(parse));
    // Same file name (length and CRC are only the lookup), other bytes: forge it by editing the entry's copy of the text.
    const file = join(dir, name!);
    const entry = readFileSync(file);
    const forged = Buffer.from(entry);
    const at = forged.indexOf("seqno = ") + 8;
    forged[at] = forged[at] === 0x39 ? 0x38 : forged[at]! + 1;
    writeFileSync(file, forged);
    assert.equal(cache.get(bytes(text)), undefined, "an entry whose text differs is not used");
    // Another version's entry is not used.
    writeFileSync(file, Buffer.concat([Buffer.from(entry.toString("latin1").replace(/^(ulvm-parse-cache) \S+/, "$1 0.0.0-old"), "latin1")]));
    assert.equal(cache.get(bytes(text)), undefined, "an entry of another version is not used");
    // A truncated entry is a miss, not an error.
    writeFileSync(file, entry.subarray(0, entry.length - 10));
    assert.equal(cache.get(bytes(text)), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
