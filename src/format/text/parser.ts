import { FormatError } from "../../errors/errors.js";
import type { ConfigNode, ConfigScalar, ConfigSection, ConfigValue } from "./config-tree.js";

/**
 * Parser for LVM's config language (the grammar of libdm-config.c):
 *
 *   file  := item*            item := name '{' item* '}' | name '=' value
 *   value := scalar | '[' (scalar ','?)* ']'
 *
 * Lexing follows lvm2: '#' comments to end of line; a NUL byte ends the input;
 * integers are read like strtoll(.., 0) (a leading 0 means octal); values in
 * double quotes unescape only \" and \\; single quotes have no escapes; an
 * unquoted word after '=' is a string. Errors carry lvm2's wording
 * ("Parse error at byte N (line L): unexpected token").
 *
 * `mergeDuplicates` gives config-file semantics (a repeated section merges into
 * the first, as dm_config_parse does); metadata text is parsed without it.
 */
const enum Tok {
  Eof,
  SectionB,
  SectionE,
  ArrayB,
  ArrayE,
  Comma,
  Eq,
  Int,
  Float,
  StringEscaped,
  StringSingle,
  StringBare,
  Identifier,
}

const MAX_DEPTH = 64;

export interface ParseOptions {
  mergeDuplicates?: boolean;
  /** Name for error messages (device or file). */
  source?: string;
}

// Sticky regular expressions do the character work: a CLI parses each VG's
// text once, cold, and the regex engine is fast before the JIT warms up.
const SPACE_RE = /[ \t\n\v\f\r]*/y;
const NUMBER_RE = /(?:\.[0-9]*|[+\-0-9][0-9]*(?:\.[0-9]*)?)/y;
const WORD_RE = /[^ \t\n\v\f\r#={}]+/y;
const DQ_RE = /"(?:[^"\\]|\\[\s\S])*"/y;
const SQ_RE = /'[^']*'/y;

class Lexer {
  tok: Tok = Tok.Eof;
  tb = 0; // token begin
  te = 0; // token end
  readonly end: number;
  private newlines: number[] | undefined;

  constructor(readonly text: string) {
    const nul = text.indexOf("\0");
    this.end = nul === -1 ? text.length : nul;
    if (nul !== -1) this.text = text.slice(0, nul);
  }

  /** The current token (a method, so that narrowing does not survive next()). */
  peek(): Tok {
    return this.tok;
  }

  /** 1-based line of an offset, for messages (newline index built on first use). */
  lineAt(offset: number): number {
    if (!this.newlines) {
      const nl: number[] = [];
      for (let i = this.text.indexOf("\n"); i !== -1 && i < this.end; i = this.text.indexOf("\n", i + 1)) nl.push(i);
      this.newlines = nl;
    }
    let lo = 0;
    let hi = this.newlines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.newlines[mid]! < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  }

  get tokLine(): number {
    return this.lineAt(this.tb);
  }

  private match(re: RegExp, at: number): number {
    re.lastIndex = at;
    return re.test(this.text) ? re.lastIndex : -1;
  }

  next(prev: Tok): void {
    // Whitespace, then any '#' comment to the end of its line, repeatedly.
    let p = this.te;
    for (;;) {
      SPACE_RE.lastIndex = p;
      SPACE_RE.test(this.text);
      p = SPACE_RE.lastIndex;
      if (this.text.charCodeAt(p) !== 0x23) break;
      const nl = this.text.indexOf("\n", p);
      p = nl === -1 ? this.end : nl;
    }
    this.tb = Math.min(p, this.end);
    if (this.tb >= this.end) {
      this.tok = Tok.Eof;
      this.te = this.tb;
      return;
    }
    const valuesAllowed = prev === Tok.Eq || prev === Tok.ArrayB || prev === Tok.Comma;
    const c = this.text.charCodeAt(this.tb);
    let te: number;
    switch (c) {
      case 0x7b: this.tok = Tok.SectionB; te = this.tb + 1; break;
      case 0x7d: this.tok = Tok.SectionE; te = this.tb + 1; break;
      case 0x5b: this.tok = Tok.ArrayB; te = this.tb + 1; break;
      case 0x5d: this.tok = Tok.ArrayE; te = this.tb + 1; break;
      case 0x2c: this.tok = Tok.Comma; te = this.tb + 1; break;
      case 0x3d: this.tok = Tok.Eq; te = this.tb + 1; break;
      case 0x22:
        this.tok = Tok.StringEscaped;
        te = this.match(DQ_RE, this.tb);
        if (te < 0) throw this.error("unterminated string", this.tb);
        break;
      case 0x27:
        this.tok = Tok.StringSingle;
        te = this.match(SQ_RE, this.tb);
        if (te < 0) throw this.error("unterminated string", this.tb);
        break;
      default: {
        const numberStart = c === 0x2e || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d;
        if (numberStart && valuesAllowed) {
          te = this.match(NUMBER_RE, this.tb);
          this.tok = this.text.slice(this.tb, te).includes(".") ? Tok.Float : Tok.Int;
          break;
        }
        te = this.match(WORD_RE, this.tb);
        this.tok = valuesAllowed ? Tok.StringBare : Tok.Identifier;
      }
    }
    this.te = Math.min(te, this.end);
  }

  tokenText(): string {
    return this.text.slice(this.tb, this.te);
  }

  error(what: string, at = this.tb): FormatError {
    const line = this.lineAt(at);
    return new FormatError(`Parse error at byte ${at + 1} (line ${line}): ${what}`, { offsetBytes: at, line });
  }
}

function unescapeDoubleQuoted(raw: string): string {
  // raw includes the quotes; only \" and \\ are escapes (dm_unescape_double_quotes).
  const inner = raw.slice(1, -1);
  if (!inner.includes("\\")) return inner;
  let out = "";
  for (let i = 0; i < inner.length; i++) {
    const ch = inner[i]!;
    if (ch === "\\" && i + 1 < inner.length && (inner[i + 1] === '"' || inner[i + 1] === "\\")) {
      out += inner[i + 1];
      i++;
    } else out += ch;
  }
  return out;
}

/** strtoll(text, NULL, 0) for a token of [+-]?[0-9]+ : leading 0 = octal. */
function parseIntToken(text: string, lx: Lexer): number {
  let s = text;
  let sign = 1;
  if (s[0] === "+" || s[0] === "-") {
    if (s[0] === "-") sign = -1;
    s = s.slice(1);
  }
  if (s.length === 0) throw lx.error("expected a value");
  if (s.length < 16 && (s.length === 1 || s[0] !== "0")) return Number(s) * sign;
  let v: bigint;
  if (s.length > 1 && s[0] === "0") {
    // octal; strtoll stops at the first non-octal digit
    const m = /^[0-7]*/.exec(s)![0];
    v = m.length ? BigInt("0o" + m) : 0n;
  } else v = BigInt(s);
  const n = Number(v) * sign;
  if (!Number.isSafeInteger(n)) throw lx.error("integer out of range");
  return n;
}

function scalar(lx: Lexer): ConfigScalar {
  const text = lx.tokenText();
  let v: ConfigScalar;
  switch (lx.peek()) {
    case Tok.Int: v = { kind: "int", value: parseIntToken(text, lx) }; break;
    case Tok.Float: {
      const f = Number.parseFloat(text);
      if (Number.isNaN(f)) throw lx.error("Failed to read float token.");
      v = { kind: "float", value: f };
      break;
    }
    case Tok.StringEscaped: v = { kind: "string", value: unescapeDoubleQuoted(text) }; break;
    case Tok.StringSingle: v = { kind: "string", value: text.slice(1, -1) }; break;
    case Tok.StringBare: v = { kind: "string", value: text }; break;
    default: throw lx.error("expected a value");
  }
  lx.next(lx.peek());
  return v;
}

function value(lx: Lexer): ConfigValue {
  if (lx.peek() !== Tok.ArrayB) return scalar(lx);
  lx.next(Tok.ArrayB);
  const items: ConfigScalar[] = [];
  while (lx.peek() !== Tok.ArrayE) {
    if (lx.peek() === Tok.Eof) throw lx.error("unexpected token");
    items.push(scalar(lx));
    if (lx.peek() === Tok.Comma) lx.next(Tok.Comma);
  }
  lx.next(Tok.ArrayE);
  return { kind: "array", items };
}

function expect(lx: Lexer, t: Tok): void {
  if (lx.peek() !== t) throw lx.error("unexpected token");
  lx.next(t);
}

function item(lx: Lexer, parent: { children: ConfigNode[] }, merge: boolean, depth: number): void {
  if (depth > MAX_DEPTH) throw lx.error("sections nested too deeply");
  let name: string;
  const line = lx.tokLine;
  switch (lx.peek()) {
    case Tok.StringEscaped: name = unescapeDoubleQuoted(lx.tokenText()); break;
    case Tok.StringSingle: name = lx.tokenText().slice(1, -1); break;
    case Tok.Identifier: name = lx.tokenText(); break;
    default: throw lx.error("unexpected token");
  }
  lx.next(lx.peek());
  if (name.length === 0) throw lx.error("empty section identifier");
  if (lx.peek() === Tok.SectionB) {
    lx.next(Tok.SectionB);
    let section: ConfigSection | undefined;
    if (merge) {
      const existing = parent.children.find((c) => c.name === name);
      if (existing?.kind === "section") section = existing;
    }
    if (!section) {
      section = { kind: "section", name, children: [], line };
      parent.children.push(section);
    }
    while (lx.peek() !== Tok.SectionE) {
      if (lx.peek() === Tok.Eof) throw lx.error("unexpected token");
      item(lx, section, merge, depth + 1);
    }
    lx.next(Tok.SectionE);
  } else {
    expect(lx, Tok.Eq);
    const v = value(lx);
    if (merge) {
      // Config semantics: the first value wins (later duplicates are ignored by lvm2 with a warning).
      if (parent.children.some((c) => c.name === name)) return;
    }
    parent.children.push({ kind: "setting", name, value: v, line });
  }
}

/** Parse text into a root section named "<root>". Throws FormatError. */
export function parseConfig(text: string, opts: ParseOptions = {}): ConfigSection {
  const lx = new Lexer(text);
  const root: ConfigSection = { kind: "section", name: "<root>", children: [], line: 1 };
  lx.next(Tok.SectionE);
  try {
    while (lx.peek() !== Tok.Eof) item(lx, root, opts.mergeDuplicates ?? false, 0);
  } catch (e) {
    if (e instanceof FormatError && opts.source) {
      throw new FormatError(e.message, { ...e.details, device: opts.source });
    }
    throw e;
  }
  return root;
}
