import type { FieldKind, Value } from "./value.js";

/**
 * -S/--select: lvm2's selection language (libdm-report.c _parse_or_ex ...):
 *
 *   OR  := AND (("||" | "#") OR)
 *   AND := EX (("&&" | ",") AND)
 *   EX  := "!" "(" OR ")" | "(" OR ")" | FIELD OP VALUE
 *
 * Values: numbers, sizes with units (MiB when none), percents ("50%"), strings
 * (quoted or bare), string lists ("[a,b]" all / "[a||b]" any / "{a,b}"
 * subset), regular expressions after =~ / !~, and the reserved words
 * ("-1"/"unknown"/"undefined"/"undef" for numbers, per-field words).
 */
export class SelectionError extends Error {
  constructor(
    readonly lines: string[],
    /** Print the field listing (with types) before the lines. */
    readonly showFields = false,
    /** Print the selection help before the lines. */
    readonly showSelectionHelp = false,
  ) {
    super(lines.join("\n"));
  }
}

type CmpOp = "=" | "!=" | ">" | ">=" | "<" | "<=" | "=~" | "!~";

export type SelectionNode =
  | { kind: "and" | "or"; items: SelectionNode[]; not: boolean }
  | { kind: "item"; prop: number; fieldKind: FieldKind; op: CmpOp; value: SelValue; not: boolean };

type SelValue =
  | { t: "num"; n: number }
  | { t: "size"; sectors: number }
  | { t: "pct"; p: number }
  | { t: "str"; s: string }
  | { t: "list"; items: string[]; all: boolean; subset: boolean }
  | { t: "regex"; re: RegExp };

export interface SelectionFieldInfo {
  prop: number;
  kind: FieldKind;
  id: string;
  numericOps: boolean;
  /** Per-field reserved words → value (binary fields: "yes"/"no"...). */
  reserved?: ReadonlyArray<{ names: readonly string[]; value: number | string }>;
}

export interface SelectionContext {
  resolveField(name: string): SelectionFieldInfo | "unknown" | "uncomparable";
}

const OP_CMP: Array<[string, CmpOp | "time"]> = [
  ["=~", "=~"], ["!~", "!~"], ["=", "="], ["!=", "!="], [">=", ">="], [">", ">"], ["<=", "<="], ["<", "<"],
  ["since", "time"], ["after", "time"], ["until", "time"], ["before", "time"],
];

const NUM_UNDEF_NAMES = ["-1", "unknown", "undefined", "undef"];
const SYNTAX = (at: string): string[] => [`Selection syntax error at '${at}'.`, "Use 'help' for selection to get more help."];

class Parser {
  pos = 0;
  constructor(readonly s: string, readonly ctx: SelectionContext) {}

  skip(): void {
    while (this.pos < this.s.length && /\s/.test(this.s[this.pos]!)) this.pos++;
  }

  rest(): string {
    return this.s.slice(this.pos);
  }

  /** Match one of the logical tokens; returns it (position moved past it) or undefined. */
  logical(accept: readonly string[]): string | undefined {
    this.skip();
    for (const t of ["&&", ",", "||", "#", "!", "(", ")", "[", "]", "{", "}"]) {
      if (!accept.includes(t)) continue;
      if (this.s.startsWith(t, this.pos)) {
        this.pos += t.length;
        return t;
      }
    }
    return undefined;
  }

  orEx(): SelectionNode {
    const items: SelectionNode[] = [this.andEx()];
    while (this.logical(["||", "#"])) items.push(this.andEx());
    return items.length === 1 ? items[0]! : { kind: "or", items, not: false };
  }

  andEx(): SelectionNode {
    const items: SelectionNode[] = [this.ex()];
    while (this.logical(["&&", ","])) items.push(this.ex());
    return items.length === 1 ? items[0]! : { kind: "and", items, not: false };
  }

  ex(): SelectionNode {
    const save = this.pos;
    const t = this.logical(["!", "("]);
    if (t === "!") {
      if (!this.logical(["("])) throw new SelectionError([`Syntax error: left parenthesis expected at '${this.rest()}'`]);
      const n = this.orEx();
      if (!this.logical([")"])) throw new SelectionError([`Syntax error: right parenthesis expected at '${this.rest()}'`]);
      return wrapNot(n);
    }
    if (t === "(") {
      const n = this.orEx();
      if (!this.logical([")"])) throw new SelectionError([`Syntax error: right parenthesis expected at '${this.rest()}'`]);
      return n;
    }
    this.pos = save;
    this.skip();
    return this.item();
  }

  item(): SelectionNode {
    const start = this.pos;
    const at = this.s.slice(start);
    const m = /^[A-Za-z0-9_-]+/.exec(at);
    if (!m) throw new SelectionError(["Expecting field name", ...SYNTAX(at)]);
    const name = m[0];
    this.pos += name.length;
    const f = this.ctx.resolveField(name);
    if (f === "unknown") throw new SelectionError([`Unrecognised selection field: ${name}`, ...SYNTAX(at)], true);
    if (f === "uncomparable") throw new SelectionError([`Selection field is uncomparable: ${name}.`, ...SYNTAX(at)], true);
    this.skip();
    const opEntry = OP_CMP.find(([tok]) => this.s.startsWith(tok, this.pos));
    if (!opEntry) throw new SelectionError([`Unrecognised comparison operator: ${this.rest()}`, ...SYNTAX(at)], false, true);
    this.pos += opEntry[0].length;
    const op = opEntry[1];
    if (op === "time") {
      throw new SelectionError([`Operator can be used only with time fields: ${at}`, ...SYNTAX(at)], false, true);
    }
    if ((op === ">" || op === ">=" || op === "<" || op === "<=") && !f.numericOps) {
      throw new SelectionError([`Operator can be used only with number, size, time or percent fields: ${at}`, ...SYNTAX(at)], false, true);
    }
    this.skip();
    let value: SelValue;
    if (op === "=~" || op === "!~") {
      value = this.regexValue(f, at);
      if (f.kind !== "STR") throw new SelectionError([`dm_report: incompatible comparison type for selection field ${f.id}`]);
    } else value = this.value(f, at);
    return { kind: "item", prop: f.prop, fieldKind: f.kind, op, value, not: false };
  }

  /** A bare or quoted string; bare strings end at a space or a logical operator. */
  stringToken(at: string, fieldId: string): string {
    const q = this.s[this.pos];
    if (q === '"' || q === "'") {
      const end = this.s.indexOf(q, this.pos + 1);
      if (end < 0) throw new SelectionError(["Missing end quote.", `Failed to parse string value for selection field ${fieldId}.`, ...SYNTAX(at)]);
      const v = this.s.slice(this.pos + 1, end);
      this.pos = end + 1;
      return v;
    }
    const begin = this.pos;
    while (this.pos < this.s.length && this.s[this.pos] !== " " && !/^(&&|,|\|\||#|\))/.test(this.s.slice(this.pos))) this.pos++;
    return this.s.slice(begin, this.pos);
  }

  reservedValue(f: SelectionFieldInfo): number | string | undefined {
    const save = this.pos;
    let word: string;
    try {
      word = this.stringToken("", f.id);
    } catch {
      this.pos = save;
      return undefined;
    }
    for (const r of f.reserved ?? []) if (r.names.includes(word)) return r.value;
    if (f.kind === "NUM" && NUM_UNDEF_NAMES.includes(word)) return -1;
    this.pos = save;
    return undefined;
  }

  value(f: SelectionFieldInfo, at: string): SelValue {
    const reserved = this.reservedValue(f);
    if (reserved !== undefined) {
      if (typeof reserved === "string") return { t: "str", s: reserved };
      if (f.kind === "SIZ") return { t: "size", sectors: reserved };
      if (f.kind === "PCT") return { t: "pct", p: reserved };
      return { t: "num", n: reserved };
    }
    switch (f.kind) {
      case "STR":
        return { t: "str", s: this.stringToken(at, f.id) };
      case "STR_LIST":
        return this.listValue(f, at);
      case "TIM":
        throw new SelectionError([`Failed to parse time value for selection field ${f.id}.`, ...SYNTAX(at)]);
      default: {
        const m = /^(?:[0-9]*\.?[0-9]*)/.exec(this.rest())!;
        // lvm2 takes digits with at most one '.'
        const numText = /^[0-9]*(?:\.[0-9]*)?/.exec(m[0])![0];
        if (!numText) throw new SelectionError([`Failed to parse numeric value for selection field ${f.id}.`, ...SYNTAX(at)]);
        this.pos += numText.length;
        const v = Number(numText === "." ? "0" : numText.endsWith(".") ? numText + "0" : numText.startsWith(".") ? "0" + numText : numText);
        if (this.s[this.pos] === "%") {
          this.pos++;
          if (f.kind !== "PCT") {
            throw new SelectionError([`Found percent value but ${f.kind === "NUM" ? "numeric" : "size"} value expected for selection field ${f.id}.`, ...SYNTAX(at)]);
          }
        } else {
          const unit = unitFactor(this.s[this.pos]);
          if (unit) {
            this.pos++;
            if (f.kind !== "SIZ") {
              throw new SelectionError([`Found size unit specifier but ${f.kind === "NUM" ? "numeric" : "percent"} value expected for selection field ${f.id}.`, ...SYNTAX(at)]);
            }
            return { t: "size", sectors: (v * unit) / 512 };
          }
        }
        if (f.kind === "SIZ") return { t: "size", sectors: (v * 1024 * 1024) / 512 };
        if (f.kind === "PCT") {
          if (v < 0 || v > 100) throw new SelectionError([`Field selection value ${numText} out of supported range for field ${f.id}.`]);
          return { t: "pct", p: Math.trunc(1_000_000 * v) };
        }
        return { t: "num", n: Math.trunc(v) };
      }
    }
  }

  listValue(f: SelectionFieldInfo, at: string): SelValue {
    const open = this.logical(["[", "{"]);
    if (!open) {
      const q = this.s[this.pos];
      const item = q === '"' || q === "'" ? this.stringToken(at, f.id) : this.bareItem(["&&", ",", "||", "#", ")"]);
      return { t: "list", items: [item], all: false, subset: false };
    }
    const close = open === "[" ? "]" : "}";
    const items: string[] = [];
    let type: "and" | "or" | undefined;
    for (;;) {
      this.skip();
      const q = this.s[this.pos];
      const item = q === '"' || q === "'" ? this.stringToken(at, f.id) : this.bareItem(["]", "}", "&&", ",", "||", "#"]);
      const op = this.logical(["]", "}", "&&", ",", "||", "#"]);
      if (!op) throw new SelectionError(["Invalid operator in selection list.", `Failed to parse string list value for selection field ${f.id}.`, ...SYNTAX(at)]);
      items.push(item);
      if (op === "]" || op === "}") {
        if (op !== close) throw new SelectionError([`List ended with incorrect character, expecting '${close}'.`, `Failed to parse string list value for selection field ${f.id}.`, ...SYNTAX(at)]);
        if (!type) type = close === "]" ? "and" : "or";
        break;
      }
      const t = op === "&&" || op === "," ? "and" : "or";
      if (type && type !== t) throw new SelectionError(["Only one type of logical operator allowed in selection list at a time.", `Failed to parse string list value for selection field ${f.id}.`, ...SYNTAX(at)]);
      type = t;
      if (this.pos >= this.s.length) throw new SelectionError([`Missing list end for selection field ${f.id}`, `Failed to parse string list value for selection field ${f.id}.`, ...SYNTAX(at)]);
    }
    return { t: "list", items: [...items].sort(), all: type === "and", subset: close === "}" };
  }

  bareItem(stops: readonly string[]): string {
    const begin = this.pos;
    while (this.pos < this.s.length && this.s[this.pos] !== " " && !stops.some((t) => this.s.startsWith(t, this.pos))) this.pos++;
    return this.s.slice(begin, this.pos);
  }

  regexValue(f: SelectionFieldInfo, at: string): SelValue {
    if (this.pos >= this.s.length) throw new SelectionError([`Regular expression expected for selection field ${f.id}`, ...SYNTAX(at)]);
    const c = this.s[this.pos]!;
    const closeFor: Record<string, string> = { "(": ")", "{": "}", "[": "]", '"': '"', "'": "'" };
    let text: string;
    const close = closeFor[c];
    if (close) {
      const end = this.s.indexOf(close, this.pos + 1);
      if (end < 0) throw new SelectionError(["Missing end quote.", `Failed to parse regex value for selection field ${f.id}.`, ...SYNTAX(at)]);
      text = this.s.slice(this.pos + 1, end);
      this.pos = end + 1;
    } else text = this.bareItem(["&&", ",", "||", "#", ")"]);
    let re: RegExp;
    try {
      re = new RegExp(text);
    } catch {
      throw new SelectionError([`dm_report: failed to create regex matcher for selection field ${f.id}`]);
    }
    return { t: "regex", re };
  }
}

function wrapNot(n: SelectionNode): SelectionNode {
  return { ...n, not: !n.not };
}

function unitFactor(c: string | undefined): number | undefined {
  if (!c) return undefined;
  const kib: Record<string, number> = { b: 1, B: 1, s: 512, S: 512, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5, e: 1024 ** 6 };
  const kb: Record<string, number> = { K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
  return kib[c] ?? kb[c];
}

export function parseSelection(text: string, ctx: SelectionContext): SelectionNode {
  const p = new Parser(text, ctx);
  const root = p.orEx();
  p.skip();
  if (p.pos < text.length) throw new SelectionError(["Expecting logical operator", ...SYNTAX(p.rest())]);
  return root;
}

const EPS = Number.EPSILON;
const u64 = (n: number): number => (n < 0 ? 2 ** 64 + n : n);

function compareItem(n: Extract<SelectionNode, { kind: "item" }>, v: Value): boolean {
  const val = n.value;
  if (val.t === "regex") {
    const m = val.re.test(String(v.sort));
    return n.op === "!~" ? !m : m;
  }
  if (val.t === "list") {
    const have = v.items ?? (v.text === "" ? [] : [v.text]);
    let r: boolean;
    if (!val.all) r = have.length === 0 ? val.items.includes("") : val.items.some((i) => have.includes(i));
    else if (have.length === 0) r = val.items.length === 1 && val.items[0] === "";
    else if (val.subset) r = val.items.every((i) => have.includes(i));
    else r = have.length === val.items.length && have.every((h, i) => h === val.items[i]);
    return n.op === "!=" ? !r : r;
  }
  if (val.t === "str") {
    const s = String(v.sort);
    return n.op === "=" ? s === val.s : s !== val.s;
  }
  if (val.t === "size") {
    const x = v.sort as number;
    const eq = Math.abs(x - val.sectors) < EPS;
    switch (n.op) {
      case "=": return eq;
      case "!=": return !eq;
      case ">": return x > val.sectors && !eq;
      case ">=": return x > val.sectors || eq;
      case "<": return x < val.sectors && !eq;
      case "<=": return x < val.sectors || eq;
      default: return false;
    }
  }
  // Numbers and percents compare as uint64; a percent above 100% (invalid) never matches.
  const x = v.sort as number;
  if (val.t === "pct" && (x < 0 || x > 100_000_000)) return false;
  const a = u64(x);
  const b = u64(val.t === "pct" ? val.p : val.n);
  const undefA = x === -1;
  switch (n.op) {
    case "=": return a === b;
    case "!=": return a !== b;
    case ">": return !undefA && a > b;
    case ">=": return !undefA && a >= b;
    case "<": return !undefA && a < b;
    case "<=": return !undefA && a <= b;
    default: return false;
  }
}

export function evaluateSelection(n: SelectionNode, values: readonly Value[]): boolean {
  let r: boolean;
  if (n.kind === "item") r = compareItem(n, values[n.prop]!);
  else if (n.kind === "and") r = n.items.every((i) => evaluateSelection(i, values));
  else r = n.items.some((i) => evaluateSelection(i, values));
  return n.not ? !r : r;
}
