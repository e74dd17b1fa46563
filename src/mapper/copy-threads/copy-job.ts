import { readSync, writeSync } from "node:fs";
import type { FileExtent } from "../../blockdev/block-device.js";

/**
 * One piece of a bulk copy, as a copy thread runs it: the bytes of `src`
 * (extents in order) to the same positions of every `dsts[k]` (extents of the
 * same total length), a chunk at a time through one buffer, with synchronous
 * positional I/O. Plain data in and out, so it crosses a worker boundary and
 * runs the same in a test on the main thread.
 */
/** Each thread reads and writes this much at a time (dd bs=1M). */
export const COPY_CHUNK_BYTES = 1024 * 1024;

export interface CopyJob {
  readonly kind?: "copy";
  readonly id: number;
  readonly src: readonly FileExtent[];
  readonly dsts: ReadonlyArray<readonly FileExtent[]>;
}

export interface CopyFailure {
  readonly code: string;
  readonly message: string;
}

export interface CopyResult {
  readonly id: number;
  /** The source could not be read: the copy stopped there. */
  readonly srcError: CopyFailure | undefined;
  /** Per destination: why it stopped being written, or null if it got every byte. */
  readonly dstErrors: Array<CopyFailure | null>;
  readonly copiedBytes: number;
}

export function extentsLength(extents: readonly FileExtent[]): number {
  let n = 0;
  for (const e of extents) n += e.lengthBytes;
  return n;
}

/** The part [from, from + length) of a list of extents, as extents. */
export function sliceExtents(extents: readonly FileExtent[], from: number, length: number): FileExtent[] {
  const out: FileExtent[] = [];
  let pos = 0;
  for (const e of extents) {
    const start = Math.max(from, pos);
    const end = Math.min(from + length, pos + e.lengthBytes);
    if (start < end) out.push({ fd: e.fd, offsetBytes: e.offsetBytes + (start - pos), lengthBytes: end - start });
    pos += e.lengthBytes;
    if (pos >= from + length) break;
  }
  return out;
}

function failure(e: unknown): CopyFailure {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return { code: typeof code === "string" && /^E[A-Z0-9]+$/.test(code) ? code : "EIO", message: (e as Error)?.message ?? String(e) };
}

/** Read [pos, pos + n) of the extents into buf[0, n). */
function readAt(extents: readonly FileExtent[], pos: number, n: number, buf: Uint8Array): void {
  let o = 0;
  for (const e of sliceExtents(extents, pos, n)) {
    readFully(e.fd, buf, o, e.lengthBytes, e.offsetBytes);
    o += e.lengthBytes;
  }
}

/** Write buf[0, n) to [pos, pos + n) of the extents. */
function writeAt(extents: readonly FileExtent[], pos: number, n: number, buf: Uint8Array): void {
  let o = 0;
  for (const e of sliceExtents(extents, pos, n)) {
    writeFully(e.fd, buf, o, e.lengthBytes, e.offsetBytes);
    o += e.lengthBytes;
  }
}

function readFully(fd: number, buf: Uint8Array, bufOffset: number, n: number, at: number): void {
  for (let done = 0; done < n; ) {
    const got = readSync(fd, buf, bufOffset + done, n - done, at + done);
    if (got === 0) throw Object.assign(new Error(`read past the end of the device at ${at + done}`), { code: "EIO" });
    done += got;
  }
}

function writeFully(fd: number, buf: Uint8Array, bufOffset: number, n: number, at: number): void {
  for (let done = 0; done < n; ) done += writeSync(fd, buf, bufOffset + done, n - done, at + done);
}

export function runCopyJob(job: CopyJob, buf: Uint8Array): CopyResult {
  const total = extentsLength(job.src);
  const dstErrors: Array<CopyFailure | null> = job.dsts.map(() => null);
  let live = job.dsts.length;
  let pos = 0;
  while (pos < total && live > 0) {
    const n = Math.min(buf.length, total - pos);
    try {
      readAt(job.src, pos, n, buf);
    } catch (e) {
      return { id: job.id, srcError: failure(e), dstErrors, copiedBytes: pos };
    }
    for (let k = 0; k < job.dsts.length; k++) {
      if (dstErrors[k] !== null) continue;
      try {
        writeAt(job.dsts[k]!, pos, n, buf);
      } catch (e) {
        dstErrors[k] = failure(e);
        live--;
      }
    }
    pos += n;
  }
  return { id: job.id, srcError: undefined, dstErrors, copiedBytes: pos };
}

/** Each compare thread reads this much of every leg at a time: two legs' chunks stay in the core's cache while compared. */
export const COMPARE_CHUNK_BYTES = 256 * 1024;

/**
 * One piece of a scrub's compare (raid1 check/repair), as a compare thread
 * runs it: the same range of every leg (extents of equal total length),
 * a chunk at a time, each leg's chunk compared with leg 0's in units of
 * `unitBytes` from the job's start. Only the places needing a second look
 * come back: units where some leg differs and chunks some leg could not
 * read; the caller compares those again itself, with md's rules for
 * counting, repairing and rewriting.
 */
export interface CompareJob {
  readonly kind: "compare";
  readonly id: number;
  readonly legs: ReadonlyArray<readonly FileExtent[]>;
  readonly unitBytes: number;
}

export interface CompareResult {
  readonly id: number;
  /** [offset, length] pairs (bytes from the job's start), in order and coalesced: differing units and unreadable chunks. */
  readonly suspect: number[];
  readonly comparedBytes: number;
}

export type ThreadJob = CopyJob | CompareJob;

export function runCompareJob(job: CompareJob, bufs: Uint8Array[]): CompareResult {
  const total = extentsLength(job.legs[0] ?? []);
  const suspect: number[] = [];
  const flag = (off: number, len: number): void => {
    const n = suspect.length;
    if (n > 0 && suspect[n - 2]! + suspect[n - 1]! === off) suspect[n - 1]! += len;
    else suspect.push(off, len);
  };
  while (bufs.length < job.legs.length) bufs.push(new Uint8Array(COMPARE_CHUNK_BYTES));
  const chunk = Math.max(job.unitBytes, Math.floor(COMPARE_CHUNK_BYTES / job.unitBytes) * job.unitBytes);
  for (let pos = 0; pos < total; pos += chunk) {
    const n = Math.min(chunk, total - pos);
    let readable = true;
    for (let k = 0; k < job.legs.length && readable; k++) {
      try {
        readAt(job.legs[k]!, pos, n, bufs[k]!);
      } catch {
        readable = false;
      }
    }
    if (!readable) {
      flag(pos, n);
      continue;
    }
    const ref = bufs[0]!;
    for (let u = 0; u < n; u += job.unitBytes) {
      const len = Math.min(job.unitBytes, n - u);
      const a = Buffer.from(ref.buffer, ref.byteOffset + u, len);
      for (let k = 1; k < job.legs.length; k++) {
        const b = bufs[k]!;
        if (!a.equals(Buffer.from(b.buffer, b.byteOffset + u, len))) {
          flag(pos + u, len);
          break;
        }
      }
    }
  }
  return { id: job.id, suspect, comparedBytes: total };
}
