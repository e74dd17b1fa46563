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
}

const TAGS_AT = 1 << 20;

parentPort?.on("message", (j: TagJob) => {
  const n = j.length / j.blockSize;
  crc32cTags(j.firstSector, Buffer.from(j.sab, 0, j.length), j.blockSize, j.tagSize, new Uint8Array(j.sab, TAGS_AT, n * j.tagSize));
  parentPort!.postMessage({ id: j.id });
});
