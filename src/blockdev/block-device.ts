/**
 * BlockDevice: what every layer serves and consumes (PV files, mapped devices,
 * NBD exports). Byte-addressed; callers keep requests inside [0, sizeBytes).
 *
 * Durability contract: a write that has resolved is visible to later reads but
 * only durable after flush() resolves, unless it was issued with { fua: true },
 * in which case it is durable when it resolves.
 */
export interface BlockDeviceCaps {
  readonly write: boolean;
  readonly flush: boolean;
  readonly fua: boolean;
  readonly trim: boolean;
}

export interface WriteOptions {
  /** Force unit access: resolve only once this data is on stable storage. */
  readonly fua?: boolean;
  /** See ReadOptions.bulk. */
  readonly bulk?: boolean;
}

export interface ReadOptions {
  /**
   * A large background transfer (a mirror's resync), not a client request:
   * a device may serve it in-line while it answers from cache. Copying
   * through the thread pool moves every byte between cores; in-line, the
   * buffer just read stays hot for the write (about 1.7 times faster here).
   */
  readonly bulk?: boolean;
}

/** The options of every bulk read and write (one frozen object: no allocation per chunk). */
export const BULK_IO: ReadOptions & WriteOptions = Object.freeze({ bulk: true });

export interface BlockDevice {
  readonly name: string;
  readonly sizeBytes: number;
  readonly caps: BlockDeviceCaps;
  /** Fill `into` completely from `offsetBytes`, or throw IoError. */
  read(offsetBytes: number, into: Uint8Array, opts?: ReadOptions): Promise<void>;
  /** Write all of `data` at `offsetBytes`, or throw IoError. */
  write(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void>;
  /** Make every write that resolved before this call durable. */
  flush(): Promise<void>;
  /** Hint that a range is no longer needed; contents become unspecified. */
  discard?(offsetBytes: number, lengthBytes: number): Promise<void>;
  /** Make a range read back as zeroes. */
  writeZeroes?(offsetBytes: number, lengthBytes: number, opts?: WriteOptions): Promise<void>;
  close(): Promise<void>;
}
