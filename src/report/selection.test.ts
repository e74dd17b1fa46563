import { test } from "node:test";
import assert from "node:assert/strict";
import { evaluateSelection, parseSelection, SelectionError, type SelectionFieldInfo } from "./selection.js";
import { strList, type Value } from "./value.js";

/** Fields: 0 name (STR), 1 size (SIZ, sectors), 2 count (NUM), 3 pct (PCT), 4 tags (STR_LIST), 5 flag (binary NUM). */
const FIELDS: Record<string, SelectionFieldInfo> = {
  name: { prop: 0, kind: "STR", id: "name", numericOps: false },
  size: { prop: 1, kind: "SIZ", id: "size", numericOps: true },
  count: { prop: 2, kind: "NUM", id: "count", numericOps: true },
  pct: { prop: 3, kind: "PCT", id: "pct", numericOps: true },
  tags: { prop: 4, kind: "STR_LIST", id: "tags", numericOps: false },
  flag: { prop: 5, kind: "NUM", id: "flag", numericOps: true, reserved: [{ names: ["on", "yes"], value: 1 }, { names: ["on", "no"], value: 0 }] },
};
const ctx = { resolveField: (n: string) => FIELDS[n] ?? ("unknown" as const) };

function row(name: string, sizeMiB: number, count: number, pct: number, tags: string[], flag = 0): Value[] {
  return [
    { text: name, sort: name },
    { text: "", sort: sizeMiB * 2048 },
    { text: String(count), sort: count },
    { text: "", sort: pct },
    strList(tags, ",", true),
    { text: "", sort: flag },
  ];
}
const sel = (s: string, r: Value[]): boolean => evaluateSelection(parseSelection(s, ctx), r);

test("selection compares strings, numbers and sizes (MiB by default, units accepted)", () => {
  const r = row("lv1", 4, 3, 50_000_000, ["a", "b"]);
  assert.ok(sel("name=lv1", r));
  assert.ok(!sel("name!=lv1", r));
  assert.ok(sel("name='lv1'", r));
  assert.ok(sel("size=4", r));
  assert.ok(sel("size=4m", r));
  assert.ok(sel("size=4096k", r));
  assert.ok(sel("size>3.5m && size<1g", r));
  assert.ok(sel("size>=4m", r) && sel("size<=4m", r) && !sel("size>4m", r));
  assert.ok(sel("count>2 && count<=3", r));
  assert.ok(sel("pct=50%", r) && sel("pct>49.5", r));
});

test("selection with && , || # ! and parentheses", () => {
  const r = row("lv1", 4, 3, 0, []);
  assert.ok(sel("name=x || count=3", r));
  assert.ok(sel("name=x # count=3", r));
  assert.ok(!sel("name=x , count=3", r));
  assert.ok(sel("!(name=x)", r));
  assert.ok(sel("(name=x || name=lv1) && !(count=4)", r));
  assert.ok(!sel("!(name=x || name=lv1)", r));
});

test("selection regex matches anywhere unless anchored", () => {
  const r = row("lv_mirror_mimage_0", 1, 1, 0, []);
  assert.ok(sel("name=~mimage", r));
  assert.ok(sel("name=~^lv_", r));
  assert.ok(!sel("name=~^mimage", r));
  assert.ok(sel("name!~log", r));
  assert.ok(sel('name=~"_[0-9]$"', r));
});

test("string lists: one item, [all] exact, [a||b] any, {subset}, [] empty", () => {
  const r = row("x", 1, 1, 0, ["b", "a"]);
  assert.ok(sel("tags=a", r));
  assert.ok(sel("tags=[a,b]", r) && sel("tags=[b && a]", r));
  assert.ok(!sel("tags=[a]", r));
  assert.ok(sel("tags={a}", r));
  assert.ok(sel("tags=[c||a]", r));
  assert.ok(!sel("tags=[]", r));
  assert.ok(sel("tags=[]", row("x", 1, 1, 0, [])));
});

test("reserved words: -1/undefined for numbers, per-field words for binary fields", () => {
  assert.ok(sel("count=undefined", row("x", 1, -1, 0, [])));
  assert.ok(sel("count=-1", row("x", 1, -1, 0, [])));
  assert.ok(!sel("count>0", row("x", 1, -1, 0, [])), "undefined numbers are never greater");
  assert.ok(sel("flag=yes", row("x", 1, 1, 0, [], 1)));
  assert.ok(sel("flag=no", row("x", 1, 1, 0, [], 0)));
  assert.ok(sel("flag=1", row("x", 1, 1, 0, [], 1)));
});

test("an invalid percent never matches, not even with !=", () => {
  assert.ok(!sel("pct!=5", row("x", 1, 1, -1, [])));
});

test("parse errors carry lvm2's messages", () => {
  const err = (s: string): string[] => {
    try {
      parseSelection(s, ctx);
    } catch (e) {
      assert.ok(e instanceof SelectionError);
      return e.lines;
    }
    assert.fail(`no error for ${s}`);
  };
  assert.deepEqual(err("foo=1"), ["Unrecognised selection field: foo", "Selection syntax error at 'foo=1'.", "Use 'help' for selection to get more help."]);
  assert.equal(err("size>")[0], "Failed to parse numeric value for selection field size.");
  assert.equal(err("name<1")[0], "Operator can be used only with number, size, time or percent fields: name<1");
  assert.equal(err("count=1 x")[0], "Expecting logical operator");
  assert.equal(err("count=4m")[0], "Found size unit specifier but numeric value expected for selection field count.");
  assert.equal(err("size=4%")[0], "Found percent value but size value expected for selection field size.");
  assert.match(err("(count=1")[0]!, /right parenthesis expected/);
});
