import type { TableLine } from "../mapper/table.js";
import type { VolumeGroup } from "../model/types.js";
import { findLv } from "../model/lv-info.js";
import { dmName } from "../segtypes/dm-names.js";
import { lvDependencies, lvTableLines, type TableEnv } from "../segtypes/table-lines.js";

/**
 * The devices an LV needs, sub-LVs first (lvm2's dev_manager builds the same
 * tree): a mirror needs its images and log loaded before its own table can
 * refer to them. Each node is a mapped device with its table.
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
  const out: DeviceNode[] = [];
  const seen = new Set<string>();
  const visit = (name: string, depth: number): void => {
    if (seen.has(name) || depth > 32) return;
    seen.add(name);
    const lv = findLv(vg, name);
    if (!lv) throw new Error(`LV ${vg.name}/${name} not found`);
    const deps = lvDependencies(vg, lv);
    for (const d of deps) visit(d, depth + 1);
    out.push({ name: dmName(vg.name, lv.name), lvName: lv.name, lines: lvTableLines(vg, lv, env), deps: deps.map((d) => dmName(vg.name, d)) });
  };
  visit(lvName, 0);
  return out;
}
