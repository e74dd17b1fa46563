/**
 * A metadata copy a commit rewrote, recognised from the warning lvm2 prints
 * for it (vg-store.ts writes them in lvm2's words): a damaged mda header or
 * text repaired, an old copy updated to the new seqno, a PV header updated.
 * The daemon turns each into a `metadata-repaired` event (issue 15), whether
 * its own commit did the repair or a command's did.
 */
export interface MetadataRepair {
  readonly vg: string;
  /** The device whose copy was rewritten, as the warning names it. */
  readonly pv: string;
  /** What was done, in lvm2's words ("updating old metadata to 7"). */
  readonly what: string;
}

const REPAIR_WARNING = /^\s*WARNING: (repairing bad metadata \S+ in mda\d+ at \d+|updating old metadata to \d+|updating PV header) on (\S+?)(?: for VG \S+?)?\.$/;

/** The repair a warning line reports, or undefined for any other line. */
export function metadataRepairOf(vg: string, warning: string): MetadataRepair | undefined {
  const m = REPAIR_WARNING.exec(warning);
  return m ? { vg, pv: m[2]!, what: m[1]! } : undefined;
}
