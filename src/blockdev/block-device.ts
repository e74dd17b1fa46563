import type { IoError } from "../errors/errors.js";

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

/** A byte range of a file or block device this process has open. */
export interface FileExtent {
  readonly fd: number;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

/**
 * Where a range of a device lives, for a bulk copy done off the event loop
 * (the resync copier's worker threads read and write these descriptors
 * directly). Every layer counts the lease as I/O in flight until release(),
 * so no suspend, table swap or close happens under it.
 */
export interface ExtentLease {
  /** In order, covering the range exactly. */
  readonly extents: readonly FileExtent[];
  /** The error any layer would now answer I/O with (a PV revoked meanwhile), if any. */
  problem(): IoError | undefined;
  release(): void;
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
  /**
   * See ExtentLease. Undefined when some part of the range is not plain
   * positional file I/O (memory, NBD, fault injection, zero/error targets)
   * or the device cannot take I/O right now (suspended, closed): callers
   * then use read() and write().
   */
  leaseExtents?(offsetBytes: number, lengthBytes: number, forWrite: boolean): ExtentLease | undefined;
  close(): Promise<void>;
}
