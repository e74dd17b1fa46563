import { open, mkdir, readdir, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { xorshiftFill, type Rng } from "./rng.js";

/**
 * An fsx-like exerciser for a mounted file system: a few files written,
 * truncated, read back and fsync'ed at random, each with an in-memory model.
 * `durable` is each file's content at its last fsync (files whose directory
 * entry was fsync'ed too). After a crash, a file that was not changed since
 * its fsync must read back exactly; one changed since must at least exist.
 */
interface FileModel {
  content: Buffer;
  durable: Buffer | undefined;
  /** Changed since the last fsync. */
  dirty: boolean;
}

export class FsExerciser {
  readonly files = new Map<string, FileModel>();
  ops = 0;
  fsyncs = 0;
  mismatches: string[] = [];
  private stopped = false;

  constructor(
    readonly dir: string,
    private readonly rng: Rng,
    private readonly maxFiles = 8,
    private readonly maxSizeBytes = 2 << 20,
  ) {}

  stop(): void {
    this.stopped = true;
  }

  /** Run until stop() or an I/O error (returned). */
  async run(): Promise<Error | undefined> {
    this.stopped = false;
    await mkdir(this.dir, { recursive: true }).catch(() => undefined);
    try {
      while (!this.stopped) await this.step();
      return undefined;
    } catch (e) {
      return e as Error;
    }
  }

  private data(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    xorshiftFill(b, 0, n, this.rng.u32());
    for (let i = n - (n % 4); i < n; i++) b[i] = this.rng.int(256);
    return b;
  }

  private async withFile<T>(name: string, flags: string, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    const fh = await open(join(this.dir, name), flags);
    try {
      return await fn(fh);
    } finally {
      await fh.close();
    }
  }

  async step(): Promise<void> {
    this.ops++;
    const r = this.rng;
    const names = [...this.files.keys()];
    if (names.length < this.maxFiles && (names.length === 0 || r.chance(0.1))) {
      const name = `f${this.ops}`;
      const content = this.data(r.range(1, 256 << 10));
      this.files.set(name, { content, durable: undefined, dirty: true });
      await this.withFile(name, "w", async (fh) => {
        await fh.write(content, 0, content.length, 0);
      });
      return;
    }
    const name = r.pick(names);
    const f = this.files.get(name)!;
    const k = r.next();
    // A change that fails half-way (the daemon killed under it) leaves the file in between.
    if (k < 0.55) f.dirty = true;
    if (k < 0.45) {
      const off = r.int(Math.min(this.maxSizeBytes, f.content.length + 65536));
      const d = this.data(r.range(1, 128 << 10));
      await this.withFile(name, "r+", async (fh) => {
        await fh.write(d, 0, d.length, off);
      });
      const grown = Buffer.alloc(Math.max(f.content.length, off + d.length));
      f.content.copy(grown);
      d.copy(grown, off);
      f.content = grown;
      f.dirty = true;
    } else if (k < 0.55) {
      const size = r.int(Math.min(this.maxSizeBytes, f.content.length * 2 + 4096));
      await this.withFile(name, "r+", (fh) => fh.truncate(size));
      const t = Buffer.alloc(size);
      f.content.copy(t, 0, 0, Math.min(size, f.content.length));
      f.content = t;
      f.dirty = true;
    } else if (k < 0.8) {
      const got = await this.withFile(name, "r", async (fh) => {
        const b = Buffer.alloc(f.content.length + 16);
        const { bytesRead } = await fh.read(b, 0, b.length, 0);
        return b.subarray(0, bytesRead);
      });
      if (!got.equals(f.content) && this.mismatches.length < 10) this.mismatches.push(`${name}: read ${got.length} bytes, model has ${f.content.length} (first difference at ${firstDiff(got, f.content)})`);
    } else {
      await this.withFile(name, "r+", (fh) => fh.sync());
      await this.withFile(".", "r", (fh) => fh.sync()); // the directory entry too
      f.durable = Buffer.from(f.content);
      f.dirty = false;
      this.fsyncs++;
    }
  }

  /**
   * After a crash: every fsync'ed file exists; one unchanged since its fsync
   * reads back exactly. The model then adopts what the disk holds.
   */
  async checkAfterCrash(): Promise<string[]> {
    const problems: string[] = [];
    const present = new Set(await readdir(this.dir).catch(() => [] as string[]));
    for (const [name, f] of [...this.files]) {
      if (!present.has(name)) {
        if (f.durable) problems.push(`${name}: fsync'ed, but gone after the crash`);
        this.files.delete(name);
        continue;
      }
      const got = await this.withFile(name, "r", async (fh) => {
        const st = await stat(join(this.dir, name));
        const b = Buffer.alloc(st.size);
        await fh.read(b, 0, b.length, 0);
        return b;
      });
      if (f.durable && !f.dirty && !got.equals(f.durable)) problems.push(`${name}: differs from its fsync'ed content (first difference at ${firstDiff(got, f.durable)})`);
      f.content = got;
      f.durable = Buffer.from(got);
      f.dirty = false;
    }
    return problems;
  }

  /** Without a crash: every file reads back exactly as the model says. */
  async checkAll(): Promise<string[]> {
    const problems: string[] = [];
    for (const [name, f] of this.files) {
      const got = await this.withFile(name, "r", async (fh) => {
        const b = Buffer.alloc(f.content.length + 16);
        const { bytesRead } = await fh.read(b, 0, b.length, 0);
        return b.subarray(0, bytesRead);
      });
      if (!got.equals(f.content)) problems.push(`${name}: ${got.length} bytes differ from the model's ${f.content.length} at ${firstDiff(got, f.content)}`);
    }
    return [...this.mismatches, ...problems];
  }
}

function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}
