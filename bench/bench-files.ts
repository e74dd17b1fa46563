import { closeSync, openSync, writeSync } from "node:fs";
import { randomFillSync } from "node:crypto";

/** What the benchmarks that copy between files share: their backing files and their statistic. */
const MiB = 1 << 20;

/** A non-sparse file of `mib` MiB: one random MiB written over and over (allocated, not "unwritten"). */
export function makeFile(path: string, mib: number): void {
  const chunk = randomFillSync(Buffer.allocUnsafe(MiB));
  const fd = openSync(path, "w");
  try {
    for (let i = 0; i < mib; i++) {
      chunk[0] = i & 0xff;
      writeSync(fd, chunk, 0, MiB, i * MiB);
    }
  } finally {
    closeSync(fd);
  }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}
