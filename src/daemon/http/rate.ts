/**
 * Progress rates over a recent window, as md's speed= (measured since the
 * last marks, not over the whole run: whole-run averages gave ZFS its absurd
 * ETAs). Samples are taken when a snapshot is taken (every second while the
 * page is open, at each scrape otherwise).
 */
const WINDOW_MS = 10_000;

export class RateTracker {
  private readonly samples = new Map<string, Array<{ t: number; done: number }>>();

  /** Record `done` for `key` at time `t` (ms); returns bytes per second over the window, or undefined with one sample. */
  sample(key: string, t: number, done: number): number | undefined {
    let s = this.samples.get(key);
    if (!s) this.samples.set(key, (s = []));
    const last = s[s.length - 1];
    // Progress went back (a new pass, a reloaded table): start over.
    if (last && done < last.done) s.length = 0;
    const prev = s[s.length - 1];
    if (!prev || t > prev.t) s.push({ t, done });
    while (s.length > 2 && t - s[1]!.t >= WINDOW_MS) s.shift();
    const first = s[0]!;
    const end = s[s.length - 1]!;
    return end.t > first.t ? ((end.done - first.done) * 1000) / (end.t - first.t) : undefined;
  }

  /** Forget every key not in `keys` (finished jobs, deactivated LVs). */
  keepOnly(keys: ReadonlySet<string>): void {
    for (const k of [...this.samples.keys()]) if (!keys.has(k)) this.samples.delete(k);
  }
}
