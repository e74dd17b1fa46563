import type { BlockDevice } from "../blockdev/block-device.js";
import type { WriteWatch } from "../blockdev/write-watched-device.js";
import { errorReply, newReply, parseRequest, readName, truncateReply, view, writeAttr, type Attr, type InHeader } from "./codec.js";
import {
  ATTR_OUT_SIZE,
  ENTRY_OUT_SIZE,
  Errno,
  FATTR_SIZE,
  FOPEN_DIRECT_IO,
  FOPEN_KEEP_CACHE,
  FSYNC_IN_SIZE,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FUSE_ROOT_ID,
  INIT_IN_SIZE,
  INIT_OUT_SIZE,
  INIT_OUT_SIZE_COMPAT,
  INIT_OUT_SIZE_COMPAT_22,
  InitFlag,
  O_ACCMODE,
  O_RDONLY,
  OPEN_IN_SIZE,
  OPEN_OUT_SIZE,
  OUT_HEADER_SIZE,
  Opcode,
  READ_IN_SIZE,
  S_IFDIR,
  S_IFREG,
  SETATTR_IN_SIZE,
  STATFS_OUT_SIZE,
  WRITE_IN_SIZE,
  WRITE_OUT_SIZE,
} from "./protocol.js";

/** The largest WRITE (and READ) the kernel is told to send: 1 MiB, 256 pages of 4 KiB. */
export const MAX_WRITE = 1 << 20;
export const MAX_PAGES = 256;
/** What a read from /dev/fuse must have room for: the kernel refuses smaller buffers (EINVAL). */
export const REQUEST_BUFFER_BYTES = MAX_WRITE + 4096;
/**
 * Background requests (writeback, readahead, async direct I/O) the kernel
 * keeps in flight: each WRITE of 1 MiB is a 1 MiB buffer in the daemon until
 * it is answered, so this bounds the memory writeback costs (16 MiB).
 */
const MAX_BACKGROUND = 16;

/** The file's node id (and inode number). */
export const FILE_INODE = 2n;
const FILE_ID = FILE_INODE;
/** Attributes and names are cached for a second: a resized LV shows its new size soon after. */
const VALID_SECONDS = 1n;

export interface FileSessionOptions {
  /** The file's name in the root directory ("dev", as nbdfuse names it). */
  fileName: string;
  readOnly: boolean;
  /**
   * Let the kernel cache the file (see open()): its page cache keeps what was
   * read and written, writes are written back (FUSE_WRITEBACK_CACHE) in
   * requests of up to max_write, FSYNC writes back before it reaches us. The
   * caller must then invalidate (FUSE_NOTIFY_INVAL_INODE) whenever the device
   * is written by another path. Without it: FOPEN_DIRECT_IO, every read and
   * write a request.
   */
  cached?: boolean;
  /** Writes to the device by other paths: a read that overlapped one is read again (see read()). */
  otherWrites?: WriteWatch;
  uid?: number;
  gid?: number;
  log?: (msg: string) => void;
}

/**
 * One FUSE connection serving one regular file, the bytes of a BlockDevice,
 * in a root directory of its own: request bytes in, reply bytes out (or none,
 * for FORGET and INTERRUPT). The transport (reading /dev/fuse, writing the
 * replies) is the caller's. Requests are independent and may be handled
 * concurrently; nothing here throws: a malformed request is answered EINVAL
 * (or dropped when it has no usable header), an unknown one ENOSYS.
 */
export class FileSession {
  private readonly time = Math.floor(Date.now() / 1000);
  private readonly uid: number;
  private readonly gid: number;
  /** The minor version agreed at INIT. */
  minor = 0;
  initialized = false;
  destroyed = false;

  constructor(private readonly device: Pick<BlockDevice, "sizeBytes" | "caps" | "read" | "write" | "flush">, private readonly opts: FileSessionOptions) {
    this.uid = opts.uid ?? 0;
    this.gid = opts.gid ?? 0;
  }

  async handle(request: Uint8Array): Promise<Uint8Array | undefined> {
    const p = parseRequest(request);
    if (!p.ok) {
      this.opts.log?.(`malformed FUSE request: ${p.reason}`);
      return p.unique === undefined ? undefined : errorReply(p.unique, Errno.EINVAL);
    }
    try {
      return await this.dispatch(p.header, p.body);
    } catch (e) {
      this.opts.log?.(`FUSE opcode ${p.header.opcode}: ${(e as Error).message}`);
      return errorReply(p.header.unique, Errno.EIO);
    }
  }

  private dispatch(h: InHeader, body: Uint8Array): Promise<Uint8Array | undefined> | Uint8Array | undefined {
    const u = h.unique;
    switch (h.opcode) {
      case Opcode.INIT:
        return this.init(u, body);
      case Opcode.FORGET:
      case Opcode.BATCH_FORGET:
        return undefined; // no reply: nothing is kept per lookup
      case Opcode.INTERRUPT:
        // No reply: every request here finishes on its own; its own reply answers the interrupt.
        return undefined;
      case Opcode.DESTROY:
        this.destroyed = true;
        return newReply(u, 0);
    }
    if (!this.initialized) return errorReply(u, Errno.EIO);
    switch (h.opcode) {
      case Opcode.LOOKUP:
        return this.lookup(u, h.nodeid, body);
      case Opcode.GETATTR:
        return this.getattr(u, h.nodeid);
      case Opcode.SETATTR:
        return this.setattr(u, h.nodeid, body);
      case Opcode.OPEN:
        return this.open(u, h.nodeid, body);
      case Opcode.OPENDIR:
        return h.nodeid === BigInt(FUSE_ROOT_ID) ? newReply(u, OPEN_OUT_SIZE) : errorReply(u, Errno.EINVAL);
      case Opcode.READDIR:
        return this.readdir(u, h.nodeid, body);
      case Opcode.RELEASE:
      case Opcode.RELEASEDIR:
        return newReply(u, 0);
      case Opcode.READ:
        return this.read(u, h.nodeid, body);
      case Opcode.WRITE:
        return this.write(u, h.nodeid, body);
      case Opcode.FLUSH:
      case Opcode.FSYNC:
        return this.flush(u, h.nodeid, body, h.opcode === Opcode.FSYNC);
      case Opcode.FSYNCDIR:
        return newReply(u, 0);
      case Opcode.STATFS:
        return this.statfs(u);
      default:
        return errorReply(u, Errno.ENOSYS);
    }
  }

  /**
   * INIT: agree on 7.min(kernel's minor, 31); ask for 1 MiB requests
   * (max_write, and max_pages with FUSE_MAX_PAGES: without it the kernel
   * caps a request at 32 pages), reads issued concurrently (ASYNC_READ) and
   * direct I/O submitted asynchronously (ASYNC_DIO), so a loop device with
   * direct I/O keeps several requests in flight.
   */
  private init(u: bigint, body: Uint8Array): Uint8Array {
    if (body.byteLength < 8) return errorReply(u, Errno.EINVAL);
    const dv = view(body);
    const major = dv.getUint32(0, true);
    const minor = dv.getUint32(4, true);
    if (major < FUSE_KERNEL_VERSION) return errorReply(u, Errno.EPROTO);
    if (major > FUSE_KERNEL_VERSION) {
      // The kernel then sends INIT again with our major version.
      const out = newReply(u, INIT_OUT_SIZE_COMPAT);
      const o = view(out);
      o.setUint32(OUT_HEADER_SIZE, FUSE_KERNEL_VERSION, true);
      o.setUint32(OUT_HEADER_SIZE + 4, FUSE_KERNEL_MINOR_VERSION, true);
      return out;
    }
    if (body.byteLength < INIT_IN_SIZE) return errorReply(u, Errno.EINVAL);
    const maxReadahead = dv.getUint32(8, true);
    const kernelFlags = dv.getUint32(12, true);
    this.minor = Math.min(minor, FUSE_KERNEL_MINOR_VERSION);
    const wanted = InitFlag.ASYNC_READ | InitFlag.BIG_WRITES | InitFlag.ASYNC_DIO | InitFlag.PARALLEL_DIROPS | InitFlag.MAX_PAGES | (this.opts.cached && !this.opts.readOnly ? InitFlag.WRITEBACK_CACHE : 0);
    const size = this.minor < 5 ? INIT_OUT_SIZE_COMPAT : this.minor < 23 ? INIT_OUT_SIZE_COMPAT_22 : INIT_OUT_SIZE;
    const out = newReply(u, size);
    const o = view(out);
    const b = OUT_HEADER_SIZE;
    o.setUint32(b, FUSE_KERNEL_VERSION, true);
    o.setUint32(b + 4, this.minor, true);
    if (size > INIT_OUT_SIZE_COMPAT) {
      o.setUint32(b + 8, Math.min(maxReadahead, MAX_WRITE), true);
      o.setUint32(b + 12, (kernelFlags & wanted) >>> 0, true);
      o.setUint16(b + 16, MAX_BACKGROUND, true); // max_background
      o.setUint16(b + 18, (MAX_BACKGROUND * 3) / 4, true); // congestion_threshold
      o.setUint32(b + 20, MAX_WRITE, true);
    }
    if (size === INIT_OUT_SIZE) {
      o.setUint32(b + 24, 1, true); // time_gran (ns)
      o.setUint16(b + 28, MAX_PAGES, true);
    }
    this.initialized = true;
    return out;
  }

  private attr(nodeid: bigint): Attr | undefined {
    if (nodeid === BigInt(FUSE_ROOT_ID)) return { ino: 1n, size: 0, mode: S_IFDIR | 0o755, nlink: 2, uid: this.uid, gid: this.gid, time: this.time, blksize: 4096 };
    if (nodeid === FILE_ID) return { ino: FILE_ID, size: this.device.sizeBytes, mode: S_IFREG | (this.opts.readOnly ? 0o400 : 0o600), nlink: 1, uid: this.uid, gid: this.gid, time: this.time, blksize: 4096 };
    return undefined;
  }

  private lookup(u: bigint, parent: bigint, body: Uint8Array): Uint8Array {
    const name = readName(body);
    if (name === undefined) return errorReply(u, Errno.EINVAL);
    if (parent !== BigInt(FUSE_ROOT_ID) || name !== this.opts.fileName) return errorReply(u, Errno.ENOENT);
    const out = newReply(u, ENTRY_OUT_SIZE);
    const o = view(out);
    const b = OUT_HEADER_SIZE;
    o.setBigUint64(b, FILE_ID, true); // nodeid
    o.setBigUint64(b + 8, 0n, true); // generation
    o.setBigUint64(b + 16, VALID_SECONDS, true); // entry_valid
    o.setBigUint64(b + 24, VALID_SECONDS, true); // attr_valid
    writeAttr(o, b + 40, this.attr(FILE_ID)!);
    return out;
  }

  private getattr(u: bigint, nodeid: bigint): Uint8Array {
    const a = this.attr(nodeid);
    if (!a) return errorReply(u, Errno.ENOENT);
    const out = newReply(u, ATTR_OUT_SIZE);
    const o = view(out);
    o.setBigUint64(OUT_HEADER_SIZE, VALID_SECONDS, true);
    writeAttr(o, OUT_HEADER_SIZE + 16, a);
    return out;
  }

  /**
   * SETATTR: the kernel's writeback cache sends one to update mtime/ctime
   * after writes; nothing is kept, the attributes stay as they are. The
   * size cannot change (ENOSPC for a bigger one, EINVAL for a smaller one:
   * an LV is not truncated through its file).
   */
  private setattr(u: bigint, nodeid: bigint, body: Uint8Array): Uint8Array {
    if (body.byteLength < SETATTR_IN_SIZE) return errorReply(u, Errno.EINVAL);
    const a = this.attr(nodeid);
    if (!a) return errorReply(u, Errno.ENOENT);
    const dv = view(body);
    if (dv.getUint32(0, true) & FATTR_SIZE) {
      const size = dv.getBigUint64(16, true);
      if (size !== BigInt(a.size)) return errorReply(u, size > BigInt(a.size) ? Errno.ENOSPC : Errno.EINVAL);
    }
    return this.getattr(u, nodeid);
  }

  /**
   * OPEN, uncached: FOPEN_DIRECT_IO, every read and write of the file
   * becomes a request here, never the FUSE file's page cache; a write the
   * loop has made is in the daemon (hence in its mapped device) when it
   * returns, and the loop's flush (vfs_fsync on this file → FSYNC) has no
   * dirty FUSE pages to write back first: FSYNC → the device's flush is the
   * whole path. Cached: FOPEN_KEEP_CACHE, the pages stay valid across opens
   * (they are invalidated when another path writes the device); the loop's
   * flush then writes the dirty pages back (WRITE requests, answered before
   * FSYNC is sent) and FSYNC flushes the device.
   */
  private open(u: bigint, nodeid: bigint, body: Uint8Array): Uint8Array {
    if (body.byteLength < OPEN_IN_SIZE) return errorReply(u, Errno.EINVAL);
    if (nodeid !== FILE_ID) return errorReply(u, nodeid === BigInt(FUSE_ROOT_ID) ? Errno.EINVAL : Errno.ENOENT);
    const flags = view(body).getUint32(0, true);
    if (this.opts.readOnly && (flags & O_ACCMODE) !== O_RDONLY) return errorReply(u, Errno.EROFS);
    const out = newReply(u, OPEN_OUT_SIZE);
    view(out).setUint32(OUT_HEADER_SIZE + 8, this.opts.cached ? FOPEN_KEEP_CACHE : FOPEN_DIRECT_IO, true);
    return out;
  }

  private readdir(u: bigint, nodeid: bigint, body: Uint8Array): Uint8Array {
    if (body.byteLength < READ_IN_SIZE) return errorReply(u, Errno.EINVAL);
    if (nodeid !== BigInt(FUSE_ROOT_ID)) return errorReply(u, Errno.EINVAL);
    const dv = view(body);
    const offset = Number(dv.getBigUint64(8, true));
    const size = dv.getUint32(16, true);
    const entries: Array<[bigint, string, number]> = [
      [1n, ".", 4],
      [1n, "..", 4],
      [FILE_ID, this.opts.fileName, 8],
    ];
    const chunks: Uint8Array[] = [];
    let used = 0;
    for (let i = offset; i < entries.length; i++) {
      const [ino, name, type] = entries[i]!;
      const nameBytes = new TextEncoder().encode(name);
      const len = (24 + nameBytes.byteLength + 7) & ~7; // FUSE_DIRENT_SIZE
      if (used + len > size) break;
      const d = new Uint8Array(len);
      const ddv = view(d);
      ddv.setBigUint64(0, ino, true);
      ddv.setBigUint64(8, BigInt(i + 1), true); // the offset of the next entry
      ddv.setUint32(16, nameBytes.byteLength, true);
      ddv.setUint32(20, type, true); // DT_DIR 4, DT_REG 8
      d.set(nameBytes, 24);
      chunks.push(d);
      used += len;
    }
    const out = newReply(u, used);
    let at = OUT_HEADER_SIZE;
    for (const c of chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }

  /** A read past the end is short (0 bytes at or after it), as for any file. */
  private async read(u: bigint, nodeid: bigint, body: Uint8Array): Promise<Uint8Array> {
    if (body.byteLength < READ_IN_SIZE) return errorReply(u, Errno.EINVAL);
    if (nodeid !== FILE_ID) return errorReply(u, Errno.EINVAL);
    const dv = view(body);
    const offset = dv.getBigUint64(8, true);
    const size = dv.getUint32(16, true);
    if (size > MAX_WRITE) return errorReply(u, Errno.EINVAL);
    const end = BigInt(this.device.sizeBytes);
    const n = offset >= end ? 0 : Number(end - offset < BigInt(size) ? end - offset : BigInt(size));
    const out = newReply(u, n);
    // Cached, the reply becomes page-cache content. Bytes read while another path wrote the
    // device may predate that write, and its invalidation may already have passed: read again.
    const watch = this.opts.otherWrites;
    for (let tries = 0; n > 0; tries++) {
      const g0 = watch?.generation ?? 0;
      await this.device.read(Number(offset), out.subarray(OUT_HEADER_SIZE, OUT_HEADER_SIZE + n));
      if (!watch || watch.settled(g0)) break;
      if (tries > 0) await new Promise((r) => setTimeout(r, 1));
    }
    return n === size ? out : truncateReply(out, n);
  }

  /** A write that does not fit in the LV is refused whole (ENOSPC): the file cannot grow. */
  private async write(u: bigint, nodeid: bigint, body: Uint8Array): Promise<Uint8Array> {
    if (body.byteLength < WRITE_IN_SIZE) return errorReply(u, Errno.EINVAL);
    if (nodeid !== FILE_ID) return errorReply(u, Errno.EINVAL);
    const dv = view(body);
    const offset = dv.getBigUint64(8, true);
    const size = dv.getUint32(16, true);
    if (size !== body.byteLength - WRITE_IN_SIZE) return errorReply(u, Errno.EINVAL);
    if (this.opts.readOnly || !this.device.caps.write) return errorReply(u, Errno.EROFS);
    if (offset + BigInt(size) > BigInt(this.device.sizeBytes)) return errorReply(u, Errno.ENOSPC);
    await this.device.write(Number(offset), body.subarray(WRITE_IN_SIZE));
    const out = newReply(u, WRITE_OUT_SIZE);
    view(out).setUint32(OUT_HEADER_SIZE, size, true);
    return out;
  }

  /** FLUSH (a close) and FSYNC (the loop's REQ_FLUSH) both make every acknowledged write durable. */
  private async flush(u: bigint, nodeid: bigint, body: Uint8Array, fsync: boolean): Promise<Uint8Array> {
    if (fsync && body.byteLength < FSYNC_IN_SIZE) return errorReply(u, Errno.EINVAL);
    if (nodeid !== FILE_ID) return nodeid === BigInt(FUSE_ROOT_ID) ? newReply(u, 0) : errorReply(u, Errno.ENOENT);
    if (this.device.caps.flush && !this.opts.readOnly) await this.device.flush();
    return newReply(u, 0);
  }

  private statfs(u: bigint): Uint8Array {
    const out = newReply(u, STATFS_OUT_SIZE);
    const o = view(out);
    const b = OUT_HEADER_SIZE;
    o.setBigUint64(b, BigInt(Math.ceil(this.device.sizeBytes / 4096)), true); // blocks
    o.setBigUint64(b + 24, 2n, true); // files
    o.setUint32(b + 40, 4096, true); // bsize
    o.setUint32(b + 44, 255, true); // namelen
    o.setUint32(b + 48, 4096, true); // frsize
    return out;
  }
}
