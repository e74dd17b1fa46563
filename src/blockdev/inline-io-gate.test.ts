import { test } from "node:test";
import assert from "node:assert/strict";
import { InlineIoGate } from "./inline-io-gate.js";

const opts = { maxBytes: 65536, fixedBudgetMs: 0.1, perByteBudgetMs: 0, slowOfLast: 3, stallMs: 5, minBackoffMs: 10, maxBackoffMs: 40 };

test("InlineIoGate refuses operations above maxBytes and allows the rest", () => {
  const g = new InlineIoGate(opts);
  assert.equal(g.allow(65536, 0), true);
  assert.equal(g.allow(65537, 0), false);
  assert.equal(new InlineIoGate({ maxBytes: 0 }).allow(1, 0), false, "0 disables inline I/O");
});

test("InlineIoGate ignores a lone slow operation but backs off after three of sixteen", () => {
  const g = new InlineIoGate(opts);
  g.record(4096, 0, 1); // slow (1 ms > 0.1 ms) but alone
  assert.equal(g.allow(4096, 1), true);
  for (let i = 0; i < 10; i++) g.record(4096, 2, 2.01);
  g.record(4096, 3, 4);
  assert.equal(g.allow(4096, 4), true, "two slow in the window");
  g.record(4096, 4, 5);
  assert.equal(g.allow(4096, 5), false, "third slow: back off");
  assert.equal(g.allow(4096, 14.9), false);
  assert.equal(g.allow(4096, 15), true, "back-off of 10 ms is over");
  assert.equal(g.backoffCount, 1);
});

test("InlineIoGate backs off at once after a stall, doubling up to the ceiling", () => {
  const g = new InlineIoGate(opts);
  g.record(4096, 0, 6);
  assert.equal(g.allow(4096, 15), false);
  assert.equal(g.allow(4096, 16), true);
  g.record(4096, 16, 22); // stalls again: 20 ms
  assert.equal(g.allow(4096, 41), false);
  assert.equal(g.allow(4096, 42), true);
  g.record(4096, 42, 48); // 40 ms
  g.record(4096, 88, 94); // capped at 40 ms
  assert.equal(g.allow(4096, 133), false);
  assert.equal(g.allow(4096, 134), true);
});
