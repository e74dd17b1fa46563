import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ParseCache } from "./parse-cache.js";
import { parseVgText } from "../format/vg-import.js";
import { exportVgText } from "../format/vg-export.js";
import { readFixture } from "../../test/helpers/fixtures.js";

const j = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

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
    const cached = cache.get(text);
    assert.ok(cached);
    assert.deepEqual(j(cached), j(parseVgText(text)));
    // Another text is another key.
    assert.equal(cache.get(text.replace("seqno = ", "seqno = 1")), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("small texts are not cached, and an unwritable cache directory is not an error", () => {
  const cache = new ParseCache("/proc/nonexistent/cache");
  const text = readFixture("a-linear", "disk1.mda0-committed.raw").replace(/\0.*$/s, "");
  cache.put(text, parseVgText(text));
  assert.equal(cache.get(text), undefined);
  const big = text + " ".repeat(40 * 1024);
  cache.put(big, parseVgText(big));
  assert.equal(cache.get(big), undefined);
});
