import type { LoadedVg } from "../../../src/commands/vg-store.js";
import { findLv, isIntegritySeg, isRaidSeg } from "../../../src/model/lv-info.js";
import {
  SB_FLAG_DIRTY_BITMAP,
  SB_FLAG_RECALCULATING,
  SB_SECTORS,
  SECTOR_BYTES,
  crc32cTag,
  decodeSuperblock,
  metaLayout,
  tagOffsetBytes,
} from "../../../src/mapper/integrity/integrity-format.js";
import { JournalImage, planReplay } from "../../../src/mapper/integrity/journal-format.js";
import type { ExtentLoc, World } from "./world.js";

/**
 * What a raid1 + integrity leg promises on disk, read from device images
 * (a replayed power cut, or the PV files a killed daemon left), by the
 * kernel's rules:
 *   - a block whose tag matches its data holds data the client wrote (or the
 *     LV's first contents), never anything else: `judge` says which;
 *   - a block whose tag does not match is one the next activation repairs
 *     without reporting it: in bitmap mode its bit is set in the dirty
 *     bitmap (the activation recomputes those tags), in journal mode the
 *     journal replay rewrites it (data and tag). Anything else is a false
 *     mismatch waiting to happen;
 *   - in journal mode, the data the leg serves after the activation is the
 *     data area with the journal replayed on top (`effective`).
 */
export interface IntegrityLegPlace {
  /** The `_iorig` LV's extents (data), and the `_imeta` LV's (superblock, journal or bitmap, tags). */
  data: ExtentLoc[];
  meta: ExtentLoc[];
  extentBytes: number;
}

export function integrityLegPlaces(w: World, loaded: LoadedVg, lvName: string): IntegrityLegPlace[] {
  const vg = loaded.vg;
  const seg = findLv(vg, lvName)?.segments[0];
  if (!seg || !isRaidSeg(seg)) throw new Error(`${lvName} is not a raid1`);
  return seg.raids.map((r) => {
    const iseg = findLv(vg, r.image)?.segments[0];
    if (!iseg || !isIntegritySeg(iseg) || iseg.metaDev === undefined) throw new Error(`${r.image} has no integrity layer with a metadata LV`);
    return { data: w.extentLocs(loaded, iseg.origin), meta: w.extentLocs(loaded, iseg.metaDev), extentBytes: vg.extentSizeSectors * 512 };
  });
}

/** Reads `len` bytes at byte `off` of a device image (by path). */
export type ImageRead = (path: string, offsetBytes: number, lengthBytes: number) => Uint8Array;

function readLv(locs: ExtentLoc[], extentBytes: number, read: ImageRead, off: number, len: number): Uint8Array {
  // Extents one after the other on one device (the usual case): a view, not a copy.
  const first = Math.floor(off / extentBytes);
  const last = Math.floor((off + len - 1) / extentBytes);
  const f = locs[first];
  let contiguous = f !== undefined;
  for (let e = first + 1; e <= last && contiguous; e++) contiguous = locs[e]?.path === f!.path && locs[e]!.offsetBytes === f!.offsetBytes + (e - first) * extentBytes;
  if (contiguous) return read(f!.path, f!.offsetBytes + (off - first * extentBytes), len);
  const out = new Uint8Array(len);
  for (let done = 0; done < len; ) {
    const e = Math.floor((off + done) / extentBytes);
    const within = (off + done) % extentBytes;
    const n = Math.min(len - done, extentBytes - within);
    const loc = locs[e];
    if (!loc) throw new Error(`extent ${e} has no place`);
    out.set(read(loc.path, loc.offsetBytes + within, n), done);
    done += n;
  }
  return out;
}

export interface LegVerdict {
  /** What is wrong (empty = the leg keeps every promise). */
  problems: string[];
  /** The data the leg serves after the next activation (journal replayed). */
  effective: Uint8Array;
  blocks: number;
  /** Blocks whose tag does not match, each covered by the bitmap or the journal. */
  repairable: number;
  /** Blocks the journal replay rewrites. */
  replayed: number;
  /** Bits set in the dirty bitmap (bitmap mode). */
  dirtyBits: number;
  /** Blocks not checked: the tag recalculation had not reached them. */
  notYetTagged: number;
  /** The data area and tags as read, and which blocks passed (tag matches, client data): a baseline for the next states. */
  data: Uint8Array;
  tags: Uint8Array;
  passed: Uint8Array;
}

/** Blocks compared at once with the baseline: a chunk equal to it (data and tags) keeps the baseline's verdict. */
const CHUNK_BLOCKS = 128;

/**
 * Check one leg. `judge(lvSector, sectorBytes)` says why a sector's bytes
 * are not data the client wrote there (undefined = they are); `tolerate`
 * names an LV sector whose garbage is the torn write of the crash.
 */
export function checkIntegrityLeg(
  place: IntegrityLegPlace,
  read: ImageRead,
  lvBytes: number,
  judge: (lvSector: number, bytes: Uint8Array) => string | undefined,
  baseline?: LegVerdict,
): LegVerdict {
  const problems: string[] = [];
  const rd = (locs: ExtentLoc[], off: number, len: number): Uint8Array => readLv(locs, place.extentBytes, read, off, len);
  const sbRead = decodeSuperblock(rd(place.meta, 0, SB_SECTORS * SECTOR_BYTES));
  const data = rd(place.data, 0, lvBytes);
  const verdict: LegVerdict = { problems, effective: data, blocks: 0, repairable: 0, replayed: 0, dirtyBits: 0, notYetTagged: 0, data, tags: new Uint8Array(0), passed: new Uint8Array(0) };
  if (sbRead.kind !== "superblock") {
    problems.push(`integrity superblock: ${sbRead.kind === "corrupt" ? sbRead.reason : "blank"}`);
    return verdict;
  }
  const sb = sbRead.superblock;
  const metaBytes = place.meta.filter((l) => l !== undefined).length * place.extentBytes;
  const layout = metaLayout(sb, metaBytes / SECTOR_BYTES);
  if (!layout) {
    problems.push("integrity superblock does not fit its metadata LV");
    return verdict;
  }
  const spb = 1 << sb.log2SectorsPerBlock;
  const blockBytes = spb * SECTOR_BYTES;
  const nBlocks = Math.floor(Math.min(sb.providedDataSectors, lvBytes / SECTOR_BYTES) / spb);
  const tags = rd(place.meta, tagOffsetBytes(layout, sb.tagSize, 0), nBlocks * sb.tagSize);
  const passed = new Uint8Array(nBlocks);
  verdict.tags = tags;
  verdict.passed = passed;
  const journalBytes = rd(place.meta, SB_SECTORS * SECTOR_BYTES, layout.journal.sectionSectors * sb.journalSections * SECTOR_BYTES);
  // What the activation repairs: the bitmap's set bits (B), or the journal's committed entries (J).
  let covered: (block: number) => boolean;
  const replay = new Map<number, Uint8Array>();
  if (sb.flags & SB_FLAG_DIRTY_BITMAP) {
    const log2BlocksPerBit = sb.log2BlocksPerBitmapBit;
    for (let bit = 0; bit < Math.ceil(nBlocks / 2 ** log2BlocksPerBit); bit++) if ((journalBytes[bit >>> 3] ?? 0) & (1 << (bit & 7))) verdict.dirtyBits++;
    covered = (b) => {
      const bit = b >>> log2BlocksPerBit;
      return ((journalBytes[bit >>> 3] ?? 0) & (1 << (bit & 7))) !== 0;
    };
  } else {
    const img = new JournalImage(layout.journal, sb.journalSections, spb, sb.tagSize, journalBytes);
    const plan = planReplay(img);
    if (plan.kind !== "ok") {
      problems.push(`journal: commit id of section ${plan.section} sector ${plan.sector} belongs to no sequence`);
      return verdict;
    }
    if (!plan.empty)
      for (let n = 0; n < plan.sections; n++) {
        const i = (plan.start + n) % sb.journalSections;
        for (let e = 0; e < layout.journal.sectionEntries; e++) {
          const st = img.entry(i, e);
          if (st.kind === "sector") replay.set(st.sector, img.getBlock(i, e, new Uint8Array(blockBytes)));
        }
      }
    covered = (b) => replay.has(b * spb);
  }
  const recalcFrom = sb.flags & SB_FLAG_RECALCULATING ? sb.recalcSector / spb : Infinity;
  const effective = replay.size ? data.slice() : data;
  for (const [sector, block] of replay) {
    if (sector * SECTOR_BYTES >= lvBytes) continue;
    effective.set(block, sector * SECTOR_BYTES);
    verdict.replayed++;
    for (let s = 0; s < spb; s++) {
      const why = judge(sector + s, block.subarray(s * SECTOR_BYTES, (s + 1) * SECTOR_BYTES));
      if (why) problems.push(`journal entry for sector ${sector + s}: ${why}`);
    }
  }
  verdict.effective = effective;
  const tag = new Uint8Array(sb.tagSize);
  const same = (x: Uint8Array, y: Uint8Array, from: number, to: number): boolean => Buffer.from(x.buffer, x.byteOffset + from, to - from).equals(Buffer.from(y.buffer, y.byteOffset + from, to - from));
  let reuseUntil = -1;
  for (let b = 0; b < nBlocks; b++) {
    if (b % CHUNK_BLOCKS === 0 && baseline && baseline.passed.length === nBlocks && b < recalcFrom) {
      // A chunk identical to the baseline's, every block of which passed there, passes here.
      const e = Math.min(nBlocks, b + CHUNK_BLOCKS);
      let all = true;
      for (let i = b; i < e && all; i++) all = baseline.passed[i] === 1;
      if (all && same(data, baseline.data, b * blockBytes, e * blockBytes) && same(tags, baseline.tags, b * sb.tagSize, e * sb.tagSize)) reuseUntil = e;
    }
    if (b < reuseUntil) {
      verdict.blocks++;
      passed[b] = 1;
      continue;
    }
    if (b >= recalcFrom) {
      verdict.notYetTagged++;
      continue;
    }
    verdict.blocks++;
    const blk = data.subarray(b * blockBytes, (b + 1) * blockBytes);
    crc32cTag(b * spb, blk, sb.tagSize, tag);
    let ok = true;
    for (let i = 0; i < sb.tagSize; i++) if (tags[b * sb.tagSize + i] !== tag[i]) ok = false;
    if (!ok) {
      if (covered(b)) verdict.repairable++;
      else problems.push(`block ${b}: its tag does not match and neither the ${sb.flags & SB_FLAG_DIRTY_BITMAP ? "dirty bitmap" : "journal"} covers it (a false mismatch after activation)`);
      continue;
    }
    let fine = true;
    for (let s = 0; s < spb; s++) {
      const why = judge(b * spb + s, blk.subarray(s * SECTOR_BYTES, (s + 1) * SECTOR_BYTES));
      if (why) problems.push(`block ${b}: a valid tag over data the client never wrote (sector ${b * spb + s}: ${why})`);
      if (why) fine = false;
    }
    if (fine) passed[b] = 1;
  }
  return verdict;
}

/** Where block `block` of a leg and its tag are (device path and byte offset): for the oracle's self-test. */
export function blockPlaces(
  place: IntegrityLegPlace,
  read: ImageRead,
  block: number,
): { data: NonNullable<ExtentLoc>; tag: NonNullable<ExtentLoc>; journal: NonNullable<ExtentLoc>; blockBytes: number; sectorsPerBlock: number; tagSize: number } {
  const sbRead = decodeSuperblock(readLv(place.meta, place.extentBytes, read, 0, SB_SECTORS * SECTOR_BYTES));
  if (sbRead.kind !== "superblock") throw new Error("no integrity superblock");
  const sb = sbRead.superblock;
  const layout = metaLayout(sb, (place.meta.filter((l) => l !== undefined).length * place.extentBytes) / SECTOR_BYTES)!;
  const blockBytes = SECTOR_BYTES << sb.log2SectorsPerBlock;
  const at = (locs: ExtentLoc[], off: number): NonNullable<ExtentLoc> => {
    const loc = locs[Math.floor(off / place.extentBytes)]!;
    return { path: loc.path, offsetBytes: loc.offsetBytes + (off % place.extentBytes) };
  };
  return { data: at(place.data, block * blockBytes), tag: at(place.meta, tagOffsetBytes(layout, sb.tagSize, block)), journal: at(place.meta, SB_SECTORS * SECTOR_BYTES), blockBytes, sectorsPerBlock: 1 << sb.log2SectorsPerBlock, tagSize: sb.tagSize };
}
