import type { VolumeGroup } from "./types.js";
import { cloneVg } from "./clone.js";
import { findLv, isMirrorSeg, pvIdsOfLv } from "./lv-info.js";

/**
 * What `vgextend --restoremissing` must do to the mirrors of a PV that comes
 * back. While the PV was missing its mirror images missed every write (the
 * daemon ran the mirror without them), so they are stale, and the mirror's
 * log cannot tell: the regions written meanwhile may well be marked clean.
 * Two things keep stale data from ever being read or copied:
 *   - the mirror's first image is its resync source and the image reads of
 *     in-sync regions come from; if it is stale, an image that stayed takes
 *     its place (the images swap places in the segment);
 *   - every region is resynced (the caller resets the disk log before it
 *     commits; a core log resyncs everything at each activation anyway).
 * Pure: returns a new VG and the mirrors whose logs must be reset.
 */
export interface RestoredMirror {
  lvName: string;
  /** The disk log to reset, or undefined for a core log. */
  logName: string | undefined;
  staleImages: string[];
  /** The image that became the first one (the stale first image swapped with it), if any. */
  newPrimary: string | undefined;
}

export function planRestoredLegs(
  vg: VolumeGroup,
  restoredPvIds: ReadonlySet<string>,
  missingPvIds: ReadonlySet<string>,
): { vg: VolumeGroup; mirrors: RestoredMirror[] } {
  const out = cloneVg(vg);
  const mirrors: RestoredMirror[] = [];
  const onAny = (name: string, ids: ReadonlySet<string>): boolean => {
    const img = findLv(out, name);
    if (!img) return false;
    for (const id of pvIdsOfLv(out, img)) if (ids.has(id)) return true;
    return false;
  };
  for (const lv of out.lvs) {
    const stale = new Set<string>();
    let logName: string | undefined;
    let newPrimary: string | undefined;
    for (const seg of lv.segments) {
      if (!isMirrorSeg(seg)) continue;
      logName ??= seg.mirrorLog;
      for (const a of seg.mirrors) if (a.kind === "lv" && onAny(a.lvName, restoredPvIds)) stale.add(a.lvName);
      const first = seg.mirrors[0];
      if (!first || first.kind !== "lv" || !stale.has(first.lvName)) continue;
      // A current image: on no restored PV and no PV still missing.
      const j = seg.mirrors.findIndex((a) => a.kind === "lv" && !onAny(a.lvName, restoredPvIds) && !onAny(a.lvName, missingPvIds));
      if (j > 0) {
        const cur = seg.mirrors[j]!;
        seg.mirrors[j] = first;
        seg.mirrors[0] = cur;
        if (cur.kind === "lv") newPrimary = cur.lvName;
      }
    }
    if (stale.size) mirrors.push({ lvName: lv.name, logName, staleImages: [...stale], newPrimary });
  }
  return { vg: out, mirrors };
}
