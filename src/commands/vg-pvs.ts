import { openBlockDevice } from "./device-open.js";
import { PV_EXT_USED } from "../format/label.js";
import { writeLabel } from "../format/pv-write.js";
import { tailReservedBytes } from "../format/pv-layout.js";
import type { PhysicalVolume } from "../model/types.js";
import { createPv, type PvCreateParams } from "./pvcreate.js";
import type { ScannedDevice } from "./scan.js";
import type { ToolContext } from "./toolcontext.js";
import { loadVg, type LoadedVg } from "./vg-store.js";

/**
 * Adding devices to a VG (vgcreate, vgextend): devices that are not PVs yet
 * are initialised first, as lvm2 does; PVs that belong to a VG are refused.
 * Returns false after printing why when any device cannot be used.
 */
export async function addPvsToVg(ctx: ToolContext, loaded: LoadedVg, names: readonly string[], p: PvCreateParams): Promise<boolean> {
  const vg = loaded.vg;
  let scan = await ctx.scan();
  // First pass: refuse what cannot be used, before changing anything.
  const toCreate: string[] = [];
  for (const name of names) {
    const sd = await ctx.findDevice(name);
    if (!sd) {
      if (!(await createPv(ctx, name, p, { forVg: vg.name }))) return false;
      continue;
    }
    if (!sd.label) {
      toCreate.push(name);
      continue;
    }
    const owner = scan.vgNames().find((v) => loadVg(scan, v)?.vg.pvs.some((pv) => pv.id === sd.label!.pvIdRaw));
    if (owner !== undefined || vg.pvs.some((pv) => pv.id === sd.label!.pvIdRaw)) {
      ctx.out.error(`Physical volume '${name}' is already in volume group '${owner ?? vg.name}'`);
      ctx.out.error(`Unable to add physical volume '${name}' to volume group '${vg.name}'`);
      return false;
    }
  }
  for (const name of toCreate) if (!(await createPv(ctx, name, p, { forVg: vg.name }))) return false;
  if (toCreate.length) scan = await ctx.scan(true);
  for (const name of names) {
    const sd = (await ctx.findDevice(name))!;
    if (!sd || !sd.label) return false;
    const pv = pvEntryFor(sd, vg.extentSizeSectors);
    if (pv.peCount === 0 && !ctx.opts.test) {
      ctx.out.error(`${name}: Physical volume too small for extent size ${vg.extentSizeSectors} sectors.`);
      return false;
    }
    vg.pvs.push(pv);
    loaded.devices.set(pv.id, sd);
  }
  return true;
}

/** The metadata entry of a PV joining a VG: pe_start from its label, pe_count from the room left. */
export function pvEntryFor(sd: ScannedDevice, extentSizeSectors: number): PhysicalVolume {
  const label = sd.label!;
  const peStartBytes = label.dataAreas[0]?.offsetBytes ?? 1048576;
  const devSizeBytes = label.deviceSizeBytes || sd.sizeBytes;
  const tail = tailReservedBytes(devSizeBytes, label.metadataAreas.map((m) => ({ startBytes: m.offsetBytes, sizeBytes: m.sizeBytes })), peStartBytes);
  const usable = Math.max(0, devSizeBytes - peStartBytes - tail);
  const ba = label.bootloaderAreas[0];
  return {
    id: label.pvIdRaw,
    deviceHint: sd.entry.name,
    deviceIdType: undefined,
    deviceId: undefined,
    status: ["ALLOCATABLE"],
    flags: [],
    tags: [],
    devSizeSectors: Math.floor(devSizeBytes / 512),
    peStartSectors: Math.floor(peStartBytes / 512),
    peCount: Math.floor(usable / 512 / extentSizeSectors),
    baStartSectors: ba ? Math.floor(ba.offsetBytes / 512) : undefined,
    baSizeSectors: ba ? Math.floor(ba.sizeBytes / 512) : undefined,
  };
}

/** Set or clear PV_EXT_USED in the labels of PVs that joined or left a VG. */
export async function setPvUsedFlag(ctx: ToolContext, devices: readonly ScannedDevice[], used: boolean): Promise<void> {
  if (ctx.opts.test) return;
  for (const sd of devices) {
    if (!sd.label) continue;
    const label = { ...sd.label, extVersion: 2, extFlags: used ? sd.label.extFlags | PV_EXT_USED : sd.label.extFlags & ~PV_EXT_USED };
    const dev = await openBlockDevice(sd.entry.name, { write: true });
    try {
      await writeLabel(dev, label);
      await dev.flush();
    } finally {
      await dev.close();
    }
  }
}
