import { test } from "node:test";
import assert from "node:assert/strict";
import { displaySize, formatSize, parseUnits, UNITS_R, UNITS_H, type UnitSpec } from "./units.js";

const MiB = 2048; // sectors
const u = (s: string): UnitSpec => {
  const p = parseUnits(s);
  assert.ok(p, `units ${s} parse`);
  return p;
};

test("formatSize() in lvm2's default units 'r': two decimals, '<' when rounding hides a remainder, '0 ' for zero", () => {
  assert.equal(formatSize(4 * MiB, UNITS_R, true), "4.00m");
  assert.equal(formatSize(15 * MiB, UNITS_R, true), "15.00m");
  assert.equal(formatSize(1024 * MiB, UNITS_R, true), "1.00g");
  assert.equal(formatSize(14 * MiB - 1, UNITS_R, true), "<14.00m");
  assert.equal(formatSize(0, UNITS_R, true), "0 ");
  assert.equal(formatSize(1, UNITS_R, true), "512b");
  assert.equal(formatSize(2867.2 * MiB, UNITS_R, true), "2.80g");
});

test("formatSize() with 'h' never adds '<', and 'H'/'R' use powers of 1000", () => {
  assert.equal(formatSize(14 * MiB - 1, UNITS_H, true), "14.00m");
  assert.equal(formatSize(16 * MiB, u("H"), true), "16.78M");
  assert.equal(formatSize(16 * MiB, u("R"), true), "<16.78M");
  assert.equal(formatSize(2 * 1000 * 1000, u("H"), true), "1.02G");
});

test("formatSize() in fixed units: b/B and s/S print integers with B and S suffixes", () => {
  assert.equal(formatSize(30720, u("b"), true), "15728640B");
  assert.equal(formatSize(30720, u("B"), true), "15728640B");
  assert.equal(formatSize(8192, u("s"), true), "8192S");
  assert.equal(formatSize(8192, u("S"), true), "8192S");
  assert.equal(formatSize(0, u("b"), true), "0B");
  assert.equal(formatSize(0, u("s"), true), "0S");
  assert.equal(formatSize(0, u("k"), true), "0k");
});

test("formatSize() in every binary and decimal unit", () => {
  const s = 3 * 1024 * MiB; // 3 GiB
  assert.equal(formatSize(s, u("k"), true), "3145728.00k");
  assert.equal(formatSize(s, u("m"), true), "3072.00m");
  assert.equal(formatSize(s, u("g"), true), "3.00g");
  assert.equal(formatSize(s, u("t"), true), "0.00t");
  assert.equal(formatSize(s, u("p"), true), "0.00p");
  assert.equal(formatSize(s, u("e"), true), "0.00e");
  assert.equal(formatSize(s, u("K"), true), "3221225.47K");
  assert.equal(formatSize(s, u("M"), true), "3221.23M");
  assert.equal(formatSize(s, u("G"), true), "3.22G");
  assert.equal(formatSize(s, u("T"), true), "0.00T");
});

test("formatSize() with a custom unit (4m) shows multiples with the U suffix", () => {
  assert.deepEqual(u("4m"), { type: "U", factorBytes: 4 * 1024 * 1024 });
  assert.equal(formatSize(4 * MiB, u("4m"), true), "1.00U");
  assert.equal(formatSize(6 * MiB, u("4m"), true), "1.50U");
  // "1m" is plain MiB; "1.5m" keeps the m suffix with a 1.5 MiB factor (dm_units_to_factor)
  assert.deepEqual(u("1m"), { type: "m", factorBytes: 1024 * 1024 });
  assert.equal(formatSize(3 * MiB, u("1.5m"), true), "2.00m");
});

test("formatSize() --nosuffix drops fixed-unit suffixes but human units keep theirs", () => {
  assert.equal(formatSize(4 * MiB, u("m"), false), "4.00");
  assert.equal(formatSize(4 * MiB, UNITS_R, false), "4.00m");
  assert.equal(formatSize(0, u("m"), false), "0");
});

test("parseUnits() rejects what lvm2 calls an invalid units specification", () => {
  for (const bad of ["", "x", "4", "mm", "0m", "m4", "4.5"]) assert.equal(parseUnits(bad), undefined, bad);
  assert.deepEqual(parseUnits("r"), { type: "r", factorBytes: 1 });
  assert.deepEqual(parseUnits("4h"), { type: "h", factorBytes: 1 });
});

test("displaySize() uses the short suffixes of messages and *display output", () => {
  assert.equal(displaySize(4 * MiB), "4.00 MiB");
  assert.equal(displaySize(0), "0   ");
  assert.equal(displaySize(14 * MiB - 1), "<14.00 MiB");
  assert.equal(displaySize(256), "128.00 KiB");
  assert.equal(displaySize(8, u("b")), "4096 B "); // lvm2's special-unit suffix " B " keeps its space
  assert.equal(displaySize(2 * MiB, u("K")), "2097.15 kB");
  assert.equal(displaySize(1, UNITS_H), "512 B");
});
