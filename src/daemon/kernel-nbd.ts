import { existsSync, readFileSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";

/**
 * The kernel's nbd driver as a device path (activation { device_path_server =
 * "nbd" }): /dev/nbdX connected by nbd-client to the daemon's NBD export of
 * the LV, the usual path on real servers. No FUSE and no loop device: the
 * kernel speaks NBD to the daemon's socket itself.
 *
 * This file holds the parts that need no kernel (which device is free, whose
 * connection a device holds, nbd-client's arguments), each taking the sysfs
 * directory it reads so that tests can hand it a fake one; device-path.ts runs
 * nbd-client with them.
 *
 * Why nbd-client and not the kernel's generic netlink family "nbd" directly:
 * Node has no netlink sockets. nbd-client (Debian's nbd-client, 3.17 and
 * later) configures the device through that same netlink interface by
 * default, and exits once the kernel holds the socket.
 */

/** The refusal when the configuration asks for kernel nbd and the kernel has none. */
export const NBD_MODULE_MISSING = "device_path_server nbd: the kernel has no nbd module";

export const SYS_DIR = "/sys";

/** Is the nbd driver loaded (or built in: it then has /sys/module/nbd as well)? */
export function kernelHasNbd(sysDir: string = SYS_DIR): boolean {
  return existsSync(join(sysDir, "module", "nbd"));
}

/** "/dev/nbd12" or "nbd12" → 12; anything else → undefined. */
export function nbdIndex(device: string): number | undefined {
  const m = /^nbd(\d+)$/.exec(basename(device));
  return m ? Number(m[1]) : undefined;
}

/**
 * The pid the kernel shows for an nbd device's connection
 * (/sys/block/nbdX/pid: the process that connected it; the file exists only
 * while the device is connected), or undefined when it is not connected.
 */
export function nbdConnectionPid(device: string, sysDir: string = SYS_DIR): number | undefined {
  try {
    const pid = Number(readFileSync(join(sysDir, "block", basename(device), "pid"), "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The nbd devices nobody has connected, lowest number first: /sys/block/nbdX
 * without a "pid" file. `taken` are devices this daemon is connecting right
 * now (their pid file does not exist yet).
 */
export function freeNbdDevices(sysDir: string = SYS_DIR, taken: ReadonlySet<string> = new Set()): string[] {
  let names: string[];
  try {
    names = readdirSync(join(sysDir, "block"));
  } catch {
    return [];
  }
  return names
    .filter((n) => nbdIndex(n) !== undefined)
    .sort((a, b) => nbdIndex(a)! - nbdIndex(b)!)
    .map((n) => `/dev/${n}`)
    .filter((dev) => !taken.has(dev) && !existsSync(join(sysDir, "block", basename(dev), "pid")));
}

/**
 * What the run dir records of a kernel nbd device path: which device, the
 * nbd-client this daemon started to connect it (recorded before that
 * nbd-client could reach the kernel: it negotiates with this very daemon
 * first), and the connection's pid as the kernel showed it once connected.
 */
export interface NbdOwnership {
  device: string;
  clientPid: number | undefined;
  pid: number | undefined;
}

/**
 * Is the connection on `own.device` still the one this daemon (or a previous
 * one) made? Only then may it be disconnected: the kernel shows the pid of
 * whoever connected the device, and a device that was disconnected and then
 * connected by someone else shows another pid (or none while free).
 */
export function ownsNbdConnection(own: NbdOwnership, currentPid: number | undefined): boolean {
  if (currentPid === undefined) return false;
  return currentPid === own.pid || currentPid === own.clientPid;
}

/**
 * The block size for an LV of `sizeBytes`: 4096 where the size allows it (the
 * page size: no read-modify-write in the kernel for a file system's 4 KiB
 * blocks), else 512, which every LV size is a multiple of.
 */
export function nbdBlockSize(sizeBytes: number): 512 | 4096 {
  return sizeBytes % 4096 === 0 ? 4096 : 512;
}

export interface NbdConnectOptions {
  socket: string;
  exportName: string;
  device: string;
  sizeBytes: number;
  readOnly: boolean;
}

/**
 * nbd-client's arguments to connect `device` to the export over the daemon's
 * Unix socket (nbd-client(8): "-unix path nbd-device", "-name", "-block-size",
 * "-readonly"). Long options, spelled as the manual spells them. No
 * -persist: a daemon that is gone does not come back on the same socket
 * (the next one disconnects the device at start), and no -timeout: a request
 * waits for the daemon as long as it is there, as with the FUSE path.
 */
export function nbdConnectArgs(o: NbdConnectOptions): string[] {
  return ["-unix", o.socket, o.device, "-name", o.exportName, "-block-size", String(nbdBlockSize(o.sizeBytes)), ...(o.readOnly ? ["-readonly"] : [])];
}

/** nbd-client's arguments to disconnect `device`. */
export function nbdDisconnectArgs(device: string): string[] {
  return ["-d", device];
}
