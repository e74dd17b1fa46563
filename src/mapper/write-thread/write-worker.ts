import fs from "node:fs";
import { workerData } from "node:worker_threads";
import { DONE, FD, LENGTH, MAIN_WAITING, RESULT, RING_SLOTS, SLOT_BYTES, STOP, SUBMITTED, UNKNOWN_ERRNO, WORKER_SLEEPING, ringView, slotWord } from "./write-ring.js";

/**
 * The write thread (write-thread.ts): takes the ring's slots in order and
 * pwrite()s each to its descriptor, synchronously, then publishes the
 * result. It sleeps in Atomics.wait when the ring is empty, after a short
 * spin: under load the next slot usually arrives within a few microseconds,
 * and not sleeping saves the futex wake-up on both sides.
 */
const SPIN_CHECKS = 200;
const ring = ringView((workerData as { sab: SharedArrayBuffer }).sab);
const { control, slotWords, positions, data } = ring;

function writeSlot(slot: number): number {
  const fd = slotWords[slotWord(slot, FD)]!;
  const length = slotWords[slotWord(slot, LENGTH)]!;
  const position = positions[slot]!;
  const base = slot * SLOT_BYTES;
  try {
    let done = 0;
    while (done < length) done += fs.writeSync(fd, data, base + done, length - done, position + done);
    return 0;
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).errno;
    return typeof errno === "number" && errno !== 0 ? Math.abs(errno) : UNKNOWN_ERRNO;
  }
}

let next = Atomics.load(control, DONE);
for (;;) {
  let submitted = Atomics.load(control, SUBMITTED);
  for (let i = 0; submitted === next && i < SPIN_CHECKS; i++) submitted = Atomics.load(control, SUBMITTED);
  if (submitted === next) {
    Atomics.store(control, WORKER_SLEEPING, 1);
    Atomics.wait(control, SUBMITTED, next);
    Atomics.store(control, WORKER_SLEEPING, 0);
    if (Atomics.load(control, STOP) !== 0) break;
    continue;
  }
  while (next !== submitted) {
    const slot = (next >>> 0) % RING_SLOTS;
    slotWords[slotWord(slot, RESULT)] = writeSlot(slot);
    next = (next + 1) | 0;
    Atomics.store(control, DONE, next);
    if (Atomics.load(control, MAIN_WAITING) !== 0) Atomics.notify(control, DONE);
  }
}
