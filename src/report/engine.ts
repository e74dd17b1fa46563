import { parseSelection, evaluateSelection, SelectionError, type SelectionFieldInfo, type SelectionNode } from "./selection.js";
import type { FieldKind, Value } from "./value.js";

/**
 * The report engine: lvm2's libdm-report (device_mapper/libdm-report.c) in
 * TypeScript. Fields are declared in a table (fields.ts); the engine resolves
 * field names as lvm2 does (underscores ignored, case-insensitive, the report
 * prefix optional, "all"/"lv_all"...), keeps rows, sorts, applies selection,
 * sizes columns and prints basic, --rows, --nameprefixes and JSON output.
 */
export interface ObjectType {
  /** Bit, as lvm2's report_type_t. */
  id: number;
  /** "Logical Volume" (help listing). */
  desc: string;
  /** "lv_" */
  prefix: string;
}

export interface FieldDef<O> {
  /** Report type bit of the object the field reads. */
  type: number;
  kind: FieldKind;
  /** lvm2's flags beyond the kind: BIN/SNUM are numbers; only the help listing cares. */
  heading: string;
  /** Minimum column width (0 → the heading's length). */
  width: number;
  id: string;
  desc: string;
  value: (obj: O) => Value;
  /** Words -S accepts for special values of this field ("auto", "yes"/"no" for binary fields...). */
  reserved?: ReadonlyArray<{ names: readonly string[]; value: number | string }>;
  /** ulvm's own field: selectable by name, but left out of `-o help` and `-o all`, which stay lvm2's. */
  unlisted?: boolean;
}

interface FieldProps<O> {
  def: FieldDef<O>;
  index: number;
  initialWidth: number;
  width: number;
  hidden: boolean;
  sortKey: boolean;
  sortPos: number;
  descending: boolean;
  compactOne: boolean;
  compacted: boolean;
}

export interface ReportFlags {
  aligned: boolean;
  buffered: boolean;
  headings: boolean;
  fieldPrefixes: boolean;
  quoted: boolean;
  columnsAsRows: boolean;
  separator: string;
}

/** An error lvm2 prints as a help listing plus a message (log_warn lines, then log_error). */
export class ReportSetupError extends Error {
  constructor(
    readonly warnLines: string[],
    readonly errorLines: string[],
    /** Help was asked for: print it and succeed. */
    readonly helpOnly = false,
  ) {
    super(errorLines.join("\n"));
  }
}

const IMPLICIT = [
  { id: "selected", heading: "Selected", desc: "Set if item passes selection criteria.", selection: true },
  { id: "help", heading: "Help", desc: "Show help.", selection: false },
  { id: "?", heading: "Help", desc: "Show help.", selection: false },
];
const SPECIAL_TYPE: ObjectType = { id: 0x80000000, desc: "Special", prefix: "special_" };

export const canonicalName = (s: string): string => s.replace(/_/g, "");

interface Row {
  values: Value[];
  selected: boolean;
}

export class Report<O> {
  readonly props: FieldProps<O>[] = [];
  /** Report types of every field used (lvm2's rh->report_types). */
  reportTypes: number;
  readonly prefix: string;
  private readonly canon: string[];
  private keysCount = 0;
  private rows: Row[] = [];
  private selection: SelectionNode | undefined;
  private headingsPrinted = false;

  constructor(
    readonly types: readonly ObjectType[],
    readonly fields: readonly FieldDef<O>[],
    initialType: number,
    fieldList: string,
    keys: string | undefined,
    readonly flags: ReportFlags,
    selection: string | undefined,
  ) {
    this.reportTypes = initialType;
    this.prefix = types.find((t) => t.id === initialType)?.prefix ?? "";
    this.canon = fields.map((f) => canonicalName(f.id));
    if (flags.columnsAsRows) {
      flags.buffered = true;
      flags.aligned = false;
    }
    // Two passes, as lvm2: the first only learns the report types ("all" needs them).
    this.parseFields(fieldList, true);
    this.parseKeys(keys, true);
    this.parseFields(fieldList, false);
    this.parseKeys(keys, false);
    if (this.props.some((p) => p.index < -1)) {
      // -o help / -o '?': the field list, then nothing reported.
      throw new ReportSetupError([...this.fieldHelp(true, false), " "], [], true);
    }
    if (selection && selection !== "" && selection.toLowerCase() !== "all") {
      if (selection.toLowerCase() === "help" || selection === "?") {
        // lvm2 prints the help and then reports nothing, successfully.
        throw new ReportSetupError([...this.fieldHelp(false, true), " ", ...SELECTION_HELP], [], true);
      }
      try {
        this.selection = parseSelection(selection, {
          resolveField: (name) => this.selectionField(name),
        });
      } catch (e) {
        if (e instanceof SelectionError) {
          const warn = e.showFields ? [...this.fieldHelp(false, true), " "] : e.showSelectionHelp ? SELECTION_HELP : [];
          throw new ReportSetupError(warn, e.lines);
        }
        throw e;
      }
    }
  }

  /** Fields actually printed. */
  visibleProps(): FieldProps<O>[] {
    return this.props.filter((p) => !p.hidden);
  }

  private findField(word: string): { index: number } | undefined {
    const c = canonicalName(word);
    if (!c) return undefined;
    // Implicit fields first ("selected", "help", "?").
    for (let i = 0; i < IMPLICIT.length; i++) if (sameField(IMPLICIT[i]!.id, c, this.prefix)) return { index: -1 - i };
    for (let i = 0; i < this.fields.length; i++) if (sameField(this.canon[i]!, c, this.prefix)) return { index: i };
    return undefined;
  }

  /** lvm2's _all_match: "all", "lv_all", "pvall"... → report type bits, 0 when not such a word. */
  private allMatch(word: string): number {
    let field = word;
    let types = 0;
    let unprefixed = false;
    if (word.toLowerCase() === "all") {
      if (!this.prefix) return this.reportTypes || 0xffffffff;
      unprefixed = true;
      field = this.prefix;
      types = this.reportTypes;
    }
    const c = canonicalName(field);
    for (const t of this.types) {
      const plen = t.prefix.length - 1;
      if (t.prefix.slice(0, plen).toLowerCase() !== c.slice(0, plen).toLowerCase() || c.length < plen) continue;
      if ((unprefixed && c.length === plen) || (c.slice(plen).toLowerCase() === "all" && c.length === plen + 3)) types |= t.id;
    }
    return types;
  }

  private addField(index: number, hidden: boolean): FieldProps<O> {
    const def = index >= 0 ? this.fields[index]! : implicitDef<O>(index);
    const w = def.width || def.heading.length;
    const p: FieldProps<O> = {
      def, index, initialWidth: w, width: w, hidden, sortKey: false, sortPos: 0, descending: false, compactOne: false, compacted: false,
    };
    // lvm2 puts hidden fields first; only visible ones are printed, so appending keeps indices stable.
    this.props.push(p);
    return p;
  }

  private parseFields(list: string, typeOnly: boolean): void {
    for (const word of list.split(",")) {
      if (word === "") continue;
      const f = this.findField(word);
      if (f) {
        if (typeOnly) this.reportTypes |= f.index >= 0 ? this.fields[f.index]!.type : SPECIAL_TYPE.id;
        else this.addField(f.index, false);
        continue;
      }
      const t = this.allMatch(word);
      if (t) {
        if (typeOnly) this.reportTypes |= t;
        else this.fields.forEach((d, i) => d.type & t && d.unlisted !== true && this.addField(i, false));
        continue;
      }
      throw new ReportSetupError([...this.fieldHelp(true, false), " "], [`Unrecognised field: ${word}`]);
    }
  }

  private parseKeys(keys: string | undefined, typeOnly: boolean): void {
    if (!keys) return;
    for (const word of keys.split(",")) {
      if (word === "") continue;
      let name = word;
      let descending = false;
      if (name[0] === "+") name = name.slice(1);
      else if (name[0] === "-") {
        name = name.slice(1);
        descending = true;
      }
      if (!name) throw new ReportSetupError([], ["dm_report: Missing sort field name"]);
      const f = this.findField(name);
      if (!f) throw new ReportSetupError([...this.fieldHelp(true, false), " "], [`dm_report: Unrecognised field: ${word}`]);
      const existing = this.props.find((p) => p.index === f.index);
      if (typeOnly) {
        if (!existing) this.reportTypes |= f.index >= 0 ? this.fields[f.index]!.type : SPECIAL_TYPE.id;
        continue;
      }
      const p = existing ?? this.addField(f.index, true);
      if (p.sortKey) continue; // lvm2 warns "Ignoring duplicate sort field"
      p.sortKey = true;
      p.sortPos = this.keysCount++;
      p.descending = descending;
    }
  }

  /** Mark fields for compaction (-o '#field'): hidden when empty in every row. */
  compactFields(list: string): void {
    for (const word of list.split(",")) {
      if (word === "") continue;
      const f = this.findField(word);
      if (!f) throw new ReportSetupError([], [`dm_report: Unrecognized field: ${word}`]);
      const p = this.props.find((q) => q.index === f.index);
      if (p) p.compactOne = true;
    }
  }

  private selectionField(name: string): SelectionFieldInfo | "unknown" | "uncomparable" {
    const f = this.findField(name);
    if (!f) return "unknown";
    if (f.index < -1) return "uncomparable";
    let pi = this.props.findIndex((p) => p.index === f.index);
    if (pi < 0) {
      const def = f.index >= 0 ? this.fields[f.index]! : implicitDef<O>(f.index);
      this.reportTypes |= f.index >= 0 ? def.type : SPECIAL_TYPE.id;
      this.addField(f.index, true);
      pi = this.props.length - 1;
    }
    const p = this.props[pi]!;
    return {
      prop: pi,
      kind: p.def.kind,
      id: p.def.id,
      numericOps: p.def.kind !== "STR" && p.def.kind !== "STR_LIST",
      ...(p.def.reserved ? { reserved: p.def.reserved } : {}),
    };
  }

  /**
   * The field list lvm2 prints to stderr for an unknown field: sections per
   * object type, "<prefix>all" lines, then the implicit fields.
   */
  fieldHelp(allItem: boolean, showTypes: boolean): string[] {
    const lines: string[] = [];
    let idLen = 0;
    for (const f of this.fields) idLen = Math.max(idLen, f.id.length);
    for (const f of IMPLICIT) idLen = Math.max(idLen, f.id.length);
    for (const t of this.types) idLen = Math.max(idLen, t.prefix.length + 3);
    const section = (defs: ReadonlyArray<{ type: number; id: string; desc: string; kind: FieldKind; uncomparable?: boolean }>, special: boolean): void => {
      let last = "";
      for (const f of defs) {
        const t = special ? SPECIAL_TYPE : this.types.find((x) => x.id === f.type);
        if (!t) continue;
        if (t.desc !== last) {
          if (last) lines.push(" ");
          lines.push(`${t.desc} Fields`);
          lines.push("-".repeat(t.desc.length + 7));
          if (allItem && !special) lines.push(`  ${t.prefix}all${" ".repeat(Math.max(0, idLen - 3 - t.prefix.length))} - All fields in this section.`);
        }
        const typeNote = showTypes ? ` [${f.uncomparable ? "unselectable " : ""}${KIND_NAMES[f.kind]}]` : "";
        lines.push(`  ${f.id.padEnd(idLen)} - ${f.desc}${typeNote}`);
        last = t.desc;
      }
    };
    section(this.fields.filter((f) => (f as { unlisted?: boolean }).unlisted !== true), false);
    lines.push(" ");
    section(
      IMPLICIT.map((i) => ({ type: SPECIAL_TYPE.id, id: i.id, desc: i.desc, kind: "NUM" as FieldKind, uncomparable: !i.selection })),
      true,
    );
    return lines;
  }

  /** Compute a row for one object (lvm2's dm_report_object). */
  add(obj: O): void {
    const values: Value[] = new Array(this.props.length);
    for (let i = 0; i < this.props.length; i++) {
      const p = this.props[i]!;
      values[i] = p.index >= 0 ? p.def.value(obj) : { text: "1", sort: 1 };
    }
    let selected = true;
    if (this.selection) {
      selected = evaluateSelection(this.selection, values);
      const sel = this.props.findIndex((p) => p.index === -1);
      if (sel >= 0) values[sel] = { text: selected ? "1" : "0", sort: selected ? 1 : 0 };
      if (!selected && (sel < 0 || this.props[sel]!.hidden)) return;
    }
    this.rows.push({ values, selected });
  }

  /** Whether an object passes -S (commands that select without reporting: *display, lvscan). */
  selects(obj: O): boolean {
    if (!this.selection) return true;
    const values: Value[] = this.props.map((p) => (p.index >= 0 ? p.def.value(obj) : { text: "1", sort: 1 }));
    return evaluateSelection(this.selection, values);
  }

  get rowCount(): number {
    return this.rows.length;
  }

  private recalculateWidths(rows: readonly Row[]): void {
    for (const p of this.props) p.width = p.initialWidth;
    for (const r of rows) {
      for (let i = 0; i < this.props.length; i++) {
        const len = r.values[i]!.text.length;
        if (len > this.props[i]!.width) this.props[i]!.width = len;
      }
    }
  }

  private sortRows(): void {
    const keys = this.props.map((p, i) => ({ p, i })).filter((k) => k.p.sortKey).sort((a, b) => a.p.sortPos - b.p.sortPos);
    if (!keys.length) return;
    // Sort values as libdm compares them: numbers as uint64, percents with strcmp() on
    // their bytes (sic), everything else with strcmp() on the string. Computed once per row.
    const n = keys.length;
    const sign = keys.map((k) => (k.p.descending ? -1 : 1));
    const decorated = this.rows.map((row) => {
      const key: Array<number | string> = new Array(n);
      for (let j = 0; j < n; j++) {
        const { p, i } = keys[j]!;
        const v = row.values[i]!.sort;
        const kind = p.def.kind;
        key[j] = kind === "NUM" || kind === "SIZ" || kind === "TIM" ? unsigned64(v as number) : kind === "PCT" ? percentSortBytes(v as number) : String(v);
      }
      return { row, key };
    });
    decorated.sort((a, b) => {
      for (let j = 0; j < n; j++) {
        const x = a.key[j]!;
        const y = b.key[j]!;
        if (x !== y) return (x < y ? -1 : 1) * sign[j]!;
      }
      return 0;
    }); // Array.prototype.sort is stable, as glibc's merge-sort qsort is.
    this.rows = decorated.map((d) => d.row);
  }

  private applyCompaction(): void {
    for (const p of this.props) {
      if (p.hidden || !p.compactOne) continue;
      const i = this.props.indexOf(p);
      if (this.rows.every((r) => r.values[i]!.text === "")) {
        p.hidden = true;
        p.compacted = true;
      }
    }
  }

  private formatField(p: FieldProps<O>, v: Value): string {
    let s = v.text;
    if (this.flags.aligned) {
      const w = p.width;
      if (s.length > w) s = s.slice(0, w);
      const right = p.def.kind === "NUM" || p.def.kind === "SIZ";
      s = right ? s.padStart(w) : s.padEnd(w);
    }
    if (this.flags.fieldPrefixes) {
      const q = this.flags.quoted ? "'" : "";
      s = `LVM2_${p.def.id.toUpperCase()}=${q}${s}${q}`;
    }
    return s;
  }

  private headingLine(): string {
    const vis = this.props.filter((p) => !p.hidden);
    return vis
      .map((p) => {
        const h = p.def.heading;
        return this.flags.aligned ? h.slice(0, p.width).padEnd(p.width) : h;
      })
      .join(this.flags.separator);
  }

  /**
   * Lines of a basic report (no log prefix). With buffering, rows are sorted
   * and columns sized over all rows; unbuffered output sizes each row alone.
   */
  outputBasic(): string[] {
    const lines: string[] = [];
    if (!this.rows.length) return lines;
    if (!this.flags.buffered) {
      // lvm2 prints each row as it comes, with widths from that row only.
      for (const r of this.rows) {
        this.recalculateWidths([r]);
        if (!this.headingsPrinted) {
          this.headingsPrinted = true;
          if (this.flags.headings) lines.push(this.headingLine());
        }
        lines.push(this.rowLine(r));
      }
      this.rows = [];
      return lines;
    }
    this.recalculateWidths(this.rows);
    this.sortRows();
    this.applyCompaction();
    if (this.flags.columnsAsRows) {
      for (let i = 0; i < this.props.length; i++) {
        const p = this.props[i]!;
        if (p.hidden) continue;
        const parts: string[] = this.rows.map((r) => this.formatField(p, r.values[i]!));
        lines.push((this.flags.headings ? p.def.heading + this.flags.separator : "") + parts.join(this.flags.separator));
      }
      this.rows = [];
      return lines;
    }
    if (!this.headingsPrinted) {
      this.headingsPrinted = true;
      if (this.flags.headings) lines.push(this.headingLine());
    }
    for (const r of this.rows) lines.push(this.rowLine(r));
    this.rows = [];
    return lines;
  }

  private rowLine(r: Row): string {
    const { aligned, fieldPrefixes, separator } = this.flags;
    let line = "";
    let first = true;
    for (let i = 0; i < this.props.length; i++) {
      const p = this.props[i]!;
      if (p.hidden) continue;
      const v = r.values[i]!;
      let cell: string;
      if (aligned && !fieldPrefixes) {
        // The common case, kept cheap: values never exceed the column width here.
        cell = p.def.kind === "NUM" || p.def.kind === "SIZ" ? v.text.padStart(p.width) : v.text.padEnd(p.width);
      } else cell = this.formatField(p, v);
      line = first ? cell : line + separator + cell;
      first = false;
    }
    return line;
  }

  /** JSON row objects (`{"lv_name":"x", ...}`), sorted; `std` = json_std typing and escaping. */
  outputJsonRows(std: boolean, binaryNumeric: boolean): string[] {
    this.sortRows();
    this.applyCompaction();
    const out: string[] = [];
    for (const r of this.rows) {
      const parts: string[] = [];
      for (let i = 0; i < this.props.length; i++) {
        const p = this.props[i]!;
        if (p.hidden) continue;
        const v = r.values[i]!;
        parts.push(`"${p.def.id}":${jsonValue(p.def.kind, v, std, binaryNumeric)}`);
      }
      out.push(`{${parts.join(", ")}}`);
    }
    this.rows = [];
    return out;
  }
}

function jsonValue(kind: FieldKind, v: Value, std: boolean, _binaryNumeric: boolean): string {
  if (!std) return `"${v.text.replace(/"/g, '\\"')}"`;
  if (kind === "STR_LIST") return `[${(v.shown ?? (v.text === "" ? [] : [v.text])).map((s) => jsonString(s)).join(",")}]`;
  if (kind === "NUM" || kind === "PCT") return v.text === "" ? "null" : v.text;
  return jsonString(v.text);
}

function jsonString(s: string): string {
  return JSON.stringify(s);
}

function sameField(canonId: string, canonUser: string, prefix: string): boolean {
  if (canonId.toLowerCase() === canonUser.toLowerCase()) return true;
  const plen = prefix.length - 1;
  if (plen <= 0) return false;
  return prefix.slice(0, plen).toLowerCase() === canonId.slice(0, plen).toLowerCase() && canonId.slice(plen).toLowerCase() === canonUser.toLowerCase();
}

function implicitDef<O>(index: number): FieldDef<O> {
  const i = IMPLICIT[-1 - index]!;
  return { type: SPECIAL_TYPE.id, kind: "NUM", heading: i.heading, width: 8, id: i.id, desc: i.desc, value: () => ({ text: "", sort: 0 }) };
}

/** uint64 view of a sort number (-1 is UINT64_MAX). */
function unsigned64(n: number): number {
  return n < 0 ? 2 ** 64 + n : n;
}

function percentSortBytes(p: number): string {
  const big = BigInt.asUintN(64, BigInt(p));
  let s = "";
  for (let i = 0n; i < 8n; i++) {
    const b = Number((big >> (8n * i)) & 0xffn);
    if (b === 0) break;
    s += String.fromCharCode(b);
  }
  return s;
}

const KIND_NAMES: Record<FieldKind, string> = {
  STR: "string", NUM: "number", SIZ: "size", PCT: "percent", TIM: "time", STR_LIST: "string list",
};

const OP_CMP_HELP: Array<[string, string]> = [
  ["=~", "Matching regular expression. [regex]"],
  ["!~", "Not matching regular expression. [regex]"],
  ["=", "Equal to. [number, size, percent, string, string list, time]"],
  ["!=", "Not equal to. [number, size, percent, string, string_list, time]"],
  [">=", "Greater than or equal to. [number, size, percent, time]"],
  [">", "Greater than. [number, size, percent, time]"],
  ["<=", "Less than or equal to. [number, size, percent, time]"],
  ["<", "Less than. [number, size, percent, time]"],
  ["since", "Since specified time (same as '>='). [time]"],
  ["after", "After specified time (same as '>'). [time]"],
  ["until", "Until specified time (same as '<='). [time]"],
  ["before", "Before specified time (same as '<'). [time]"],
];
const OP_LOG_HELP: Array<[string, string]> = [
  ["&&", "All fields must match"], [",", "All fields must match"], ["||", "At least one field must match"],
  ["#", "At least one field must match"], ["!", "Logical negation"], ["(", "Left parenthesis"], [")", "Right parenthesis"],
  ["[", "List start"], ["]", "List end"], ["{", "List subset start"], ["}", "List subset end"],
];

/** _display_selection_help (the reserved values section lists only the generic numeric one). */
export const SELECTION_HELP: string[] = [
  "Selection operands",
  "------------------",
  "  field               - Reporting field.",
  "  number              - Non-negative integer value.",
  "  size                - Floating point value with units, 'm' unit used by default if not specified.",
  "  percent             - Non-negative integer with or without % suffix.",
  "  string              - Characters quoted by ' or \" or unquoted.",
  "  string list         - Strings enclosed by [ ] or { } and elements delimited by either",
  "                        \"all items must match\" or \"at least one item must match\" operator.",
  "  regular expression  - Characters quoted by ' or \" or unquoted.",
  " ",
  "Reserved values",
  "---------------",
  // lvm2 stops listing at the first per-field value without flags (vg_mda_copies), so this is all it shows.
  ...[
    ["-1, unknown, undefined, undef", "Reserved value for undefined numeric value. [number]"],
    ...["allocatable", "exported", "missing", "used, in use", "duplicate", "extendable", "exported", "partial", "clustered", "shared"].flatMap(
      (w) => [[`${w}, yes`, " [unknown]"], [`${w}, no`, " [unknown]"]],
    ),
    ["writeable, rw, read-write", " [unknown]"],
    ["read-only, r, ro", " [unknown]"],
  ].map(([names, d]) => `  ${names!.padEnd(31)} - ${d}`),
  " ",
  "Selection operators",
  "-------------------",
  "  Comparison operators:",
  ...OP_CMP_HELP.map(([op, d]) => `    ${op.padStart(6)}  - ${d}`),
  " ",
  "  Logical and grouping operators:",
  ...OP_LOG_HELP.map(([op, d]) => `    ${op.padStart(4)}  - ${d}`),
  " ",
];
