/**
 * The tree that LVM's config language parses into (device_mapper/libdm-config.c):
 * used for VG metadata text, backup files and ulvm.conf alike.
 */
export type ConfigScalar =
  | { readonly kind: "int"; readonly value: number }
  | { readonly kind: "float"; readonly value: number }
  | { readonly kind: "string"; readonly value: string };

export type ConfigValue = ConfigScalar | { readonly kind: "array"; readonly items: readonly ConfigScalar[] };

export interface ConfigSetting {
  readonly kind: "setting";
  readonly name: string;
  readonly value: ConfigValue;
  /** 1-based source line, for error messages. */
  readonly line: number;
}

export interface ConfigSection {
  readonly kind: "section";
  readonly name: string;
  readonly children: ConfigNode[];
  readonly line: number;
}

export type ConfigNode = ConfigSetting | ConfigSection;

/** First child with this name (lvm2 lookups return the first match). */
export function findNode(section: ConfigSection, name: string): ConfigNode | undefined {
  for (const c of section.children) if (c.name === name) return c;
  return undefined;
}

export function findSection(section: ConfigSection, name: string): ConfigSection | undefined {
  for (const c of section.children) if (c.name === name && c.kind === "section") return c;
  return undefined;
}

export function findSetting(section: ConfigSection, name: string): ConfigSetting | undefined {
  for (const c of section.children) if (c.name === name && c.kind === "setting") return c;
  return undefined;
}

/** Walk a slash-separated path ("devices/scan") from a section. */
export function findPath(root: ConfigSection, path: string): ConfigNode | undefined {
  const parts = path.split("/").filter((p) => p.length > 0);
  let cur: ConfigNode | undefined = root;
  for (const p of parts) {
    if (cur === undefined || cur.kind !== "section") return undefined;
    cur = findNode(cur, p);
  }
  return cur;
}

export function subsections(section: ConfigSection): ConfigSection[] {
  return section.children.filter((c): c is ConfigSection => c.kind === "section");
}
