import { close, constants, fdatasync, fstat, open, read, readFileSync, write, writeSync } from "node:fs";
import { promisify } from "node:util";
import type { BlockDevice, BlockDeviceCaps, WriteOptions } from "./block-device.js";
import { IoError } from "../errors/errors.js";

/**
 * A plain positional-I/O BlockDevice over a file or block device path, for the
 * command layer (small metadata reads and writes). The daemon's data path uses
 * FileBlockDevice, which is tuned for throughput. It uses fs's callback calls
 * (promisified) rather than node:fs/promises, whose module graph (streams,
 * readline, watchers) costs ~2 ms of every command's start-up.
 */
const fsp = {
  open: promisify(open),
  read: promisify(read),
  write: promisify(write),
  fdatasync: promisify(fdatasync),
  fstat: promisify(fstat),
  close: promisify(close),
};

export class HandleBlockDevice implements BlockDevice {
  readonly caps: BlockDeviceCaps;
  constructor(readonly name: string, private readonly fd: number, readonly sizeBytes: number, writable: boolean) {
    this.caps = { write: writable, flush: true, fua: true, trim: false };
  }

  async read(offsetBytes: number, into: Uint8Array): Promise<void> {
    let done = 0;
    while (done < into.length) {
      let n: number;
      try {
        ({ bytesRead: n } = await fsp.read(this.fd, into, done, into.length - done, offsetBytes + done));
      } catch (e) {
        throw ioError(this.name, "read", e);
      }
      if (n === 0) throw new IoError(`${this.name}: read beyond end of device at ${offsetBytes + done}`, "EIO");
      done += n;
    }
  }

  async write(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    if (TEST_CRASH_AFTER_WRITES !== undefined) testCrashPoint(this.fd, offsetBytes, data);
    let done = 0;
    try {
      while (done < data.length) {
        const { bytesWritten } = await fsp.write(this.fd, data, done, data.length - done, offsetBytes + done);
        done += bytesWritten;
      }
      if (opts?.fua) await fsp.fdatasync(this.fd);
    } catch (e) {
      throw ioError(this.name, "write", e);
    }
  }

  async flush(): Promise<void> {
    try {
      await fsp.fdatasync(this.fd);
    } catch (e) {
      throw ioError(this.name, "flush", e);
    }
  }

  async close(): Promise<void> {
    await fsp.close(this.fd);
  }
}

/**
 * Test-only crash points, for the torture suite's torn-metadata scenario.
 * Every write a command makes to a device (labels, metadata texts and
 * headers, mirror logs, zeroing) goes through this class, so
 * ULVM_TEST_CRASH_AFTER_WRITES=N makes the process SIGKILL itself just
 * before its (N+1)th write: after N whole writes, as a crash between two
 * writes leaves the disk. With ULVM_TEST_CRASH_TEAR=1 that write is torn
 * first: only its first half reaches the device (whole sectors when it spans
 * several, half a sector otherwise). Unset (always, outside tests) this is
 * one comparison per write. The daemon never inherits these variables
 * (control-client.ts strips them).
 */
const TEST_CRASH_AFTER_WRITES = ((): number | undefined => {
  const v = process.env.ULVM_TEST_CRASH_AFTER_WRITES;
  return v !== undefined && /^[0-9]+$/.test(v) ? Number(v) : undefined;
})();
let testWritesDone = 0;

function testCrashPoint(fd: number, offsetBytes: number, data: Uint8Array): void {
  if (testWritesDone++ < TEST_CRASH_AFTER_WRITES!) return;
  if (process.env.ULVM_TEST_CRASH_TEAR === "1" && data.length > 1) {
    const torn = data.length >= 1024 ? Math.floor(data.length / 1024) * 512 : Math.floor(data.length / 2);
    writeSync(fd, data, 0, torn, offsetBytes);
  }
  process.kill(process.pid, "SIGKILL");
}

function ioError(name: string, op: string, e: unknown): IoError {
  const code = (e as NodeJS.ErrnoException).code ?? "EIO";
  return new IoError(`${name}: ${op} failed: ${(e as Error).message}`, code, {}, e);
}

/** Size of an open file or block device (block devices report 0 in stat; seek instead). */
async function deviceSize(fd: number): Promise<number> {
  const st = await fsp.fstat(fd);
  if (st.isFile()) return st.size;
  if (st.isBlockDevice()) {
    // sysfs knows the size in 512-byte sectors; no ioctl is available from JS.
    const major = Math.floor(st.rdev / 256) & 0xfff;
    const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    try {
      // A one-line sysfs file, answered from memory: read in place.
      const sectors = Number(readFileSync(`/sys/dev/block/${major}:${minor}/size`, "utf8").trim());
      if (Number.isSafeInteger(sectors)) return sectors * 512;
    } catch {
      // fall back to probing
    }
    // Binary search the end with 1-byte reads: no ioctl from JS, and stat gives 0.
    const probe = new Uint8Array(1);
    let lo = 0;
    let hi = 1;
    while ((await fsp.read(fd, probe, 0, 1, hi - 1)).bytesRead === 1) {
      lo = hi;
      hi *= 2;
    }
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if ((await fsp.read(fd, probe, 0, 1, mid - 1)).bytesRead === 1) lo = mid;
      else hi = mid;
    }
    return lo;
  }
  throw new IoError("not a regular file or block device", "ENOTBLK");
}

export async function openBlockDevice(path: string, opts: { write: boolean; exclusive?: boolean }): Promise<HandleBlockDevice> {
  let fd: number;
  try {
    fd = await fsp.open(path, (opts.write ? constants.O_RDWR : constants.O_RDONLY) | (opts.exclusive ? constants.O_EXCL : 0));
  } catch (e) {
    throw ioError(path, "open", e);
  }
  try {
    return new HandleBlockDevice(path, fd, await deviceSize(fd), opts.write);
  } catch (e) {
    await fsp.close(fd);
    throw e instanceof IoError ? e : ioError(path, "stat", e);
  }
}
