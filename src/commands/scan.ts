import { openBlockDevice } from "./device-open.js";
import { readDevice, TextCopies, type DeviceRead, type MdaRead } from "../format/pv-read.js";
import { parseVgText, type ImportedVg } from "../format/vg-import.js";
import { LvmError } from "../errors/errors.js";
import type { DeviceEntry } from "./device-list.js";
import { ParseCache } from "./parse-cache.js";

/**
 * One pass over the visible devices: labels, metadata areas and their texts,
 * parsed once per distinct copy. Read-only: opening for write happens only at
 * commit time, and only for the PVs of the VG being changed.
 */
export interface ScannedDevice extends DeviceRead {
  entry: DeviceEntry;
}

export interface MetadataCopy {
  device: ScannedDevice;
  mda: MdaRead;
  imported: ImportedVg | undefined;
  problem: string | undefined;
}

export class DeviceScan {
  readonly devices: ScannedDevice[] = [];
  /** Devices that could not be read at all, with why. */
  readonly unreadable: Array<{ entry: DeviceEntry; reason: string }> = [];
  readonly pvDevices = new Map<string, ScannedDevice>();
  readonly duplicatePvs = new Map<string, ScannedDevice[]>();
  /** Metadata copies by VG name (from the text itself). */
  readonly copies = new Map<string, MetadataCopy[]>();

  static async run(entries: readonly DeviceEntry[], cache: ParseCache = new ParseCache(undefined)): Promise<DeviceScan> {
    const scan = new DeviceScan();
    const parsed = new Map<string, ImportedVg | LvmError>();
    // Devices are read concurrently: a scan of many devices is I/O-latency bound.
    const copies = new TextCopies();
    const reads = await Promise.all(
      entries.map(async (entry) => {
        try {
          const dev = await openBlockDevice(entry.name, { write: false });
          try {
            return { entry, read: await readDevice(dev, entry.name, copies) };
          } finally {
            await dev.close();
          }
        } catch (e) {
          return { entry, error: (e as Error).message };
        }
      }),
    );
    for (const r of reads) {
      if (!r.read) {
        scan.unreadable.push({ entry: r.entry, reason: r.error ?? "unreadable" });
        continue;
      }
      const sd: ScannedDevice = { ...r.read, entry: r.entry };
      scan.devices.push(sd);
      if (!sd.label) continue;
      const id = sd.label.pvIdRaw;
      if (scan.pvDevices.has(id)) {
        const list = scan.duplicatePvs.get(id) ?? [scan.pvDevices.get(id)!];
        list.push(sd);
        scan.duplicatePvs.set(id, list);
        continue;
      }
      scan.pvDevices.set(id, sd);
      for (const mda of sd.mdas) {
        if (mda.textBytes === undefined || mda.vgName === undefined) continue;
        // As lvm2: copies with the same checksum and size are one text, parsed once.
        const key = `${mda.textChecksum}:${mda.textBytes.length}`;
        let imp = parsed.get(key);
        if (!imp) {
          imp = cache.get(mda.textBytes);
          if (!imp) {
            try {
              imp = parseVgText(mda.text!, sd.entry.name);
              cache.put(mda.textBytes, imp);
            } catch (e) {
              if (!(e instanceof LvmError)) throw e;
              imp = e;
            }
          }
          parsed.set(key, imp);
        }
        const copy: MetadataCopy =
          imp instanceof LvmError
            ? { device: sd, mda, imported: undefined, problem: `Error parsing metadata on ${sd.entry.name}: ${imp.message}` }
            : { device: sd, mda, imported: imp, problem: undefined };
        const name = imp instanceof LvmError ? mda.vgName : imp.vg.name;
        const list = scan.copies.get(name) ?? [];
        list.push(copy);
        scan.copies.set(name, list);
      }
    }
    return scan;
  }

  vgNames(): string[] {
    return [...this.copies.keys()].filter((n) => this.copies.get(n)!.some((c) => c.imported)).sort();
  }

  /** Device read by canonical path. */
  byReal(real: string): ScannedDevice | undefined {
    return this.devices.find((d) => d.entry.real === real);
  }
}
