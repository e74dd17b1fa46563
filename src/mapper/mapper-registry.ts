import type { BlockDevice } from "../blockdev/block-device.js";
import type { TargetEnv } from "./target.js";
import type { TargetTypes } from "./target-types.js";
import { MappedDevice } from "./mapped-device.js";
import { BusyError, NotFoundError } from "../errors/errors.js";
import { TableError } from "./table-error.js";

/**
 * The set of live mapped devices by name, like /dev/mapper. Table lines may
 * name other mapped devices (a mirror over `vg-lv_mimage_0`, ...): the
 * registry resolves those itself and asks the caller's env for everything
 * else (PV paths). It refuses to remove a device that another device's live
 * or inactive table uses, and refuses tables that would make a device
 * depend on itself.
 */
export class MapperRegistry {
  private readonly devices = new Map<string, MappedDevice>();

  constructor(
    private readonly base: TargetEnv,
    private readonly targetTypes?: TargetTypes,
  ) {}

  /** `dmsetup create` without a table: the device exists, with nothing to serve yet. */
  create(name: string): MappedDevice {
    if (this.devices.has(name)) throw new BusyError(`Device ${name} already exists`, { device: name });
    const env: TargetEnv = {
      openDevice: (n: string): BlockDevice | Promise<BlockDevice> => {
        const mapped = this.devices.get(n);
        if (mapped === undefined) return this.base.openDevice(n);
        if (n === name || this.dependsOn(n, name))
          throw new TableError(`${name}: table would make ${name} depend on itself through ${n}`, { device: n });
        return mapped;
      },
      releaseDevice: (n: string, d: BlockDevice): void | Promise<void> => {
        if (this.devices.get(n) === d) return;
        return this.base.releaseDevice?.(n, d);
      },
      onEvent: this.base.onEvent ? (e) => this.base.onEvent!(e) : undefined,
    };
    const dev = new MappedDevice(name, { env, ...(this.targetTypes ? { targetTypes: this.targetTypes } : {}) });
    this.devices.set(name, dev);
    return dev;
  }

  get(name: string): MappedDevice | undefined {
    return this.devices.get(name);
  }

  names(): string[] {
    return [...this.devices.keys()].sort();
  }

  /** Names of the mapped devices whose tables use `name` (`dmsetup ls --tree` upwards). */
  holders(name: string): string[] {
    const out: string[] = [];
    for (const [n, d] of this.devices) if (n !== name && d.dependencies().includes(name)) out.push(n);
    return out.sort();
  }

  /** Does `from` use `to`, directly or through other mapped devices? */
  dependsOn(from: string, to: string, seen = new Set<string>()): boolean {
    if (seen.has(from)) return false;
    seen.add(from);
    const d = this.devices.get(from);
    if (d === undefined) return false;
    for (const dep of d.dependencies()) {
      if (dep === to || this.dependsOn(dep, to, seen)) return true;
    }
    return false;
  }

  /**
   * `dmsetup rename`: the device keeps its tables and its I/O keeps flowing;
   * only the key changes. Tables of other devices that name it keep the old
   * name until they are reloaded (lvm2 reloads them after renaming an LV).
   */
  rename(oldName: string, newName: string): void {
    const d = this.devices.get(oldName);
    if (d === undefined) throw new NotFoundError(`Device ${oldName} not found`, { device: oldName });
    if (this.devices.has(newName)) throw new BusyError(`Device ${newName} already exists`, { device: newName });
    this.devices.delete(oldName);
    this.devices.set(newName, d);
    d.name = newName;
  }

  /** `dmsetup remove`: BusyError while another table uses the device. */
  async remove(name: string): Promise<void> {
    const d = this.devices.get(name);
    if (d === undefined) throw new NotFoundError(`Device ${name} not found`, { device: name });
    const holders = this.holders(name);
    if (holders.length > 0)
      throw new BusyError(`Device ${name} is in use by ${holders.join(", ")}`, { device: name, holders });
    await d.remove();
    this.devices.delete(name);
  }
}
