import type { BlockDevice } from "../blockdev/block-device.js";
import { FileBlockDevice } from "../blockdev/file-block-device.js";
import { openBlockDevice as openLocalDevice } from "../blockdev/open-device.js";
import type { Config } from "../config/config.js";
import { DEFAULT_NBD_TIMEOUT_MS } from "../nbd/client.js";
import { MAX_NBD_CONNECTIONS, openNbdDevice } from "../nbd/multi-conn.js";
import { isNbdUri } from "../nbd/nbd-uri.js";

/**
 * Open a device by the name a command or the daemon knows it by: a path
 * (file or block device), or an NBD URI (issue 18: nbd://, nbds://,
 * nbd+unix://, nbds+unix://), for which ulvm is the NBD client. blockdev/
 * cannot know NBD (the layering), so the choice is made here, once.
 *
 * The NBD request deadline is `devices { nbd_timeout_s }` of the config the
 * process loaded (`useDeviceConfig`); a process opens devices under one
 * config, so this is kept per process rather than passed down every caller.
 * So is `devices { nbd_connections }`: connections per NBD PV on the daemon's
 * data path where the server offers multi-conn (commands use one: they read
 * and write a few KiB of metadata).
 */
let nbdTimeoutMs = DEFAULT_NBD_TIMEOUT_MS;
let nbdConnections = 1;

export function useDeviceConfig(config: Config): void {
  const s = config.int("devices/nbd_timeout_s", DEFAULT_NBD_TIMEOUT_MS / 1000);
  nbdTimeoutMs = s > 0 ? s * 1000 : DEFAULT_NBD_TIMEOUT_MS;
  nbdConnections = Math.min(MAX_NBD_CONNECTIONS, Math.max(1, config.int("devices/nbd_connections", 1)));
}

/** For the command layer: small metadata reads and writes. */
export async function openBlockDevice(name: string, opts: { write: boolean; exclusive?: boolean }): Promise<BlockDevice> {
  if (isNbdUri(name)) return openNbdDevice(name, { timeoutMs: nbdTimeoutMs, readOnly: !opts.write });
  return openLocalDevice(name, opts);
}

/** For the daemon's data path (PV pool): FileBlockDevice for paths, the NBD client for URIs. */
export async function openDataDevice(name: string): Promise<BlockDevice> {
  if (isNbdUri(name)) return openNbdDevice(name, { timeoutMs: nbdTimeoutMs, connections: nbdConnections });
  return FileBlockDevice.open(name);
}
