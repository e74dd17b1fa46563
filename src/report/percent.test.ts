import { test } from "node:test";
import assert from "node:assert/strict";
import { makePercent, percentText, PERCENT_100, PERCENT_INVALID } from "./percent.js";

test("makePercent() is 0 or 100 only when exactly so", () => {
  assert.equal(makePercent(0, 16), 0);
  assert.equal(makePercent(16, 16), PERCENT_100);
  assert.equal(makePercent(1, 1e9), 1);
  assert.equal(makePercent(1e9 - 1, 1e9), PERCENT_100 - 1);
  assert.equal(makePercent(1, 3), 33333333);
  assert.equal(makePercent(5, 0), PERCENT_100);
});

test("percentText() prints %.2f, never 0.00 or 100.00 for values strictly between", () => {
  assert.equal(percentText(PERCENT_100), "100.00");
  assert.equal(percentText(0), "0.00");
  assert.equal(percentText(makePercent(1, 1e9)), "0.01");
  assert.equal(percentText(makePercent(1e9 - 1, 1e9)), "99.99");
  assert.equal(percentText(makePercent(15, 16)), "93.75");
  assert.equal(percentText(makePercent(2427, 10000)), "24.27");
  assert.equal(percentText(makePercent(1, 3)), "33.33");
  assert.equal(percentText(makePercent(2, 3)), "66.67");
});

test("percentText() is empty for an invalid percent", () => {
  assert.equal(percentText(PERCENT_INVALID), "");
});
