import type { BlockDevice, BlockDeviceCaps, ReadOptions, WriteOptions } from "./block-device.js";

/**
 * A device layered over another, as an nbdkit filter is over its plugin:
 * whatever a subclass does not override passes straight through to `inner`
 * (name, size, capabilities, I/O, flush, close). Subclasses add one concern
 * each: revocation, counting, fault injection.
 */
export abstract class PassThroughDevice implements BlockDevice {
  constructor(readonly inner: BlockDevice) {}

  get name(): string {
    return this.inner.name;
  }

  get sizeBytes(): number {
    return this.inner.sizeBytes;
  }

  get caps(): BlockDeviceCaps {
    return this.inner.caps;
  }

  read(offsetBytes: number, into: Uint8Array, opts?: ReadOptions): Promise<void> {
    return this.inner.read(offsetBytes, into, opts);
  }

  write(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    return this.inner.write(offsetBytes, data, opts);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
