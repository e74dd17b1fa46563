import type { BlockDevice } from "../blockdev/block-device.js";

/**
 * Known on-disk signatures that pvcreate must not silently overwrite (lvm2 asks
 * libblkid; these are the magics blkid uses for the common cases). Wiping a
 * signature zeroes its magic bytes, as blkid's wipe does.
 */
export interface Signature {
  type: string;
  offsetBytes: number;
  magic: Uint8Array;
}

const sig = (type: string, offsetBytes: number, magic: string | number[]): Signature => ({
  type,
  offsetBytes,
  magic: typeof magic === "string" ? Buffer.from(magic, "latin1") : Uint8Array.from(magic),
});

export const SIGNATURES: Signature[] = [
  sig("ext4", 1080, [0x53, 0xef]), // ext2/3/4 superblock magic; the type is refined below
  sig("xfs", 0, "XFSB"),
  sig("btrfs", 65600, "_BHRfS_M"),
  sig("swap", 4086, "SWAPSPACE2"),
  sig("swap", 4086, "SWAP-SPACE"),
  sig("crypto_LUKS", 0, "LUKS\xba\xbe"),
  sig("dos", 510, [0x55, 0xaa]),
  sig("gpt", 512, "EFI PART"),
  sig("iso9660", 32769, "CD001"),
  sig("vfat", 82, "FAT32   "),
  sig("vfat", 54, "FAT16   "),
  sig("vfat", 54, "FAT12   "),
  sig("bcache", 4120, [0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81]),
];

export interface FoundSignature {
  type: string;
  offsetBytes: number;
  lengthBytes: number;
}

/** ext2/3/4 by their feature flags, as blkid names them. */
function extType(sb: Uint8Array): string {
  const dv = new DataView(sb.buffer, sb.byteOffset, sb.byteLength);
  const compat = dv.getUint32(0x5c, true);
  const incompat = dv.getUint32(0x60, true);
  const hasJournal = (compat & 0x4) !== 0;
  const ext4Only = (incompat & ~(0x2 | 0x4)) !== 0; // beyond FILETYPE and RECOVER
  if (ext4Only) return "ext4";
  return hasJournal ? "ext3" : "ext2";
}

export async function findSignatures(dev: BlockDevice): Promise<FoundSignature[]> {
  const found: FoundSignature[] = [];
  for (const s of SIGNATURES) {
    if (s.offsetBytes + s.magic.length > dev.sizeBytes) continue;
    const buf = new Uint8Array(s.magic.length);
    await dev.read(s.offsetBytes, buf);
    if (!buf.every((b, i) => b === s.magic[i])) continue;
    let type = s.type;
    if (s.offsetBytes === 1080) {
      const sb = new Uint8Array(1024);
      if (1024 + 1024 <= dev.sizeBytes) {
        await dev.read(1024, sb);
        type = extType(sb);
      }
    }
    if (type === "dos") {
      // A DOS boot-sector marker alone is common on wiped disks only when a partition table exists.
      const pt = new Uint8Array(64);
      await dev.read(446, pt);
      if (pt.every((b) => b === 0)) continue;
    }
    found.push({ type, offsetBytes: s.offsetBytes, lengthBytes: s.magic.length });
  }
  return found;
}

export async function wipeSignature(dev: BlockDevice, s: FoundSignature): Promise<void> {
  await dev.write(s.offsetBytes, new Uint8Array(s.lengthBytes));
}
