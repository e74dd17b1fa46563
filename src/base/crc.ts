import { crc32 } from "node:zlib";

/**
 * LVM's checksum (lib/misc/crc.c): reflected CRC-32 (0xEDB88320) with initial
 * register 0xF597A6CF and no final XOR. zlib's crc32 inverts on the way in and
 * out, so seeding it with ~0xF597A6CF and inverting its result gives LVM's value.
 * With no final XOR the CRC can be continued: lvmCrc(b, lvmCrc(a)) = lvmCrc(a ++ b),
 * which is how wrapped metadata text is checked.
 */
export const LVM_INITIAL_CRC = 0xf597a6cf;

export function lvmCrc(data: Uint8Array, continueFrom: number = LVM_INITIAL_CRC): number {
  return ~crc32(data, ~continueFrom >>> 0) >>> 0;
}
