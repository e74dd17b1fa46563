import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomFillSync } from "node:crypto";
import { runCopyJob, sliceExtents } from "./copy-job.js";

test("sliceExtents() cuts a list of extents at any byte", () => {
  const ex = [
    { fd: 3, offsetBytes: 100, lengthBytes: 10 },
    { fd: 4, offsetBytes: 0, lengthBytes: 5 },
    { fd: 3, offsetBytes: 500, lengthBytes: 20 },
  ];
  assert.deepEqual(sliceExtents(ex, 0, 35), ex);
  assert.deepEqual(sliceExtents(ex, 8, 9), [
    { fd: 3, offsetBytes: 108, lengthBytes: 2 },
    { fd: 4, offsetBytes: 0, lengthBytes: 5 },
    { fd: 3, offsetBytes: 500, lengthBytes: 2 },
  ]);
  assert.deepEqual(sliceExtents(ex, 15, 20), [{ fd: 3, offsetBytes: 500, lengthBytes: 20 }]);
  assert.deepEqual(sliceExtents(ex, 12, 1), [{ fd: 4, offsetBytes: 2, lengthBytes: 1 }]);
});

function withFiles(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-copyjob-"));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("runCopyJob() copies across extents that split differently on each side, a chunk at a time", () => {
  withFiles((dir) => {
    const data = randomFillSync(Buffer.alloc(10_000));
    // Source: bytes [0, 6000) at offset 1000 of a, [6000, 10000) at offset 0 of b.
    const a = join(dir, "a");
    const b = join(dir, "b");
    const a0 = Buffer.alloc(7000);
    data.copy(a0, 1000, 0, 6000);
    writeFileSync(a, a0);
    writeFileSync(b, data.subarray(6000));
    // Destinations: c in one piece at offset 333; d in three pieces (the last at the start of d).
    const c = join(dir, "c");
    const d = join(dir, "d");
    writeFileSync(c, Buffer.alloc(11_000));
    writeFileSync(d, Buffer.alloc(12_000));
    const fds = [a, b, c, d].map((f, i) => openSync(f, i < 2 ? "r" : "r+"));
    try {
      const [fa, fb, fc, fd] = fds as [number, number, number, number];
      const r = runCopyJob(
        {
          id: 7,
          src: [{ fd: fa, offsetBytes: 1000, lengthBytes: 6000 }, { fd: fb, offsetBytes: 0, lengthBytes: 4000 }],
          dsts: [
            [{ fd: fc, offsetBytes: 333, lengthBytes: 10_000 }],
            [{ fd: fd, offsetBytes: 5000, lengthBytes: 1234 }, { fd: fd, offsetBytes: 8000, lengthBytes: 4000 }, { fd: fd, offsetBytes: 0, lengthBytes: 4766 }],
          ],
        },
        new Uint8Array(4096),
      );
      assert.deepEqual(r, { id: 7, srcError: undefined, dstErrors: [null, null], copiedBytes: 10_000 });
    } finally {
      fds.forEach((f) => closeSync(f));
    }
    assert.deepEqual(readFileSync(c).subarray(333, 10_333), data);
    const dd = readFileSync(d);
    assert.deepEqual(Buffer.concat([dd.subarray(5000, 6234), dd.subarray(8000, 12_000), dd.subarray(0, 4766)]), data);
  });
});

test("runCopyJob() stops at a source it cannot read, and keeps writing the destinations that still work", () => {
  withFiles((dir) => {
    const src = join(dir, "src");
    const good = join(dir, "good");
    const ro = join(dir, "ro");
    writeFileSync(src, Buffer.alloc(3000, 7));
    writeFileSync(good, Buffer.alloc(3000));
    writeFileSync(ro, Buffer.alloc(3000));
    const fs = openSync(src, "r");
    const fg = openSync(good, "r+");
    const fr = openSync(ro, "r"); // writes to it fail with EBADF
    try {
      const w = runCopyJob({ id: 1, src: [{ fd: fs, offsetBytes: 0, lengthBytes: 3000 }], dsts: [[{ fd: fr, offsetBytes: 0, lengthBytes: 3000 }], [{ fd: fg, offsetBytes: 0, lengthBytes: 3000 }]] }, new Uint8Array(1024));
      assert.equal(w.srcError, undefined);
      assert.equal(w.dstErrors[0]?.code, "EBADF");
      assert.equal(w.dstErrors[1], null);
      assert.deepEqual(readFileSync(good), Buffer.alloc(3000, 7));
      // The source is 3000 bytes: asking for 5000 reads past its end.
      const r = runCopyJob({ id: 2, src: [{ fd: fs, offsetBytes: 0, lengthBytes: 5000 }], dsts: [[{ fd: fg, offsetBytes: 0, lengthBytes: 5000 }]] }, new Uint8Array(2048));
      assert.equal(r.srcError?.code, "EIO");
      assert.match(r.srcError!.message, /past the end/);
      assert.equal(r.copiedBytes, 2048);
    } finally {
      [fs, fg, fr].forEach((f) => closeSync(f));
    }
  });
});
