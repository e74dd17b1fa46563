import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomFillSync } from "node:crypto";
import { COMPARE_CHUNK_BYTES, runCompareJob, runCopyJob, sliceExtents } from "./copy-job.js";

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

test("runCompareJob() flags exactly the units where some leg differs from leg 0, coalesced, and the chunks a leg cannot read", () => {
  withFiles((dir) => {
    const UNIT = 64 * 1024;
    const size = 2 * COMPARE_CHUNK_BYTES + 3 * UNIT + 1000; // whole chunks, then a short tail with a partial unit
    const data = randomFillSync(Buffer.alloc(size));
    const at = (buf: Buffer, off: number): Buffer => {
      const b = Buffer.from(buf);
      b[off] = b[off]! ^ 0xff;
      return b;
    };
    // Leg 1: two adjacent units differ (one run), and the partial last unit. Leg 2 (in two pieces): a unit
    // in the second chunk, also differing on leg 1 there (one flag for the unit).
    let leg1 = at(data, 1 * UNIT + 7);
    leg1 = at(leg1, 2 * UNIT);
    leg1 = at(leg1, size - 1);
    leg1 = at(leg1, COMPARE_CHUNK_BYTES + UNIT + 5);
    const leg2 = at(data, COMPARE_CHUNK_BYTES + UNIT + 99);
    writeFileSync(join(dir, "l0"), data);
    writeFileSync(join(dir, "l1"), Buffer.concat([Buffer.alloc(4096), leg1]));
    writeFileSync(join(dir, "l2"), Buffer.concat([leg2.subarray(100_000), leg2.subarray(0, 100_000)]));
    const [f0, f1, f2] = ["l0", "l1", "l2"].map((f) => openSync(join(dir, f), "r")) as [number, number, number];
    try {
      const legs = [
        [{ fd: f0, offsetBytes: 0, lengthBytes: size }],
        [{ fd: f1, offsetBytes: 4096, lengthBytes: size }],
        [
          { fd: f2, offsetBytes: size - 100_000, lengthBytes: 100_000 },
          { fd: f2, offsetBytes: 0, lengthBytes: size - 100_000 },
        ],
      ];
      const r = runCompareJob({ kind: "compare", id: 3, legs, unitBytes: UNIT }, []);
      assert.deepEqual(r, {
        id: 3,
        suspect: [1 * UNIT, 2 * UNIT, COMPARE_CHUNK_BYTES + UNIT, UNIT, size - 1000, 1000],
        comparedBytes: size,
      });
      // Identical legs: nothing to look at again.
      assert.deepEqual(runCompareJob({ kind: "compare", id: 4, legs: [legs[0]!, legs[0]!], unitBytes: UNIT }, []).suspect, []);
      // A leg shorter than the range: its chunk past the end is flagged whole (unreadable), the chunks before are compared.
      const short = [{ fd: f0, offsetBytes: 0, lengthBytes: size + COMPARE_CHUNK_BYTES }];
      const past = [{ fd: f1, offsetBytes: 4096, lengthBytes: size + COMPARE_CHUNK_BYTES }];
      const s = runCompareJob({ kind: "compare", id: 5, legs: [short, past], unitBytes: UNIT }, [new Uint8Array(COMPARE_CHUNK_BYTES)]);
      assert.deepEqual(s.suspect.slice(0, 6), [1 * UNIT, 2 * UNIT, COMPARE_CHUNK_BYTES + UNIT, UNIT, 2 * COMPARE_CHUNK_BYTES, size + COMPARE_CHUNK_BYTES - 2 * COMPARE_CHUNK_BYTES]);
      assert.equal(s.suspect.length, 6);
    } finally {
      [f0, f1, f2].forEach((f) => closeSync(f));
    }
  });
});
