import { mkdirSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from "node:fs";
import { join } from "node:path";
import { backupDir, ensureDir } from "../config/paths.js";
import { exportVgText } from "../format/vg-export.js";
import type { VolumeGroup } from "../model/types.js";
import type { ToolContext } from "./toolcontext.js";

/**
 * Automatic metadata backups, as lvm2 keeps /etc/lvm/backup/<vg>: after each
 * change the current metadata is written (file style) to
 * $ULVM_SYSTEM_DIR/backup/<vg>, atomically (temp file, fsync, rename).
 * `backup { backup = 0 }` turns it off, and lvm2's warning is printed instead.
 */
export async function writeBackup(ctx: ToolContext, vg: VolumeGroup): Promise<void> {
  if (!ctx.config.bool("backup/backup", true)) {
    ctx.out.warn("WARNING: This metadata update is NOT backed up.");
    return;
  }
  const dir = ctx.config.str("backup/backup_dir", backupDir(ctx.paths));
  const text = exportVgText(vg, { style: "file", description: `Created *after* executing '${ctx.commandLine}'` });
  try {
    ensureDir(dir);
    writeFileAtomic(join(dir, vg.name), text);
  } catch (e) {
    ctx.out.warn(`WARNING: Failed to write backup of volume group ${vg.name} to ${dir}: ${(e as Error).message}`);
    ctx.out.warn("WARNING: This metadata update is NOT backed up.");
  }
}

export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp.${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  const fd = openSync(tmp, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
