import fs from "node:fs";
import { parentPort, workerData } from "node:worker_threads";

/**
 * The thread that reads requests from /dev/fuse for one mount (fuse-mount.ts).
 * A read blocks until the kernel has a request and returns exactly one, so
 * this thread does nothing else: it reads into one buffer big enough for the
 * largest (max_write + headers), copies each request out and posts it to the
 * main thread, which answers it. The daemon's event loop and libuv's thread
 * pool (which the PVs' file I/O needs) are never held by a waiting read.
 *
 * It ends when the connection does (ENODEV: unmounted, or aborted).
 */
const { fd, bufferBytes } = workerData as { fd: number; bufferBytes: number };
const buf = Buffer.allocUnsafe(bufferBytes);
const port = parentPort!;

for (;;) {
  let n: number;
  try {
    n = fs.readSync(fd, buf, 0, buf.length, null);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // EINTR: a signal; ENOENT: the request was interrupted before it could be read; EAGAIN: spurious wake-up.
    if (code === "EINTR" || code === "ENOENT" || code === "EAGAIN") continue;
    port.postMessage({ closed: code ?? String(e) });
    break;
  }
  if (n === 0) {
    port.postMessage({ closed: "EOF" });
    break;
  }
  const req = new Uint8Array(n);
  req.set(buf.subarray(0, n));
  port.postMessage(req, [req.buffer]);
}
