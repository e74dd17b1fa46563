import type { VolumeGroup } from "../../../src/model/types.js";
import { isMirrorSeg, isVisible, raidMetaNames, segAreaExtents, segAreas } from "../../../src/model/lv-info.js";
import { validateVg } from "../../../src/model/validate.js";
import { DeviceScan } from "../../../src/commands/scan.js";
import { MemoryBlockDevice } from "../../../src/blockdev/memory-block-device.js";
import { readDevice } from "../../../src/format/pv-read.js";
import { parseVgText } from "../../../src/format/vg-import.js";
import { existsSync } from "node:fs";
import { preadFile } from "./world.js";
import { listNamedDevices } from "../../../src/commands/device-list.js";

/** Structural checks of a VG that the suite applies after every crash and every command. */

/** validateVg plus: no hidden LV without a user, no extent owned twice. */
export function vgProblems(vg: VolumeGroup): string[] {
  const p = validateVg(vg);
  const used = new Set<string>();
  for (const lv of vg.lvs) {
    for (const seg of lv.segments) {
      for (const a of segAreas(seg)) if (a.kind === "lv") used.add(a.lvName);
      if (isMirrorSeg(seg) && seg.mirrorLog) used.add(seg.mirrorLog);
      for (const m of raidMetaNames(seg)) used.add(m);
    }
  }
  for (const lv of vg.lvs) if (!isVisible(lv) && !used.has(lv.name)) p.push(`hidden LV ${lv.name} has no user (left half-converted)`);
  // Independently of validateVg: no physical extent has two owners, none lies past its PV.
  const owner = new Map<string, string>();
  for (const lv of vg.lvs) {
    for (const seg of lv.segments) {
      const len = segAreaExtents(seg);
      for (const a of segAreas(seg)) {
        if (a.kind !== "pv") continue;
        const pv = vg.pvs.find((x) => x.id === a.pvId);
        for (let i = 0; i < len; i++) {
          const pe = a.startPe + i;
          if (!pv || pe >= pv.peCount) p.push(`LV ${lv.name}: PE ${pe} is past the end of its PV`);
          const k = `${a.pvId}:${pe}`;
          const o = owner.get(k);
          if (o !== undefined) p.push(`PE ${pe} of PV ${a.pvId} is shared by ${o} and ${lv.name}`);
          owner.set(k, lv.name);
        }
      }
    }
  }
  return [...new Set(p)];
}

export interface CopyState {
  device: string;
  /** seqno of the copy, or undefined when the area is unusable. */
  seqno: number | undefined;
  checksum: number | undefined;
  problem: string | undefined;
}

/** Every metadata area of every device: which copy it holds (read in-process, never written). */
export async function copyStates(devices: readonly string[]): Promise<CopyState[]> {
  const scan = await DeviceScan.run(listNamedDevices(devices));
  const out: CopyState[] = [];
  for (const d of scan.devices) {
    for (const m of d.mdas) {
      if (m.ignored) continue;
      const copy = [...scan.copies.values()].flat().find((c) => c.mda === m);
      out.push({
        device: d.entry.name,
        seqno: copy?.imported?.vg.seqno,
        checksum: m.textChecksum,
        problem: m.problem ?? copy?.problem ?? (m.text === undefined ? "no text" : undefined),
      });
    }
    if (!d.label && d.labelProblem) out.push({ device: d.entry.name, seqno: undefined, checksum: undefined, problem: d.labelProblem });
  }
  return out;
}

/** Devices whose copy is not the newest one (or unusable). */
export function laggingDevices(states: readonly CopyState[]): string[] {
  const best = Math.max(...states.map((s) => s.seqno ?? -1));
  const bestSum = states.find((s) => s.seqno === best)?.checksum;
  return [...new Set(states.filter((s) => s.seqno !== best || s.checksum !== bestSum || s.problem).map((s) => s.device))];
}

/**
 * The newest committed metadata of a VG as the disks hold it *now*: the
 * label and metadata areas (first MiB) of every disk are read synchronously,
 * so nothing else in this process (an in-process daemon) runs in between;
 * parsing then only awaits memory devices.
 */
export async function metadataNow(paths: readonly string[], vgName: string): Promise<VolumeGroup | undefined> {
  const images = paths.filter((p) => existsSync(p)).map((p) => ({ p, bytes: preadFile(p, 0, 1 << 20) }));
  let best: VolumeGroup | undefined;
  for (const { p, bytes } of images) {
    const read = await readDevice(new MemoryBlockDevice(p, bytes), p);
    for (const m of read.mdas) {
      if (m.text === undefined || m.vgName !== vgName) continue;
      try {
        const vg = parseVgText(m.text, p).vg;
        if (!best || vg.seqno > best.seqno) best = vg;
      } catch {
        // a bad copy: others decide
      }
    }
  }
  return best;
}
