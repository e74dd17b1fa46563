import { constants, type Dirent } from "node:fs";
import { access, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { UlvmEvent } from "./event-types.js";
import { JobLimiter, runProgram } from "./program-runner.js";

/** ZED runs up to 16 zedlets at a time (zed -j); so do we. */
export const HOOK_CONCURRENCY = 16;
/** Hook runs waiting for a slot; beyond this (hooks hung for a long while) new runs are dropped and logged. */
const MAX_QUEUED = 1024;

/** The environment a hook gets: the daemon's, plus the event. */
export function hookEnv(e: UlvmEvent, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...base,
    ULVM_EVENT_NAME: e.name,
    ULVM_EVENT_SEVERITY: e.severity,
    ULVM_EVENT_VG: e.vg ?? "",
    ULVM_EVENT_LV: e.lv ?? "",
    ULVM_EVENT_PV: e.pv ?? "",
    ULVM_EVENT_LEG: e.leg ?? "",
    ULVM_EVENT_TIME: e.time,
    ULVM_EVENT_ID: String(e.id),
    ULVM_EVENT_DETAILS: JSON.stringify(e.details),
  };
}

/**
 * Every executable in $ULVM_SYSTEM_DIR/events.d/ runs for every event (as
 * ZED's zedlets, without the name filter: a hook looks at ULVM_EVENT_NAME).
 * Hooks run in parallel, each killed at its time limit; their output and
 * exit status go to the daemon log. The directory is read for each event, so
 * a hook added while the daemon runs takes effect at the next event. Dotfiles
 * and editor backups (`~`) are skipped.
 */
export class HookRunner {
  private readonly limiter: JobLimiter;
  private readonly stopping = new AbortController();

  constructor(
    readonly dir: string,
    private readonly timeoutMs: () => number,
    private readonly log: (line: string) => void,
  ) {
    this.limiter = new JobLimiter(HOOK_CONCURRENCY, MAX_QUEUED, (what) => this.log(`hook ${what}: not run, too many hooks waiting`));
  }

  /** Queue the hooks for an event; returns at once. */
  dispatch(e: UlvmEvent): void {
    void this.hooks().then((files) => {
      for (const f of files) this.limiter.run(`${f} for event #${e.id}`, () => this.runOne(f, e));
    });
  }

  get idle(): boolean {
    return this.limiter.idle;
  }

  /** The daemon stops: hooks still running are killed (with their process groups), none start. */
  stop(): void {
    this.stopping.abort();
  }

  private async hooks(): Promise<string[]> {
    let entries: Dirent[];
    try {
      entries = await readdir(this.dir, { withFileTypes: true });
    } catch {
      return []; // no events.d: no hooks
    }
    const out: string[] = [];
    for (const d of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (d.name.startsWith(".") || d.name.endsWith("~") || !(d.isFile() || d.isSymbolicLink())) continue;
      const p = join(this.dir, d.name);
      if (await access(p, constants.X_OK).then(() => true, () => false)) out.push(p);
    }
    return out;
  }

  private async runOne(file: string, e: UlvmEvent): Promise<void> {
    const timeoutMs = this.timeoutMs();
    if (this.stopping.signal.aborted) return;
    const r = await runProgram({ file, args: [e.name, e.vg && e.lv ? `${e.vg}/${e.lv}` : e.vg ?? ""], env: hookEnv(e), timeoutMs, signal: this.stopping.signal });
    const what = `hook ${file} for event #${e.id} (${e.name})`;
    const out = r.output ? `: ${r.output.replace(/\n/g, "\\n")}` : "";
    if (r.error) this.log(`${what}: could not run: ${r.error}`);
    else if (this.stopping.signal.aborted && r.signal) this.log(`${what}: killed, the daemon stopped${out}`);
    else if (r.timedOut) this.log(`${what}: timed out after ${timeoutMs / 1000}s, killed${out}`);
    else if (r.signal) this.log(`${what}: killed by ${r.signal}${out}`);
    else this.log(`${what}: exit ${r.code}${out}`);
  }
}
