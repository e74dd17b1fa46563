import { test } from "node:test";
import assert from "node:assert/strict";
import { Table } from "./table.js";
import { TableError } from "./table-error.js";

const line = (startSector: number, lengthSectors: number, targetType = "zero", args: string[] = []) => ({
  startSector,
  lengthSectors,
  targetType,
  args,
});

test("Table.from accepts contiguous lines and reports the size", () => {
  const t = Table.from([line(0, 8), line(8, 16, "linear", ["pv0", "2048"])]);
  assert.equal(t.sizeSectors, 24);
  assert.equal(t.toString(), "0 8 zero\n8 16 linear pv0 2048\n");
});

for (const [what, lines, re] of [
  ["an empty table", [], /empty/],
  ["a first line not at sector 0", [line(8, 8)], /gap in table: line starts at sector 8 but the previous line ends at sector 0/],
  ["a gap between lines", [line(0, 8), line(9, 8)], /gap in table/],
  ["overlapping lines", [line(0, 8), line(4, 8)], /overlap in table/],
  ["a zero length", [line(0, 0)], /invalid length 0/],
  ["a negative start", [line(-1, 8)], /invalid start sector -1/],
  ["a fractional length", [line(0, 1.5)], /invalid length 1.5/],
  ["a bad target type name", [line(0, 8, "li near")], /invalid target type name/],
  ["an argument with white space", [line(0, 8, "linear", ["a b", "0"])], /white space/],
  ["an empty argument", [line(0, 8, "linear", ["", "0"])], /empty/],
] as const) {
  test(`Table.from throws TableError for ${what}`, () => {
    assert.throws(() => Table.from(lines as never), (e: unknown) => e instanceof TableError && re.test(e.message) && e.code === "table");
  });
}

test("Table.parse reads dmsetup table text and round-trips", () => {
  const text = "0 2048 linear /dev/loop0 2048\n2048 4096 striped 2 128 /dev/loop1 0 /dev/loop2 0\n";
  const t = Table.parse("# comment\n" + text + "\n");
  assert.equal(t.lines.length, 2);
  assert.deepEqual(t.lines[1]!.args, ["2", "128", "/dev/loop1", "0", "/dev/loop2", "0"]);
  assert.equal(t.toString(), text);
});

test("Table.parse rejects non-numeric start and short lines", () => {
  assert.throws(() => Table.parse("x 8 zero"), /invalid start "x"/);
  assert.throws(() => Table.parse("0 8"), /expected/);
});
