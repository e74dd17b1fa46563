import { parentPort } from "node:worker_threads";
import { COPY_CHUNK_BYTES, runCopyJob, type CopyJob } from "./copy-job.js";

/**
 * A copy thread (copy-engine.ts): runs one job at a time with one reused
 * chunk buffer, so each chunk is read and written on the same core while it
 * is still in that core's cache.
 */
const buf = new Uint8Array(COPY_CHUNK_BYTES);
parentPort!.on("message", (job: CopyJob) => parentPort!.postMessage(runCopyJob(job, buf)));
