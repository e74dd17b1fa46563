import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomFillSync } from "node:crypto";
import { CopyEngine } from "./copy-engine.js";

async function untilReady(engine: CopyEngine): Promise<void> {
  for (let i = 0; i < 500 && !engine.ready; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(engine.ready, "the copy threads came up");
}

test("copy threads split a range between them and copy it to every destination", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-copyeng-"));
  const engine = new CopyEngine({ threads: 2 });
  const fds: number[] = [];
  try {
    assert.equal(engine.ready, false);
    engine.warmUp();
    await untilReady(engine);
    // 5 MiB and a bit: shares of whole MiB, and a tail.
    const size = 5 * 1024 * 1024 + 12_345;
    const data = randomFillSync(Buffer.alloc(size));
    writeFileSync(join(dir, "src"), data);
    for (const f of ["d1", "d2", "ro"]) writeFileSync(join(dir, f), Buffer.alloc(size + 4096));
    const [src, d1, d2, ro] = [openSync(join(dir, "src"), "r"), openSync(join(dir, "d1"), "r+"), openSync(join(dir, "d2"), "r+"), openSync(join(dir, "ro"), "r")];
    fds.push(src, d1, d2, ro);
    const whole = (fd: number, at = 0) => [{ fd, offsetBytes: at, lengthBytes: size }];
    const out = await engine.copy(whole(src), [whole(d1), whole(d2, 4096)]);
    assert.deepEqual(out, { srcError: undefined, dstErrors: [null, null] });
    assert.deepEqual(readFileSync(join(dir, "d1")).subarray(0, size), data);
    assert.deepEqual(readFileSync(join(dir, "d2")).subarray(4096), data);
    assert.ok(engine.copiedBytes >= size);
    // A destination that cannot be written is named in the outcome; the others still get everything.
    writeFileSync(join(dir, "d1"), Buffer.alloc(size + 4096));
    const bad = await engine.copy(whole(src), [whole(ro), whole(d1)]);
    assert.equal(bad.srcError, undefined);
    assert.equal(bad.dstErrors[0]?.code, "EBADF");
    assert.equal(bad.dstErrors[1], null);
    assert.deepEqual(readFileSync(join(dir, "d1")).subarray(0, size), data);
    // Stopped threads are not ready; a copy then rejects, and warmUp() brings them back.
    await engine.stop();
    assert.equal(engine.ready, false);
    await assert.rejects(engine.copy(whole(src), [whole(d1)]));
    engine.warmUp();
    await untilReady(engine);
    assert.deepEqual((await engine.copy(whole(src), [whole(d2)])).dstErrors, [null]);
  } finally {
    await engine.stop();
    fds.forEach((f) => closeSync(f));
    rmSync(dir, { recursive: true, force: true });
  }
});
