import { lvmCrc } from "../base/crc.js";
import { ascii, putAscii, readU32LE, readU64LE, writeU32LE, writeU64LE } from "../base/bytes.js";
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

export function decodeMdaHeader(buf: Uint8Array, expectedStartBytes: number): MdaHeaderDisk {
  if (buf.length < MDA_HEADER_BYTES) throw new FormatError("short mda header");
  const checksum = readU32LE(buf, 0);
  if (lvmCrc(buf.subarray(4, MDA_HEADER_BYTES)) !== checksum) throw new FormatError(`wrong checksum in mda header at ${expectedStartBytes}`, { offsetBytes: expectedStartBytes });
  if (ascii(buf, 4, 20) !== FMTT_MAGIC) throw new FormatError(`wrong magic number in mda header at ${expectedStartBytes}`, { offsetBytes: expectedStartBytes });
  const version = readU32LE(buf, 20);
  if (version !== FMTT_VERSION) throw new FormatError(`wrong version ${version} in mda header at ${expectedStartBytes}`, { offsetBytes: expectedStartBytes });
  const startBytes = readU64LE(buf, 24);
  if (startBytes !== expectedStartBytes) throw new FormatError(`wrong start sector in mda header at ${expectedStartBytes}: ${startBytes}`, { offsetBytes: expectedStartBytes });
  const sizeBytes = readU64LE(buf, 32);
  const locn = (o: number): RawLocn => ({ offsetBytes: readU64LE(buf, o), sizeBytes: readU64LE(buf, o + 8), checksum: readU32LE(buf, o + 16), flags: readU32LE(buf, o + 20) });
  return { startBytes, sizeBytes, committed: locn(40), precommitted: locn(64) };
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
