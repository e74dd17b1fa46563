import { Worker } from "node:worker_threads";
import type { FileExtent } from "../../blockdev/block-device.js";
import { COPY_CHUNK_BYTES, extentsLength, sliceExtents, type CompareResult, type CopyFailure, type CopyResult, type ThreadJob } from "./copy-job.js";

/**
 * Bulk copies on threads of their own (kcopyd's role): a resync copies
 * gigabytes from one leg to the others, and on the event loop every byte is
 * CPU time taken from clients, on one core. Here each of a few worker threads
 * copies its share of a range with synchronous 1 MiB reads and writes on the
 * leased descriptors (BlockDevice.leaseExtents), so a chunk stays in one
 * core's cache between its read and its write, the threads use every core,
 * and the event loop only hands out ranges. A plain 2 GiB copy between two
 * cached files here: one such thread ~7 GB/s, two ~11 GB/s, dd ~8.5 GB/s.
 *
 * Threads start on first use (~60 ms each here) and stop after a while idle;
 * until one is up, `ready` is false and callers copy the other way.
 */
export interface CopyOutcome {
  readonly srcError: CopyFailure | undefined;
  /** Per destination, as in CopyResult. */
  readonly dstErrors: Array<CopyFailure | null>;
}

interface Thread {
  readonly worker: Worker;
  online: boolean;
}

export interface CopyEngineOptions {
  readonly threads: number;
  /** Stop the threads after this long without a copy. */
  readonly idleMs?: number;
}

const DEFAULT_IDLE_MS = 15_000;

export class CopyEngine {
  private threads: Thread[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: CopyResult | CompareResult) => void; reject: (e: Error) => void }>();
  private idleTimer: NodeJS.Timeout | undefined;
  private active = 0;
  private broken: Error | undefined;
  private readyWaiters: Array<() => void> = [];
  /** Bytes the threads have copied (to every destination), since the process started. */
  copiedBytes = 0;

  constructor(private readonly opts: CopyEngineOptions) {}

  /** At least one thread is up (and none has died). */
  get ready(): boolean {
    return this.broken === undefined && this.threads.some((t) => t.online);
  }

  /** Start the threads if they are not running (returns at once). */
  warmUp(): void {
    this.stopIdleTimer();
    if (this.broken !== undefined || this.threads.length > 0 || this.opts.threads <= 0) return;
    const url = new URL("./copy-worker.js", import.meta.url);
    for (let i = 0; i < this.opts.threads; i++) {
      const worker = new Worker(url, { stdout: false, stderr: false });
      const t: Thread = { worker, online: false };
      worker.on("online", () => {
        t.online = true;
        this.wakeReadyWaiters();
      });
      worker.on("message", (r: CopyResult | CompareResult) => {
        const p = this.pending.get(r.id);
        this.pending.delete(r.id);
        p?.resolve(r);
      });
      worker.on("error", (e) => this.fail(e));
      worker.on("exit", (code) => {
        if (this.threads.includes(t)) this.fail(new Error(`copy thread exited with code ${code}`));
      });
      // Idle threads never keep the process alive (unref after the listeners: a 'message' listener
      // refs the port again, and a command would wait out the idle timer before it could exit);
      // busy ones do (hold()), or a command whose only work is a copy would exit half-way.
      if (this.active === 0) worker.unref();
      this.threads.push(t);
    }
    this.startIdleTimer();
  }

  /**
   * Copy the bytes of `src` to the same positions of every destination,
   * split into contiguous shares, one per thread that is up. Rejects only
   * if a thread dies (then the engine stays unusable: callers copy the other
   * way); I/O errors are in the outcome.
   */
  async copy(src: readonly FileExtent[], dsts: ReadonlyArray<readonly FileExtent[]>): Promise<CopyOutcome> {
    if (!this.ready) throw this.broken ?? new Error("copy threads are not running");
    this.hold();
    try {
      const up = this.threads.filter((t) => t.online);
      const total = extentsLength(src);
      // Whole chunks per share, so each thread's I/O stays 1 MiB-aligned within the range.
      const share = Math.ceil(total / up.length / COPY_CHUNK_BYTES) * COPY_CHUNK_BYTES;
      const jobs: Array<Promise<CopyResult>> = [];
      for (let k = 0; k * share < total; k++) {
        const from = k * share;
        const len = Math.min(share, total - from);
        jobs.push(this.run<CopyResult>(up[k]!, { id: this.nextId++, src: sliceExtents(src, from, len), dsts: dsts.map((d) => sliceExtents(d, from, len)) }));
      }
      const results = await Promise.all(jobs);
      const outcome: CopyOutcome = { srcError: results.find((r) => r.srcError)?.srcError, dstErrors: dsts.map(() => null) };
      for (const r of results) {
        r.dstErrors.forEach((e, i) => (outcome.dstErrors[i] ??= e));
        this.copiedBytes += r.copiedBytes;
      }
      return outcome;
    } finally {
      this.release();
    }
  }

  /**
   * Compare the same range of every leg (a scrub): each thread up takes a
   * contiguous share (whole chunks, so `unitBytes` units keep their places
   * from the range's start) and reads it from every leg. Resolves with the
   * [offset, length] pairs (from the range's start, in order) where some leg
   * differs from leg 0 in a unit, or some leg's read failed: the caller
   * looks at those again. Rejects only if a thread dies, as copy().
   */
  async compare(legs: ReadonlyArray<readonly FileExtent[]>, unitBytes: number): Promise<number[]> {
    if (!this.ready) throw this.broken ?? new Error("copy threads are not running");
    this.hold();
    try {
      const up = this.threads.filter((t) => t.online);
      const total = extentsLength(legs[0] ?? []);
      const share = Math.ceil(total / up.length / COPY_CHUNK_BYTES) * COPY_CHUNK_BYTES;
      const jobs: Array<Promise<CompareResult>> = [];
      const starts: number[] = [];
      for (let k = 0; k * share < total; k++) {
        const from = k * share;
        const len = Math.min(share, total - from);
        starts.push(from);
        jobs.push(this.run<CompareResult>(up[k]!, { kind: "compare", id: this.nextId++, legs: legs.map((l) => sliceExtents(l, from, len)), unitBytes }));
      }
      const results = await Promise.all(jobs);
      const out: number[] = [];
      results.forEach((r, k) => {
        for (let i = 0; i < r.suspect.length; i += 2) out.push(starts[k]! + r.suspect[i]!, r.suspect[i + 1]!);
      });
      return out;
    } finally {
      this.release();
    }
  }

  /** A copy or compare starts: the threads keep the process alive until the last one ends. */
  private hold(): void {
    this.stopIdleTimer();
    if (this.active++ === 0) for (const t of this.threads) t.worker.ref();
  }

  private release(): void {
    if (--this.active !== 0) return;
    for (const t of this.threads) t.worker.unref();
    this.startIdleTimer();
  }

  private run<R extends CopyResult | CompareResult>(t: Thread, job: ThreadJob): Promise<R> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<R>((resolve, reject) => {
      this.pending.set(job.id, { resolve: resolve as (r: CopyResult | CompareResult) => void, reject });
      t.worker.postMessage(job);
    });
  }

  /**
   * Resolves once a thread is up (true), or when none will be (false: the
   * engine broke or was stopped), or after `timeoutMs`, whichever is first.
   */
  whenReady(timeoutMs: number): Promise<boolean> {
    if (this.ready) return Promise.resolve(true);
    if (this.broken !== undefined || this.threads.length === 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve(this.ready);
      };
      const timer = setTimeout(() => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== done);
        resolve(this.ready);
      }, timeoutMs);
      timer.unref();
      this.readyWaiters.push(done);
    });
  }

  private wakeReadyWaiters(): void {
    const w = this.readyWaiters;
    this.readyWaiters = [];
    for (const f of w) f();
  }

  private fail(e: Error): void {
    // Not silent: a missing copy-worker.js (packaging) would otherwise only show as slower resyncs.
    if (this.broken === undefined) process.emitWarning(`copy threads unavailable, resyncs copy on the event loop: ${e.message}`, "UlvmWarning");
    this.broken ??= e;
    this.rejectPending(e);
    this.wakeReadyWaiters();
    void this.stop();
  }

  private rejectPending(e: Error): void {
    const p = [...this.pending.values()];
    this.pending.clear();
    for (const x of p) x.reject(e);
  }

  private startIdleTimer(): void {
    this.stopIdleTimer();
    if (this.threads.length === 0) return;
    this.idleTimer = setTimeout(() => void this.stop(), this.opts.idleMs ?? DEFAULT_IDLE_MS);
    this.idleTimer.unref();
  }

  private stopIdleTimer(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** Stop the threads (they start again on the next warmUp()); a copy in progress rejects. */
  async stop(): Promise<void> {
    this.stopIdleTimer();
    const threads = this.threads;
    this.threads = [];
    this.rejectPending(new Error("copy threads stopped"));
    this.wakeReadyWaiters();
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }
}

let shared: CopyEngine | undefined;

/** The process's copy engine (one set of threads for every mirror), or undefined when threads <= 0. */
/** Stop the shared engine's threads if it has any (a command process done with its private mapper). */
export async function stopSharedCopyEngine(): Promise<void> {
  await shared?.stop();
}

export function sharedCopyEngine(threads: number): CopyEngine | undefined {
  if (threads <= 0) return undefined;
  shared ??= new CopyEngine({ threads });
  return shared;
}
