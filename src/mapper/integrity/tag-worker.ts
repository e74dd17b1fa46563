import { readSync } from "node:fs";
import { parentPort } from "node:worker_threads";
import { crc32cTags } from "./integrity-format.js";

/** A job for a tag thread (tag-threads.ts): the data at the start of `sab`, the tags written after its first MiB. */
export interface TagJob {
  id: number;
  sab: SharedArrayBuffer;
  length: number;
  firstSector: number;
  blockSize: number;
  tagSize: number;
  /** Read the data first: `length` bytes at `offsetBytes` of descriptor `fd` (a leased extent), into the buffer. */
  read?: { fd: number; offsetBytes: number };
}

/** The answer: `ok` false when the read failed or came short (the caller reads the usual way and gets its error). */
export interface TagResult {
  id: number;
  ok: boolean;
}

const TAGS_AT = 1 << 20;

parentPort?.on("message", (j: TagJob) => {
  const data = Buffer.from(j.sab, 0, j.length);
  if (j.read !== undefined) {
    try {
      for (let done = 0; done < j.length; ) {
        const n = readSync(j.read.fd, data, done, j.length - done, j.read.offsetBytes + done);
        if (n === 0) throw new Error("short read");
        done += n;
      }
    } catch {
      parentPort!.postMessage({ id: j.id, ok: false } satisfies TagResult);
      return;
    }
  }
  crc32cTags(j.firstSector, data, j.blockSize, j.tagSize, new Uint8Array(j.sab, TAGS_AT, (j.length / j.blockSize) * j.tagSize));
  parentPort!.postMessage({ id: j.id, ok: true } satisfies TagResult);
});
