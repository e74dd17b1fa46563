import { parentPort } from "node:worker_threads";
import { COPY_CHUNK_BYTES, runCompareJob, runCopyJob, type ThreadJob } from "./copy-job.js";

/**
 * A copy thread (copy-engine.ts): runs one job at a time with one reused
 * chunk buffer, so each chunk is read and written on the same core while it
 * is still in that core's cache; or a scrub's compare job, with one reused
 * buffer per leg.
 */
const buf = new Uint8Array(COPY_CHUNK_BYTES);
const legBufs: Uint8Array[] = [];
parentPort!.on("message", (job: ThreadJob) => parentPort!.postMessage(job.kind === "compare" ? runCompareJob(job, legBufs) : runCopyJob(job, buf)));
