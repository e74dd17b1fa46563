/**
 * The memory a WriteThread (write-thread.ts) and its worker
 * (write-worker.ts) share: a single-producer, single-consumer ring of
 * write slots in one SharedArrayBuffer. The event loop fills slots in
 * order and publishes them by advancing SUBMITTED; the worker writes them
 * in the same order and publishes each result by advancing DONE. Both
 * counters wrap as int32 and are only ever compared for equality.
 *
 * A sleeping side is woken with Atomics.notify only when it said it sleeps
 * (WORKER_SLEEPING, MAIN_WAITING): each side sets its flag, then looks at
 * the counter once more (Atomics.wait and Atomics.waitAsync compare it
 * atomically), and the other side advances the counter before it reads the
 * flag, so with sequentially consistent atomics no wake-up is lost.
 */
export const RING_SLOTS = 64;
/** The largest write a slot holds: the event loop copies the data in, so only small writes are worth it. */
export const SLOT_BYTES = 64 * 1024;

/** Indices into the control words (Int32Array). */
export const SUBMITTED = 0;
export const DONE = 1;
export const WORKER_SLEEPING = 2;
export const MAIN_WAITING = 3;
export const STOP = 4;
const CONTROL_WORDS = 16;

/** Per slot: fd, length, result (0, or a positive errno; UNKNOWN_ERRNO when the error had none). */
const SLOT_I32_FIELDS = 4;
export const FD = 0;
export const LENGTH = 1;
export const RESULT = 2;
/** Reported when a failed write carried no errno (EIO's number on Linux). */
export const UNKNOWN_ERRNO = 5;

export interface WriteRing {
  readonly sab: SharedArrayBuffer;
  readonly control: Int32Array;
  /** SLOT_I32_FIELDS words per slot. */
  readonly slotWords: Int32Array;
  /** The file position per slot (positions pass 2^31, so a double). */
  readonly positions: Float64Array;
  readonly data: Uint8Array;
}

export function ringView(sab: SharedArrayBuffer): WriteRing {
  const controlBytes = CONTROL_WORDS * 4;
  const slotWordsBytes = RING_SLOTS * SLOT_I32_FIELDS * 4;
  const positionsBytes = RING_SLOTS * 8;
  return {
    sab,
    control: new Int32Array(sab, 0, CONTROL_WORDS),
    slotWords: new Int32Array(sab, controlBytes, RING_SLOTS * SLOT_I32_FIELDS),
    positions: new Float64Array(sab, controlBytes + slotWordsBytes, RING_SLOTS),
    data: new Uint8Array(sab, controlBytes + slotWordsBytes + positionsBytes, RING_SLOTS * SLOT_BYTES),
  };
}

export function newRing(): WriteRing {
  return ringView(new SharedArrayBuffer(CONTROL_WORDS * 4 + RING_SLOTS * (SLOT_I32_FIELDS * 4 + 8) + RING_SLOTS * SLOT_BYTES));
}

export function slotWord(slot: number, field: number): number {
  return slot * SLOT_I32_FIELDS + field;
}
