import type { CommandDef } from "../cli/command-def.js";
import { CommandError, LvmError, UsageError } from "../errors/errors.js";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { formatId } from "../base/uuid.js";
import { archiveDir, backupDir } from "../config/paths.js";
import { PV_EXT_USED } from "../format/label.js";
import { BAD_MDA_MAGIC, BAD_MDA_START } from "../format/mda.js";
import { ctime } from "../format/vg-export.js";
import { parseVgText, type ImportedVg } from "../format/vg-import.js";
import { openBlockDevice } from "./device-open.js";
import { writeLabel } from "../format/pv-write.js";
import { cloneVg } from "../model/clone.js";
import { vgLockName } from "./lock.js";
import type { ScannedDevice } from "./scan.js";
import type { ToolContext } from "./toolcontext.js";
import { LoadedVg } from "./vg-store.js";
import { doesNotAcceptArgument, noMatchingSyntax, vgArg } from "./vg-common.js";
import { validVgName } from "../model/names.js";
import { reloadActive } from "./vgreduce.js";

/**
 * vgcfgrestore (tools/vgcfgrestore.c, lib/format_text/archiver.c): write the
 * metadata of a backup file back to the VG's PVs. Every PV the file lists
 * must be present (matched by PV UUID); the VG is written as the file's
 * seqno + 1 to all of them, and PVs whose label lacks PV_EXT_USED get it.
 * This is also how lvm2 builds VGs it cannot create without device-mapper
 * (the mirror fixture).
 */

function readBackupFile(path: string, vgName: string): ImportedVg {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CommandError(
      `${path}: stat failed: ${code === "ENOENT" ? "No such file or directory" : (e as Error).message}\nWARNING: couldn't read volume group metadata from file.\nFailed to read VG ${vgName} from ${path}`,
    );
  }
  let imported: ImportedVg;
  try {
    imported = parseVgText(text, path);
  } catch (e) {
    if (!(e instanceof LvmError)) throw e;
    throw new CommandError(`${e.message}\nWARNING: couldn't read volume group metadata from file.\nFailed to read VG ${vgName} from ${path}`);
  }
  if (imported.vg.name !== vgName) throw new CommandError(`'${path}' does not contain volume group '${vgName}'.`);
  return imported;
}

/** archive_list_file: lvm2's listing of one backup or archive file. */
function displayBackup(ctx: ToolContext, dir: string, name: string): boolean {
  const path = `${dir}/${name}`;
  ctx.out.print(" ");
  ctx.out.print(`File:\t\t${path}/${name}`);
  let imported: ImportedVg;
  try {
    imported = parseVgText(readFileSync(path, "utf8"), path);
  } catch {
    ctx.out.error("Unable to read archive file.");
    return false;
  }
  ctx.out.print(`VG name:    \t${imported.vg.name}`);
  ctx.out.print(`Description:\t${imported.description ?? "<No description>"}`);
  // ctime() ends with a newline, which lvm2 prints too.
  ctx.out.print(`Backup Time:\t${ctime(imported.creationTime ?? 0)}`);
  ctx.out.write("\n");
  return true;
}

function listBackups(ctx: ToolContext, vgName: string | undefined, file: string | undefined): number {
  if (file !== undefined) {
    if (!existsSync(file)) throw new CommandError(`Archive file ${file} not found.`);
    const slash = file.lastIndexOf("/");
    displayBackup(ctx, slash === -1 ? "" : file.slice(0, slash), slash === -1 ? file : file.slice(slash + 1));
    return 0;
  }
  const adir = ctx.config.str("backup/archive_dir", archiveDir(ctx.paths));
  if (existsSync(adir)) {
    const re = new RegExp(`^${vgName!.replace(/[.+]/g, "\\$&")}_(\\d+)-\\d+\\.vg$`);
    const files = readdirSync(adir).filter((f) => re.test(f)).sort((a, b) => Number(re.exec(a)![1]) - Number(re.exec(b)![1]));
    for (const f of files) displayBackup(ctx, adir, f);
  }
  const bdir = ctx.config.str("backup/backup_dir", backupDir(ctx.paths));
  if (existsSync(join(bdir, vgName!))) displayBackup(ctx, bdir, vgName!);
  return 0;
}

async function restore(ctx: ToolContext, vgName: string, path: string, force: boolean): Promise<void> {
  const imported = readBackupFile(path, vgName);
  const vg = cloneVg(imported.vg);
  const thin = vg.lvs.some((lv) => lv.segments.some((s) => s.type.startsWith("thin")));
  if (thin && !force) throw new CommandError(`Consider using option --force to restore Volume Group ${vg.name} with thin volumes.`);
  if (thin) ctx.out.warn(`WARNING: Forced restore of Volume Group ${vg.name} with thin volumes.`);
  const scan = await ctx.scan(true);
  const devices = new Map<string, ScannedDevice | undefined>();
  let missing = 0;
  for (const pv of vg.pvs) {
    const sd = scan.pvDevices.get(pv.id);
    devices.set(pv.id, sd);
    if (!sd) ctx.out.warn(`WARNING: Couldn't find device with uuid ${formatId(pv.id)}.`);
    if (!sd || pv.flags.includes("MISSING")) missing++;
  }
  if (missing) throw new CommandError(`Cannot restore Volume Group ${vg.name} with ${missing} PVs marked as missing.`);
  if (!vg.pvs.some((pv) => devices.get(pv.id)?.mdas.some((m) => !m.ignored && !(m.badFields & (BAD_MDA_MAGIC | BAD_MDA_START))))) {
    throw new CommandError("Aborting vg_write: No metadata areas to write to!");
  }
  const original = cloneVg(vg);
  const loaded = new LoadedVg(vg, original, [], undefined, devices, [], new Set());
  // PVs that are not marked as used yet (plain pvcreate'd PVs) get PV_EXT_USED before the metadata, as lvm2's pv_write_list.
  if (!ctx.opts.test) {
    for (const pv of vg.pvs) {
      const sd = devices.get(pv.id)!;
      if (!sd.label || (sd.label.extVersion >= 2 && sd.label.extFlags & PV_EXT_USED)) continue;
      const dev = await openBlockDevice(sd.entry.name, { write: true });
      try {
        const dataAreas = [{ offsetBytes: pv.peStartSectors * 512, sizeBytes: 0 }];
        await writeLabel(dev, { ...sd.label, dataAreas, extVersion: 2, extFlags: sd.label.extFlags | PV_EXT_USED });
        await dev.flush();
      } finally {
        await dev.close();
      }
    }
  }
  await ctx.commit(loaded);
  await reloadActive(ctx, vg.name);
}

export const vgcfgrestore: CommandDef = {
  name: "vgcfgrestore",
  summary: "Restore volume group configuration",
  usage: `  vgcfgrestore - Restore volume group configuration

  Restore VG metadata from last backup.
  vgcfgrestore VG
	[ COMMON_OPTIONS ]

  Restore VG metadata from specified file.
  vgcfgrestore -f|--file String VG
	[ COMMON_OPTIONS ]

  List all VG metadata backups.
  vgcfgrestore -l|--list VG
	[ COMMON_OPTIONS ]

  List one VG metadata backup file.
  vgcfgrestore -l|--list -f|--file String
	[ COMMON_OPTIONS ]
	[ VG ]

  Common options for command:
	[ -M|--metadatatype lvm2 ]
	[    --force ]
`,
  options: [
    { name: "file", short: "f", value: true },
    { name: "list", short: "l", value: false },
    { name: "metadatatype", short: "M", value: true },
    { name: "force", value: false, repeat: true },
  ],
  async run(ctx, args) {
    const file = args.str("file");
    const list = args.has("list");
    if (args.positional.length > 1) throw doesNotAcceptArgument("vgcfgrestore", args.positional[1]!);
    if (!args.positional.length && !(list && file !== undefined)) throw noMatchingSyntax(ctx, "vgcfgrestore");
    const vgName = args.positional.length ? vgArg(ctx, args.positional[0]!) : undefined;
    if (vgName !== undefined && !validVgName(vgName)) throw new UsageError(`Volume group name "${vgName}" is invalid.`, "vgcfgrestore", { runHelp: false });
    if (list) return listBackups(ctx, vgName, file);
    await ctx.locks.acquireAll(["P_orphans", vgLockName(vgName!)]);
    const path = file ?? join(ctx.config.str("backup/backup_dir", backupDir(ctx.paths)), vgName!);
    try {
      await restore(ctx, vgName!, path, args.has("force"));
    } catch (e) {
      if (!(e instanceof CommandError)) throw e;
      throw new CommandError(`${e.message}\nRestore failed.`);
    }
    ctx.out.print(`Restored volume group ${vgName}.`);
    return 0;
  },
};
