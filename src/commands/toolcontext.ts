import { Config, loadConfig } from "../config/config.js";
import { metadataRepairOf, type MetadataRepair } from "./metadata-repairs.js";
import type { Paths } from "../config/paths.js";
import { CommandError, NotFoundError } from "../errors/errors.js";
import { canonical, type DeviceEntry } from "./device-list.js";
import { forgetDeviceFile, rememberDeviceFile } from "./device-files.js";
import { useDeviceConfig } from "./device-open.js";
import { isNbdUri } from "../nbd/nbd-uri.js";
import { deviceSource, listDevices, type DeviceSource } from "./device-source.js";
import { LockManager, vgLockName } from "./lock.js";
import type { Output } from "./output.js";
import { DeviceScan, type ScannedDevice } from "./scan.js";
import { commitVg, loadVg, type LoadedVg } from "./vg-store.js";
import { writeBackup } from "./backup.js";
import { ParseCache } from "./parse-cache.js";
import { join } from "node:path";
import type { ActivationState } from "../report/activation-state.js";

/**
 * What a command runs with: paths and config, the devices it may see, locks,
 * output, and the read → change → commit helpers every VG-changing command uses.
 */
export interface ToolOptions {
  paths: Paths;
  out: Output;
  /** argv after the program name, for metadata descriptions ("lvcreate -L 1g vg"). */
  argv: readonly string[];
  /** --devices: restrict the command to these devices. */
  devices?: string[];
  /**
   * The command's positional arguments: with no devices/scan in ulvm.conf, a
   * device or file named there is visible to the command (`ulvm pvcreate ./disk.img`).
   */
  named?: readonly string[];
  /** -y / --yes: answer yes to prompts. */
  yes?: boolean;
  /** Answer to prompts when not -y (reads stdin in the CLI). */
  prompt?: (question: string) => Promise<boolean>;
  verbose?: number;
  /** -t / --test: run without writing. */
  test?: boolean;
  /** Told of each metadata copy a commit rewrote (the daemon records them as events). */
  onMetadataRepaired?: (r: MetadataRepair) => void;
}

export class ToolContext {
  readonly paths: Paths;
  readonly config: Config;
  readonly out: Output;
  readonly locks: LockManager;
  readonly commandLine: string;
  private scanCache: DeviceScan | undefined;
  private entries: DeviceEntry[] | undefined;
  /** Live LV state for reports and *display (the daemon's view); undefined = nothing is active. */
  activation: ActivationState | undefined = undefined;

  constructor(readonly opts: ToolOptions, config?: Config) {
    this.paths = opts.paths;
    this.out = opts.out;
    this.config = config ?? loadConfig(opts.paths);
    useDeviceConfig(this.config);
    this.locks = new LockManager(opts.paths);
    this.commandLine = opts.argv.join(" ");
  }

  deviceSource(): DeviceSource {
    return deviceSource(this.config, this.opts.devices);
  }

  /** Devices this command may use (see device-source.ts). */
  deviceEntries(): DeviceEntry[] {
    if (!this.entries) this.entries = listDevices(this.paths, this.config, { devices: this.opts.devices, named: this.opts.named });
    return this.entries;
  }

  /**
   * A PV was written on this device: if it is an image file found only
   * because the command line named it, remember it for the next commands.
   */
  rememberDevice(entry: DeviceEntry): void {
    // NBD URIs too: nothing else would find a PV on another host again.
    if (this.opts.test || !(entry.isFile || isNbdUri(entry.real)) || this.deviceSource() !== "system") return;
    rememberDeviceFile(this.paths, entry.real);
  }

  /** The PV label was wiped: the file is no longer worth scanning. */
  forgetDevice(entry: DeviceEntry): void {
    if (this.opts.test || !(entry.isFile || isNbdUri(entry.real)) || this.deviceSource() !== "system") return;
    forgetDeviceFile(this.paths, entry.real);
  }

  /** Scan devices (cached for the command; `fresh` rescans after a change). */
  async scan(fresh = false): Promise<DeviceScan> {
    if (!this.scanCache || fresh) this.scanCache = await DeviceScan.run(this.deviceEntries(), this.parseCache());
    return this.scanCache;
  }

  parseCache(): ParseCache {
    return new ParseCache(join(this.paths.runDir, "cache"));
  }

  /** Map a device named on the command line to a visible device (by canonical path). */
  async findDevice(name: string): Promise<ScannedDevice | undefined> {
    const scan = await this.scan();
    const real = canonical(name);
    return scan.byReal(real);
  }

  /**
   * Why an NBD export named on the command line could not be read (refused,
   * no such export, TLS), so the user sees that rather than "not found".
   * Undefined for paths, which say it with lvm2's own messages.
   */
  async unreachableReason(name: string): Promise<string | undefined> {
    if (!isNbdUri(name)) return undefined;
    const real = canonical(name);
    const reason = (await this.scan()).unreadable.find((u) => u.entry.real === real)?.reason;
    // The client's messages start with the device's name: the caller names it already.
    return reason !== undefined && reason.startsWith(`${real}: `) ? reason.slice(real.length + 2) : reason;
  }

  isDeviceVisible(name: string): boolean {
    const real = canonical(name);
    return this.deviceEntries().some((e) => e.real === real);
  }

  /**
   * Read a VG for a command. `lock` takes the VG lock first (commands that
   * change it) and rescans under the lock, so the copy read is current.
   * Prints lvm2's warnings (missing PVs, inconsistent copies).
   */
  async readVg(name: string, opts: { lock: boolean; quietWarnings?: boolean }): Promise<LoadedVg> {
    if (opts.lock) await this.locks.acquire(vgLockName(name));
    const scan = await this.scan(opts.lock);
    const loaded = loadVg(scan, name);
    if (!loaded) {
      throw new NotFoundError(`Volume group "${name}" not found`, { vg: name });
    }
    if (!opts.quietWarnings) for (const w of loaded.warnings) this.out.warn(w);
    return loaded;
  }

  /** Commit the working VG (seqno+1), then write the automatic backup. */
  async commit(loaded: LoadedVg): Promise<void> {
    if (this.opts.test) {
      this.out.print("Test mode: Skipping metadata writing.");
      return;
    }
    if (!this.locks.isHeld(vgLockName(loaded.vg.name))) {
      throw new CommandError(`Internal error: VG ${loaded.vg.name} written without its lock.`);
    }
    // lvm2 refuses too: which of two devices with the same PV is the real one is not ours to guess.
    if (loaded.duplicateDevices.length) throw new CommandError(`Cannot update volume group ${loaded.vg.name} with duplicate PV devices.`);
    // Image files named on the command line are remembered for the commands (and the daemon) that follow.
    for (const pv of loaded.vg.pvs) {
      const d = loaded.deviceOf(pv.id);
      if (d) this.rememberDevice(d.entry);
    }
    const vgName = loaded.vg.name;
    const onWarning = (l: string): void => {
      this.out.warn(l);
      const repair = this.opts.onMetadataRepaired && metadataRepairOf(vgName, l);
      if (repair) this.opts.onMetadataRepaired!(repair);
    };
    const text = await commitVg(loaded, { commandLine: this.commandLine, onWarning });
    // The next command reads back exactly this text: leave it its parse (see parse-cache.ts).
    this.parseCache().putWritten(text, loaded.vg);
    await writeBackup(this, loaded.vg);
  }

  /** Ask a y/n question (lvm2's yes_no_prompt); -y answers yes. */
  async confirm(question: string): Promise<boolean> {
    if (this.opts.yes) return true;
    if (!this.opts.prompt) return false;
    return this.opts.prompt(question);
  }

  async close(): Promise<void> {
    await this.locks.releaseAll();
  }
}
