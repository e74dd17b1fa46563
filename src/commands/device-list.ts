import { readdirSync, statSync, lstatSync, realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import { isNbdUri, parseNbdUri } from "../nbd/nbd-uri.js";

/**
 * The devices a command may see: devices/scan in ulvm.conf lists directories
 * (each contributes its block devices and regular files, not recursively) and
 * files (a file is itself a device) and NBD URIs. `--devices` replaces the list.
 */
export interface DeviceEntry {
  /** The name reports use: as the user gave it, or as found by the scan. */
  name: string;
  /** Canonical path, to match names given on the command line. */
  real: string;
  isFile: boolean;
}

function entryFor(name: string): DeviceEntry | undefined {
  // An NBD export: no path to stat; the scan connects and reads its label like any other.
  if (isNbdUri(name)) return { name: canonical(name), real: canonical(name), isFile: false };
  try {
    const st = statSync(name);
    if (!st.isFile() && !st.isBlockDevice()) return undefined;
    return { name, real: realpathSync(name), isFile: st.isFile() };
  } catch {
    return undefined;
  }
}

export function listScanDevices(scan: readonly string[]): DeviceEntry[] {
  const out: DeviceEntry[] = [];
  const seen = new Set<string>();
  const add = (e: DeviceEntry | undefined): void => {
    if (!e || seen.has(e.real)) return;
    seen.add(e.real);
    out.push(e);
  };
  for (const p of scan) {
    if (isNbdUri(p)) {
      add(entryFor(p));
      continue;
    }
    let st;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) {
      let names: string[];
      try {
        names = readdirSync(p).sort();
      } catch {
        continue;
      }
      for (const n of names) {
        const full = join(p, n);
        // Symlinks (/dev/disk/by-*, /dev/VG/LV) would list the same device twice.
        try {
          if (lstatSync(full).isSymbolicLink()) continue;
        } catch {
          continue;
        }
        add(entryFor(full));
      }
    } else add(entryFor(p));
  }
  return out;
}

/** Entries for devices named with --devices (kept in the order given). */
export function listNamedDevices(names: readonly string[]): DeviceEntry[] {
  const out: DeviceEntry[] = [];
  for (const n of names) {
    const e = entryFor(n);
    if (e && !out.some((o) => o.real === e.real)) out.push(e);
  }
  return out;
}

export function canonical(path: string): string {
  // An NBD URI stands for itself, as written minus any password (nbd-uri.ts).
  if (isNbdUri(path)) {
    try {
      return parseNbdUri(path).display;
    } catch {
      return path;
    }
  }
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}
