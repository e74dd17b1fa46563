/**
 * A progress bar for a terminal, shared by the commands that wait for a copy
 * (lvconvert, pvmove): md's /proc/mdstat line redrawn in place,
 *   "  vg/lv: [=========>..........]  45.31%  12.3 MiB/s  ETA 1:05"
 * The rate is measured over a recent window (md's speed=, ZFS's lesson from
 * openzfs#14410: whole-run averages give absurd ETAs after a pause or a slow
 * start), and the ETA (md's finish=) is the remaining amount at that rate;
 * "--:--" until two samples in the window show progress. The clock is
 * injected so the arithmetic is testable; commands pass Date.now.
 * When output is not a terminal the commands print lvm2's lines instead.
 */
export interface ProgressBarOptions {
  /** What is being copied, e.g. "vg/lv". */
  label: string;
  /** Amount to copy, in bytes. */
  total: number;
  /** Milliseconds; defaults to Date.now. */
  clock?: () => number;
  /** Rate window in milliseconds (default 10 s). */
  windowMs?: number;
  /** Where the bar goes (default process.stdout). */
  write?: (s: string) => void;
  /** Bar width in characters between the brackets (md's is 20). */
  width?: number;
}

/** Whether progress shows as a bar (stdout a terminal) rather than lvm2's periodic lines. */
export function progressBarWanted(): boolean {
  return process.stdout.isTTY === true && !process.env.ULVM_NO_PROGRESS_BAR;
}

export class ProgressBar {
  private readonly clock: () => number;
  private readonly windowMs: number;
  private readonly write: (s: string) => void;
  private readonly width: number;
  /** (time, done) samples within the window, oldest first; the newest is never dropped. */
  private samples: Array<{ t: number; done: number }> = [];
  private percentText: string | undefined;
  private drawn = false;

  constructor(private readonly opts: ProgressBarOptions) {
    this.clock = opts.clock ?? Date.now;
    this.windowMs = opts.windowMs ?? 10_000;
    this.write = opts.write ?? ((s) => process.stdout.write(s));
    this.width = opts.width ?? 20;
  }

  /** Record how much is done (bytes); `percent` overrides the shown figure (lvm2's rounding). */
  update(done: number, percent?: string): void {
    const t = this.clock();
    this.samples.push({ t, done });
    // Keep one sample at or before the window's start, so the window is always covered.
    while (this.samples.length > 2 && this.samples[1]!.t <= t - this.windowMs) this.samples.shift();
    this.percentText = percent;
  }

  get done(): number {
    return this.samples[this.samples.length - 1]?.done ?? 0;
  }

  /** Bytes per second over the recent window, or undefined before two samples. */
  rate(): number | undefined {
    if (this.samples.length < 2) return undefined;
    const a = this.samples[0]!;
    const b = this.samples[this.samples.length - 1]!;
    if (b.t <= a.t) return undefined;
    return Math.max(0, ((b.done - a.done) * 1000) / (b.t - a.t));
  }

  /** Seconds to go at the recent rate; 0 when done; undefined when unknown. */
  eta(): number | undefined {
    const left = Math.max(0, this.opts.total - this.done);
    if (left === 0) return 0;
    const r = this.rate();
    return r ? left / r : undefined;
  }

  render(): string {
    const frac = this.opts.total > 0 ? Math.min(1, this.done / this.opts.total) : 1;
    const pct = this.percentText ?? (frac * 100).toFixed(2);
    const rate = this.rate();
    return `  ${this.opts.label}: ${bar(frac, this.width)} ${pct.padStart(6)}%  ${(rate === undefined ? "-" : fmtRate(rate)).padStart(11)}  ETA ${fmtEta(this.eta())}`;
  }

  /** Redraw in place: carriage return, the bar, erase to the end of the line. */
  draw(): void {
    this.write(`\r${this.render()}\x1b[K`);
    this.drawn = true;
  }

  /** End the bar's line (the next output starts on a new line). */
  finish(): void {
    if (this.drawn) this.write("\n");
    this.drawn = false;
  }
}

/** md's bar: '=' for what is done, '>' at the front, '.' for the rest. */
export function bar(fraction: number, width: number): string {
  const n = Math.min(width, Math.floor(fraction * width));
  if (n >= width) return "[" + "=".repeat(width) + "]";
  return "[" + "=".repeat(n) + ">" + ".".repeat(width - n - 1) + "]";
}

export function fmtRate(bytesPerSec: number): string {
  if (bytesPerSec >= 1 << 30) return `${(bytesPerSec / (1 << 30)).toFixed(1)} GiB/s`;
  if (bytesPerSec >= 1 << 20) return `${(bytesPerSec / (1 << 20)).toFixed(1)} MiB/s`;
  return `${(bytesPerSec / 1024).toFixed(0)} KiB/s`;
}

/** M:SS, H:MM:SS past an hour; "--:--" when unknown. */
export function fmtEta(sec: number | undefined): string {
  if (sec === undefined || !Number.isFinite(sec)) return "--:--";
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}
