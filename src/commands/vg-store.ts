import { formatId } from "../base/uuid.js";
import { openBlockDevice } from "../blockdev/open-device.js";
import type { BlockDevice } from "../blockdev/block-device.js";
import { decodeMdaHeader, EMPTY_LOCN, MDA_HEADER_BYTES, RAW_LOCN_IGNORED, type MdaHeaderDisk } from "../format/mda.js";
import { commitHeaders, encodeText, initMda, planCommit, writeTexts, type MdaTarget } from "../format/pv-write.js";
import { exportVgText } from "../format/vg-export.js";
import { CommandError, FormatError, InternalError } from "../errors/errors.js";
import { cloneVg } from "../model/clone.js";
import { validateVg } from "../model/validate.js";
import type { VolumeGroup } from "../model/types.js";
import type { DeviceScan, MetadataCopy, ScannedDevice } from "./scan.js";

/**
 * A VG as read for one command: the chosen metadata copy (highest seqno), the
 * device of each PV (undefined = missing) and what was wrong with other copies.
 * `vg` is the working copy a command changes; `commit()` writes it.
 */
export class LoadedVg {
  /** Commits made so far by this command (lvm2 numbers them: "Write[2] from ..."). */
  commits = 0;
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

  missingPvIds(): string[] {
    return this.vg.pvs.filter((pv) => !this.devices.get(pv.id)).map((pv) => pv.id);
  }

  isPartial(): boolean {
    return this.missingPvIds().length > 0;
  }

  /** The name reports show for a PV: its device, or "[unknown]". */
  pvName(pvId: string): string {
    return this.devices.get(pvId)?.entry.name ?? "[unknown]";
  }
}

/** Pick the best copy of a VG's metadata and attach devices. undefined when the VG is not seen. */
export function loadVg(scan: DeviceScan, name: string): LoadedVg | undefined {
  const copies = scan.copies.get(name);
  if (!copies) return undefined;
  const good = copies.filter((c) => c.imported);
  if (good.length === 0) return undefined;
  let best = good[0]!;
  for (const c of good) if (c.imported!.vg.seqno > best.imported!.vg.seqno) best = c;
  const warnings: string[] = [];
  const inconsistent = new Set<string>();
  const bestVg = best.imported!.vg;
  for (const c of copies) {
    if (c.problem) {
      warnings.push(`WARNING: ${c.problem}`);
      inconsistent.add(c.device.entry.real);
      continue;
    }
    const s = c.imported!.vg.seqno;
    if (s !== bestVg.seqno || c.mda.textChecksum !== best.mda.textChecksum) {
      if (c.imported!.vg.id !== bestVg.id) continue; // another VG with the same name: reported elsewhere
      warnings.push(`WARNING: ignoring metadata seqno ${s} on ${c.device.entry.name} for seqno ${bestVg.seqno} on ${best.device.entry.name} for VG ${name}.`);
      inconsistent.add(c.device.entry.real);
    }
  }
  const devices = new Map<string, ScannedDevice | undefined>();
  for (const pv of bestVg.pvs) {
    const d = scan.pvDevices.get(pv.id);
    devices.set(pv.id, d);
    if (d) {
      // A PV of this VG whose own areas hold nothing usable (damaged header, no text).
      for (const m of d.mdas) {
        if (m.problem && !copies.some((c) => c.mda === m)) {
          warnings.push(`WARNING: ${m.problem}`);
          inconsistent.add(d.entry.real);
        } else if (!m.problem && !m.ignored && m.text === undefined) {
          inconsistent.add(d.entry.real);
        }
      }
    }
  }
  if (inconsistent.size) warnings.push(`WARNING: Inconsistent metadata found for VG ${name}.`);
  for (const pv of bestVg.pvs) {
    if (devices.get(pv.id)) continue;
    const uuid = formatId(pv.id);
    warnings.push(`WARNING: Couldn't find device with uuid ${uuid}.`);
    warnings.push(pv.deviceHint ? `WARNING: VG ${name} is missing PV ${uuid} (last written to ${pv.deviceHint}).` : `WARNING: VG ${name} is missing PV ${uuid}.`);
  }
  return new LoadedVg(cloneVg(bestVg), bestVg, copies, best, devices, warnings, inconsistent);
}

export interface CommitOptions {
  /** Command line without the program name, e.g. "lvcreate -L 1g -n lv vg". */
  commandLine: string;
  nowSeconds?: number;
}

/** Open every present PV of the VG read-write and gather the metadata areas to write. */
async function openTargets(loaded: LoadedVg, vg: VolumeGroup): Promise<{ targets: MdaTarget[]; devs: BlockDevice[] }> {
  const targets: MdaTarget[] = [];
  const devs: BlockDevice[] = [];
  try {
    for (const pv of vg.pvs) {
      const sd = loaded.devices.get(pv.id);
      if (!sd || !sd.label) continue;
      const dev = await openBlockDevice(sd.entry.name, { write: true });
      devs.push(dev);
      for (const locn of sd.label.metadataAreas) {
        const hbuf = new Uint8Array(MDA_HEADER_BYTES);
        await dev.read(locn.offsetBytes, hbuf);
        let header: MdaHeaderDisk;
        try {
          header = decodeMdaHeader(hbuf, locn.offsetBytes);
          if (header.sizeBytes !== locn.sizeBytes) throw new FormatError("size mismatch");
        } catch (e) {
          if (!(e instanceof FormatError)) throw e;
          // A damaged header is rebuilt: this write is the repair lvm2 would do.
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
 * Write the working VG as seqno+1 to every metadata area of every present PV,
 * two-phase (texts, flush, headers, flush). PVs that are missing get the
 * MISSING flag and the "[unknown]" device hint, as lvm2 writes them.
 * Returns the text written.
 */
export async function commitVg(loaded: LoadedVg, opts: CommitOptions): Promise<string> {
  const vg = loaded.vg;
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
  const { targets, devs } = await openTargets(loaded, vg);
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

export { cloneVg };
