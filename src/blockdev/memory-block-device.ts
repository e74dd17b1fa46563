import type { BlockDevice, BlockDeviceCaps, WriteOptions } from "./block-device.js";
import { IoError } from "../errors/errors.js";

/**
 * A BlockDevice held in memory: the reference model in differential tests and
 * the backing store of fast unit tests. Everything written is "durable".
 */
export class MemoryBlockDevice implements BlockDevice {
  readonly caps: BlockDeviceCaps = { write: true, flush: true, fua: true, trim: true };
  readonly bytes: Uint8Array;
  private closed = false;

  constructor(readonly name: string, sizeOrContent: number | Uint8Array) {
    this.bytes = typeof sizeOrContent === "number" ? new Uint8Array(sizeOrContent) : sizeOrContent;
  }

  get sizeBytes(): number {
    return this.bytes.length;
  }

  private check(offsetBytes: number, length: number): void {
    if (this.closed) throw new IoError(`${this.name}: device is closed`, "EBADF");
    if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0 || offsetBytes + length > this.bytes.length) {
      throw new IoError(`${this.name}: access beyond end of device (offset ${offsetBytes}, length ${length})`, "EIO");
    }
  }

  async read(offsetBytes: number, into: Uint8Array): Promise<void> {
    this.check(offsetBytes, into.length);
    into.set(this.bytes.subarray(offsetBytes, offsetBytes + into.length));
  }

  async write(offsetBytes: number, data: Uint8Array, _opts?: WriteOptions): Promise<void> {
    this.check(offsetBytes, data.length);
    this.bytes.set(data, offsetBytes);
  }

  async flush(): Promise<void> {
    this.check(0, 0);
  }

  async discard(offsetBytes: number, lengthBytes: number): Promise<void> {
    this.check(offsetBytes, lengthBytes);
  }

  async writeZeroes(offsetBytes: number, lengthBytes: number): Promise<void> {
    this.check(offsetBytes, lengthBytes);
    this.bytes.fill(0, offsetBytes, offsetBytes + lengthBytes);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
