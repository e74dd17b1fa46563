import { pread, pwrite } from "./file-bytes.js";
import type { Lab } from "./lab.js";

/**
 * An inactive LV's bytes straight on its PV files, segment by segment
 * (`lvs --segments -o seg_pe_ranges`): what lands on disk, not what a
 * client sees. Linear segments only (one range per segment).
 */
function lvPieces(l: Lab, lv: string): Array<{ path: string; offset: number; length: number }> {
  const extentBytes = Number(l.ok("vgs", "--noheadings", "--nosuffix", "--units", "b", "-o", "vg_extent_size", lv.split("/")[0]!).trim());
  return l
    .ok("lvs", "--noheadings", "--segments", "-o", "seg_pe_ranges", lv)
    .trim()
    .split("\n")
    .map((line) => {
      const m = /^\s*(.*):(\d+)-(\d+)\s*$/.exec(line);
      if (!m) throw new Error(`${lv}: not a linear segment: ${line}`);
      const path = m[1]!;
      const peStart = Number(l.ok("pvs", "--noheadings", "--nosuffix", "--units", "b", "-o", "pe_start", path).trim());
      return { path, offset: peStart + Number(m[2]) * extentBytes, length: (Number(m[3]) - Number(m[2]) + 1) * extentBytes };
    });
}

export function readLvFromPvs(l: Lab, lv: string): Buffer {
  return Buffer.concat(lvPieces(l, lv).map(({ path, offset, length }) => pread(path, offset, length)));
}

/** Write `data` (the LV's size) over an inactive LV's extents on its PV files. */
export function writeLvToPvs(l: Lab, lv: string, data: Buffer): void {
  let at = 0;
  for (const { path, offset, length } of lvPieces(l, lv)) {
    pwrite(path, offset, data.subarray(at, at + length));
    at += length;
  }
  if (at !== data.length) throw new Error(`${lv} is ${at} bytes, data ${data.length}`);
}
