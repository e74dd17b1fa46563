import { readU32LE, writeU32LE } from "../../base/bytes.js";
import { JOURNAL_BLOCK_SECTORS, JOURNAL_SECTOR_DATA, SECTOR_BYTES, type JournalGeometry } from "./integrity-format.js";

/**
 * dm-integrity's journal as the kernel lays it out (drivers/md/dm-integrity.c),
 * unencrypted and without journal_mac (what lvm2 configures). A pure codec
 * over an in-memory image of the whole journal area, the way the kernel
 * keeps it (ic->journal): no I/O here.
 *
 * The journal is `journal_sections` sections of `journal_section_sectors`
 * sectors each, from sector 8 (after the superblock) of the metadata device.
 * A section: 8 metadata sectors (JOURNAL_BLOCK_SECTORS) holding its
 * `journal_section_entries` entries, then one data block per entry.
 *   - struct journal_sector: every 512-byte sector of a section, metadata or
 *     data, ends with an le64 commit_id (JOURNAL_SECTOR_DATA = 504 bytes before it);
 *   - struct journal_entry: le64 logical sector (high half 0xFFFFFFFF = unused,
 *     0xFFFFFFFE = in progress), then one le64 per 512-byte sector of the block
 *     holding that sector's real last 8 bytes (their place in the data sector
 *     carries the commit id), then the tag; rounded up to 8 bytes. Entry n lives
 *     in metadata sector n % 8 at byte (n / 8) × entry_size (access_journal_entry);
 *     its data at section sector 8 + n × sectors_per_block (access_journal_data).
 *   - commit id of sector j of section i written with sequence s (0..3):
 *     commit_ids[s] XOR le64((i << 32) ^ j), commit_ids = 0x1111…, 0x2222…,
 *     0x3333…, 0x4444… (create_journal without journal_crypt). A commit stamps
 *     every sector of the sections it writes; a pass over the whole journal
 *     advances the sequence (next_commit_seq), so a torn section shows
 *     sectors of two sequences.
 */
export const N_COMMIT_IDS = 4;
export const COMMIT_IDS: readonly bigint[] = [0x1111111111111111n, 0x2222222222222222n, 0x3333333333333333n, 0x4444444444444444n];
const UNUSED_HI = 0xffffffff;
const INPROGRESS_HI = 0xfffffffe;
const MASK64 = (1n << 64n) - 1n;

export function nextCommitSeq(seq: number): number {
  return (seq + 1) % N_COMMIT_IDS;
}
export function prevCommitSeq(seq: number): number {
  return (seq + N_COMMIT_IDS - 1) % N_COMMIT_IDS;
}

/** dm_integrity_commit_id: the id that sector j of section i carries when committed with sequence seq. */
export function commitId(section: number, sector: number, seq: number): bigint {
  return (COMMIT_IDS[seq]! ^ ((BigInt(section) << 32n) ^ BigInt(sector))) & MASK64;
}

export type EntryState = { kind: "unused" } | { kind: "inprogress" } | { kind: "sector"; sector: number };

/** The journal area of one metadata device, in memory. */
export class JournalImage {
  readonly bytes: Uint8Array;
  private readonly dv: DataView;
  readonly sectionBytes: number;

  constructor(
    readonly geometry: JournalGeometry,
    readonly sections: number,
    readonly sectorsPerBlock: number,
    readonly tagSize: number,
    bytes?: Uint8Array,
  ) {
    this.sectionBytes = geometry.sectionSectors * SECTOR_BYTES;
    this.bytes = bytes ?? new Uint8Array(sections * this.sectionBytes);
    if (this.bytes.length !== sections * this.sectionBytes) throw new Error("journal image of the wrong size");
    this.dv = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  get entriesPerSection(): number {
    return this.geometry.sectionEntries;
  }

  /** Byte offset in the image of sector j of section i. */
  sectorAt(section: number, sector: number): number {
    return section * this.sectionBytes + sector * SECTOR_BYTES;
  }

  /** Byte offset of entry n of a section (access_journal_entry). */
  entryAt(section: number, n: number): number {
    return this.sectorAt(section, n % JOURNAL_BLOCK_SECTORS) + Math.floor(n / JOURNAL_BLOCK_SECTORS) * this.geometry.entrySize;
  }

  /** Byte offset of entry n's data block (access_journal_data). */
  dataAt(section: number, n: number): number {
    return this.sectorAt(section, JOURNAL_BLOCK_SECTORS + n * this.sectorsPerBlock);
  }

  commitIdOf(section: number, sector: number): bigint {
    return this.dv.getBigUint64(this.sectorAt(section, sector) + JOURNAL_SECTOR_DATA, true);
  }

  setCommitId(section: number, sector: number, id: bigint): void {
    this.dv.setBigUint64(this.sectorAt(section, sector) + JOURNAL_SECTOR_DATA, id, true);
  }

  /** Stamp every sector of a section with the commit id of seq (integrity_commit). */
  stampSection(section: number, seq: number): void {
    for (let j = 0; j < this.geometry.sectionSectors; j++) this.setCommitId(section, j, commitId(section, j, seq));
  }

  entry(section: number, n: number): EntryState {
    const at = this.entryAt(section, n);
    const hi = readU32LE(this.bytes, at + 4);
    if (hi === UNUSED_HI) return { kind: "unused" };
    if (hi === INPROGRESS_HI) return { kind: "inprogress" };
    return { kind: "sector", sector: hi * 2 ** 32 + readU32LE(this.bytes, at) };
  }

  setUnused(section: number, n: number): void {
    writeU32LE(this.bytes, this.entryAt(section, n) + 4, UNUSED_HI);
  }

  /** The entry's tag (journal_entry_tag: after last_bytes[sectors_per_block]). */
  tag(section: number, n: number): Uint8Array {
    const at = this.entryAt(section, n) + 8 + 8 * this.sectorsPerBlock;
    return this.bytes.subarray(at, at + this.tagSize);
  }

  /**
   * __journal_read_write for a write: the block into the entry's data sectors,
   * each sector's last 8 bytes saved in last_bytes, the tag, then the sector
   * number (which makes the entry used).
   */
  putBlock(section: number, n: number, logicalSector: number, block: Uint8Array, tag: Uint8Array): void {
    const e = this.entryAt(section, n);
    const d = this.dataAt(section, n);
    this.bytes.set(block, d);
    for (let s = 0; s < this.sectorsPerBlock; s++) this.bytes.copyWithin(e + 8 + 8 * s, d + s * SECTOR_BYTES + JOURNAL_SECTOR_DATA, d + (s + 1) * SECTOR_BYTES);
    this.bytes.set(tag.subarray(0, this.tagSize), e + 8 + 8 * this.sectorsPerBlock);
    writeU32LE(this.bytes, e, logicalSector % 2 ** 32);
    writeU32LE(this.bytes, e + 4, Math.floor(logicalSector / 2 ** 32));
  }

  /** The entry's block as written (restore_last_bytes, into a copy: the image keeps its commit ids). */
  getBlock(section: number, n: number, into: Uint8Array): Uint8Array {
    const e = this.entryAt(section, n);
    const d = this.dataAt(section, n);
    into.set(this.bytes.subarray(d, d + this.sectorsPerBlock * SECTOR_BYTES));
    for (let s = 0; s < this.sectorsPerBlock; s++) into.set(this.bytes.subarray(e + 8 + 8 * s, e + 16 + 8 * s), s * SECTOR_BYTES + JOURNAL_SECTOR_DATA);
    return into;
  }

  /** init_journal: sections zeroed, stamped with seq, every entry unused. */
  initSections(start: number, count: number, seq: number): void {
    for (let k = 0; k < count; k++) {
      const i = (start + k) % this.sections;
      this.bytes.fill(0, i * this.sectionBytes, (i + 1) * this.sectionBytes);
      this.stampSection(i, seq);
      for (let n = 0; n < this.entriesPerSection; n++) this.setUnused(i, n);
    }
  }
}

/** What replay_journal decides from the commit ids of a journal image. */
export type ReplayPlan =
  /** A commit id that belongs to no sequence: the kernel fails the device ("journal commit id"). */
  | { kind: "invalid"; section: number; sector: number }
  | {
      kind: "ok";
      /** Replay `sections` sections from `start` (oldest first, wrapping); none when `empty`. */
      start: number;
      sections: number;
      empty: boolean;
      /**
       * The whole journal is consistent: continue writing at `start` with
       * `commitSeq`. Otherwise (a torn or never committed section stopped the
       * replay) the journal is cleared: every section stamped with `eraseSeq`
       * (section `start` first), writing restarts at section 0 with next(eraseSeq).
       */
      continueAt: { section: number; commitSeq: number } | { eraseSeq: number };
    };

/** replay_journal's scan, step for step (mode J). */
export function planReplay(img: JournalImage): ReplayPlan {
  const used = [false, false, false, false];
  const maxSection = [0, 0, 0, 0];
  let empty = true;
  for (let i = 0; i < img.sections; i++) {
    for (let j = 0; j < img.geometry.sectionSectors; j++) {
      const id = img.commitIdOf(i, j);
      let k = 0;
      while (k < N_COMMIT_IDS && commitId(i, j, k) !== id) k++;
      if (k === N_COMMIT_IDS) return { kind: "invalid", section: i, sector: j };
      used[k] = true;
      maxSection[k] = i;
    }
    if (empty) for (let n = 0; n < img.entriesPerSection && empty; n++) if (img.entry(i, n).kind !== "unused") empty = false;
  }
  let unused: number;
  if (!used[N_COMMIT_IDS - 1]) {
    unused = N_COMMIT_IDS - 1;
    while (unused && !used[unused - 1]) unused--;
  } else {
    for (unused = 0; unused < N_COMMIT_IDS; unused++) if (!used[unused]) break;
    // All four sequences in use cannot come from the kernel's commits (it fails the device, then clears).
    if (unused === N_COMMIT_IDS) return { kind: "invalid", section: 0, sector: 0 };
  }
  const lastUsed = prevCommitSeq(unused);
  let want = prevCommitSeq(lastUsed);
  if (!used[want] && used[prevCommitSeq(want)]) empty = true;
  let start = maxSection[lastUsed]! + 1;
  if (start >= img.sections) {
    want = nextCommitSeq(want);
    start -= img.sections;
  }
  let i = start;
  let sections = 0;
  scan: for (; sections < img.sections; sections++) {
    for (let j = 0; j < img.geometry.sectionSectors; j++) if (img.commitIdOf(i, j) !== commitId(i, j, want)) break scan;
    i++;
    if (i >= img.sections) {
      want = nextCommitSeq(want);
      i -= img.sections;
    }
  }
  const continueAt = sections === img.sections ? { section: start, commitSeq: want } : { eraseSeq: prevCommitSeq(prevCommitSeq(lastUsed)) };
  return { kind: "ok", start, sections, empty, continueAt };
}
