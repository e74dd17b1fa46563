import { getSystemErrorName } from "node:util";
import { Worker } from "node:worker_threads";
import { DONE, FD, LENGTH, MAIN_WAITING, RESULT, RING_SLOTS, SLOT_BYTES, STOP, SUBMITTED, WORKER_SLEEPING, newRing, slotWord, type WriteRing } from "./write-ring.js";

/**
 * A thread that writes mirror legs beside the event loop (the part of
 * dm-io that sends one bio to every leg at once). A mirror's write costs the
 * event loop one pwrite per leg, and on a 4 KiB write that syscall is most
 * of the cost: the kernel walks every buffer of the page-cache folio it
 * lands in (ext4_block_write_begin), which for a file written in large
 * pieces was ~45 % of the daemon's CPU in a mirror's 4 KiB random-write run.
 * So the mirror writes one leg on the event loop and hands the others to
 * this thread, and both pwrites run at once on the two cores.
 *
 * libuv's thread pool does the same hand-off, but it costs a mutex, a
 * futex wake-up and an eventfd per request on both sides, and was slower
 * than writing both legs on the event loop (bench/nbd/peers.sh, 4 KiB
 * random writes at QD32). Here a write is a copy into a slot of a shared
 * ring (write-ring.ts); the thread spins briefly before it sleeps, and the
 * event loop collects results whenever it submits and otherwise through
 * one Atomics.waitAsync at a time, so under load neither side makes a
 * system call to reach the other.
 *
 * submit() resolves with 0 or a positive errno, or with WRITE_NOT_DONE if
 * the thread died first (the caller then writes the other way: a pwrite of
 * the same bytes to the same place is harmless to repeat). It returns
 * undefined when the thread is not up, the ring is full or the write is too
 * large for a slot; the caller then writes the other way.
 */
export const WRITE_NOT_DONE = -1;

/** The name of a (positive) errno the thread reported, for IoError: EBADF for 9; EIO if unknown. */
export function errnoName(errno: number): string {
  let name: string;
  try {
    name = getSystemErrorName(-errno);
  } catch {
    return "EIO";
  }
  return /^E[A-Z0-9]+$/.test(name) ? name : "EIO";
}

type Resolve = (result: number) => void;

/** ES2024's Atomics.waitAsync (in Node since 16), which our ES2022 lib does not declare. */
interface AtomicsWithWaitAsync {
  waitAsync(array: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> };
}

/** One running thread and its ring; a restart after stop() makes a new one. */
interface Session {
  readonly ring: WriteRing;
  readonly worker: Worker;
  online: boolean;
  /** Slots handed out and collected, int32 counters like the ring's. */
  submitted: number;
  collected: number;
  readonly resolvers: Array<Resolve | undefined>;
  waiting: boolean;
  readonly woken: () => void;
}

export class WriteThread {
  readonly maxBytes = SLOT_BYTES;
  private session: Session | undefined;
  private broken: Error | undefined;
  /** Writes the thread finished since the process started (tests and stats). */
  writes = 0;

  /** The thread is up and has not died. */
  get ready(): boolean {
    return this.session?.online === true && this.broken === undefined;
  }

  /** Start the thread if it is not running (returns at once; `ready` once it is up, ~60 ms). */
  warmUp(): void {
    if (this.session !== undefined || this.broken !== undefined) return;
    const ring = newRing();
    const worker = new Worker(new URL("./write-worker.js", import.meta.url), { workerData: { sab: ring.sab }, stdout: false, stderr: false });
    worker.unref(); // never keeps the daemon alive
    const s: Session = {
      ring,
      worker,
      online: false,
      submitted: 0,
      collected: 0,
      resolvers: new Array<Resolve | undefined>(RING_SLOTS).fill(undefined),
      waiting: false,
      woken: () => {
        s.waiting = false;
        Atomics.store(ring.control, MAIN_WAITING, 0);
        this.collect(s);
        this.wait(s);
      },
    };
    worker.on("online", () => (s.online = true));
    worker.on("error", (e) => this.fail(s, e));
    worker.on("exit", (code) => this.fail(s, new Error(`write thread exited with code ${code}`)));
    this.session = s;
  }

  /** Writes handed to the thread that it has not finished yet. */
  get backlog(): number {
    const s = this.session;
    return s === undefined ? 0 : (s.submitted - Atomics.load(s.ring.control, DONE)) | 0;
  }

  /** Write `data` at `position` of descriptor `fd` on the thread; see the class comment. */
  submit(fd: number, position: number, data: Uint8Array): Promise<number> | undefined {
    const s = this.session;
    if (s === undefined || !s.online || this.broken !== undefined || data.length > SLOT_BYTES || data.length === 0) return undefined;
    if (((s.submitted - s.collected) | 0) >= RING_SLOTS) {
      this.collect(s);
      if (((s.submitted - s.collected) | 0) >= RING_SLOTS) return undefined;
    }
    const { ring } = s;
    const slot = (s.submitted >>> 0) % RING_SLOTS;
    ring.data.set(data, slot * SLOT_BYTES);
    ring.slotWords[slotWord(slot, FD)] = fd;
    ring.slotWords[slotWord(slot, LENGTH)] = data.length;
    ring.positions[slot] = position;
    const done = new Promise<number>((resolve) => (s.resolvers[slot] = resolve));
    // A pending Atomics.waitAsync does not keep the process alive; the worker does while referenced.
    if (s.collected === s.submitted) s.worker.ref();
    s.submitted = (s.submitted + 1) | 0;
    Atomics.store(ring.control, SUBMITTED, s.submitted);
    if (Atomics.load(ring.control, WORKER_SLEEPING) !== 0) Atomics.notify(ring.control, SUBMITTED);
    this.collect(s);
    this.wait(s);
    return done;
  }

  /** Resolve every write the thread has finished. */
  private collect(s: Session): void {
    const done = Atomics.load(s.ring.control, DONE);
    while (s.collected !== done) {
      const slot = (s.collected >>> 0) % RING_SLOTS;
      const resolve = s.resolvers[slot];
      s.resolvers[slot] = undefined;
      s.collected = (s.collected + 1) | 0;
      this.writes++;
      resolve?.(s.ring.slotWords[slotWord(slot, RESULT)]!);
    }
    if (s.collected === s.submitted) s.worker.unref();
  }

  /** While writes are outstanding, keep one Atomics.waitAsync armed for the next result. */
  private wait(s: Session): void {
    if (s.waiting || s.collected === s.submitted || this.session !== s) return;
    s.waiting = true;
    Atomics.store(s.ring.control, MAIN_WAITING, 1);
    const w = (Atomics as unknown as AtomicsWithWaitAsync).waitAsync(s.ring.control, DONE, s.collected);
    if (w.async) void w.value.then(s.woken);
    else queueMicrotask(s.woken);
  }

  private fail(s: Session, e: Error): void {
    if (this.session !== s) return;
    if (this.broken === undefined) process.emitWarning(`write thread unavailable, mirror legs are written on the event loop: ${e.message}`, "UlvmWarning");
    this.broken ??= e;
    void this.end(s);
  }

  /** Stop the thread (warmUp() starts a new one); writes it had not finished resolve WRITE_NOT_DONE. */
  async stop(): Promise<void> {
    if (this.session !== undefined) await this.end(this.session);
  }

  private async end(s: Session): Promise<void> {
    if (this.session === s) this.session = undefined;
    s.online = false;
    Atomics.store(s.ring.control, STOP, 1);
    Atomics.notify(s.ring.control, SUBMITTED);
    // Only once the thread is gone may its unfinished writes be redone
    // another way: a pwrite it was still making must not land after them.
    // Nothing else may keep the process alive meanwhile (a worker being
    // terminated holds no reference), and the writes must still resolve.
    const keepAlive = setInterval(() => undefined, 60_000);
    try {
      await s.worker.terminate();
    } catch {
      // it is gone either way
    } finally {
      clearInterval(keepAlive);
    }
    this.collect(s);
    for (let i = 0; i < RING_SLOTS; i++) {
      const resolve = s.resolvers[i];
      s.resolvers[i] = undefined;
      resolve?.(WRITE_NOT_DONE);
    }
  }
}

let shared: WriteThread | undefined;

/** The process's write thread, shared by every mirror (undefined when disabled). */
export function sharedWriteThread(enabled: boolean): WriteThread | undefined {
  if (!enabled) return undefined;
  shared ??= new WriteThread();
  return shared;
}
