import { CountingBlockDevice, IoCounters } from "../../blockdev/counting-block-device.js";
import type { BlockDevice } from "../../blockdev/block-device.js";
import type { MapperEvent } from "../../mapper/events.js";

/**
 * What the daemon counts for the metrics while it serves: I/O per active LV
 * (at the device its NBD exports serve, so every client and the device path
 * are counted, the resync's copying is not) and I/O errors per leg (from the
 * targets' leg-failed and stripe-error events, keyed by the leg's mapped
 * device name). Counting is a few adds on the data path; reading happens at
 * scrape time.
 */
export class IoStats {
  private readonly lvs = new Map<string, IoCounters>();
  private readonly legErrors = new Map<string, number>();

  /** The device to export for an LV (by its id, which survives renames); counts into that LV's counters. */
  wrap(lvId: string, device: BlockDevice): BlockDevice {
    let c = this.lvs.get(lvId);
    if (!c) this.lvs.set(lvId, (c = new IoCounters()));
    return new CountingBlockDevice(device, c);
  }

  /** The LV was deactivated: its series go away (a counter restarts at 0 on the next activation). */
  forget(lvId: string): void {
    this.lvs.delete(lvId);
  }

  lv(lvId: string): IoCounters | undefined {
    return this.lvs.get(lvId);
  }

  legErrorCount(legDevice: string): number {
    return this.legErrors.get(legDevice) ?? 0;
  }

  onMapperEvent(e: MapperEvent): void {
    if (e.kind === "leg-failed") this.legErrors.set(e.legDevice, this.legErrorCount(e.legDevice) + 1);
    else if (e.kind === "stripe-error") this.legErrors.set(e.stripeDevice, this.legErrorCount(e.stripeDevice) + 1);
  }
}
