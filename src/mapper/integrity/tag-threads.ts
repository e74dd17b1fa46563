import { Worker } from "node:worker_threads";
import type { TagJob } from "./tag-worker.js";

/**
 * crc32c tags of large requests on threads of their own. With 512-byte
 * blocks a 1 MiB request is 2048 native crc32c calls (~0.7 ms of CPU here),
 * on the event loop that also serves every client: the integrity layer's
 * reads and writes were CPU-bound there (bench part "integrity"). A request
 * of at least MIN_BYTES is copied into a shared buffer (~0.05 ms per MiB),
 * a thread computes its tags (tag-worker.ts, the same crc32cTags), and the
 * caller compares or writes them as before: the same bytes, verified on
 * every read, only computed elsewhere. Writes overlap the computation with
 * the data write.
 *
 * Threads start on first use and stop after a while idle; until one is up,
 * or if one fails, tags() answers undefined and the caller computes them
 * itself (the only cost: speed).
 */
/** Requests below this are computed inline: the round trip to a thread costs more than their CRCs. */
export const TAG_THREADS_MIN_BYTES = 64 * 1024;
/** Largest request handed to a thread (one buffer each); larger ones are computed inline. */
const MAX_BYTES = 1 << 20;
const THREADS = 2;
const IDLE_MS = 15_000;

interface InFlight {
  readonly byteOffset: number;
  readonly length: number;
  readonly firstSector: number;
  readonly blockSize: number;
  readonly tagSize: number;
  readonly tags: Promise<Buffer | undefined>;
}

interface Slot {
  readonly sab: SharedArrayBuffer;
  readonly data: Uint8Array;
}

export class TagThreads {
  private workers: Worker[] = [];
  private online = 0;
  private next = 0;
  private nextId = 1;
  private broken = false;
  private active = 0;
  private idle: NodeJS.Timeout | undefined;
  private readonly pending = new Map<number, (ok: boolean) => void>();
  private readonly free: Slot[] = [];

  /**
   * The tags of `blocks` (whole blocks, first at logical sector
   * `firstSector`), or undefined: too small or too large for a thread, or
   * no thread up (the caller computes them). Resolves undefined too if the
   * thread failed meanwhile. `shareable` (writes): another request for the
   * same memory and sectors while this one is computed gets its answer.
   */
  tags(firstSector: number, blocks: Uint8Array, blockSize: number, tagSize: number, shareable = false): Promise<Buffer | undefined> | undefined {
    if (blocks.length < TAG_THREADS_MIN_BYTES || blocks.length > MAX_BYTES || this.broken) return undefined;
    this.stopIdle();
    if (this.workers.length === 0) this.start();
    if (this.online === 0) return undefined;
    // raid1 writes one buffer to every leg at the same image sectors: while the first leg's tags are
    // being computed, the others get the same answer (same bytes, same sectors: the same tags).
    // `shareable`: the caller's bytes do not change while its request is in flight (a write's).
    if (!shareable) return this.compute(firstSector, blocks, blockSize, tagSize);
    const same = this.inFlight
      .get(blocks.buffer)
      ?.find((e) => e.byteOffset === blocks.byteOffset && e.length === blocks.length && e.firstSector === firstSector && e.blockSize === blockSize && e.tagSize === tagSize);
    if (same !== undefined) return same.tags;
    const computing = this.compute(firstSector, blocks, blockSize, tagSize);
    const entry: InFlight = { byteOffset: blocks.byteOffset, length: blocks.length, firstSector, blockSize, tagSize, tags: computing };
    const list = this.inFlight.get(blocks.buffer) ?? [];
    if (list.length === 0) this.inFlight.set(blocks.buffer, list);
    list.push(entry);
    // Only while in flight: once answered, the buffer may be reused for other bytes.
    const forget = (): void => {
      list.splice(list.indexOf(entry), 1);
      if (list.length === 0) this.inFlight.delete(blocks.buffer);
    };
    void computing.then(forget, forget);
    return computing;
  }

  /** Requests whose tags a thread is computing, by the memory they are in. */
  private readonly inFlight = new Map<ArrayBufferLike, InFlight[]>();

  private compute(firstSector: number, blocks: Uint8Array, blockSize: number, tagSize: number): Promise<Buffer | undefined> {
    const slot = this.free.pop() ?? newSlot();
    slot.data.set(blocks);
    const n = blocks.length / blockSize;
    const id = this.nextId++;
    const job: TagJob = { id, sab: slot.sab, length: blocks.length, firstSector, blockSize, tagSize };
    const worker = this.workers[this.next++ % this.workers.length]!;
    if (this.active++ === 0) for (const w of this.workers) w.ref();
    return new Promise<boolean>((resolve) => {
      this.pending.set(id, resolve);
      worker.postMessage(job);
    }).then((ok) => {
      if (--this.active === 0) {
        for (const w of this.workers) w.unref();
        this.startIdle();
      }
      if (!ok) return undefined;
      const tags = Buffer.from(new Uint8Array(slot.sab, MAX_BYTES, n * tagSize));
      this.free.push(slot);
      return tags;
    });
  }

  private start(): void {
    const url = new URL("./tag-worker.js", import.meta.url);
    for (let i = 0; i < THREADS; i++) {
      let w: Worker;
      try {
        w = new Worker(url, { stdout: false, stderr: false });
      } catch {
        this.broken = true;
        return;
      }
      w.on("online", () => this.online++);
      w.on("message", (r: { id: number }) => {
        const p = this.pending.get(r.id);
        this.pending.delete(r.id);
        p?.(true);
      });
      w.on("error", () => this.fail());
      w.on("exit", () => {
        if (this.workers.includes(w)) this.fail();
      });
      w.unref();
      this.workers.push(w);
    }
  }

  /** A thread died or could not load: everything inline from now on; jobs in flight are answered by the caller. */
  private fail(): void {
    this.broken = true;
    this.online = 0;
    const ws = this.workers;
    this.workers = [];
    for (const w of ws) void w.terminate();
    for (const p of this.pending.values()) p(false);
    this.pending.clear();
  }

  private startIdle(): void {
    this.idle = setTimeout(() => this.stopThreads(), IDLE_MS);
    this.idle.unref();
  }

  private stopIdle(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
  }

  private stopThreads(): void {
    if (this.active > 0) return;
    const ws = this.workers;
    this.workers = [];
    this.online = 0;
    this.free.length = 0;
    for (const w of ws) void w.terminate();
  }
}

function newSlot(): Slot {
  // Data, then room for the tags of 512-byte blocks with tags of up to 32 bytes.
  const sab = new SharedArrayBuffer(MAX_BYTES + (MAX_BYTES / 512) * 32);
  return { sab, data: new Uint8Array(sab, 0, MAX_BYTES) };
}

/** One set of tag threads for the process (the daemon's integrity layers share them). */
let shared: TagThreads | undefined;
export function sharedTagThreads(): TagThreads {
  return (shared ??= new TagThreads());
}
