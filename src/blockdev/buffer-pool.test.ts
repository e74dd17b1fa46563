import { test } from "node:test";
import assert from "node:assert/strict";
import { BufferPool } from "./buffer-pool.js";

test("BufferPool hands out power-of-two classes and reuses released buffers", () => {
  const pool = new BufferPool({ minClassBytes: 4096, maxClassBytes: 1 << 20, maxRetainedBytes: 8 << 20 });
  const a = pool.acquire(1);
  assert.equal(a.length, 4096);
  const b = pool.acquire(4097);
  assert.equal(b.length, 8192);
  const c = pool.acquire(1 << 20);
  assert.equal(c.length, 1 << 20);
  assert.equal(pool.outstandingCount, 3);
  pool.release(b);
  assert.equal(pool.acquire(5000), b, "same class comes back");
  pool.release(a);
  pool.release(c);
  assert.equal(pool.retainedByteCount, 4096 + (1 << 20));
});

test("BufferPool gives one-off buffers above the largest class and drops them on release", () => {
  const pool = new BufferPool({ maxClassBytes: 1 << 16 });
  const big = pool.acquire((1 << 16) + 1);
  assert.equal(big.length, (1 << 16) + 1);
  pool.release(big);
  assert.equal(pool.retainedByteCount, 0);
  assert.equal(pool.outstandingCount, 0);
});

test("BufferPool retains at most maxRetainedBytes", () => {
  const pool = new BufferPool({ maxRetainedBytes: 3 * 4096 });
  const bufs = [0, 1, 2, 3, 4].map(() => pool.acquire(4096));
  for (const b of bufs) pool.release(b);
  assert.equal(pool.retainedByteCount, 3 * 4096);
  pool.trim();
  assert.equal(pool.retainedByteCount, 0);
});

test("BufferPool ignores views that are not whole class buffers", () => {
  const pool = new BufferPool();
  const b = pool.acquire(4096);
  pool.release(b.subarray(0, 100));
  assert.equal(pool.retainedByteCount, 0);
});
