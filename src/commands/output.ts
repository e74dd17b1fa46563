/**
 * Where messages go, in lvm2's style: log_print to stdout and warnings/errors
 * to stderr, each line prefixed with two spaces. Collected in memory when a
 * command runs inside the daemon.
 */
export interface Output {
  /** stdout, as-is (reports). */
  write(text: string): void;
  /** stdout with lvm2's two-space prefix (log_print). */
  print(line: string): void;
  /** stderr with the prefix (log_warn / log_error). */
  warn(line: string): void;
  error(line: string): void;
  /** stderr, as-is. */
  writeErr(text: string): void;
  /** Push buffered stdout out now (progress lines of a long-running command). */
  flush?(): void;
}

const indent = (line: string): string => line.split("\n").map((l) => "  " + l).join("\n") + "\n";

export class StdOutput implements Output {
  private outBuf: string[] = [];
  write(text: string): void {
    this.outBuf.push(text);
    if (this.outBuf.length > 256) this.flush();
  }
  print(line: string): void {
    this.write(indent(line));
  }
  warn(line: string): void {
    this.flush();
    process.stderr.write(indent(line));
  }
  error(line: string): void {
    this.warn(line);
  }
  writeErr(text: string): void {
    this.flush();
    process.stderr.write(text);
  }
  /** Stdout is buffered so a large report is one write; stderr flushes it first to keep order. */
  flush(): void {
    if (this.outBuf.length) {
      const s = this.outBuf.join("");
      this.outBuf = [];
      process.stdout.write(s);
    }
  }
}

export class MemoryOutput implements Output {
  stdout = "";
  stderr = "";
  write(text: string): void {
    this.stdout += text;
  }
  print(line: string): void {
    this.stdout += indent(line);
  }
  warn(line: string): void {
    this.stderr += indent(line);
  }
  error(line: string): void {
    this.stderr += indent(line);
  }
  writeErr(text: string): void {
    this.stderr += text;
  }
}
