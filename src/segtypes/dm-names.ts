/**
 * Device-mapper style names for the devices of an LV: "<vg>-<lv>" with every
 * '-' inside a name doubled, as lvm2's build_dm_name does, so the name can be
 * split back unambiguously (/dev/mapper/vg-lv).
 */
export function dmName(vgName: string, lvName: string): string {
  return `${vgName.replace(/-/g, "--")}-${lvName.replace(/-/g, "--")}`;
}

/** Inverse of dmName, undefined when the name is not of that form. */
export function splitDmName(name: string): { vg: string; lv: string } | undefined {
  const m = /^((?:[^-]|--)+)-((?:[^-]|--)+)$/.exec(name);
  if (!m) return undefined;
  return { vg: m[1]!.replace(/--/g, "-"), lv: m[2]!.replace(/--/g, "-") };
}
