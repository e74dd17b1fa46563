import type { BlockDevice } from "../blockdev/block-device.js";
import type { DeviceUse, TargetContext } from "./target.js";
import { TableError } from "./table-error.js";
import { SECTOR_BYTES } from "../base/bytes.js";

/** A device opened through the env for one target, with the area it uses. */
export interface OpenedDevice {
  readonly name: string;
  readonly dev: BlockDevice;
}

/**
 * The devices one target opened through TargetEnv. Construction opens them
 * one by one; if any step fails, releaseAll() gives back what was opened so a
 * failed load leaks nothing (dm_put_device on the ctr error path).
 */
export class DeviceSet {
  private readonly opened: OpenedDevice[] = [];
  readonly uses: DeviceUse[] = [];

  constructor(private readonly ctx: TargetContext) {}

  /**
   * Open `name` and check that [offsetSectors, offsetSectors + lengthSectors)
   * lies on it, like dm_get_device + device_area_is_invalid.
   */
  async open(name: string, offsetSectors: number, lengthSectors: number, role: DeviceUse["role"] = "data"): Promise<BlockDevice> {
    let dev: BlockDevice;
    try {
      dev = await this.ctx.env.openDevice(name);
    } catch (e) {
      if (e instanceof TableError) throw e;
      throw new TableError(`Device lookup failed: ${name}`, { device: name }, e);
    }
    this.opened.push({ name, dev });
    this.uses.push({ name, offsetSectors, lengthSectors, role });
    const endBytes = (offsetSectors + lengthSectors) * SECTOR_BYTES;
    if (endBytes > dev.sizeBytes) {
      throw new TableError(
        `${this.ctx.deviceName}: ${name} too small for target: start=${offsetSectors}, len=${lengthSectors}, dev_size=${Math.floor(
          dev.sizeBytes / SECTOR_BYTES,
        )}`,
        { device: name },
      );
    }
    return dev;
  }

  async releaseAll(): Promise<void> {
    const release = this.ctx.env.releaseDevice;
    const all = this.opened.splice(0);
    if (!release) return;
    for (const o of all) {
      try {
        await release.call(this.ctx.env, o.name, o.dev);
      } catch {
        // Releasing is best effort: the target is gone either way.
      }
    }
  }
}

/** Run a target constructor body; on failure release what it opened. */
export async function constructWith<T>(set: DeviceSet, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    await set.releaseAll();
    throw e;
  }
}
