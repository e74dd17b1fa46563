/**
 * Integrity mismatches arrive one read at a time; a scrub or a sequential
 * read over a rotten area brings thousands. This gathers them for a short
 * window per (device, leg, healed), merges adjacent and overlapping runs of
 * blocks, and hands out at most `maxRuns` runs per window plus a summary of
 * the rest, so the log and the events say where without drowning.
 */
export interface MismatchRun {
  readonly sector: number;
  readonly sectors: number;
}

export interface MismatchBatch {
  readonly device: string;
  readonly leg: number;
  readonly legDevice: string;
  readonly healed: boolean;
  /** Merged runs, ascending, at most maxRuns. */
  readonly runs: readonly MismatchRun[];
  /** Runs left out of `runs`, and their blocks' sectors. */
  readonly omittedRuns: number;
  readonly omittedSectors: number;
}

interface Pending {
  device: string;
  leg: number;
  legDevice: string;
  healed: boolean;
  runs: MismatchRun[];
  timer: NodeJS.Timeout;
}

export class MismatchCoalescer {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly deliver: (batch: MismatchBatch) => void,
    private readonly windowMs = 250,
    private readonly maxRuns = 16,
  ) {}

  add(e: { device: string; leg: number; legDevice: string; healed: boolean; runs: readonly MismatchRun[] }): void {
    const key = `${e.device}\0${e.leg}\0${e.healed ? 1 : 0}`;
    let p = this.pending.get(key);
    if (p === undefined) {
      // A fixed window from the first report (not reset by later ones), so a long scan still reports as it goes.
      const timer = setTimeout(() => this.flushKey(key), this.windowMs);
      timer.unref();
      p = { device: e.device, leg: e.leg, legDevice: e.legDevice, healed: e.healed, runs: [], timer };
      this.pending.set(key, p);
    }
    p.runs.push(...e.runs);
  }

  /** Deliver everything pending now (daemon stop). */
  flush(): void {
    for (const key of [...this.pending.keys()]) this.flushKey(key);
  }

  private flushKey(key: string): void {
    const p = this.pending.get(key);
    if (p === undefined) return;
    this.pending.delete(key);
    clearTimeout(p.timer);
    const merged = mergeRuns(p.runs);
    const shown = merged.slice(0, this.maxRuns);
    const rest = merged.slice(this.maxRuns);
    this.deliver({
      device: p.device,
      leg: p.leg,
      legDevice: p.legDevice,
      healed: p.healed,
      runs: shown,
      omittedRuns: rest.length,
      omittedSectors: rest.reduce((n, r) => n + r.sectors, 0),
    });
  }
}

/** Sorted, with adjacent and overlapping runs joined. */
export function mergeRuns(runs: readonly MismatchRun[]): MismatchRun[] {
  const sorted = [...runs].sort((a, b) => a.sector - b.sector);
  const out: { sector: number; sectors: number }[] = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    if (prev !== undefined && r.sector <= prev.sector + prev.sectors) {
      prev.sectors = Math.max(prev.sectors, r.sector + r.sectors - prev.sector);
    } else out.push({ sector: r.sector, sectors: r.sectors });
  }
  return out;
}
