import type { VolumeGroup } from "./types.js";

/** Deep copy of a VG (plain data; historical LVs are shared, read-only). */
export function cloneVg(vg: VolumeGroup): VolumeGroup {
  const hist = vg.historicalLvs;
  const copy = structuredClone({ ...vg, historicalLvs: undefined }) as VolumeGroup;
  copy.historicalLvs = hist;
  return copy;
}
