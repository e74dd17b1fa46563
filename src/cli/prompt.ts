import type { Output } from "../commands/output.js";

/**
 * lvm2's yes/no prompt (lib/display/display.c yes_no_prompt): the question and
 * " [y/n]: " go to stderr, unprefixed; the answer is a line from stdin that
 * starts a word of "yes" or "no" (any case). Anything else prints
 * "WARNING: Invalid input '...'." and asks again. End of input answers "no"
 * and prints "[n]".
 *
 * Lines are read from one shared reader, so a command that asks twice (vgremove
 * of two VGs) gets the second line for the second question.
 */
class StdinLines {
  private buffered = "";
  private lines: string[] = [];
  private ended = false;
  private waiters: Array<() => void> = [];
  private started = false;

  private start(): void {
    if (this.started) return;
    this.started = true;
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk: string) => {
      this.buffered += chunk;
      let i: number;
      while ((i = this.buffered.indexOf("\n")) !== -1) {
        this.lines.push(this.buffered.slice(0, i));
        this.buffered = this.buffered.slice(i + 1);
      }
      this.wake();
    });
    process.stdin.on("end", () => {
      this.ended = true;
      this.wake();
    });
    process.stdin.on("error", () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The next complete line, or undefined at end of input (a last line without "\n" counts as none, as in lvm2). */
  async next(): Promise<{ line: string } | { eof: true; partial: string }> {
    this.start();
    process.stdin.resume();
    for (;;) {
      const l = this.lines.shift();
      if (l !== undefined) {
        if (!this.lines.length) process.stdin.pause();
        return { line: l };
      }
      if (this.ended) return { eof: true, partial: this.buffered };
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
}

let stdinLines: StdinLines | undefined;

/** lvm2's reading of one answer: "y", "ye", "yes" (or n/no), whitespace around allowed. */
export function parseAnswer(line: string): "y" | "n" | undefined {
  const a = line.trim().toLowerCase();
  if (a.length && "yes".startsWith(a)) return "y";
  if (a.length && "no".startsWith(a)) return "n";
  return undefined;
}

export async function askYesNo(question: string, out: Output): Promise<boolean> {
  if (out && "flush" in out && typeof (out as { flush?: () => void }).flush === "function") (out as { flush: () => void }).flush();
  stdinLines ??= new StdinLines();
  for (;;) {
    process.stderr.write(question + " [y/n]: ");
    const r = await stdinLines.next();
    if ("eof" in r) {
      if (r.partial.length) out.warn(`WARNING: Invalid input '${r.partial.slice(0, 8)}'.`);
      process.stderr.write("[n]\n");
      return false;
    }
    const a = parseAnswer(r.line);
    if (a) return a === "y";
    const shown = r.line.trim();
    out.warn(`WARNING: Invalid input '${shown.length > 8 ? shown.slice(0, 8) + "..." : shown}'.`);
  }
}
