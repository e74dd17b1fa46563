import { statSync, readFileSync } from "node:fs";
import type { LogicalVolume } from "../model/types.js";
import { VgEditor } from "../model/allocate-lv.js";
import { INTEGRITY_BLOCK_SIZES, createIntegrityMeta, imagesWithoutIntegrity, layerIntegrity, lvPvIds, unlayerIntegrity, type IntegrityRequest } from "../model/raid1-integrity.js";
import { findLv, isIntegritySeg, isRaidSeg } from "../model/lv-info.js";
import { isLvPartial } from "../model/mirror-repair.js";
import { CommandError, LvmError } from "../errors/errors.js";
import { activateLv, daemonStatus, isLvActive, reloadVg } from "./activation.js";
import { commitLvChange, isPvMissing, lvEnv, vgPvEntries } from "./lv-common.js";
import { zeroLvStart } from "./lv-io.js";
import type { LoadedVg } from "./vg-store.js";
import type { ToolContext } from "./toolcontext.js";

/**
 * lv_add_integrity_to_raid for a raid1 LV (lib/metadata/integrity_manip.c):
 * an `_imeta` per image on the image's PVs, committed and its first 4 KiB
 * zeroed (dm-integrity formats only an all-zero superblock area); the integrity
 * block size chosen from the PVs' block sizes; then each image layered over
 * its `_iorig` and the VG committed with `recalculate = 1`, so that the first
 * activation initialises the tags.
 */
export async function addRaidIntegrity(ctx: ToolContext, loaded: LoadedVg, ed: VgEditor, lv: LogicalVolume, req: IntegrityRequest, command: "lvcreate" | "lvconvert" = "lvcreate"): Promise<void> {
  const vg = loaded.vg;
  const images = imagesWithoutIntegrity(vg, lv);
  const pvSets = images.map((img) => lvPvIds(vg, img));
  const blockSize = integrityBlockSize(ctx, loaded, pvSets.flat(), req.blockSize, command);
  const all = vgPvEntries(loaded);
  const metas: LogicalVolume[] = [];
  try {
    for (const [i, image] of images.entries()) {
      const ids = pvSets[i]!;
      const meta = createIntegrityMeta(ed, image, all.filter((e) => ids.includes(e.pv.pvId)), req.settings.journalSectors ?? 0);
      metas.push(meta);
      // lv_create_single commits each new imeta; activate_and_wipe_lv then zeroes its start.
      await commitLvChange(ctx, loaded);
      if (!ctx.opts.test) await zeroLvStart(loaded, meta);
    }
  } catch (e) {
    // revert_meta_lvs: the imeta LVs made so far go again.
    for (const m of metas) ed.lvRemove(m);
    throw e;
  }
  for (const [i, image] of images.entries()) layerIntegrity(ed, image, metas[i]!, { ...req, blockSize });
  await commitLvChange(ctx, loaded);
}

/**
 * _set_integrity_block_size for lvcreate: 4096 on PVs with 4 KiB logical
 * blocks, or 512-logical/4K-physical ones; else the requested size or 512.
 * Counted over every PV of every image, as lvm2 does.
 */
function integrityBlockSize(ctx: ToolContext, loaded: LoadedVg, pvIds: string[], requested: number | undefined, command: "lvcreate" | "lvconvert"): number {
  let lbs4k = 0;
  let lbs512 = 0;
  let pbs4k = 0;
  let pbs512 = 0;
  for (const id of pvIds) {
    const sizes = deviceBlockSizes(loaded.deviceOf(id)?.entry.real);
    if (!sizes) continue;
    if (sizes.logical === 4096) lbs4k++;
    else if (sizes.logical === 512) lbs512++;
    if (sizes.physical === 4096) pbs4k++;
    else if (sizes.physical === 512) pbs512++;
  }
  if (lbs4k && lbs512) throw new CommandError("Integrity requires consistent logical block size for LV devices.");
  if (requested && !(INTEGRITY_BLOCK_SIZES as readonly number[]).includes(requested))
    throw new CommandError("Invalid integrity block size, possible values are 512, 1024, 2048, 4096");
  if (lbs4k && requested && requested < 4096) throw new CommandError(`Integrity block size ${requested} not allowed with device logical block size 4096.`);
  if (command === "lvconvert") return convertBlockSize(ctx, requested, { lbs4k, lbs512, pbs4k, pbs512 });
  if (lbs4k) return 4096;
  if (lbs512 && pbs4k && !pbs512) return 4096;
  if (lbs512) return requested || 512;
  const bs = requested || 512;
  ctx.out.print(`Using integrity block size ${bs} with unknown device logical block size.`);
  return bs;
}

/** dev_get_direct_block_sizes: a block device's logical and physical block sizes from sysfs; undefined for files. */
function deviceBlockSizes(path: string | undefined): { logical: number; physical: number } | undefined {
  if (!path) return undefined;
  try {
    const st = statSync(path);
    if (!st.isBlockDevice()) return undefined;
    const major = Math.floor(st.rdev / 256) & 0xfff;
    const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    const q = `/sys/dev/block/${major}:${minor}/queue`;
    return {
      logical: Number(readFileSync(`${q}/logical_block_size`, "utf8").trim()),
      physical: Number(readFileSync(`${q}/physical_block_size`, "utf8").trim()),
    };
  } catch {
    return undefined;
  }
}

/**
 * _set_integrity_block_size for lvconvert when libblkid reports no file
 * system block size (ulvm does not probe the LV's file system yet, so this is
 * the path it always takes): the devices' sizes decide, and a requested size
 * must agree.
 */
function convertBlockSize(ctx: ToolContext, requested: number | undefined, d: { lbs4k: number; lbs512: number; pbs4k: number; pbs512: number }): number {
  let use: number;
  if (d.lbs4k && d.pbs4k) use = 4096;
  else if (d.lbs512 && d.pbs512) use = 512;
  else if (d.lbs512 && d.pbs4k) use = requested === 4096 ? 4096 : 512;
  else use = 512;
  const sizes = `logical block size ${d.lbs4k ? 4096 : 512}, physical block size ${d.pbs4k ? 4096 : 512}`;
  if (requested && requested !== use) throw new CommandError(`Cannot use integrity block size ${requested} with unknown file system block size, ${sizes}.`);
  ctx.out.print(`Using integrity block size ${use} for unknown file system block size, ${sizes}.`);
  return use;
}

/**
 * lvconvert --raidintegrity y|n LV_raid [PV ...] (tools/lvconvert.c
 * _lvconvert_integrity_single, lib/metadata/integrity_manip.c).
 * y: lv_add_integrity_to_raid; an active LV is reloaded with `recalculate`
 * (its tags are computed in the background while it serves I/O, and a block
 * not yet tagged is never a mismatch), an inactive one activated to start
 * that; then the flag is cleared and committed. n: the images take their
 * _iorig's extents back, the LV is reloaded, the _iorig and _imeta LVs go.
 */
export async function lvconvertRaidIntegrity(ctx: ToolContext, loaded: LoadedVg, lv: LogicalVolume, add: boolean, req: IntegrityRequest): Promise<number> {
  const vg = loaded.vg;
  const name = `${vg.name}/${lv.name}`;
  const ed = new VgEditor(vg, lvEnv(ctx));
  const active = await isLvActive(ctx, vg.name, lv.name);
  if (add) {
    if (isLvPartial(vg, lv, new Set(vg.pvs.filter((pv) => isPvMissing(loaded, pv)).map((pv) => pv.id)))) throw new CommandError("Cannot add integrity while LV is missing PVs.");
    if (!lv.segments[0] || !isRaidSeg(lv.segments[0])) throw new CommandError(`Cannot add integrity to non raid type LV ${name}.`);
    try {
      await addRaidIntegrity(ctx, loaded, ed, lv, req, "lvconvert");
      if (active) await reloadVg(ctx, vg.name);
      else await activateLv(ctx, vg.name, lv.name);
    } catch (e) {
      if (!(e instanceof LvmError)) throw e;
      if (e.message) ctx.out.error(e.message);
      throw new CommandError("Failed to add integrity.");
    }
    for (const r of raidImages(vg, lv)) for (const s of r.segments) if (isIntegritySeg(s)) s.recalculate = 0;
    await commitLvChange(ctx, loaded);
    ctx.out.print(`Logical volume ${name} has added integrity.`);
    return 0;
  }
  if (!lv.segments[0] || !isRaidSeg(lv.segments[0])) throw new CommandError(`Cannot remove integrity from non raid type LV ${name}.`);
  const layers = unlayerIntegrity(ed, lv);
  if (active) {
    await commitLvChange(ctx, loaded);
    await reloadVg(ctx, vg.name);
  }
  for (const { iorig, imeta } of layers) {
    ed.lvRemove(iorig);
    ed.lvRemove(imeta);
  }
  await commitLvChange(ctx, loaded);
  // The unused layers' devices go with this reload.
  if (active) await reloadVg(ctx, vg.name);
  ctx.out.print(`Logical volume ${name} has removed integrity.`);
  return 0;
}

function raidImages(vg: LoadedVg["vg"], lv: LogicalVolume): LogicalVolume[] {
  const seg = lv.segments[0];
  return seg && isRaidSeg(seg) ? seg.raids.flatMap((r) => vg.lvs.filter((l) => l.name === r.image)) : [];
}

/**
 * lvconvert --repair on a raid1 LV with integrity whose image's integrity
 * metadata was refused at activation (a corrupt superblock, a tag area too
 * small, an unknown hash: the daemon serves that image as stale, see
 * StaleIntegrityTarget). POLICY (lvm2 would not have activated the LV at
 * all): the image is rebuilt in place, on its own extents, whose PVs are
 * fine: its _imeta's start is zeroed (dm-integrity formats a blank
 * superblock area at the next load), the image is flagged REBUILD and the LV
 * reloaded (the raid1 recovers it in full from an in-sync image, writing
 * every block and so every tag), then REBUILD goes (a second commit, as
 * lv_raid_replace drops it). Returns undefined when no image is stale.
 */
export async function repairStaleIntegrityImages(ctx: ToolContext, loaded: LoadedVg, lv: LogicalVolume, usePolicies: boolean): Promise<number | undefined> {
  const vg = loaded.vg;
  const seg = lv.segments[0];
  if (!seg || !isRaidSeg(seg)) return undefined;
  const st = (await daemonStatus(ctx)).find((s) => s.vg === vg.name && s.lv === lv.name);
  const staleNames = new Set((st?.devices ?? []).filter((d) => / integrity \S+ \S+ \S+ stale\s*$/m.test(d.status)).map((d) => d.lvName));
  const images = seg.raids.map((r) => findLv(vg, r.image)).filter((img): img is LogicalVolume => img !== undefined && staleNames.has(img.name));
  if (!images.length) return undefined;
  const disp = `${vg.name}/${lv.name}`;
  if (usePolicies) {
    // dmeventd's path: a stale image is no device failure; the admin repairs it.
    ctx.out.warn(`Use 'lvconvert --repair ${disp}' to rebuild the images whose integrity metadata is not valid.`);
    return 0;
  }
  if (!(await ctx.confirm("Attempt to replace failed RAID images (requires full device resync)?"))) return 0;
  for (const img of images) {
    const imeta = findLv(vg, `${img.name}_imeta`);
    if (!imeta) throw new CommandError(`Failed to find the integrity metadata LV of ${vg.name}/${img.name}.`);
    if (!ctx.opts.test) await zeroLvStart(loaded, imeta);
    if (!img.status.includes("REBUILD")) img.status = [...img.status, "REBUILD"];
  }
  await commitLvChange(ctx, loaded);
  await reloadVg(ctx, vg.name);
  for (const img of images) img.status = img.status.filter((s) => s !== "REBUILD");
  await commitLvChange(ctx, loaded);
  await reloadVg(ctx, vg.name);
  ctx.out.print(`Faulty devices in ${disp} successfully replaced.`);
  return 0;
}
