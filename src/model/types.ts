/**
 * The in-memory model of a volume group: what the metadata text says, with
 * names that say what they hold. Pure data; no I/O. Status and flag words are
 * kept as lvm2 spells them ("ALLOCATABLE", "VISIBLE", "MISSING") so that words
 * this version does not know survive a read-modify-write in `flags` arrays.
 */

/** An area of a segment: extents on a PV or logical extents of another LV. */
export type Area =
  | { readonly kind: "pv"; pvId: string; startPe: number }
  | { readonly kind: "lv"; lvName: string; startLe: number };

export interface SegmentCommon {
  startExtent: number;
  extentCount: number;
  tags: string[];
  /** Segment-type flag suffixes ("RESHAPE" in `type = "raid5+RESHAPE"`). */
  typeFlags: string[];
}

/** lvm2's "striped" segment type; one stripe is a linear segment. */
export interface StripedSegment extends SegmentCommon {
  type: "striped";
  /** Sectors per chunk; 0 when there is one stripe. */
  stripeSizeSectors: number;
  /** One area per stripe, in stripe order; each is extentCount / stripes extents long. */
  stripes: Area[];
}

/** lvm2's legacy "mirror" segment type. */
export interface MirrorSegment extends SegmentCommon {
  type: "mirror";
  /** Name of the disk log LV; undefined = core log. */
  mirrorLog: string | undefined;
  regionSizeSectors: number;
  /** pvmove only: extents already copied. */
  extentsMoved: number | undefined;
  /** One area per leg; leg 0 is the primary. */
  mirrors: Area[];
}

/** One image of a raid segment: its metadata sub-LV (rmeta) and its data sub-LV (rimage). */
export interface RaidImage {
  /** The `_rmeta_N` LV; undefined for an image without one (lvm2 allows it, raid0 style). */
  meta: string | undefined;
  /** The `_rimage_N` LV. */
  image: string;
}

/**
 * lvm2's "raid1" segment type (lib/raid/raid.c). Only raid1 is modelled; the
 * other raid levels stay opaque. The RAID, RAID_IMAGE and RAID_META LV flags
 * are derived from this (never written), as lvm2 does on import.
 */
export interface RaidSegment extends SegmentCommon {
  type: "raid1";
  /** Sectors; 0 = not written. */
  regionSizeSectors: number;
  /** 0 for raid1 (written only when non-zero). */
  stripeSizeSectors: number;
  /** `writebehind`; 0 = none. */
  writeBehind: number;
  /** KiB/s per device; 0 = unset. */
  minRecoveryRate: number;
  maxRecoveryRate: number;
  /** Reshape only; undefined = not written (lvm2 reads 0 as "offset 0"). */
  dataOffset: number | undefined;
  /** One entry per image, in slot order; every image spans the whole segment. */
  raids: RaidImage[];
}

/**
 * A segment type this version does not implement (thin, raid, cache...). Kept
 * as its text so reports can show it; commands refuse to change such VGs.
 */
export interface OpaqueSegment extends SegmentCommon {
  type: string;
  opaque: true;
  /** PV ids / LV names it references, for allocation accounting. */
  areas: Area[];
  /** Extent count each area occupies. */
  areaExtents: number;
  /** The original settings of the segment section, minus the common keys. */
  raw: import("../format/text/config-tree.js").ConfigNode[];
}

/**
 * lvm2's "integrity" segment type (lib/integrity/integrity.c): a dm-integrity
 * layer over `origin` (the `_iorig` LV, area 0 at LE 0) with its tags and
 * journal or bitmap on `metaDev` (the `_imeta` LV). ulvm writes it under raid1
 * images (`--raidintegrity y`). The INTEGRITY and INTEGRITY_METADATA LV flags
 * are derived from it, never written.
 */
export interface IntegritySegment extends SegmentCommon {
  type: "integrity";
  /** The `_iorig` LV holding the data. */
  origin: string;
  /** `data_sectors`: the size of the integrity LV (= the origin's) in sectors. */
  dataSectors: number;
  /** "J" journal or "B" bitmap (lvm2 allows up to 7 characters on import). */
  mode: string;
  /** Bytes per tag (4 for crc32c). */
  tagSize: number;
  /** Bytes per checksummed block: 512, 1024, 2048 or 4096. */
  blockSize: number;
  internalHash: string;
  /** The `_imeta` LV; undefined = tags interleaved on the data device (lvm2 never creates that for raid). */
  metaDev: string | undefined;
  /** 1 between the commit that adds integrity and its first activation ("recalculate" in the table); 0 = not written. */
  recalculate: number;
  /** The optional dm-integrity settings, written only when set, in lvm2's order. */
  settings: IntegritySettings;
}

/** Optional keys of an integrity segment (--integritysettings); undefined = not written. */
export interface IntegritySettings {
  journalSectors?: number;
  interleaveSectors?: number;
  bufferSectors?: number;
  journalWatermark?: number;
  commitTime?: number;
  bitmapFlushInterval?: number;
  sectorsPerBit?: number;
  allowDiscards?: number;
}

export type Segment = StripedSegment | MirrorSegment | RaidSegment | IntegritySegment | OpaqueSegment;

export interface PhysicalVolume {
  /** 32-character id without dashes. */
  id: string;
  /** `device` hint: the path when the metadata was last written, "[unknown]" if missing. */
  deviceHint: string | undefined;
  deviceIdType: string | undefined;
  deviceId: string | undefined;
  status: string[];
  flags: string[];
  tags: string[];
  devSizeSectors: number;
  peStartSectors: number;
  peCount: number;
  baStartSectors: number | undefined;
  baSizeSectors: number | undefined;
}

export interface LogicalVolume {
  name: string;
  id: string;
  status: string[];
  flags: string[];
  tags: string[];
  creationTime: number | undefined;
  creationHost: string | undefined;
  lockArgs: string | undefined;
  /** undefined = inherit. */
  allocationPolicy: string | undefined;
  profile: string | undefined;
  /** undefined = auto; -1 = none; else sectors. */
  readAheadSectors: number | undefined;
  major: number | undefined;
  minor: number | undefined;
  segments: Segment[];
}

export interface VolumeGroup {
  name: string;
  id: string;
  seqno: number;
  /** Informational ("lvm2"). */
  format: string | undefined;
  status: string[];
  flags: string[];
  tags: string[];
  systemId: string | undefined;
  lockType: string | undefined;
  lockArgs: string | undefined;
  extentSizeSectors: number;
  maxLv: number;
  maxPv: number;
  /** undefined = normal. */
  allocationPolicy: string | undefined;
  profile: string | undefined;
  metadataCopies: number;
  pvs: PhysicalVolume[];
  /** In creation order; the writer puts visible LVs first. */
  lvs: LogicalVolume[];
  /** historical_logical_volumes, kept as read. */
  historicalLvs: import("../format/text/config-tree.js").ConfigSection | undefined;
}

export const ALLOC_POLICIES = ["contiguous", "cling", "cling_by_tags", "normal", "anywhere", "inherit"] as const;
export type AllocPolicy = (typeof ALLOC_POLICIES)[number];
