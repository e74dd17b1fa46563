/**
 * Mapper benchmark on files (not a test; run by hand):
 *
 *   node /tmp/mapper-dist/test/integration/mapper/mirror-bench.js [MiB=256] [dir=/var/tmp]
 *
 * Measures, on non-sparse files in `dir`:
 *   - plain copy: a double-buffered 1 MiB read/write loop file A -> file B
 *     (what the resync does, without the mirror), and `dd bs=1M`;
 *   - mirror resync (core log, full initial sync) of A over B;
 *   - write throughput through a linear target and a 2-leg mirror (disk log),
 *     sequential 1 MiB at queue depth 8 and random 4 KiB at queue depth 32,
 *     each ended by a flush.
 * Each figure is the median of REPS runs (env REPS, default 3).
 */
import { open, unlink, type FileHandle } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import type { BlockDevice, WriteOptions } from "../../../src/blockdev/block-device.js";
import { MappedDevice } from "../../../src/mapper/mapped-device.js";
import { Table } from "../../../src/mapper/table.js";
import { defaultTargetTypes } from "../../../src/mapper/target-types.js";
import { MirrorTarget } from "../../../src/mapper/targets/mirror/mirror-target.js";
import { MIRROR_MAGIC, encodeDiskLog } from "../../../src/mapper/dirty-log/disk-log-format.js";

/** Minimal positional-I/O file device (the real one lives in src/blockdev). */
class BenchFile implements BlockDevice {
  readonly caps = { write: true, flush: true, fua: true, trim: false };
  private constructor(readonly name: string, private readonly fh: FileHandle, readonly sizeBytes: number) {}
  static async open(path: string, sizeBytes: number): Promise<BenchFile> {
    return new BenchFile(path, await open(path, "r+"), sizeBytes);
  }
  async read(off: number, into: Uint8Array): Promise<void> {
    let done = 0;
    while (done < into.length) {
      const { bytesRead } = await this.fh.read(into, done, into.length - done, off + done);
      if (bytesRead === 0) throw new Error("short read");
      done += bytesRead;
    }
  }
  async write(off: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, off + done);
      done += bytesWritten;
    }
    if (opts?.fua) await this.fh.datasync();
  }
  async flush(): Promise<void> {
    await this.fh.datasync();
  }
  async close(): Promise<void> {
    await this.fh.close();
  }
}

const MiB = 1 << 20;
const sizeMiB = Number(process.argv[2] ?? 256);
const dir = process.argv[3] ?? "/var/tmp";
const REPS = Number(process.env["REPS"] ?? 3);
const size = sizeMiB * MiB;
const sectors = size / 512;

async function makeFile(path: string, fillRandom: boolean): Promise<void> {
  const fh = await open(path, "w");
  const chunk = new Uint8Array(4 * MiB);
  for (let off = 0; off < size; off += chunk.length) {
    if (fillRandom) for (let i = 0; i < chunk.length; i += 4096) chunk[i] = (off / 4096 + i) & 0xff;
    await fh.write(chunk, 0, chunk.length, off);
  }
  await fh.datasync();
  await fh.close();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeIt(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

async function plainCopy(a: BenchFile, b: BenchFile): Promise<void> {
  const bufs = [new Uint8Array(MiB), new Uint8Array(MiB)];
  let cur = 0;
  let reading = a.read(0, bufs[0]!);
  for (let off = 0; off < size; off += MiB) {
    await reading;
    if (off + MiB < size) reading = a.read(off + MiB, bufs[1 - cur]!);
    await b.write(off, bufs[cur]!);
    cur = 1 - cur;
  }
  await b.flush();
}

async function mirrorDevice(files: BenchFile[], line: string): Promise<MappedDevice> {
  const devs: Record<string, BlockDevice> = {};
  files.forEach((f, i) => (devs[`f${i}`] = f));
  const dev = new MappedDevice("bench", {
    env: { openDevice: (n) => devs[n]! },
    targetTypes: defaultTargetTypes({ mirror: { cleanIntervalMs: 1000 } }),
  });
  await dev.load(Table.parse(line));
  await dev.resume();
  return dev;
}

async function writeLoad(dev: BlockDevice, bs: number, qd: number, totalBytes: number, random: boolean): Promise<void> {
  const buf = new Uint8Array(bs).fill(0x5a);
  let next = 0;
  let seed = 12345;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i * bs >= totalBytes) return;
      let off: number;
      if (random) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        off = (seed % (size / bs)) * bs;
      } else off = (i * bs) % size;
      await dev.write(off, buf);
    }
  };
  await Promise.all(Array.from({ length: qd }, worker));
  await dev.flush();
}

async function main(): Promise<void> {
  const pa = join(dir, "ulvm-bench-a.img");
  const pb = join(dir, "ulvm-bench-b.img");
  const plog = join(dir, "ulvm-bench-log.img");
  await makeFile(pa, true);
  await makeFile(pb, false);
  const lf = await open(plog, "w");
  const regionCount = Math.ceil(sectors / 4096);
  await lf.write(encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: BigInt(regionCount) }, new Uint8Array(Math.ceil(regionCount / 32) * 4).fill(0xff), regionCount), 0, undefined, 0);
  await lf.truncate(MiB);
  await lf.close();
  const a = await BenchFile.open(pa, size);
  const b = await BenchFile.open(pb, size);
  const log = await BenchFile.open(plog, MiB);
  const rows: Array<[string, number]> = [];
  const rate = (s: number[], bytes = size) => bytes / MiB / median(s);

  const copy: number[] = [];
  const dd: number[] = [];
  const resync: number[] = [];
  for (let r = 0; r < REPS; r++) {
    copy.push(await timeIt(() => plainCopy(a, b)));
    dd.push(
      await timeIt(async () => {
        execFileSync("dd", [`if=${pa}`, `of=${pb}`, "bs=1M", "conv=notrunc,fdatasync", "status=none"]);
      }),
    );
    resync.push(
      await timeIt(async () => {
        const dev = await mirrorDevice([a, b], `0 ${sectors} mirror core 1 4096 2 f0 0 f1 0\n`);
        await (dev.liveTargets()[0] as MirrorTarget).whenInSync();
        await dev.flush();
        await dev.remove();
      }),
    );
  }
  rows.push(["plain copy loop (1 MiB, double-buffered) MiB/s", rate(copy)]);
  rows.push(["dd bs=1M conv=fdatasync MiB/s", rate(dd)]);
  rows.push(["mirror resync (core log, 2 MiB regions) MiB/s", rate(resync)]);

  const total = Math.min(size, 256 * MiB);
  const randTotal = 32 * MiB;
  for (const [label, line] of [
    ["linear", `0 ${sectors} linear f0 0\n`],
    ["mirror (disk log)", `0 ${sectors} mirror disk 2 f2 4096 2 f0 0 f1 0\n`],
    ["mirror (core log, nosync)", `0 ${sectors} mirror core 2 4096 nosync 2 f0 0 f1 0\n`],
  ] as const) {
    const seq: number[] = [];
    const rnd: number[] = [];
    for (let r = 0; r < REPS; r++) {
      const dev = await mirrorDevice([a, b, log], line);
      seq.push(await timeIt(() => writeLoad(dev, MiB, 8, total, false)));
      rnd.push(await timeIt(() => writeLoad(dev, 4096, 32, randTotal, true)));
      await dev.remove();
    }
    rows.push([`${label}: seq write 1 MiB qd8 MiB/s`, rate(seq, total)]);
    rows.push([`${label}: rand write 4 KiB qd32 MiB/s`, rate(rnd, randTotal)]);
  }
  for (const f of [a, b, log]) await f.close();
  for (const p of [pa, pb, plog]) await unlink(p);
  console.log(`files of ${sizeMiB} MiB in ${dir}, median of ${REPS}`);
  for (const [k, v] of rows) console.log(`${k.padEnd(52)} ${v.toFixed(1)}`);
}

await main();
