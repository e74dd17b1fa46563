/**
 * Names (lib/misc/lvm-string.c): VG and LV names are 1..127 characters of
 * [A-Za-z0-9+_.-], not starting with '-', not "." or "..". User LV names must
 * not contain the strings lvm2 reserves for sub-LVs nor start with
 * "pvmove"/"snapshot". Sub-LV names come from the functions below only.
 */
const NAME_RE = /^[A-Za-z0-9+_.-]+$/;
export const NAME_LEN = 128;

export function validVgName(name: string): boolean {
  return name.length > 0 && name.length < NAME_LEN && NAME_RE.test(name) && name[0] !== "-" && name !== "." && name !== "..";
}

export function validLvName(name: string): boolean {
  return validVgName(name) && name !== "snapshot" && name !== "pvmove";
}

/** Strings sub-LV names use (lvm-string.c _lvname_has_reserved_component_string), in lvm2's order. */
export const RESERVED_LV_SUBSTRINGS = [
  "_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_wcorig", "_mimage", "_mlog", "_rimage",
  "_rmeta", "_tdata", "_tmeta", "_vdata", "_imeta", "_iorig", "_pmspare", "_vorigin",
];
export const RESERVED_LV_PREFIXES = ["pvmove", "snapshot"];

/** Why a name cannot be given to a new user LV, in lvm2's words, or undefined. */
export function userLvNameProblem(name: string, vgName: string): string | undefined {
  if (!validVgName(name)) return `Logical volume name "${name}" is invalid.`;
  const pre = RESERVED_LV_PREFIXES.find((p) => name.startsWith(p));
  if (pre) return `Names starting "${pre}" are reserved. Please choose a different LV name.`;
  for (const r of RESERVED_LV_SUBSTRINGS) if (name.includes(r)) return `Names including "${r}" are reserved. Please choose a different LV name.`;
  void vgName;
  return undefined;
}

export const mirrorImageName = (lv: string, n: number): string => `${lv}_mimage_${n}`;
export const mirrorLogName = (lv: string): string => `${lv}_mlog`;
