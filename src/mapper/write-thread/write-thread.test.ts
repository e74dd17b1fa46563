import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomFillSync } from "node:crypto";
import { WRITE_NOT_DONE, WriteThread, errnoName } from "./write-thread.js";
import { RING_SLOTS, SLOT_BYTES } from "./write-ring.js";

async function untilReady(wt: WriteThread): Promise<void> {
  for (let i = 0; i < 500 && !wt.ready; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(wt.ready, "the write thread came up");
}

test("the write thread writes what it was given, where it was told, past a full ring", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-wthread-"));
  const wt = new WriteThread();
  const path = join(dir, "f");
  const size = 4 * 1024 * 1024;
  writeFileSync(path, Buffer.alloc(size));
  const fd = openSync(path, "r+");
  try {
    assert.equal(wt.submit(fd, 0, Buffer.alloc(512)), undefined, "nothing is taken before the thread is up");
    wt.warmUp();
    await untilReady(wt);
    const expected = Buffer.alloc(size);
    const pending: Array<Promise<number>> = [];
    let refused = 0;
    // Three times round the ring, one write at a time.
    for (let i = 0; i < 3 * RING_SLOTS; i++) {
      const len = 512 * (1 + (i % 16));
      const at = (i * 7919 * 512) % (size - len);
      const data = randomFillSync(Buffer.alloc(len));
      const p = wt.submit(fd, at, data);
      if (p === undefined) {
        refused++;
        continue;
      }
      data.copy(expected, at);
      // The thread writes its own copy: the caller's buffer is free once submit() returned.
      data.fill(0xee);
      pending.push(p);
      await p;
    }
    assert.deepEqual(await Promise.all(pending), pending.map(() => 0));
    assert.equal(refused, 0, "one write at a time never fills the ring");
    assert.ok(readFileSync(path).equals(expected));

    // Now without waiting, through an O_SYNC descriptor: each write waits for
    // the disk, so the ring fills and the writes past it are refused (the
    // caller writes those itself). Taken ones land; refused ones do not.
    const syncFd = openSync(path, "rs+");
    try {
      const burst: Array<Promise<number> | undefined> = [];
      for (let i = 0; i < RING_SLOTS + 8; i++) burst.push(wt.submit(syncFd, i * 4096, Buffer.alloc(4096, 1 + i)));
      const taken = burst.filter((p): p is Promise<number> => p !== undefined);
      assert.ok(taken.length >= RING_SLOTS && taken.length < burst.length, `ring of ${RING_SLOTS}: ${taken.length} of ${burst.length} taken`);
      assert.deepEqual(await Promise.all(taken), taken.map(() => 0));
      const back = readFileSync(path);
      burst.forEach((p, i) => {
        const got = back.subarray(i * 4096, (i + 1) * 4096);
        assert.equal(got.equals(Buffer.alloc(4096, 1 + i)), p !== undefined, `write ${i} ${p === undefined ? "refused" : "taken"}`);
      });
    } finally {
      closeSync(syncFd);
    }

    // Too large for a slot, or empty: refused.
    assert.equal(wt.submit(fd, 0, Buffer.alloc(SLOT_BYTES + 512)), undefined);
    assert.equal(wt.submit(fd, 0, Buffer.alloc(0)), undefined);
  } finally {
    await wt.stop();
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a failed write resolves with its errno; stop() ends the thread, and warmUp() starts a new one", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-wthread-"));
  const wt = new WriteThread();
  const path = join(dir, "f");
  writeFileSync(path, Buffer.alloc(1 << 20));
  const ro = openSync(path, "r");
  const rw = openSync(path, "r+");
  try {
    wt.warmUp();
    await untilReady(wt);
    const bad = await wt.submit(ro, 0, Buffer.alloc(4096, 1));
    assert.equal(errnoName(bad!), "EBADF");
    // Positions past 4 GiB (a double in the ring, not an int32).
    const far = 5 * 2 ** 30 + 4096;
    assert.equal(await wt.submit(rw, far, Buffer.alloc(4096, 7)), 0);
    const check = Buffer.alloc(4096);
    const { readSync } = await import("node:fs");
    readSync(rw, check, 0, 4096, far);
    assert.ok(check.equals(Buffer.alloc(4096, 7)));

    // Writes outstanding at stop() resolve, each either done (0) or WRITE_NOT_DONE; none is left hanging.
    const outstanding = [1, 2, 3, 4].map((i) => wt.submit(rw, i * 4096, Buffer.alloc(4096, i))!);
    await wt.stop();
    for (const r of await Promise.all(outstanding)) assert.ok(r === 0 || r === WRITE_NOT_DONE, `result ${r}`);
    assert.equal(wt.ready, false);
    assert.equal(wt.submit(rw, 0, Buffer.alloc(512)), undefined);
    wt.warmUp();
    await untilReady(wt);
    assert.equal(await wt.submit(rw, 0, Buffer.alloc(512, 9)), 0);
  } finally {
    await wt.stop();
    closeSync(ro);
    closeSync(rw);
    rmSync(dir, { recursive: true, force: true });
  }
});
