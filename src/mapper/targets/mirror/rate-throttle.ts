/**
 * Keeps the average rate of a background walk (the copier, raid1's scrub)
 * at or below a number of bytes per second, measured since the walk started
 * or the rate last changed. 0 = unthrottled. md's sync_speed_max / dm-raid's
 * max_recovery_rate, per device.
 */
export class RateThrottle {
  private windowStartMs = Date.now();
  private windowBytes = 0;
  private sleeping: { timer: NodeJS.Timeout; resolve: () => void } | undefined;

  constructor(public rateBytesPerSec: number) {}

  /** Start a new measuring window (a walk starts). */
  restart(): void {
    this.windowStartMs = Date.now();
    this.windowBytes = 0;
  }

  setRate(bytesPerSec: number): void {
    this.rateBytesPerSec = bytesPerSec;
    this.restart();
    this.wake();
  }

  account(bytes: number): void {
    this.windowBytes += bytes;
  }

  /** Sleep until the bytes accounted so far are due (a wake() or setRate() ends the sleep early). */
  async wait(): Promise<void> {
    const rate = this.rateBytesPerSec;
    if (rate <= 0) return;
    const waitMs = this.windowStartMs + (this.windowBytes / rate) * 1000 - Date.now();
    if (waitMs <= 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.sleeping = undefined;
        resolve();
      }, waitMs);
      this.sleeping = { timer, resolve };
    });
  }

  /** End a sleep now (stop, rate change). */
  wake(): void {
    const s = this.sleeping;
    if (s === undefined) return;
    this.sleeping = undefined;
    clearTimeout(s.timer);
    s.resolve();
  }
}
