/** Little-endian field access on a Uint8Array, as LVM's xlate helpers. */
export function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** u64 as a JS number; throws past 2^53 (no device or offset gets that big). */
export function readU64LE(buf: Uint8Array, offset: number): number {
  const v = view(buf).getBigUint64(offset, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`u64 at ${offset} too large: ${v}`);
  return Number(v);
}

export function readU64LEBig(buf: Uint8Array, offset: number): bigint {
  return view(buf).getBigUint64(offset, true);
}

export function writeU64LE(buf: Uint8Array, offset: number, value: number | bigint): void {
  view(buf).setBigUint64(offset, BigInt(value), true);
}

export function readU32LE(buf: Uint8Array, offset: number): number {
  return view(buf).getUint32(offset, true);
}

export function writeU32LE(buf: Uint8Array, offset: number, value: number): void {
  view(buf).setUint32(offset, value >>> 0, true);
}

export function ascii(buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString("latin1");
}

export function putAscii(buf: Uint8Array, offset: number, text: string): void {
  for (let i = 0; i < text.length; i++) buf[offset + i] = text.charCodeAt(i) & 0xff;
}

export function isAllZero(buf: Uint8Array): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

export const SECTOR_BYTES = 512;
