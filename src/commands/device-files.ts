import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { deviceFilesFile, ensureDir, type Paths } from "../config/paths.js";

/**
 * Image files ulvm was told about on a command line, remembered for the
 * commands that follow (`ulvm pvcreate ./disk.img`, then `ulvm lvcreate ... vg0`
 * must find the PV without naming it again). lvm2 keeps its devices file
 * (/etc/lvm/devices/system.devices) for the same purpose; this is the
 * same idea for files, which lvm2 never scans: $ULVM_SYSTEM_DIR/device-files,
 * one absolute path a line, '#' comments. Used only when ulvm.conf has no
 * devices/scan (an explicit scan list keeps its meaning). A file that is gone
 * is skipped, not an error: an image may live on removable media.
 */
export function readDeviceFiles(paths: Paths): string[] {
  let text: string;
  try {
    text = readFileSync(deviceFilesFile(paths), "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith("#"));
}

function writeDeviceFiles(paths: Paths, files: readonly string[]): void {
  ensureDir(paths.systemDir, 0o755);
  const file = deviceFilesFile(paths);
  const tmp = `${file}.tmp.${process.pid}`;
  const header = "# Image files used as PVs, added by pvcreate/vgcreate/vgextend (see README, First run).\n";
  writeFileSync(tmp, header + files.map((f) => f + "\n").join(""), { mode: 0o644 });
  renameSync(tmp, file);
}

export function rememberDeviceFile(paths: Paths, real: string): void {
  const files = readDeviceFiles(paths);
  if (!files.includes(real)) writeDeviceFiles(paths, [...files, real]);
}

export function forgetDeviceFile(paths: Paths, real: string): void {
  const files = readDeviceFiles(paths);
  if (files.includes(real)) writeDeviceFiles(paths, files.filter((f) => f !== real));
}
