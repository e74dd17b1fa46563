import { lvmCrc } from "../base/crc.js";
import { ascii, putAscii, readU32LE, readU64LEBig, writeU32LE, writeU64LE } from "../base/bytes.js";
import { FormatError } from "../errors/errors.js";

/**
 * A metadata area (lib/format_text/format-text.c, layout.h): a 512-byte header
 * with raw_locn slots, then a circular buffer of text. Slot 0 is the committed
 * copy; slot 1 the precommitted one (zero after a commit).
 */
export const MDA_HEADER_BYTES = 512;
export const FMTT_MAGIC = " LVM2 x[5A%r0N*>";
export const FMTT_VERSION = 1;
export const RAW_LOCN_IGNORED = 0x1;

export interface RawLocn {
  /** Offset of the text relative to the mda start (>= 512), 0 = empty slot. */
  offsetBytes: number;
  sizeBytes: number;
  checksum: number;
  flags: number;
}

export interface MdaHeaderDisk {
  startBytes: number;
  sizeBytes: number;
  committed: RawLocn;
  precommitted: RawLocn;
}

export const EMPTY_LOCN: RawLocn = { offsetBytes: 0, sizeBytes: 0, checksum: 0, flags: 0 };

/** lvm2's BAD_MDA_* bits (lib/metadata/metadata.h): why a metadata area could not be used. */
export const BAD_MDA_READ = 0x2;
export const BAD_MDA_HEADER = 0x4;
export const BAD_MDA_TEXT = 0x8;
export const BAD_MDA_CHECKSUM = 0x10;
export const BAD_MDA_MAGIC = 0x20;
export const BAD_MDA_VERSION = 0x40;
export const BAD_MDA_START = 0x80;

export interface MdaHeaderCheck {
  /** The fields as stored, whatever their validity. */
  header: MdaHeaderDisk;
  /** BAD_MDA_* bits of the fields that are wrong; 0 = valid. */
  badFields: number;
  /** One line per wrong field, worded as lvm2's _raw_read_mda_header ("wrong checksum 1a2b in mda header on DEV at 4096"). */
  problems: string[];
}

/**
 * Check every field of an mda header, as lvm2 does, so that a caller can
 * tell a header that is safe to rewrite (bad checksum or version) from one
 * that may not be an mda header at all (bad magic or start).
 */
export function checkMdaHeader(buf: Uint8Array, expectedStartBytes: number, devName?: string): MdaHeaderCheck {
  if (buf.length < MDA_HEADER_BYTES) throw new FormatError("short mda header");
  const where = `${devName === undefined ? "" : `on ${devName} `}at ${expectedStartBytes}`;
  const problems: string[] = [];
  let badFields = 0;
  const checksum = readU32LE(buf, 0);
  if (lvmCrc(buf.subarray(4, MDA_HEADER_BYTES)) !== checksum) {
    problems.push(`wrong checksum ${checksum.toString(16)} in mda header ${where}`);
    badFields |= BAD_MDA_CHECKSUM;
  }
  if (ascii(buf, 4, 20) !== FMTT_MAGIC) {
    problems.push(`wrong magic number in mda header ${where}`);
    badFields |= BAD_MDA_MAGIC;
  }
  const version = readU32LE(buf, 20);
  if (version !== FMTT_VERSION) {
    problems.push(`wrong version ${version} in mda header ${where}`);
    badFields |= BAD_MDA_VERSION;
  }
  // Garbage may hold any 64-bit value: too large ones read as Infinity (never equal to a real offset).
  const u64 = (o: number): number => {
    const v = readU64LEBig(buf, o);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(v);
  };
  const startBytes = u64(24);
  if (startBytes !== expectedStartBytes) {
    problems.push(`wrong start sector ${readU64LEBig(buf, 24)} in mda header ${where}`);
    badFields |= BAD_MDA_START;
  }
  const sizeBytes = u64(32);
  const locn = (o: number): RawLocn => ({ offsetBytes: u64(o), sizeBytes: u64(o + 8), checksum: readU32LE(buf, o + 16), flags: readU32LE(buf, o + 20) });
  return { header: { startBytes, sizeBytes, committed: locn(40), precommitted: locn(64) }, badFields, problems };
}

export function decodeMdaHeader(buf: Uint8Array, expectedStartBytes: number): MdaHeaderDisk {
  const c = checkMdaHeader(buf, expectedStartBytes);
  if (c.badFields) throw new FormatError(c.problems[0]!, { offsetBytes: expectedStartBytes, badFields: c.badFields });
  return c.header;
}

export function encodeMdaHeader(h: MdaHeaderDisk): Uint8Array {
  const buf = new Uint8Array(MDA_HEADER_BYTES);
  putAscii(buf, 4, FMTT_MAGIC);
  writeU32LE(buf, 20, FMTT_VERSION);
  writeU64LE(buf, 24, h.startBytes);
  writeU64LE(buf, 32, h.sizeBytes);
  const put = (o: number, l: RawLocn): void => {
    writeU64LE(buf, o, l.offsetBytes);
    writeU64LE(buf, o + 8, l.sizeBytes);
    writeU32LE(buf, o + 16, l.checksum);
    writeU32LE(buf, o + 20, l.flags);
  };
  put(40, h.committed);
  put(64, h.precommitted);
  writeU32LE(buf, 0, lvmCrc(buf.subarray(4, MDA_HEADER_BYTES)));
  return buf;
}

/** Largest text (NUL included) one copy may have: half the ring less a sector. */
export function maxTextBytes(mdaSizeBytes: number): number {
  return Math.floor((mdaSizeBytes - MDA_HEADER_BYTES) / 2) - 512;
}

/** Where the text of a locn lies: one or two [mdaOffset, length] pieces (wrap-around). */
export function locnPieces(l: RawLocn, mdaSizeBytes: number): Array<{ mdaOffsetBytes: number; lengthBytes: number }> {
  const wrap = Math.max(0, l.offsetBytes + l.sizeBytes - mdaSizeBytes);
  const pieces = [{ mdaOffsetBytes: l.offsetBytes, lengthBytes: l.sizeBytes - wrap }];
  if (wrap > 0) pieces.push({ mdaOffsetBytes: MDA_HEADER_BYTES, lengthBytes: wrap });
  return pieces;
}

/** Check a locn lies inside the ring before reading it. */
export function validateLocn(l: RawLocn, mdaSizeBytes: number): string | undefined {
  if (l.offsetBytes < MDA_HEADER_BYTES || l.offsetBytes >= mdaSizeBytes) return `metadata location offset ${l.offsetBytes} outside the metadata area`;
  if (l.sizeBytes === 0 || l.sizeBytes > mdaSizeBytes - MDA_HEADER_BYTES) return `metadata size ${l.sizeBytes} is invalid`;
  return undefined;
}

/**
 * Where the next copy starts (lvm2's _next_rlocn_offset): right after the
 * committed copy, rounded up to 512, or back at 512 when there is no room.
 */
export function nextTextOffset(committed: RawLocn, mdaSizeBytes: number): number {
  if (committed.offsetBytes === 0 || committed.sizeBytes === 0) return MDA_HEADER_BYTES;
  const wrap = Math.max(0, committed.offsetBytes + committed.sizeBytes - mdaSizeBytes);
  const oldLast = wrap > 0 ? MDA_HEADER_BYTES + wrap - 1 : committed.offsetBytes + committed.sizeBytes - 1;
  if (mdaSizeBytes - oldLast < 512) return MDA_HEADER_BYTES;
  const next = Math.ceil((oldLast + 1) / 512) * 512;
  if (next > mdaSizeBytes - 512) return MDA_HEADER_BYTES;
  return next;
}

/** The writes that put `text` into the ring at `offsetBytes`, zero-padded to 512-byte ends. */
export function ringWrites(text: Uint8Array, offsetBytes: number, mdaSizeBytes: number): Array<{ mdaOffsetBytes: number; data: Uint8Array }> {
  const first = Math.min(text.length, mdaSizeBytes - offsetBytes);
  const pad = (chunk: Uint8Array): Uint8Array => {
    const len = Math.ceil(chunk.length / 512) * 512;
    if (len === chunk.length) return chunk;
    const b = new Uint8Array(len);
    b.set(chunk);
    return b;
  };
  const out = [{ mdaOffsetBytes: offsetBytes, data: pad(text.subarray(0, first)) }];
  if (first < text.length) out.push({ mdaOffsetBytes: MDA_HEADER_BYTES, data: pad(text.subarray(first)) });
  // The padded first piece never passes the ring end: offsets and the ring size are 512-multiples.
  return out;
}

/** Do two ring ranges overlap? (sanity check that a new copy never touches the committed one) */
export function overlapsCommitted(newLocn: RawLocn, committed: RawLocn, mdaSizeBytes: number): boolean {
  if (committed.offsetBytes === 0) return false;
  const a = locnPieces(newLocn, mdaSizeBytes);
  const b = locnPieces(committed, mdaSizeBytes);
  for (const x of a) for (const y of b) {
    if (x.mdaOffsetBytes < y.mdaOffsetBytes + y.lengthBytes && y.mdaOffsetBytes < x.mdaOffsetBytes + x.lengthBytes) return true;
  }
  return false;
}
