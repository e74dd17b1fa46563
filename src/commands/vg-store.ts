import { formatId } from "../base/uuid.js";
import { openBlockDevice } from "./device-open.js";
import type { BlockDevice } from "../blockdev/block-device.js";
import { BAD_MDA_HEADER, BAD_MDA_MAGIC, BAD_MDA_START, checkMdaHeader, EMPTY_LOCN, MDA_HEADER_BYTES, RAW_LOCN_IGNORED, type MdaHeaderDisk } from "../format/mda.js";
import { PV_EXT_USED } from "../format/label.js";
import type { MdaRead } from "../format/pv-read.js";
import { pvAllocatedExtents } from "../model/extents.js";
import { clearMdaHeader, commitHeaders, encodeText, initMda, planCommit, writeLabel, writeTexts, type MdaTarget } from "../format/pv-write.js";
import { exportVgText } from "../format/vg-export.js";
import { CommandError, InternalError } from "../errors/errors.js";
import { cloneVg } from "../model/clone.js";
import { allocationProblems, validateVg } from "../model/validate.js";
import type { VolumeGroup } from "../model/types.js";
import type { DeviceScan, MetadataCopy, ScannedDevice } from "./scan.js";

/**
 * A metadata area of one of the VG's PVs that does not hold the chosen copy:
 * "stale" (an older seqno, rewritten by the next commit, lvm2's "updating old
 * metadata") or "bad" (unreadable header or text; see commitVg for which
 * ones a write repairs).
 */
export interface MdaIssue {
  device: ScannedDevice;
  mda: MdaRead;
  kind: "stale" | "bad";
}

/**
 * A VG as read for one command: the chosen metadata copy (highest seqno), the
 * device of each PV (undefined = missing) and what was wrong with other copies.
 * `vg` is the working copy a command changes; `commit()` writes it.
 */
export class LoadedVg {
  /** Commits made so far by this command (lvm2 numbers them: "Write[2] from ..."). */
  commits = 0;
  /** Metadata areas of present PVs that the next commit rewrites or reports (cleared by it). */
  mdaIssues: MdaIssue[] = [];
  /** Present PVs whose label lacks the PV_EXT_USED flag or has an old header; the next commit rewrites the label. */
  pvHeaderFixes: ScannedDevice[] = [];
  /** Devices whose metadata claims them for this VG (same VG id) but that the chosen copy no longer lists. */
  outdatedDevices: ScannedDevice[] = [];
  /** Devices not used because another device carries the same PV (lvm2's duplicate PVs). */
  duplicateDevices: ScannedDevice[] = [];
  constructor(
    public vg: VolumeGroup,
    readonly original: VolumeGroup,
    readonly copies: MetadataCopy[],
    readonly best: MetadataCopy | undefined,
    readonly devices: Map<string, ScannedDevice | undefined>,
    readonly warnings: string[],
    /** PVs whose own metadata copies are damaged or stale (repaired by the next write). */
    readonly inconsistentDevices: Set<string>,
  ) {}

  /** A VG that does not exist on disk yet (vgcreate): its first commit writes seqno 1. */
  static fresh(vg: VolumeGroup): LoadedVg {
    const original = cloneVg(vg);
    original.seqno = 0;
    return new LoadedVg(vg, original, [], undefined, new Map(), [], new Set());
  }

  deviceOf(pvId: string): ScannedDevice | undefined {
    return this.devices.get(pvId);
  }

  /**
   * PVs lvm2 counts as missing (is_missing_pv): no device, or the MISSING flag
   * from a write made while the device was away (kept until vgextend
   * --restoremissing, or cleared on read when the PV holds no extents).
   */
  missingPvIds(): string[] {
    return this.vg.pvs.filter((pv) => !this.devices.get(pv.id) || pv.flags.includes("MISSING")).map((pv) => pv.id);
  }

  isPartial(): boolean {
    return this.missingPvIds().length > 0;
  }

  /** The name reports show for a PV: its device, or "[unknown]". */
  pvName(pvId: string): string {
    return this.devices.get(pvId)?.entry.name ?? "[unknown]";
  }

  /**
   * What lvm2 repeats each time it imports the VG again (the copy kept for an
   * update, and after every write): per PV, "Couldn't find device" when it
   * is absent, "previously updated while PV was missing" when the copy
   * `from` (default: the one on disk) still flags a PV that is present.
   */
  absentPvWarnings(from: VolumeGroup = this.original): string[] {
    const out: string[] = [];
    for (const pv of from.pvs) {
      const d = this.devices.get(pv.id);
      if (!d) out.push(`WARNING: Couldn't find device with uuid ${formatId(pv.id)}.`);
      else if (pv.flags.includes("MISSING")) out.push(`WARNING: VG ${from.name} was previously updated while PV ${d.entry.name} was missing.`);
    }
    return out;
  }
}

/** lvm2's scan warnings for a metadata area it cannot use (label_scan, text_label.c). */
export function badMdaWarnings(dev: ScannedDevice, mda: MdaRead): string[] {
  const name = dev.entry.name;
  const out = mda.problems.map((p) => `WARNING: ${p}`);
  if (mda.badFields & BAD_MDA_HEADER) out.push(`WARNING: bad metadata header on ${name} at ${mda.startBytes}.`);
  else out.push(`WARNING: bad metadata text on ${name} in mda${mda.index + 1}`);
  out.push(`WARNING: scanning ${name} mda${mda.index + 1} failed to read metadata summary.`);
  out.push(`WARNING: repair VG metadata on ${name} with vgck --updatemetadata.`);
  return out;
}

/** Pick the best copy of a VG's metadata and attach devices. undefined when the VG is not seen. */
export function loadVg(scan: DeviceScan, name: string, opts: { readOnly?: boolean } = {}): LoadedVg | undefined {
  const copies = scan.copies.get(name);
  if (!copies) return undefined;
  let good = copies.filter((c) => c.imported);
  if (good.length === 0) return undefined;
  // The newest copy that describes a usable VG. One that parses but cannot be (an extent past the
  // end of its PV, an extent owned twice) is as bad as one that does not parse: reported, skipped,
  // and rewritten by the next commit; when no copy is usable, nothing is.
  const newest = (): MetadataCopy => good.reduce((b, c) => (c.imported!.vg.seqno > b.imported!.vg.seqno ? c : b));
  let best = newest();
  for (let problems = allocationProblems(best.imported!.vg); problems.length; problems = allocationProblems(best.imported!.vg)) {
    const bad = best.imported!.vg;
    for (const c of good) {
      if (c.imported!.vg !== bad && !(c.imported!.vg.seqno === bad.seqno && c.mda.textChecksum === best.mda.textChecksum)) continue;
      c.problem = `Metadata seqno ${bad.seqno} of VG ${name} on ${c.device.entry.name} is invalid: ${problems[0]}.`;
      c.imported = undefined;
    }
    good = good.filter((c) => c.imported);
    if (!good.length) throw new CommandError(`Volume group ${name} has no usable metadata: ${problems[0]}.`);
    best = newest();
  }
  const scanWarnings: string[] = [];
  const readWarnings: string[] = [];
  const inconsistent = new Set<string>();
  const issues: MdaIssue[] = [];
  const bestVg = best.imported!.vg;
  const pvIds = new Set(bestVg.pvs.map((pv) => pv.id));
  const outdated: Array<{ device: ScannedDevice; seqno: number }> = [];
  for (const c of copies) {
    if (c.problem) {
      // Parsed but unusable text: lvm2 reports it while scanning.
      scanWarnings.push(`WARNING: ${c.problem}`, `WARNING: bad metadata text on ${c.device.entry.name} in mda${c.mda.index + 1}`);
      inconsistent.add(c.device.entry.real);
      if (c.device.label && pvIds.has(c.device.label.pvIdRaw)) issues.push({ device: c.device, mda: c.mda, kind: "bad" });
      continue;
    }
    const s = c.imported!.vg.seqno;
    if (c.imported!.vg.id !== bestVg.id) continue; // another VG with the same name: reported elsewhere
    const isOutdated = c.device.label !== undefined && !pvIds.has(c.device.label.pvIdRaw);
    if (s !== bestVg.seqno || c.mda.textChecksum !== best.mda.textChecksum) {
      readWarnings.push(`WARNING: ignoring metadata seqno ${s} on ${c.device.entry.name} for seqno ${bestVg.seqno} on ${best.device.entry.name} for VG ${name}.`);
      inconsistent.add(c.device.entry.real);
      if (!isOutdated) issues.push({ device: c.device, mda: c.mda, kind: "stale" });
    }
    if (isOutdated && !outdated.some((o) => o.device === c.device)) {
      // A PV that left the VG while its own copy was not updated (lvm2's "outdated PV").
      outdated.push({ device: c.device, seqno: s });
    }
  }
  // Two devices with one PV's label (a cloned disk, two paths to one disk): as lvm2 does when nothing
  // else tells them apart, the one the metadata last named is used, else the first seen; the VG
  // cannot be changed meanwhile (ToolContext.commit).
  const duplicateWarnings: string[] = [];
  const duplicateDevices: ScannedDevice[] = [];
  const preferred = new Map<string, ScannedDevice>();
  for (const pv of bestVg.pvs) {
    const list = scan.duplicatePvs.get(pv.id);
    if (!list || list.length < 2) continue;
    const byName = list.find((d) => d.entry.name === pv.deviceHint);
    const chosen = byName ?? list[0]!;
    preferred.set(pv.id, chosen);
    for (const d of list) {
      if (d === chosen) continue;
      duplicateWarnings.push(`WARNING: Not using device ${d.entry.name} for PV ${formatId(pv.id)}.`);
      duplicateDevices.push(d);
    }
    duplicateWarnings.push(`WARNING: PV ${formatId(pv.id)} prefers device ${chosen.entry.name} because ${byName ? "device name matches previous" : "device was seen first"}.`);
  }
  const devices = new Map<string, ScannedDevice | undefined>();
  const headerFixes: ScannedDevice[] = [];
  const extWarnings: string[] = [];
  const sizeWarnings: string[] = [];
  for (const pv of bestVg.pvs) {
    const d = preferred.get(pv.id) ?? scan.pvDevices.get(pv.id);
    devices.set(pv.id, d);
    if (!d) continue;
    // lvm2's _check_pv_dev_sizes: a device shorter than the PV it carries (truncated, shrunk).
    const devSectors = Math.floor(d.sizeBytes / 512);
    if (pv.devSizeSectors && devSectors < pv.devSizeSectors) {
      sizeWarnings.push(`WARNING: Device ${d.entry.name} has size of ${devSectors} sectors which is smaller than corresponding PV size of ${pv.devSizeSectors} sectors. Was device resized?`);
    }
    let goodMdas = 0;
    for (const m of d.mdas) {
      if (m.problem) {
        scanWarnings.push(...badMdaWarnings(d, m));
        inconsistent.add(d.entry.real);
        if (!issues.some((i) => i.mda === m)) issues.push({ device: d, mda: m, kind: "bad" });
      } else if (!m.ignored && m.textBytes === undefined) {
        // An in-use area that holds no text (a PV added while its header was rebuilt): written by the next commit.
        inconsistent.add(d.entry.real);
      } else goodMdas++;
    }
    if (d.mdas.length && !goodMdas && d.mdas.some((m) => m.problem)) {
      scanWarnings.push(`WARNING: scan failed to get metadata summary from ${d.entry.name} PVID ${pv.id}`);
    }
    if (d.label && !pv.flags.includes("MISSING")) {
      if (d.label.extVersion < 2) extWarnings.push(`WARNING: PV ${d.entry.name} in VG ${name} is using an old PV header, modify the VG to update.`);
      else if (!(d.label.extFlags & PV_EXT_USED)) extWarnings.push(`WARNING: PV ${d.entry.name} in VG ${name} is missing the used flag in PV header.`);
      if (d.label.extVersion < 2 || !(d.label.extFlags & PV_EXT_USED)) headerFixes.push(d);
    }
  }
  if (readWarnings.length) readWarnings.push(`WARNING: Inconsistent metadata found for VG ${name}.`, `See vgck --updatemetadata to correct inconsistency.`);
  // Readers that never change the VG (reports) share the scan's parse; everyone else gets a working copy.
  const working = opts.readOnly ? bestVg : cloneVg(bestVg);
  const missingWarnings: string[] = [];
  const deviceWarnings: string[] = [];
  for (const pv of working.pvs) {
    const d = devices.get(pv.id);
    const uuid = formatId(pv.id);
    if (!d) {
      deviceWarnings.push(`WARNING: Couldn't find device with uuid ${uuid}.`);
      missingWarnings.push(pv.deviceHint ? `WARNING: VG ${name} is missing PV ${uuid} (last written to ${pv.deviceHint}).` : `WARNING: VG ${name} is missing PV ${uuid}.`);
    } else if (pv.flags.includes("MISSING")) {
      deviceWarnings.push(`WARNING: VG ${name} was previously updated while PV ${d.entry.name} was missing.`);
      if (pvAllocatedExtents(working, pv) === 0) {
        // vg_read: an unused PV that came back is simply taken back.
        missingWarnings.push(`WARNING: VG ${name} has unused reappeared PV ${d.entry.name} ${uuid}.`);
        pv.flags = pv.flags.filter((f) => f !== "MISSING");
      } else missingWarnings.push(`WARNING: VG ${name} was missing PV ${d.entry.name} ${uuid}.`);
    }
  }
  const outdatedWarnings: string[] = [];
  for (const o of outdated) outdatedWarnings.push(`WARNING: outdated PV ${o.device.entry.name} seqno ${o.seqno} has been removed in current VG ${name} seqno ${bestVg.seqno}.`);
  if (outdated.length) outdatedWarnings.push("See vgck --updatemetadata to clear outdated metadata.");
  if (sizeWarnings.length) sizeWarnings.push(`WARNING: One or more devices used as PVs in VG ${name} have changed sizes.`);
  const warnings = [...duplicateWarnings, ...scanWarnings, ...readWarnings, ...deviceWarnings, ...outdatedWarnings, ...extWarnings, ...sizeWarnings, ...missingWarnings];
  const loaded = new LoadedVg(working, bestVg, copies, best, devices, warnings, inconsistent);
  loaded.duplicateDevices = duplicateDevices;
  loaded.mdaIssues = issues;
  loaded.pvHeaderFixes = headerFixes;
  loaded.outdatedDevices = outdated.map((o) => o.device);
  return loaded;
}

export interface CommitOptions {
  /** Command line without the program name, e.g. "lvcreate -L 1g -n lv vg". */
  commandLine: string;
  nowSeconds?: number;
  /** Receives lvm2's warnings about copies this write repairs ("updating old metadata ..."). */
  onWarning?: (line: string) => void;
}

/**
 * Header fields that make an area unsafe to rewrite: a wrong magic or start
 * may mean the PV header points at something that is not an mda at all, so
 * lvm2 leaves such areas alone (vg_write_commit_bad_mdas) and so do we.
 */
const UNREPAIRABLE = BAD_MDA_MAGIC | BAD_MDA_START;

/** Open every present PV of the VG read-write and gather the metadata areas to write. */
async function openTargets(loaded: LoadedVg, vg: VolumeGroup, warn: (line: string) => void): Promise<{ targets: MdaTarget[]; devs: BlockDevice[] }> {
  const targets: MdaTarget[] = [];
  const devs: BlockDevice[] = [];
  try {
    for (const pv of vg.pvs) {
      const sd = loaded.devices.get(pv.id);
      if (!sd || !sd.label) continue;
      const dev = await openBlockDevice(sd.entry.name, { write: true });
      devs.push(dev);
      let index = 0;
      for (const locn of sd.label.metadataAreas) {
        const n = ++index;
        const hbuf = new Uint8Array(MDA_HEADER_BYTES);
        await dev.read(locn.offsetBytes, hbuf);
        const check = checkMdaHeader(hbuf, locn.offsetBytes, sd.entry.name);
        let header: MdaHeaderDisk = check.header;
        let bad = check.badFields;
        if (!bad && header.sizeBytes !== locn.sizeBytes) bad = BAD_MDA_HEADER;
        if (bad) {
          if (bad & UNREPAIRABLE) {
            warn(`WARNING: not repairing bad metadata (0x${(bad | BAD_MDA_HEADER).toString(16)}) for mda${n} on ${sd.entry.name}`);
            continue;
          }
          // A header with a bad checksum or version is rebuilt: this write is the repair.
          await initMda(dev, locn.offsetBytes, locn.sizeBytes);
          header = { startBytes: locn.offsetBytes, sizeBytes: locn.sizeBytes, committed: EMPTY_LOCN, precommitted: EMPTY_LOCN };
        }
        if (header.committed.flags & RAW_LOCN_IGNORED) continue;
        targets.push({ dev, devName: sd.entry.name, header });
      }
    }
  } catch (e) {
    await Promise.allSettled(devs.map((d) => d.close()));
    throw e;
  }
  return { targets, devs };
}

/**
 * What the first commit of a command repairs, reported in lvm2's words before
 * the write: stale copies ("updating old metadata"), damaged areas (lvm2 only
 * rewrites those under vgck --updatemetadata; we rewrite them on any write,
 * the safe fields permitting) and labels missing the PV_EXT_USED flag.
 */
async function repairBeforeCommit(loaded: LoadedVg, vg: VolumeGroup, warn: (line: string) => void): Promise<void> {
  for (const issue of loaded.mdaIssues) {
    const name = issue.device.entry.name;
    if (!vg.pvs.some((pv) => loaded.devices.get(pv.id) === issue.device)) continue;
    if (issue.kind === "stale") warn(`WARNING: updating old metadata to ${vg.seqno} on ${name} for VG ${vg.name}.`);
    else if (!(issue.mda.badFields & UNREPAIRABLE)) {
      warn(`WARNING: repairing bad metadata (0x${issue.mda.badFields.toString(16)}) in mda${issue.mda.index + 1} at ${issue.mda.startBytes} on ${name}.`);
    }
  }
  for (const sd of loaded.pvHeaderFixes) {
    if (!sd.label || !vg.pvs.some((pv) => loaded.devices.get(pv.id) === sd)) continue;
    warn(`WARNING: updating PV header on ${sd.entry.name} for VG ${vg.name}.`);
    const dev = await openBlockDevice(sd.entry.name, { write: true });
    try {
      await writeLabel(dev, { ...sd.label, extVersion: 2, extFlags: sd.label.extFlags | PV_EXT_USED });
      await dev.flush();
    } finally {
      await dev.close();
    }
  }
  loaded.mdaIssues = [];
  loaded.pvHeaderFixes = [];
}

/**
 * Write the working VG as seqno+1 to every metadata area of every present PV,
 * two-phase (texts, flush, headers, flush). PVs that are missing get the
 * MISSING flag and the "[unknown]" device hint, as lvm2 writes them.
 * Returns the text written.
 */
export async function commitVg(loaded: LoadedVg, opts: CommitOptions): Promise<string> {
  const vg = loaded.vg;
  const warn = opts.onWarning ?? ((): void => undefined);
  vg.seqno = (loaded.commits === 0 ? loaded.original.seqno : vg.seqno) + 1;
  for (const pv of vg.pvs) {
    const d = loaded.devices.get(pv.id);
    if (d) {
      pv.deviceHint = d.entry.name;
      pv.devSizeSectors = pv.devSizeSectors || Math.floor(d.sizeBytes / 512);
    } else {
      pv.deviceHint = "[unknown]";
      if (!pv.flags.includes("MISSING")) pv.flags.push("MISSING");
    }
  }
  const problems = validateVg(vg);
  if (problems.length) throw new InternalError(`refusing to write invalid metadata for VG ${vg.name}: ${problems.join("; ")}`);
  loaded.commits++;
  const desc = loaded.commits === 1 ? `Write from ${opts.commandLine}.` : `Write[${loaded.commits}] from ${opts.commandLine}.`;
  const text = exportVgText(vg, { style: "disk", description: desc, ...(opts.nowSeconds === undefined ? {} : { nowSeconds: opts.nowSeconds }) });
  const bytes = encodeText(text);
  await repairBeforeCommit(loaded, vg, warn);
  const { targets, devs } = await openTargets(loaded, vg, warn);
  try {
    if (targets.length === 0) throw new CommandError(`Cannot write VG ${vg.name}: no metadata areas are available on its PVs.`);
    const plans = planCommit(targets, bytes, vg.name, vg.seqno);
    await writeTexts(plans, bytes);
    await commitHeaders(plans);
  } finally {
    await Promise.allSettled(devs.map((d) => d.close()));
  }
  return text;
}

/**
 * lvm2's _wipe_outdated_pvs (vgremove, vgck --updatemetadata): a device whose
 * own metadata still claims it for this VG, although the VG no longer lists
 * it, gets its metadata areas emptied and its PV_EXT_USED flag cleared.
 */
export async function wipeOutdatedPvs(loaded: LoadedVg, warn: (line: string) => void): Promise<void> {
  for (const sd of loaded.outdatedDevices) {
    if (!sd.label) continue;
    const dev = await openBlockDevice(sd.entry.name, { write: true });
    try {
      for (const m of sd.mdas) {
        if (!m.header) continue;
        warn(`WARNING: wiping mda on outdated PV ${sd.entry.name}`);
        await clearMdaHeader(dev, m.header);
      }
      warn(`WARNING: wiping header on outdated PV ${sd.entry.name}`);
      await writeLabel(dev, { ...sd.label, extVersion: 2, extFlags: sd.label.extFlags & ~PV_EXT_USED });
      await dev.flush();
    } finally {
      await dev.close();
    }
  }
  loaded.outdatedDevices = [];
}

export { cloneVg };
