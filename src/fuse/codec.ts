import { ATTR_SIZE, IN_HEADER_SIZE, OUT_HEADER_SIZE } from "./protocol.js";

/**
 * The FUSE wire format without a transport: a request read from /dev/fuse
 * (each read returns exactly one) is parsed into its header and body, and
 * replies are built as one buffer each (header + payload), the way they are
 * written back. Nothing here throws on bad bytes: parseRequest says what is
 * wrong, and the caller answers EINVAL or drops the request.
 */
export interface InHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: bigint;
  uid: number;
  gid: number;
  pid: number;
}

export type Parsed =
  | { ok: true; header: InHeader; body: Uint8Array }
  /** `unique` when the header got that far: the request can then be answered with an error. */
  | { ok: false; unique: bigint | undefined; reason: string };

export function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export function parseRequest(buf: Uint8Array): Parsed {
  const dv = view(buf);
  const unique = buf.byteLength >= 16 ? dv.getBigUint64(8, true) : undefined;
  if (buf.byteLength < IN_HEADER_SIZE) return { ok: false, unique, reason: `short header (${buf.byteLength} bytes)` };
  const len = dv.getUint32(0, true);
  if (len !== buf.byteLength) return { ok: false, unique, reason: `length ${len} in the header, ${buf.byteLength} read` };
  return {
    ok: true,
    header: {
      len,
      opcode: dv.getUint32(4, true),
      unique: dv.getBigUint64(8, true),
      nodeid: dv.getBigUint64(16, true),
      uid: dv.getUint32(24, true),
      gid: dv.getUint32(28, true),
      pid: dv.getUint32(32, true),
    },
    body: buf.subarray(IN_HEADER_SIZE),
  };
}

/** A reply with `payloadBytes` after the header; the caller fills the payload (at OUT_HEADER_SIZE). */
export function newReply(unique: bigint, payloadBytes: number): Uint8Array {
  const out = new Uint8Array(OUT_HEADER_SIZE + payloadBytes);
  const dv = view(out);
  dv.setUint32(0, out.byteLength, true);
  dv.setInt32(4, 0, true);
  dv.setBigUint64(8, unique, true);
  return out;
}

/** An error reply: the header alone, with -errno. */
export function errorReply(unique: bigint, errno: number): Uint8Array {
  const out = newReply(unique, 0);
  view(out).setInt32(4, -Math.abs(errno), true);
  return out;
}

/** Cut a reply down to `payloadBytes` (a short read), fixing its length. */
export function truncateReply(reply: Uint8Array, payloadBytes: number): Uint8Array {
  const out = reply.subarray(0, OUT_HEADER_SIZE + payloadBytes);
  view(out).setUint32(0, out.byteLength, true);
  return out;
}

export interface Attr {
  ino: bigint;
  size: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch, for atime, mtime and ctime alike. */
  time: number;
  blksize: number;
}

/** struct fuse_attr at `off`. */
export function writeAttr(dv: DataView, off: number, a: Attr): void {
  dv.setBigUint64(off, a.ino, true);
  dv.setBigUint64(off + 8, BigInt(a.size), true);
  dv.setBigUint64(off + 16, BigInt(Math.ceil(a.size / 512)), true);
  for (const t of [24, 32, 40]) dv.setBigUint64(off + t, BigInt(a.time), true);
  // atimensec, mtimensec, ctimensec: 0
  dv.setUint32(off + 60, a.mode, true);
  dv.setUint32(off + 64, a.nlink, true);
  dv.setUint32(off + 68, a.uid, true);
  dv.setUint32(off + 72, a.gid, true);
  dv.setUint32(off + 76, 0, true); // rdev
  dv.setUint32(off + 80, a.blksize, true);
  void ATTR_SIZE; // 88 bytes: padding at 84
}

/** The NUL-terminated name a LOOKUP carries (undefined if there is no NUL). */
export function readName(body: Uint8Array): string | undefined {
  const nul = body.indexOf(0);
  if (nul < 0) return undefined;
  return new TextDecoder().decode(body.subarray(0, nul));
}
