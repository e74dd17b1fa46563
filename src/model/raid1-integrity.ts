import type { IntegritySegment, IntegritySettings, LogicalVolume, VolumeGroup } from "./types.js";
import { findLv, isRaidSeg, segAreas } from "./lv-info.js";
import { effectivePolicy, type SpaceSpec, type VgEditor } from "./allocate-lv.js";
import type { PvListEntry } from "./allocate-pv-maps.js";
import { CommandError, InternalError } from "../errors/errors.js";
import { errorSegment } from "./raid1-convert.js";

/**
 * raid1 images with a dm-integrity layer, as lvm2's lv_add_integrity_to_raid
 * (lib/metadata/integrity_manip.c) lays them out: for each `<lv>_rimage_N`, a
 * linear `<lv>_rimage_N_imeta` on the image's own PVs, the image's segments
 * moved to a new `<lv>_rimage_N_iorig`, and the image itself becoming one
 * `integrity` segment over the iorig with the imeta as its meta_dev. Pure
 * model; the command commits and zeroes between the steps as lvm2 does.
 */

/** integrity_manip.c's defaults (DEFAULT_TAG_SIZE, DEFAULT_MODE, DEFAULT_INTERNAL_HASH, DEFAULT_BLOCK_SIZE). */
export const INTEGRITY_DEFAULTS = { tagSize: 4, mode: "J", internalHash: "crc32c", blockSize: 512 } as const;

export const INTEGRITY_BLOCK_SIZES = [512, 1024, 2048, 4096] as const;

/** What `--raidintegritymode` / `--raidintegrityblocksize` / `--integritysettings` ask for; undefined = lvm2's default. */
export interface IntegrityRequest {
  mode: "J" | "B" | undefined;
  blockSize: number | undefined;
  settings: IntegritySettings;
}

const MiB = 1024 * 1024;

/**
 * _lv_size_bytes_to_integrity_meta_bytes: 4 MiB of tags per started 500 MiB
 * of data ("from trial and error testing", says lvm2), plus room for the
 * journal: 4 MiB up to 512 MiB, 8 MiB up to 1 GiB, 32 MiB up to 4 GiB, else
 * 64 MiB; or the requested journal_sectors rounded up to whole extents.
 */
export function integrityMetaBytes(lvSizeBytes: number, journalSectors: number, extentSizeSectors: number): number {
  const metaBytes = (Math.floor(lvSizeBytes / (500 * MiB)) + 1) * 4 * MiB;
  let initialBytes: number;
  if (journalSectors) initialBytes = Math.ceil(journalSectors / extentSizeSectors) * extentSizeSectors * 512;
  else if (lvSizeBytes <= 512 * MiB) initialBytes = 4 * MiB;
  else if (lvSizeBytes <= 1024 * MiB) initialBytes = 8 * MiB;
  else if (lvSizeBytes <= 4 * 1024 * MiB) initialBytes = 32 * MiB;
  else initialBytes = 64 * MiB;
  return metaBytes + initialBytes;
}

/** _lv_create_integrity_metadata's extent count: the bytes above in whole extents (never rounded up), at least one. */
export function integrityMetaExtents(imageSizeSectors: number, journalSectors: number, extentSizeSectors: number): number {
  const sectors = integrityMetaBytes(imageSizeSectors * 512, journalSectors, extentSizeSectors) / 512;
  return Math.floor(sectors / extentSizeSectors) || 1;
}

/** get_pv_list_for_lv: the PVs an LV's segments use (through sub-LVs too), in first-use order. */
export function lvPvIds(vg: VolumeGroup, lv: LogicalVolume): string[] {
  const out: string[] = [];
  const walk = (l: LogicalVolume, depth: number): void => {
    if (depth > 16) return;
    for (const seg of l.segments)
      for (const a of segAreas(seg)) {
        if (a.kind === "pv") {
          if (!out.includes(a.pvId)) out.push(a.pvId);
        } else {
          const sub = findLv(vg, a.lvName);
          if (sub) walk(sub, depth + 1);
        }
      }
  };
  walk(lv, 0);
  return out;
}

/** The raid1 images that get an integrity layer: every rimage whose first segment is not integrity yet. */
export function imagesWithoutIntegrity(vg: VolumeGroup, lv: LogicalVolume): LogicalVolume[] {
  const seg = lv.segments[0];
  if (lv.segments.length !== 1 || !seg || !isRaidSeg(seg)) throw new CommandError("Integrity can only be added to raid1,4,5,6,10.");
  const out: LogicalVolume[] = [];
  for (const r of seg.raids) {
    const image = findLv(vg, r.image);
    if (!image) throw new InternalError(`Missing raid image ${r.image}.`);
    if (image.segments[0]?.type === "integrity") continue;
    if (image.segments[0]?.type !== "striped") throw new CommandError("raid image must be linear to add integrity");
    out.push(image);
  }
  return out;
}

/**
 * _lv_create_integrity_metadata: a new visible linear `<image>_imeta` LV (the
 * command hides it when it layers the image), read_ahead none, allocated only
 * on the PVs the image already uses (`pvs`, already narrowed to those).
 */
export function createIntegrityMeta(ed: VgEditor, image: LogicalVolume, pvs: readonly PvListEntry[], journalSectors: number): LogicalVolume {
  const vg = ed.vg;
  let imageLe = 0;
  for (const s of image.segments) imageLe += s.extentCount;
  const extents = integrityMetaExtents(imageLe * vg.extentSizeSectors, journalSectors, vg.extentSizeSectors);
  const meta = ed.createEmptyLv(`${image.name}_imeta`, ["READ", "WRITE", "VISIBLE"], undefined);
  meta.readAheadSectors = -1;
  const space: SpaceSpec = { pvs, policy: effectivePolicy(vg, undefined), approx: false };
  try {
    ed.lvExtend(meta, { ...space, segtype: "striped", stripes: 1, stripeSizeSectors: 0, mirrors: 1, regionSizeSectors: 0, extents });
  } catch (e) {
    // No room for it (lv_extend failed): the empty LV goes too, as lvm2's lv_create_single removes
    // what it made, and the caller's revert then finds a VG it can write.
    ed.lvRemove(meta);
    throw e;
  }
  return meta;
}

/**
 * The second half of lv_add_integrity_to_raid for one image: its segments
 * move to `<image>_iorig` (insert_layer_for_lv), and it becomes an integrity
 * segment with `recalculate = 1`, which the first activation passes to the
 * kernel and the command then clears.
 */
export function layerIntegrity(ed: VgEditor, image: LogicalVolume, meta: LogicalVolume, req: IntegrityRequest): IntegritySegment {
  const vg = ed.vg;
  const origin = ed.insertLayerForLv(image, "_iorig");
  let le = 0;
  for (const s of origin.segments) le += s.extentCount;
  const seg: IntegritySegment = {
    type: "integrity",
    startExtent: 0,
    extentCount: le,
    tags: [],
    typeFlags: [],
    origin: origin.name,
    dataSectors: le * vg.extentSizeSectors,
    mode: req.mode ?? INTEGRITY_DEFAULTS.mode,
    tagSize: INTEGRITY_DEFAULTS.tagSize,
    blockSize: req.blockSize ?? INTEGRITY_DEFAULTS.blockSize,
    internalHash: INTEGRITY_DEFAULTS.internalHash,
    metaDev: meta.name,
    recalculate: 1,
    settings: { ...req.settings },
  };
  image.segments = [seg];
  meta.status = meta.status.filter((w) => w !== "VISIBLE");
  return seg;
}

/**
 * lv_remove_integrity_from_raid's metadata steps for every image: the image
 * takes its `_iorig`'s segments back (remove_layer_from_lv; the iorig keeps
 * an error segment), the integrity segment and its link to the `_imeta` go,
 * and both sub-LVs become visible, for the caller to reload and then remove
 * them (returned in image order). lvm2's message when an image has no layer.
 */
export function unlayerIntegrity(ed: VgEditor, lv: LogicalVolume): { iorig: LogicalVolume; imeta: LogicalVolume }[] {
  const vg = ed.vg;
  const seg = lv.segments[0];
  const name = `${vg.name}/${lv.name}`;
  if (!seg || !isRaidSeg(seg) || seg.type !== "raid1") throw new CommandError(`LV ${name} segment is unsupported raid for integrity.`);
  const out: { iorig: LogicalVolume; imeta: LogicalVolume }[] = [];
  for (const r of seg.raids) {
    const image = findLv(vg, r.image);
    const iseg = image?.segments[0];
    if (!image || !iseg || iseg.type !== "integrity" || !("metaDev" in iseg)) throw new CommandError(`LV ${name} segment has no integrity metadata device.`);
    const imeta = iseg.metaDev !== undefined ? findLv(vg, iseg.metaDev) : undefined;
    if (!imeta) throw new CommandError(`LV ${name} segment has no integrity metadata device.`);
    const iorig = findLv(vg, iseg.origin);
    if (!iorig) throw new CommandError(`LV ${name} integrity segment has no origin.`);
    let le = 0;
    for (const s of iorig.segments) le += s.extentCount;
    image.segments = iorig.segments;
    iorig.segments = [errorSegment(le)];
    for (const l of [iorig, imeta]) if (!l.status.includes("VISIBLE")) l.status.push("VISIBLE");
    out.push({ iorig, imeta });
  }
  return out;
}
