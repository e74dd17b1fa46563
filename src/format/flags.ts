/**
 * Status and flag words (lib/format_text/flags.c), in lvm2's write order.
 * "status" words must be understood by every reader; "compat" words may be
 * ignored by old readers, so new markers only ever go into `flags`.
 */
export const VG_FLAG_ORDER = ["EXPORTED", "RESIZEABLE", "PVMOVE", "READ", "WRITE", "WRITE_LOCKED", "NOAUTOACTIVATE", "CLUSTERED", "SHARED"];
export const VG_FLAG_WORDS: Record<string, "status" | "compat" | "both"> = {
  EXPORTED: "status", RESIZEABLE: "status", PVMOVE: "status", READ: "status", WRITE: "status",
  WRITE_LOCKED: "compat", NOAUTOACTIVATE: "compat", CLUSTERED: "status", SHARED: "status",
};

export const PV_FLAG_ORDER = ["ALLOCATABLE", "EXPORTED", "MISSING"];
export const PV_FLAG_WORDS: Record<string, "status" | "compat" | "both"> = {
  ALLOCATABLE: "status", EXPORTED: "status", MISSING: "both",
};

export const LV_FLAG_ORDER = [
  "READ", "WRITE", "WRITE_LOCKED", "FIXED_MINOR", "VISIBLE", "PVMOVE", "LOCKED", "NOTSYNCED", "REBUILD",
  "WRITEMOSTLY", "ACTIVATION_SKIP", "NOAUTOACTIVATE", "ERROR_WHEN_FULL", "CACHE_VOL",
];
export const LV_FLAG_WORDS: Record<string, "status" | "compat" | "both"> = {
  READ: "status", WRITE: "status", WRITE_LOCKED: "compat", FIXED_MINOR: "status", VISIBLE: "status",
  PVMOVE: "status", LOCKED: "status", NOTSYNCED: "status", REBUILD: "status", WRITEMOSTLY: "status",
  ACTIVATION_SKIP: "compat", NOAUTOACTIVATE: "compat", ERROR_WHEN_FULL: "compat", CACHE_VOL: "compat",
};

export const LV_SEGTYPE_FLAG_WORDS = new Set([
  "RESHAPE", "RESHAPE_DATA_OFFSET", "RESHAPE_DELTA_DISKS_PLUS", "RESHAPE_DELTA_DISKS_MINUS",
  "REMOVE_AFTER_RESHAPE", "METADATA_FORMAT", "CROP_METADATA", "CACHE_USES_CACHEVOL",
]);

/** Sort words into lvm2's table order; unknown words keep their relative order at the end. */
export function orderFlags(words: readonly string[], order: readonly string[]): string[] {
  // Fast path: already in table order without duplicates (what the importer hands back).
  let last = -1;
  let inOrder = true;
  for (const w of words) {
    const i = order.indexOf(w);
    if (i <= last) {
      inOrder = false;
      break;
    }
    last = i;
  }
  if (inOrder) return words as string[];
  const uniq = [...new Set(words)];
  return uniq.sort((a, b) => {
    const ia = order.indexOf(a);
    const ib = order.indexOf(b);
    return (ia === -1 ? order.length : ia) - (ib === -1 ? order.length : ib);
  });
}
