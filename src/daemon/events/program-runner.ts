import { spawn } from "node:child_process";

/**
 * Running the programs events go to (hooks, sendmail, logger): in the
 * background, with a time limit, at most `concurrency` at a time. Nothing
 * here is ever awaited by an emitter: callers queue and move on.
 */
export interface ProgramResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout and stderr together, cut at OUTPUT_LIMIT_BYTES. */
  output: string;
  timedOut: boolean;
  /** spawn itself failed (ENOENT, EACCES...). */
  error?: string;
}

export interface ProgramSpec {
  file: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs: number;
  /** Aborting kills the program's group (the daemon stops: no hook outlives it by more than its own children's doing). */
  signal?: AbortSignal;
}

const OUTPUT_LIMIT_BYTES = 4096;

/**
 * Run one program to its end or its time limit. It runs in a process group
 * of its own, so that a timed-out hook is killed with whatever it started
 * (a shell script's `sleep`), not only the shell.
 */
export function runProgram(spec: ProgramSpec): Promise<ProgramResult> {
  return new Promise((resolve) => {
    let output = "";
    let timedOut = false;
    const child = spawn(spec.file, [...spec.args], { env: spec.env ?? process.env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    const take = (d: Buffer): void => {
      if (output.length < OUTPUT_LIMIT_BYTES) output += d.toString("utf8").slice(0, OUTPUT_LIMIT_BYTES - output.length);
    };
    child.stdout!.on("data", take);
    child.stderr!.on("data", take);
    child.stdin!.on("error", () => undefined); // a program that does not read its input
    child.stdin!.end(spec.input ?? "");
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, spec.timeoutMs);
    const onAbort = (): void => killGroup();
    spec.signal?.addEventListener("abort", onAbort, { once: true });
    if (spec.signal?.aborted) killGroup();
    child.on("error", (e) => {
      clearTimeout(timer);
      spec.signal?.removeEventListener("abort", onAbort);
      resolve({ code: null, signal: null, output, timedOut: false, error: e.message });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      spec.signal?.removeEventListener("abort", onAbort);
      // A hook that exits but leaves a child behind holding nothing of ours: its group goes too.
      if (timedOut) killGroup();
      resolve({ code, signal, output: output.trim(), timedOut });
    });
  });
}

/** A FIFO of jobs with at most `concurrency` running; past `maxQueued` waiting, new jobs are dropped (and said so). */
export class JobLimiter {
  private running = 0;
  private readonly queue: Array<() => Promise<void>> = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxQueued: number,
    private readonly onDrop: (what: string) => void,
  ) {}

  run(what: string, job: () => Promise<void>): void {
    if (this.queue.length >= this.maxQueued) {
      this.onDrop(what);
      return;
    }
    this.queue.push(job);
    this.next();
  }

  get idle(): boolean {
    return this.running === 0 && this.queue.length === 0;
  }

  private next(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      void job()
        .catch(() => undefined)
        .finally(() => {
          this.running--;
          this.next();
        });
    }
  }
}
