import type { Lab } from "./lab.js";

/**
 * The pvmove tests' layout on `pv` of VG "vg" (4 MiB extents): inactive,
 * unzeroed lv0 in two pieces with lv1 between them (lv0 0-3, lv1, lv0 4-7),
 * so a move of `pv` makes pvmove0 with three segments over two LVs.
 */
export function lv0SplitByLv1(lab: Lab, pv: string): void {
  lab.ok("lvcreate", "-q", "-an", "-Zn", "-n", "lv0", "-l", "4", "vg", pv);
  lab.ok("lvcreate", "-q", "-an", "-Zn", "-n", "lv1", "-l", "2", "vg", pv);
  lab.ok("lvextend", "-q", "-l", "+4", "vg/lv0", pv);
}
