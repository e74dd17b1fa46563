import type { VolumeGroup } from "../model/types.js";
import { LV_FLAG_ORDER, LV_FLAG_WORDS, PV_FLAG_ORDER, PV_FLAG_WORDS, VG_FLAG_ORDER, VG_FLAG_WORDS, orderFlags } from "./flags.js";

/**
 * The VG that reading back exportVgText(vg) yields, computed without the
 * text: the exporter writes visible LVs first, flag words in lvm2's table
 * order and drops words it does not know; the importer sorts segments and
 * reads "inherit"/"normal" and read_ahead 0 as defaults. A test holds this
 * to parseVgText(exportVgText(vg)) for every VG we can build.
 */
export function normalizeAsParsed(vg: VolumeGroup): VolumeGroup {
  const known = (words: readonly string[], table: Record<string, unknown>): string[] => words.filter((w) => table[w] !== undefined);
  return {
    ...vg,
    status: orderFlags(vg.status, VG_FLAG_ORDER),
    flags: orderFlags(known(vg.flags, VG_FLAG_WORDS), VG_FLAG_ORDER),
    allocationPolicy: vg.allocationPolicy === "normal" || vg.allocationPolicy === "inherit" ? undefined : vg.allocationPolicy,
    pvs: vg.pvs.map((pv) => ({
      ...pv,
      deviceHint: pv.deviceHint ?? "[unknown]",
      status: orderFlags(pv.status.filter((s) => s !== "MISSING"), PV_FLAG_ORDER),
      flags: orderFlags(known(pv.status.includes("MISSING") && !pv.flags.includes("MISSING") ? [...pv.flags, "MISSING"] : pv.flags, PV_FLAG_WORDS), PV_FLAG_ORDER),
    })),
    lvs: [...vg.lvs.filter((l) => l.status.includes("VISIBLE")), ...vg.lvs.filter((l) => !l.status.includes("VISIBLE"))].map((lv) => ({
      ...lv,
      status: orderFlags(lv.status, LV_FLAG_ORDER),
      flags: orderFlags(known(lv.flags, LV_FLAG_WORDS), LV_FLAG_ORDER),
      allocationPolicy: lv.allocationPolicy === "inherit" ? undefined : lv.allocationPolicy,
      readAheadSectors: lv.readAheadSectors === 0 ? undefined : lv.readAheadSectors,
      segments: [...lv.segments].sort((a, b) => a.startExtent - b.startExtent),
    })),
  };
}
