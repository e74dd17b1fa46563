import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { listNamedDevices, type DeviceEntry } from "./device-list.js";

/**
 * The block devices a command sees when ulvm.conf names none (no
 * devices/scan): what lvm2 scans with no lvm.conf. lvm2 lists /sys/block
 * (dev-cache) and its default filters drop what cannot hold a PV or must not
 * be read:
 *   - ram disks and cdroms / floppies (filter-type: not a disk-type major),
 *   - zero-size devices (filter-usable),
 *   - loop devices with no backing file (filter-usable: they read as size 0),
 *   - disks with a partition table: their partitions are scanned instead
 *     (filter-partitioned),
 *   - LVs (scan_lvs = 0): lvm2's dm devices with an "LVM-" uuid, and ulvm's
 *     own LVs, which are loop devices over a FUSE file or, on the kernel nbd
 *     path, nbd devices connected to an export named "#dev/VG/LV". Reading one
 *     would go through a daemon (ours or another's), which may be suspended or
 *     busy.
 */
const SYS_BLOCK = "/sys/block";
const SKIP_NAMES = /^(ram|sr|fd)\d/;

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}

const sizeOf = (sysDir: string): number => Number(readText(join(sysDir, "size")) ?? "0");

/** Mount points of FUSE file systems (from mountinfo, without touching them). */
function fuseMounts(): string[] {
  const text = readText("/proc/self/mountinfo") ?? "";
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!pre || !post || !post.startsWith("fuse")) continue;
    const mnt = pre.split(" ")[4];
    if (mnt) out.push(mnt.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

const under = (path: string, dir: string): boolean => path === dir || path.startsWith(dir.endsWith("/") ? dir : dir + "/");

/**
 * A connected nbd device whose client was asked for one of ulvm's LV exports
 * (the device-path exports are named "#dev/VG/LV"): the kernel names the
 * client's pid in sysfs, and its command line names the export.
 */
function isUlvmNbd(sysDir: string): boolean {
  const pid = readText(join(sysDir, "pid"));
  if (!pid || !/^\d+$/.test(pid)) return false;
  const argv = (readText(`/proc/${pid}/cmdline`) ?? "").split("\0");
  return argv.some((a) => a.startsWith("#dev/"));
}

/** Why a /sys/block device is not a PV candidate, or undefined when it is. */
function rejectWhole(name: string, sysDir: string, fuse: readonly string[]): string | undefined {
  if (SKIP_NAMES.test(name)) return "type";
  if (sizeOf(sysDir) === 0) return "size 0";
  if (name.startsWith("loop")) {
    const backing = readText(join(sysDir, "loop", "backing_file"));
    if (!backing) return "loop without backing file";
    if (fuse.some((m) => under(backing, m))) return "LV (loop over a FUSE file)";
  }
  if (name.startsWith("nbd") && isUlvmNbd(sysDir)) return "LV (nbd device of a ulvm LV)";
  if (name.startsWith("dm-") && (readText(join(sysDir, "dm", "uuid")) ?? "").startsWith("LVM-")) return "LV";
  return undefined;
}

export function listSystemBlockDevices(): DeviceEntry[] {
  let names: string[];
  try {
    names = readdirSync(SYS_BLOCK).sort();
  } catch {
    return [];
  }
  const fuse = fuseMounts();
  const paths: string[] = [];
  for (const name of names) {
    const sysDir = join(SYS_BLOCK, name);
    if (rejectWhole(name, sysDir, fuse)) continue;
    let parts: string[] = [];
    try {
      parts = readdirSync(sysDir)
        .filter((p) => existsSync(join(sysDir, p, "partition")))
        .sort();
    } catch {
      // no partitions readable: the whole disk
    }
    if (parts.length) {
      for (const p of parts) if (sizeOf(join(sysDir, p)) > 0) paths.push(devPath(p));
    } else paths.push(devPath(name));
  }
  return listNamedDevices(paths).filter((e) => !e.isFile);
}

/** sysfs spells "/" in device names as "!" (cciss!c0d0). */
const devPath = (sysName: string): string => "/dev/" + sysName.replace(/!/g, "/");

/**
 * Is this block device (named on the command line) an LV of ulvm's own, that
 * is a loop device over a FUSE file or an nbd device on a "#dev/" export? Such a device is not scanned (scan_lvs = 0).
 */
export function isUlvmLvDevice(real: string): boolean {
  const nbd = /^\/dev\/(nbd\d+)$/.exec(real);
  if (nbd) return isUlvmNbd(join(SYS_BLOCK, nbd[1]!));
  const m = /^\/dev\/(loop\d+)$/.exec(real);
  if (!m) return false;
  const backing = readText(join(SYS_BLOCK, m[1]!, "loop", "backing_file"));
  return backing !== undefined && fuseMounts().some((mnt) => under(backing, mnt));
}
