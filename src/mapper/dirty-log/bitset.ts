/**
 * Little-endian bitsets as the kernel's dirty log keeps them
 * (test_bit_le/__set_bit_le on 32-bit words): region r is bit (r & 7) of
 * byte (r >> 3), whatever the word size, so a plain byte array is the exact
 * on-disk layout. Sizes are whole 32-bit words.
 */
export function bitsetBytes(bitCount: number): number {
  return Math.ceil(bitCount / 32) * 4;
}

export function testBit(bits: Uint8Array, i: number): boolean {
  return (bits[i >>> 3]! & (1 << (i & 7))) !== 0;
}

export function setBit(bits: Uint8Array, i: number): void {
  bits[i >>> 3] = bits[i >>> 3]! | (1 << (i & 7));
}

export function clearBit(bits: Uint8Array, i: number): void {
  bits[i >>> 3] = bits[i >>> 3]! & ~(1 << (i & 7));
}

const POP = new Uint8Array(256);
for (let i = 0; i < 256; i++) POP[i] = (i & 1) + POP[i >>> 1]!;

/** Number of set bits among the first `bitCount` bits. */
export function countBits(bits: Uint8Array, bitCount: number): number {
  let n = 0;
  const whole = bitCount >>> 3;
  for (let i = 0; i < whole; i++) n += POP[bits[i]!]!;
  for (let i = whole * 8; i < bitCount; i++) if (testBit(bits, i)) n++;
  return n;
}

/** First clear bit in [from, bitCount), or undefined. */
export function findNextZero(bits: Uint8Array, bitCount: number, from: number): number | undefined {
  let i = from;
  while (i < bitCount) {
    if ((i & 7) === 0) {
      // Skip whole bytes that are all ones.
      while (i + 8 <= bitCount && bits[i >>> 3] === 0xff) i += 8;
      if (i >= bitCount) break;
    }
    if (!testBit(bits, i)) return i;
    i++;
  }
  return undefined;
}
