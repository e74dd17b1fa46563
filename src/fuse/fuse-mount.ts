import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync, constants } from "node:fs";
import { Worker } from "node:worker_threads";
import type { BlockDevice } from "../blockdev/block-device.js";
import type { WriteWatch } from "../blockdev/write-watched-device.js";
import { FILE_INODE, FileSession, REQUEST_BUFFER_BYTES } from "./file-session.js";
import { FUSE_NOTIFY_INVAL_INODE, NOTIFY_INVAL_INODE_OUT_SIZE, OUT_HEADER_SIZE } from "./protocol.js";

/**
 * A FUSE file system served by this process, without libfuse: /dev/fuse is
 * opened here and handed to mount(8) (`mount -i -t fuse -o fd=3,…`, the
 * descriptor inherited as the child's fd 3); the kernel's first request on
 * it is INIT. A thread of its own reads the requests (fuse-read-worker.ts);
 * the FileSession answers them with the BlockDevice's own read, write and
 * flush, on the event loop, and each reply is written straight back to
 * /dev/fuse. What it serves: a root directory holding one file, `fileName`.
 */
export interface FuseMountOptions {
  mountDir: string;
  fileName: string;
  device: Pick<BlockDevice, "sizeBytes" | "caps" | "read" | "write" | "flush">;
  readOnly: boolean;
  /** Let the kernel cache the file (FileSessionOptions.cached); invalidate() on writes by another path. */
  cached?: boolean;
  /** Writes to the device by other paths (cached: each drops the kernel's pages of its range). */
  otherWrites?: WriteWatch;
  /** The file system's name in /proc/mounts (the "source"). */
  source: string;
  log?: (msg: string) => void;
}

/**
 * The kernel gives every FUSE file system a "strict" dirty-page limit (its
 * share of the dirty threshold, 1 %, enforced even while the system is far
 * below it), a guard against untrusted servers pinning memory. Under it the
 * loop's buffered writes into the cached file were throttled to a third of
 * what they are without it (1 MiB writes at QD8: ~0.8 against ~2.6 GB/s
 * here). The server is the daemon itself, so the mount is treated like any
 * other backing device: /sys/class/bdi/MAJ:MIN/strict_limit = 0 (Linux 6.2+;
 * on older kernels the file is missing and the limit stays). Durability is
 * unchanged: what counts is acknowledged at FSYNC, which writes back first.
 */
function liftStrictDirtyLimit(mountDir: string, log?: (msg: string) => void): void {
  try {
    const esc = mountDir.replace(/[ \t\n\\]/g, (c) => "\\" + c.charCodeAt(0).toString(8).padStart(3, "0"));
    const line = readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === esc);
    const majMin = line?.split(" ")[2];
    if (!majMin) return;
    const knob = `/sys/class/bdi/${majMin}/strict_limit`;
    if (existsSync(knob)) writeFileSync(knob, "0");
  } catch (e) {
    log?.(`FUSE ${mountDir}: strict dirty limit kept: ${(e as Error).message}`);
  }
}

type Run = (cmd: string, args: string[]) => Promise<{ status: number; stderr: string }>;

export class FuseMount {
  private fd: number | undefined;
  private worker: Worker | undefined;
  private readonly session: FileSession;
  private closedWaiters: Array<() => void> = [];
  private closed = false;
  /** Requests being answered. */
  inFlight = 0;

  private constructor(private readonly opts: FuseMountOptions) {
    this.session = new FileSession(opts.device, { fileName: opts.fileName, readOnly: opts.readOnly, cached: opts.cached, otherWrites: opts.otherWrites, log: opts.log });
    if (opts.cached && opts.otherWrites) opts.otherWrites.onWritten = (off, len) => this.invalidate(off, len);
  }

  get mountDir(): string {
    return this.opts.mountDir;
  }

  /** Open /dev/fuse, start reading it, and mount it on `mountDir` (which must exist). */
  static async mount(opts: FuseMountOptions): Promise<FuseMount> {
    const m = new FuseMount(opts);
    m.fd = openSync("/dev/fuse", constants.O_RDWR);
    const mountOpts = `fd=3,rootmode=40000,user_id=0,group_id=0,allow_other${opts.readOnly ? ",ro" : ""}`;
    const r = await new Promise<{ status: number; stderr: string }>((resolve) => {
      const child = spawn("mount", ["-i", "-t", "fuse.ulvm", "-o", mountOpts, opts.source, opts.mountDir], { stdio: ["ignore", "ignore", "pipe", m.fd!] });
      let stderr = "";
      child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.on("error", (e) => resolve({ status: 127, stderr: e.message }));
      child.on("close", (code) => resolve({ status: code ?? 1, stderr }));
    });
    if (r.status !== 0) {
      m.closeDevice();
      throw new Error(`mount failed: ${r.stderr.trim() || `exit status ${r.status}`}`);
    }
    // Only now: the kernel answers a read of a /dev/fuse not yet mounted with EPERM (recent
    // kernels) instead of waiting. INIT is queued by the mount and waits for the reader.
    m.startReader();
    if (opts.cached && !opts.readOnly) liftStrictDirtyLimit(opts.mountDir, opts.log);
    return m;
  }

  private startReader(): void {
    const worker = new Worker(new URL("./fuse-read-worker.js", import.meta.url), { workerData: { fd: this.fd, bufferBytes: REQUEST_BUFFER_BYTES }, stdout: false, stderr: false });
    worker.unref(); // never keeps the daemon alive
    // A reader that stops for any reason but the end of the connection closes /dev/fuse, which
    // aborts the connection: every request waiting on it (a stat, the loop's I/O) then fails at
    // once instead of hanging with nobody to answer it.
    worker.on("message", (m: Uint8Array | { closed: string }) => {
      if (m instanceof Uint8Array) this.serve(m);
      else this.readerEnded(`connection ended (${m.closed})`);
    });
    worker.on("error", (e) => this.readerEnded(`read thread failed: ${e.message}`));
    worker.on("exit", () => this.readerEnded(undefined));
    this.worker = worker;
  }

  private serve(request: Uint8Array): void {
    this.inFlight++;
    void this.session.handle(request).then((reply) => {
      this.inFlight--;
      if (!reply || this.fd === undefined) return;
      try {
        writeSync(this.fd, reply);
      } catch (e) {
        // ENOENT: the kernel gave up on the request (interrupted or aborted); nothing waits for this reply.
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "ENOENT" && code !== "ENODEV") this.opts.log?.(`FUSE reply: ${(e as Error).message}`);
      }
    });
  }

  /**
   * Drop the kernel's cached pages of the file for [offset, offset+length)
   * (FUSE_NOTIFY_INVAL_INODE; dirty ones are written back first): the device
   * was written by another path, and no stale byte may be read through this
   * one. Synchronous: when it returns, the next read of that range is a
   * request here.
   */
  invalidate(offset: number, length: number): void {
    if (!this.opts.cached || this.fd === undefined || !this.session.initialized || this.closed) return;
    const msg = new Uint8Array(OUT_HEADER_SIZE + NOTIFY_INVAL_INODE_OUT_SIZE);
    const dv = new DataView(msg.buffer);
    dv.setUint32(0, msg.byteLength, true);
    dv.setInt32(4, FUSE_NOTIFY_INVAL_INODE, true); // unique 0: a notification
    dv.setBigUint64(OUT_HEADER_SIZE, FILE_INODE, true);
    dv.setBigInt64(OUT_HEADER_SIZE + 8, BigInt(offset), true);
    dv.setBigInt64(OUT_HEADER_SIZE + 16, BigInt(length), true);
    try {
      writeSync(this.fd, msg);
    } catch (e) {
      // ENOENT: the kernel has no inode cached (nothing to drop).
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENODEV") this.opts.log?.(`FUSE invalidate: ${(e as Error).message}`);
    }
  }

  private readerEnded(why: string | undefined): void {
    this.onClosed(why);
    this.closeDevice();
  }

  private onClosed(why: string | undefined): void {
    if (this.closed) return;
    this.closed = true;
    if (why && why !== "connection ended (ENODEV)") this.opts.log?.(`FUSE ${this.opts.mountDir}: ${why}`);
    for (const w of this.closedWaiters.splice(0)) w();
  }

  /** Resolves when the kernel ended the connection (unmounted), or after `timeoutMs`. */
  waitClosed(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.closedWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /**
   * Unmount (lazily when something still holds the file, such as a loop
   * device with autoclear set under a mounted file system: the connection
   * then lives until it lets go, or until `timeoutMs`), then close /dev/fuse.
   */
  async unmount(run: Run, timeoutMs = 2000): Promise<void> {
    if ((await run("umount", [this.opts.mountDir])).status !== 0) await run("umount", ["-l", this.opts.mountDir]);
    await this.waitClosed(timeoutMs);
    this.closeDevice();
  }

  private closeDevice(): void {
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd); // aborts the connection if the kernel still has it: its waiting requests fail
      } catch {
        /* closed */
      }
      this.fd = undefined;
    }
    void this.worker?.terminate();
    this.onClosed(undefined);
  }
}
