import { openBlockDevice } from "./device-open.js";
import { PV_EXT_USED } from "../format/label.js";
import { checkMdaHeader, MDA_HEADER_BYTES } from "../format/mda.js";
import { clearMdaHeader, initMda, writeLabel } from "../format/pv-write.js";
import type { ScannedDevice } from "./scan.js";
import type { ToolContext } from "./toolcontext.js";

/**
 * Turn a PV that left its VG back into an orphan, as lvm2's pv_write of an
 * orphan does (vgreduce, vgremove): every metadata area keeps its ring but
 * both header slots are emptied, and the label loses PV_EXT_USED and records
 * the device's current size. Called after the VG commit that dropped the PV,
 * so a crash in between leaves an "outdated PV" that vgck --updatemetadata
 * cleans up, never a VG that still counts on the device.
 */
export async function writeOrphanPv(ctx: ToolContext, sd: ScannedDevice): Promise<void> {
  if (ctx.opts.test || !sd.label) return;
  const dev = await openBlockDevice(sd.entry.name, { write: true });
  try {
    for (const locn of sd.label.metadataAreas) {
      const hbuf = new Uint8Array(MDA_HEADER_BYTES);
      await dev.read(locn.offsetBytes, hbuf);
      const check = checkMdaHeader(hbuf, locn.offsetBytes);
      if (check.badFields) await initMda(dev, locn.offsetBytes, locn.sizeBytes);
      else await clearMdaHeader(dev, check.header);
    }
    await writeLabel(dev, { ...sd.label, deviceSizeBytes: dev.sizeBytes, extVersion: 2, extFlags: sd.label.extFlags & ~PV_EXT_USED });
    await dev.flush();
  } finally {
    await dev.close();
  }
}
