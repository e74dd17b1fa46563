import type { TableLine } from "../mapper/table.js";
import type { VolumeGroup } from "../model/types.js";
import { findLv } from "../model/lv-info.js";
import { dmName } from "../segtypes/dm-names.js";
import { lvTableLines, type TableEnv } from "../segtypes/table-lines.js";

/**
 * The devices an LV needs, sub-LVs first (lvm2's dev_manager builds the same
 * tree): a mirror needs its images and log loaded before its own table can
 * refer to them. Dependencies are read from the tables themselves, so a leg
 * left out of a mirror's table (its PV is missing) is not activated either.
 */
export interface DeviceNode {
  /** Mapped device name, "vg-lv". */
  name: string;
  lvName: string;
  lines: TableLine[];
  /** Names of the mapped devices this one refers to. */
  deps: string[];
}

export function deviceTree(vg: VolumeGroup, lvName: string, env: TableEnv): DeviceNode[] {
  const byDmName = new Map(vg.lvs.map((l) => [dmName(vg.name, l.name), l.name]));
  const out: DeviceNode[] = [];
  const seen = new Set<string>();
  const visit = (name: string, depth: number): void => {
    if (seen.has(name) || depth > 32) return;
    seen.add(name);
    const lv = findLv(vg, name);
    if (!lv) throw new Error(`LV ${vg.name}/${name} not found`);
    const lines = lvTableLines(vg, lv, env);
    const deps: string[] = [];
    for (const l of lines)
      for (const arg of l.args) {
        // Devices are plain arguments, or `key:device` options (dm-integrity's meta_device).
        const a = arg.startsWith("meta_device:") ? arg.slice("meta_device:".length) : arg;
        if (byDmName.has(a) && !deps.includes(a)) deps.push(a);
      }
    for (const d of deps) visit(byDmName.get(d)!, depth + 1);
    out.push({ name: dmName(vg.name, lv.name), lvName: lv.name, lines, deps });
  };
  visit(lvName, 0);
  return out;
}
