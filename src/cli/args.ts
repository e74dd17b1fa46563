import { UsageError } from "../errors/errors.js";

/**
 * Command-line parsing with getopt_long's conventions, as lvm2 uses them:
 * short options grouped (-ff, -yv) or with attached values (-L2g, -m1, -l+10),
 * long options as --opt=value or --opt value, options anywhere among the
 * positional arguments, "--" ends options. An option's value may begin with
 * '-' (lvresize -L -1g). Errors are worded as getopt and lvm2 word them.
 */
export interface OptionSpec {
  /** Canonical long name without dashes, e.g. "size". */
  name: string;
  /** One-letter alias, e.g. "L". */
  short?: string;
  /** Other long spellings accepted (lvm2 keeps old names: "mirrorlog", "corelog"...). */
  aliases?: string[];
  /** Takes a value. */
  value: boolean;
  /** May be given several times (values are collected; flags are counted). */
  repeat?: boolean;
}

export interface ParsedArgs {
  /** Values of options, by canonical name: string[] for value options, count for flags. */
  values: Map<string, string[]>;
  counts: Map<string, number>;
  positional: string[];
  /** Option names in the order they appeared. */
  order: string[];
}

export function parseArgs(command: string, argv: readonly string[], specs: readonly OptionSpec[]): ParsedArgs {
  const byLong = new Map<string, OptionSpec>();
  const byShort = new Map<string, OptionSpec>();
  for (const s of specs) {
    byLong.set(s.name, s);
    for (const a of s.aliases ?? []) byLong.set(a, s);
    if (s.short) byShort.set(s.short, s);
  }
  const res: ParsedArgs = { values: new Map(), counts: new Map(), positional: [], order: [] };
  const record = (s: OptionSpec, v?: string): void => {
    res.order.push(s.name);
    res.counts.set(s.name, (res.counts.get(s.name) ?? 0) + 1);
    if (s.value) {
      const list = res.values.get(s.name) ?? [];
      if (list.length && !s.repeat) list.length = 0; // the last one wins, as getopt loops do
      list.push(v!);
      res.values.set(s.name, list);
    }
  };
  const bad = (msg: string): never => {
    throw new UsageError(msg, command, { getopt: true });
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      res.positional.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
      // getopt_long accepts unambiguous prefixes of long options.
      let s = byLong.get(name);
      if (!s) {
        const cands = [...new Set([...byLong.entries()].filter(([k]) => k.startsWith(name)).map(([, v]) => v))];
        if (cands.length === 1 && name.length > 0) s = cands[0];
        else if (cands.length > 1) bad(`${command}: option '--${name}' is ambiguous`);
      }
      if (!s) bad(`${command}: unrecognized option '--${name}'`);
      const spec = s!;
      if (spec.value) {
        let v: string | undefined = eq === -1 ? undefined : a.slice(eq + 1);
        if (v === undefined) {
          if (i + 1 >= argv.length) bad(`${command}: option '--${name}' requires an argument`);
          v = argv[++i]!;
        }
        record(spec, v);
      } else {
        if (eq !== -1) bad(`${command}: option '--${name}' doesn't allow an argument`);
        record(spec);
      }
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        const s = byShort.get(c);
        if (!s) bad(`${command}: invalid option -- '${c}'`);
        const spec = s!;
        if (spec.value) {
          let v = a.slice(j + 1);
          if (v === "") {
            if (i + 1 >= argv.length) bad(`${command}: option requires an argument -- '${c}'`);
            v = argv[++i]!;
          }
          record(spec, v);
          break;
        }
        record(spec);
      }
      continue;
    }
    res.positional.push(a);
  }
  return res;
}

/** Accessors over ParsedArgs with lvm2-style validation messages. */
export class Args {
  constructor(readonly command: string, readonly parsed: ParsedArgs) {}

  has(name: string): boolean {
    return this.parsed.counts.has(name);
  }
  count(name: string): number {
    return this.parsed.counts.get(name) ?? 0;
  }
  str(name: string): string | undefined {
    const v = this.parsed.values.get(name);
    return v ? v[v.length - 1] : undefined;
  }
  strs(name: string): string[] {
    return this.parsed.values.get(name) ?? [];
  }
  get positional(): string[] {
    return this.parsed.positional;
  }
  /** lvm2's yes/no arguments: y/n (also yes/no). */
  yesNo(name: string): boolean | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (/^(y|yes)$/i.test(v)) return true;
    if (/^(n|no)$/i.test(v)) return false;
    throw new UsageError(`Invalid argument for --${name}: ${v}`, this.command);
  }
  /** A plain non-negative integer argument. */
  uint(name: string): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!/^\+?\d+$/.test(v)) {
      throw new UsageError(`Invalid argument for --${name}: ${v}`, this.command);
    }
    return Number(v);
  }
}
