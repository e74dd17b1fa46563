/**
 * The torture suite's seeded generator (mulberry32). Every random choice of
 * a scenario comes from one Rng built from the iteration's seed, so a seed
 * printed with a failure replays the same choices.
 */
export class Rng {
  private s: number;
  constructor(readonly seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  u32(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.int(items.length)] as T;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      const x = this.u32();
      for (let j = 0; j < 4 && i + j < n; j++) b[i + j] = (x >>> (8 * j)) & 0xff;
    }
    return b;
  }
  /** A child generator, so that adding draws in one place does not shift another. */
  fork(salt: number): Rng {
    return new Rng(mixSeed(this.seed, salt));
  }
}

/**
 * Fill whole 32-bit words of b[start, end) with xorshift32 from `seed` (0 is
 * replaced by 1, xorshift's one fixed point): cheap deterministic data, the
 * same bytes for the same seed. A trailing partial word is left as it was.
 */
export function xorshiftFill(b: Buffer, start: number, end: number, seed: number): void {
  let x = seed >>> 0 || 1;
  for (let i = start; i + 4 <= end; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
}

/** Seed of iteration `i` of a run with base seed `base`: iteration 0 uses the base itself (replay with --iterations 1). */
export function iterationSeed(base: number, i: number): number {
  return i === 0 ? base >>> 0 : mixSeed(base, i);
}

export function mixSeed(a: number, b: number): number {
  let h = (Math.imul(a >>> 0, 0x9e3779b1) ^ Math.imul((b + 0x7f4a7c15) >>> 0, 0x85ebca77)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0 || 1;
}
