import type { Config } from "../config/config.js";
import type { Paths } from "../config/paths.js";
import { readDeviceFiles } from "./device-files.js";
import { listNamedDevices, listScanDevices, type DeviceEntry } from "./device-list.js";
import { isUlvmLvDevice, listSystemBlockDevices } from "./system-devices.js";

/**
 * Where a command's (or the daemon's) devices come from:
 *   - "named":  --devices names them, nothing else is seen;
 *   - "scan":   ulvm.conf's devices/scan lists directories and files;
 *   - "system": no devices/scan (no ulvm.conf at all included), lvm2's
 *     behaviour with no lvm.conf: the system's block devices, plus the image
 *     files remembered in $ULVM_SYSTEM_DIR/device-files, plus any device or
 *     file the command line names.
 */
export type DeviceSource = "named" | "scan" | "system";

export function deviceSource(config: Config, devices: readonly string[] | undefined): DeviceSource {
  if (devices?.length) return "named";
  return config.strList("devices/scan") !== undefined ? "scan" : "system";
}

export function listDevices(paths: Paths, config: Config, opts: { devices?: readonly string[]; named?: readonly string[] }): DeviceEntry[] {
  switch (deviceSource(config, opts.devices)) {
    case "named":
      return listNamedDevices(opts.devices!);
    case "scan":
      return listScanDevices(config.strList("devices/scan")!);
    case "system": {
      const named = listNamedDevices(opts.named ?? []).filter((e) => e.isFile || !isUlvmLvDevice(e.real));
      // Order matters for names only: a block device keeps its /dev name, a file the name the user typed.
      const all = [...listSystemBlockDevices(), ...named, ...listNamedDevices(readDeviceFiles(paths))];
      const seen = new Set<string>();
      return all.filter((e) => !seen.has(e.real) && seen.add(e.real));
    }
  }
}
