import { lazyBuiltin } from "./lazy-builtin.js";

const crypto = lazyBuiltin<typeof import("node:crypto")>("node:crypto");

/**
 * LVM ids (lib/uuid/uuid.c): 32 characters from [0-9a-zA-Z], shown with dashes
 * in groups 6-4-4-4-4-4-6. Dashes are ignored on read.
 */
const ID_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
export const ID_LEN = 32;
const GROUPS = [6, 4, 4, 4, 4, 4, 6];

export function newId(): string {
  const bytes = crypto().randomBytes(ID_LEN);
  let s = "";
  // 62 symbols: reject-free bias is acceptable for an identifier, as in lvm2 (% 62).
  for (const b of bytes) s += ID_CHARS[b % ID_CHARS.length];
  return s;
}

/** Strip dashes; returns undefined unless the result is 32 valid characters. */
export function parseId(text: string): string | undefined {
  const raw = text.replace(/-/g, "");
  if (raw.length !== ID_LEN) return undefined;
  if (!/^[0-9a-zA-Z!#]+$/.test(raw)) return undefined;
  return raw;
}

export function formatId(raw: string): string {
  const out: string[] = [];
  let pos = 0;
  for (const g of GROUPS) {
    out.push(raw.slice(pos, pos + g));
    pos += g;
  }
  return out.join("-");
}
