/**
 * Byte-range locks for one device, as dm-integrity's range locks keep a read
 * from seeing new data with an old tag (or the reverse) and the
 * recalculation from tagging data a client is overwriting. Shared holders
 * (reads) overlap each other; an exclusive holder (a write, a recalculation
 * step) overlaps nothing. Waiters are not queued fairly: a lock is retried
 * whenever a conflicting holder leaves.
 */
interface Holder {
  start: number;
  end: number;
  exclusive: boolean;
  released: Promise<void>;
}

export class RangeLock {
  private readonly holders = new Set<Holder>();

  async acquire(start: number, end: number, exclusive: boolean): Promise<() => void> {
    for (;;) {
      const conflicts = [...this.holders].filter((h) => h.start < end && start < h.end && (exclusive || h.exclusive));
      if (!conflicts.length) break;
      await Promise.race(conflicts.map((h) => h.released));
    }
    let release!: () => void;
    const holder: Holder = { start, end, exclusive, released: new Promise<void>((r) => (release = r)) };
    this.holders.add(holder);
    return () => {
      this.holders.delete(holder);
      release();
    };
  }
}
