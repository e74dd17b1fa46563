import type { BlockDevice, WriteOptions } from "./block-device.js";
import { PassThroughDevice } from "./pass-through-device.js";

/**
 * Writes made to a device through one path, seen by another path that
 * caches the device's bytes (the kernel's page cache of a FUSE device-path
 * file): `generation` moves at the start and at the end of every write,
 * `active` counts those under way, and each finished write is announced
 * (`onWritten`) so the cache can drop the range. A reader of the cached path
 * compares `generation` before and after its read: if a write started or
 * ended meanwhile, its bytes may be older than that write, and it reads again.
 */
export class WriteWatch {
  generation = 0;
  active = 0;
  onWritten: (offsetBytes: number, lengthBytes: number) => void = () => undefined;

  async around(offsetBytes: number, lengthBytes: number, op: () => Promise<void>): Promise<void> {
    this.generation++;
    this.active++;
    try {
      await op();
    } finally {
      this.active--;
      this.generation++;
      this.onWritten(offsetBytes, lengthBytes);
    }
  }

  /** Nothing was written while `read` ran (started at `generation` g0, with no write under way). */
  settled(g0: number): boolean {
    return this.active === 0 && this.generation === g0;
  }
}

/** `inner` with its writes (write, writeZeroes, discard) reported to a WriteWatch. */
export class WriteWatchedDevice extends PassThroughDevice {
  readonly discard?: (offsetBytes: number, lengthBytes: number) => Promise<void>;
  readonly writeZeroes?: (offsetBytes: number, lengthBytes: number, opts?: WriteOptions) => Promise<void>;

  constructor(inner: BlockDevice, private readonly watch: WriteWatch) {
    super(inner);
    if (inner.discard) this.discard = (off, len) => watch.around(off, len, () => inner.discard!(off, len));
    if (inner.writeZeroes) this.writeZeroes = (off, len, opts) => watch.around(off, len, () => inner.writeZeroes!(off, len, opts));
  }

  override write(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    return this.watch.around(offsetBytes, data.byteLength, () => this.inner.write(offsetBytes, data, opts));
  }

  /** The inner device belongs to whoever wrapped it. */
  override close(): Promise<void> {
    return Promise.resolve();
  }
}
