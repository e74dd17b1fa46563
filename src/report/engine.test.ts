import { test } from "node:test";
import assert from "node:assert/strict";
import { Report, ReportSetupError, type FieldDef, type ObjectType } from "./engine.js";
import { num, str, strList } from "./value.js";

/** A toy report: objects {name, size, n} with lvm2-like field names and a "t_" prefix. */
interface Obj {
  name: string;
  sizeSectors: number;
  n: number;
  tags: string[];
}
const TYPES: ObjectType[] = [{ id: 1, desc: "Thing", prefix: "t_" }, { id: 2, desc: "Other", prefix: "o_" }];
const FIELDS: FieldDef<Obj>[] = [
  { type: 1, kind: "STR", heading: "Name", width: 4, id: "t_name", desc: "Name.", value: (o) => str(o.name) },
  { type: 1, kind: "SIZ", heading: "Size", width: 0, id: "t_size", desc: "Size.", value: (o) => ({ text: `${o.sizeSectors / 2048}m`, sort: o.sizeSectors }) },
  { type: 1, kind: "NUM", heading: "#N", width: 3, id: "n_count", desc: "Count.", value: (o) => num(o.n) },
  { type: 1, kind: "STR_LIST", heading: "Tags", width: 0, id: "t_tags", desc: "Tags.", value: (o) => strList(o.tags, ",", true) },
  { type: 2, kind: "STR", heading: "Other", width: 0, id: "o_thing", desc: "Other.", value: () => str("x") },
];
const FLAGS = { aligned: true, buffered: true, headings: true, fieldPrefixes: false, quoted: true, columnsAsRows: false, separator: " " };
const OBJS: Obj[] = [
  { name: "b", sizeSectors: 8192, n: 2, tags: ["z", "a"] },
  { name: "a", sizeSectors: 32768, n: 10, tags: [] },
  { name: "c", sizeSectors: 2048, n: 2, tags: ["q"] },
];

function run(fields: string, keys?: string, flags: Partial<typeof FLAGS> = {}, sel?: string): string[] {
  const r = new Report(TYPES, FIELDS, 1, fields, keys, { ...FLAGS, ...flags }, sel);
  for (const o of OBJS) r.add(o);
  return r.outputBasic();
}

test("Report resolves names without underscores, case or the report prefix", () => {
  assert.deepEqual(run("name"), run("t_name"));
  assert.deepEqual(run("TName,T_SIZE"), run("t_name,t_size"));
  assert.deepEqual(run("n_count"), run("ncount"));
});

test("Report 'all' and '<prefix>all' add every field of the matching types, in table order", () => {
  assert.equal(run("all", undefined)[0], "Name Size #N  Tags");
  assert.equal(run("o_all")[0], "Other");
});

test("Report sizes columns to the widest value; numbers and sizes right-aligned, strings left", () => {
  assert.deepEqual(run("t_name,t_size,n_count", "t_name"), [
    "Name Size #N ",
    "a     16m  10",
    "b      4m   2",
    "c      1m   2",
  ]);
});

test("Report sorts by several keys, '-' for descending, numbers numerically, stably", () => {
  assert.deepEqual(run("t_name", "-n_count,t_name").slice(1), ["a   ", "b   ", "c   "]);
  assert.deepEqual(run("t_name", "n_count").slice(1), ["b   ", "c   ", "a   "]);
  assert.deepEqual(run("t_name", "-t_size").slice(1), ["a   ", "b   ", "c   "]);
  assert.deepEqual(run("t_name", undefined).slice(1), ["b   ", "a   ", "c   "]);
});

test("Report --separator turns alignment off, --aligned turns it back on", () => {
  assert.deepEqual(run("t_name,t_size", "t_name", { separator: ":", aligned: false }).slice(0, 2), ["Name:Size", "a:16m"]);
  assert.deepEqual(run("t_name,t_size", "t_name", { separator: ":" }).slice(0, 2), ["Name:Size", "a   : 16m"]);
});

test("Report --noheadings, --nameprefixes (quoted or not) and --rows", () => {
  assert.deepEqual(run("t_name", "t_name", { headings: false }), ["a   ", "b   ", "c   "]);
  assert.deepEqual(run("t_name,n_count", "t_name", { fieldPrefixes: true, aligned: false })[1], "LVM2_T_NAME='a' LVM2_N_COUNT='10'");
  assert.deepEqual(run("t_name", "t_name", { fieldPrefixes: true, aligned: false, quoted: false })[1], "LVM2_T_NAME=a");
  assert.deepEqual(run("t_name,n_count", "t_name", { columnsAsRows: true }), ["Name a b c", "#N 10 2 2"]);
});

test("Report unbuffered output prints rows unsorted, each sized on its own", () => {
  assert.deepEqual(run("t_name,t_size", "t_name", { buffered: false }), ["Name Size", "b      4m", "a     16m", "c      1m"]);
});

test("Report selection drops rows; hidden selection fields are not printed", () => {
  assert.deepEqual(run("t_name", "t_name", {}, "n_count=2 && t_size>1"), ["Name", "b   "]);
  assert.deepEqual(run("t_name", "t_name", {}, "t_tags=[]"), ["Name", "a   "]);
});

test("Report JSON rows: every value a string; json_std: numbers bare, lists as arrays", () => {
  const r = new Report(TYPES, FIELDS, 1, "t_name,n_count,t_tags", "t_name", { ...FLAGS, aligned: false, headings: false }, undefined);
  for (const o of OBJS) r.add(o);
  assert.deepEqual(r.outputJsonRows(false, false)[0], '{"t_name":"a", "n_count":"10", "t_tags":""}');
  const s = new Report(TYPES, FIELDS, 1, "t_name,n_count,t_tags", "t_name", { ...FLAGS, aligned: false, headings: false }, undefined);
  for (const o of OBJS) s.add(o);
  assert.deepEqual(s.outputJsonRows(true, false), ['{"t_name":"a", "n_count":10, "t_tags":[]}', '{"t_name":"b", "n_count":2, "t_tags":["a","z"]}', '{"t_name":"c", "n_count":2, "t_tags":["q"]}']);
});

test("Report compaction (-o '#field') hides fields empty in every row", () => {
  const r = new Report(TYPES, FIELDS, 1, "t_name,t_tags", "t_name", { ...FLAGS }, undefined);
  r.compactFields("t_tags");
  r.add(OBJS[1]!);
  assert.deepEqual(r.outputBasic(), ["Name", "a   "]);
});

test("Report rejects an unknown field with lvm2's field listing and message", () => {
  assert.throws(
    () => run("nosuch"),
    (e: unknown) =>
      e instanceof ReportSetupError &&
      e.errorLines[0] === "Unrecognised field: nosuch" &&
      e.warnLines[0] === "Thing Fields" &&
      e.warnLines[1] === "------------" &&
      // names padded to the longest one, "selected" included
      e.warnLines.includes("  t_all    - All fields in this section.") &&
      e.warnLines.includes("  n_count  - Count.") &&
      e.warnLines.includes("  selected - Set if item passes selection criteria."),
  );
  assert.throws(() => run("t_name", "-nosuch"), (e: unknown) => e instanceof ReportSetupError && e.errorLines[0] === "dm_report: Unrecognised field: -nosuch");
});
