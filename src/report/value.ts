/**
 * A reported field value: the text shown and the raw value lvm2 sorts and
 * selects on (libdm-report's report_string / sort_value).
 */
export type FieldKind = "STR" | "NUM" | "SIZ" | "PCT" | "TIM" | "STR_LIST";

export interface Value {
  text: string;
  /**
   * NUM/SIZ/TIM: the number (sizes in sectors, -1 for lvm2's "undefined").
   * PCT: lvm2's dm_percent_t (1000000 = 1%, -1 = invalid).
   * STR: the string compared (the name without brackets for hidden LVs).
   * STR_LIST: the text.
   */
  sort: number | string;
  /** STR_LIST: the items, sorted, for selection. */
  items?: readonly string[];
  /** STR_LIST: the items in the order shown (json_std arrays). */
  shown?: readonly string[];
}

export const EMPTY: Value = { text: "", sort: "" };

export const str = (text: string, sort: string = text): Value => ({ text, sort });

export const num = (n: number): Value => ({ text: String(n), sort: n });

/** A list shown in the order given (or sorted when `sorted`), joined by `delimiter`. */
export function strList(items: readonly string[], delimiter = ",", sorted = false): Value {
  const sortedItems = items.length > 1 ? [...items].sort(byteCompare) : items;
  const shown = sorted ? sortedItems : items;
  const text = shown.join(delimiter);
  return { text, sort: text, items: sortedItems, shown };
}

/** strcmp() on ASCII/UTF-16 code units. */
export function byteCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** lvm2's "undefined" number (UINT64_MAX shown as -1). */
export const NUM_UNDEF = -1;
