import { createRequire } from "node:module";

/**
 * CRC-32C (Castagnoli, iSCSI; RFC 3720 appendix B.4), the checksum behind
 * dm-integrity's `internal_hash:crc32c`. Node's zlib.crc32 is CRC-32 (IEEE),
 * a different polynomial, so the hardware path comes from @node-rs/crc32
 * (napi-rs; SSE4.2 / ARMv8 CRC instructions). `crc32cSoftware` is the
 * table-driven baseline it is measured against and checked with.
 *
 * Both return the standard value (initial ~0, final xor ~0) and chain:
 * crc32c(b, crc32c(a)) === crc32c(a ‖ b).
 */
type Crc32cFn = (input: Uint8Array, initialState?: number) => number;

// Loaded through require so that the CommonJS bundles resolve the native addon at run time.
const native = createRequire(import.meta.url)("@node-rs/crc32") as { crc32c: (input: Buffer, initialState?: number) => number };

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export const crc32c: Crc32cFn = (input, initialState = 0) => native.crc32c(asBuffer(input), initialState);

/**
 * crc32c over `buf`'s bytes [start, end), chained from `initialState`, for
 * hot loops over many small pieces of one Buffer: no per-call conversion
 * (a Buffer view costs less than Buffer.from over the ArrayBuffer).
 */
export function crc32cOfBuffer(buf: Buffer, start: number, end: number, initialState: number): number {
  return native.crc32c(buf.subarray(start, end), initialState);
}

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/**
 * crc32c of `value` (an integer below 2^53) encoded as le64, chained from
 * `initialState`: the table walk over the 8 bytes without encoding them
 * (dm-integrity hashes each block's sector number this way).
 */
export function crc32cU64LE(value: number, initialState = 0): number {
  let c = ~initialState >>> 0;
  let lo = value >>> 0;
  let hi = Math.floor(value / 0x1_0000_0000) >>> 0;
  for (let i = 0; i < 4; i++, lo >>>= 8) c = TABLE[(c ^ lo) & 0xff]! ^ (c >>> 8);
  for (let i = 0; i < 4; i++, hi >>>= 8) c = TABLE[(c ^ hi) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** Byte-at-a-time CRC-32C (reflected polynomial 0x82F63B78): the reference the native path must agree with. */
export const crc32cSoftware: Crc32cFn = (input, initialState = 0) => {
  let c = ~initialState >>> 0;
  for (let i = 0; i < input.length; i++) c = TABLE[(c ^ input[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
};
