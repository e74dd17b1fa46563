import type { CommandDef } from "../cli/command-def.js";
import type { Args, OptionSpec } from "../cli/args.js";
import { UsageError, LvmError, CommandError } from "../errors/errors.js";
import { newId, parseId } from "../base/uuid.js";
import { openBlockDevice } from "./device-open.js";
import { computePvLayout } from "../format/pv-layout.js";
import { DEFAULT_LABEL_SECTOR } from "../format/label.js";
import { initMda, writeLabel } from "../format/pv-write.js";
import { findSignatures, wipeSignature } from "../format/signatures.js";
import { sizeOption, exitFor } from "./common.js";
import type { ToolContext } from "./toolcontext.js";
import { vgLockName } from "./lock.js";
import { loadVg } from "./vg-store.js";
import { existsSync } from "node:fs";

/**
 * pvcreate: put an LVM2 label and metadata areas on devices (tools/pvcreate.c,
 * lib/metadata/pv_manip.c). Refuses devices that belong to a VG unless -ff,
 * and asks before wiping a filesystem or other signature unless -f or -y.
 */
export const PV_CREATE_OPTIONS: OptionSpec[] = [
  { name: "force", short: "f", value: false, repeat: true },
  { name: "uuid", short: "u", value: true },
  { name: "norestorefile", value: false },
  { name: "restorefile", value: true },
  { name: "metadatasize", value: true, aliases: ["pvmetadatasize"] },
  { name: "pvmetadatacopies", value: true, aliases: ["metadatacopies"] },
  { name: "metadataignore", value: true },
  { name: "dataalignment", value: true },
  { name: "dataalignmentoffset", value: true },
  { name: "bootloaderareasize", value: true },
  { name: "labelsector", value: true },
  { name: "setphysicalvolumesize", value: true },
  { name: "zero", short: "Z", value: true },
  { name: "reportformat", value: true },
];

export interface PvCreateParams {
  force: number;
  uuid: string | undefined;
  mdaSizeSectors: number | undefined;
  mdaCopies: number;
  alignSectors: number | undefined;
  alignOffsetSectors: number | undefined;
  baSizeSectors: number | undefined;
  zero: boolean;
  setSizeSectors: number | undefined;
}

export function pvCreateParams(args: Args): PvCreateParams {
  const uuidArg = args.str("uuid");
  let uuid: string | undefined;
  if (uuidArg !== undefined) {
    if (!args.has("restorefile") && !args.has("norestorefile")) {
      throw new UsageError("--restorefile is required with --uuid", args.command);
    }
    uuid = parseId(uuidArg);
    if (!uuid) throw new UsageError(`Invalid argument for --uuid: ${uuidArg}`, args.command);
  }
  const copies = args.uint("pvmetadatacopies") ?? 1;
  if (copies > 2) throw new UsageError("Metadatacopies may only be 0, 1 or 2", args.command);
  const zeroArg = args.yesNo("zero");
  const mdaSize = sizeOption(args, "metadatasize", 2048);
  const align = sizeOption(args, "dataalignment", 2);
  const alignOff = sizeOption(args, "dataalignmentoffset", 2);
  const ba = sizeOption(args, "bootloaderareasize", 2048);
  const setSize = sizeOption(args, "setphysicalvolumesize", 2048);
  for (const [n, s] of [["metadatasize", mdaSize], ["dataalignment", align], ["dataalignmentoffset", alignOff], ["bootloaderareasize", ba], ["setphysicalvolumesize", setSize]] as const) {
    if (s?.sign === "-") throw new UsageError(`Negative ${n} is invalid.`, args.command);
  }
  return {
    force: args.count("force"),
    uuid,
    mdaSizeSectors: mdaSize?.sectors,
    mdaCopies: copies,
    alignSectors: align?.sectors,
    alignOffsetSectors: alignOff?.sectors,
    baSizeSectors: ba?.sectors,
    zero: zeroArg ?? uuid === undefined,
    setSizeSectors: setSize?.sectors,
  };
}

/**
 * Check and initialise one device as an orphan PV. Returns false (after
 * printing why) when the device was left alone. Shared with vgcreate and
 * vgextend, which create PVs for devices that are not PVs yet.
 */
export async function createPv(ctx: ToolContext, devName: string, p: PvCreateParams, opts: { forVg?: string } = {}): Promise<boolean> {
  const scan = await ctx.scan();
  const sd = await ctx.findDevice(devName);
  if (!sd) {
    const unreachable = await ctx.unreachableReason(devName);
    if (unreachable !== undefined) ctx.out.error(`Cannot use ${devName}: ${unreachable}`);
    else if (!existsSync(devName)) ctx.out.error(`No device found for ${devName}.`);
    else if (!ctx.isDeviceVisible(devName)) ctx.out.error(`Cannot use ${devName}: device is rejected by filter config (devices/scan in ulvm.conf)`);
    else ctx.out.error(`Cannot use ${devName}: device cannot be read.`);
    return false;
  }
  const name = sd.entry.name === devName ? devName : sd.entry.name;
  if (sd.label) {
    // Which VG (if any) lists this PV?
    for (const vgName of scan.vgNames()) {
      const l = loadVg(scan, vgName);
      if (!l || !l.vg.pvs.some((pv) => pv.id === sd.label!.pvIdRaw)) continue;
      if (opts.forVg !== undefined) {
        ctx.out.error(`Physical volume '${devName}' is already in volume group '${vgName}'`);
        ctx.out.error(`Unable to add physical volume '${devName}' to volume group '${opts.forVg}'`);
        return false;
      }
      if (p.force < 2) {
        ctx.out.error(`Can't initialize physical volume "${devName}" of volume group "${vgName}" without -ff`);
        ctx.out.error(`${devName}: physical volume not initialized.`);
        return false;
      }
      if (!(await ctx.confirm(`Really INITIALIZE physical volume "${devName}" of volume group "${vgName}"`))) {
        ctx.out.error(`${devName}: physical volume not initialized.`);
        return false;
      }
      await ctx.locks.acquire(vgLockName(vgName));
      ctx.out.warn(`WARNING: Forcing physical volume creation on ${devName} of volume group "${vgName}"`);
    }
  }
  if (ctx.opts.test) return true;
  let dev;
  try {
    dev = await openBlockDevice(name, { write: true, exclusive: !sd.entry.isFile });
  } catch (e) {
    const code = (e as LvmError & { errno?: string }).errno;
    if (code === "EBUSY") ctx.out.error(`Can't open ${devName} exclusively.  Mounted filesystem?`);
    else ctx.out.error(`Cannot use ${devName}: ${(e as Error).message}`);
    return false;
  }
  try {
    if (!sd.label) {
      const sigs = await findSignatures(dev);
      for (const s of sigs) {
        if (!p.force && !ctx.opts.yes) {
          const ok = await ctx.confirm(`WARNING: ${s.type} signature detected on ${devName} at offset ${s.offsetBytes}. Wipe it?`);
          if (!ok) {
            ctx.out.error(`Aborted wiping of ${s.type}.`);
            ctx.out.error(`${sigs.length} existing signature${sigs.length === 1 ? "" : "s"} left on the device.`);
            return false;
          }
        }
        ctx.out.print(`Wiping ${s.type} signature on ${devName}.`);
        await wipeSignature(dev, s);
      }
    }
    const sizeBytes = p.setSizeSectors ? p.setSizeSectors * 512 : dev.sizeBytes;
    if (p.setSizeSectors && p.setSizeSectors * 512 > dev.sizeBytes) ctx.out.warn(`WARNING: ${devName}: Overriding real size. You could lose data.`);
    const layout = computePvLayout(
      {
        deviceSizeBytes: sizeBytes,
        ...(p.mdaSizeSectors !== undefined ? { mdaSizeSectors: p.mdaSizeSectors } : {}),
        mdaCopies: p.mdaCopies,
        ...(p.alignSectors !== undefined ? { alignSectors: p.alignSectors } : {}),
        ...(p.alignOffsetSectors !== undefined ? { alignOffsetSectors: p.alignOffsetSectors } : {}),
        ...(p.baSizeSectors !== undefined ? { baSizeSectors: p.baSizeSectors } : {}),
      },
      devName,
    );
    if (p.zero) await dev.write(0, new Uint8Array(2048));
    for (const m of layout.mdas) await initMda(dev, m.startBytes, m.sizeBytes);
    await writeLabel(dev, {
      sector: DEFAULT_LABEL_SECTOR,
      pvIdRaw: p.uuid ?? newId(),
      deviceSizeBytes: sizeBytes,
      dataAreas: [{ offsetBytes: layout.peStartSectors * 512, sizeBytes: 0 }],
      metadataAreas: layout.mdas.map((m) => ({ offsetBytes: m.startBytes, sizeBytes: m.sizeBytes })),
      extVersion: 2,
      extFlags: 0,
      bootloaderAreas: layout.baSizeSectors ? [{ offsetBytes: layout.baStartSectors * 512, sizeBytes: layout.baSizeSectors * 512 }] : [],
    });
    await dev.flush();
  } catch (e) {
    if (e instanceof LvmError) {
      ctx.out.error(e.message);
      return false;
    }
    throw e;
  } finally {
    await dev.close();
  }
  ctx.rememberDevice(sd.entry);
  ctx.out.print(`Physical volume "${devName}" successfully created.`);
  return true;
}

export const pvcreate: CommandDef = {
  name: "pvcreate",
  summary: "Initialize physical volume(s) for use by LVM",
  usage: `  pvcreate - Initialize physical volume(s) for use by LVM

  pvcreate PV ...
	[ -f|--force ]
	[ -M|--metadatatype lvm2 ]
	[ -u|--uuid String ]
	[ -Z|--zero y|n ]
	[    --dataalignment Size[k|UNIT] ]
	[    --dataalignmentoffset Size[k|UNIT] ]
	[    --bootloaderareasize Size[m|UNIT] ]
	[    --labelsector Number ]
	[    --pvmetadatacopies 0|1|2 ]
	[    --metadatasize Size[m|UNIT] ]
	[    --metadataignore y|n ]
	[    --norestorefile ]
	[    --setphysicalvolumesize Size[m|UNIT] ]
	[    --reportformat basic|json ]
	[    --restorefile String ]
	[ COMMON_OPTIONS ]
`,
  options: [...PV_CREATE_OPTIONS, { name: "metadatatype", short: "M", value: true }],
  async run(ctx, args) {
    if (args.positional.length === 0) throw new UsageError("Please enter a physical volume path.", "pvcreate");
    const p = pvCreateParams(args);
    if (p.uuid && args.positional.length > 1) throw new UsageError("Can only set uuid on one volume at once", "pvcreate");
    await ctx.locks.acquire("P_orphans");
    let failures = 0;
    for (const d of args.positional) if (!(await createPv(ctx, d, p))) failures++;
    if (failures && failures === args.positional.length && !args.positional.length) throw new CommandError("");
    return exitFor(failures);
  },
};
