/**
 * Multi-conn (issue 18; libnbd's name): when the server advertises
 * NBD_FLAG_CAN_MULTI_CONN, it promises that a flush on one connection covers
 * the writes completed on any of them, so requests may be spread over
 * several connections to the same export. `devices { nbd_connections }`
 * asks for N (default 1: one connection, as before); a server without the
 * flag gets one connection whatever is asked.
 *
 * Each connection is an NbdClientDevice of its own (its deadlines,
 * reconnection and block-size splitting unchanged); calls go round-robin,
 * and a flush goes to every connection (the promise above makes one enough,
 * but a server that breaks it must not cost acknowledged writes).
 */
import type { BlockDevice, BlockDeviceCaps, WriteOptions } from "../blockdev/block-device.js";
import { NbdClientDevice, type NbdClientOptions } from "./client.js";
import type { NbdUri } from "./nbd-uri.js";
import { NBD_FLAG_CAN_MULTI_CONN } from "./protocol.js";

/** Connections per NBD PV at most (nbdcopy's default is 4; more buys nothing on one export). */
export const MAX_NBD_CONNECTIONS = 16;

export interface NbdOpenOptions extends NbdClientOptions {
  /** Connections wanted; used only when the server advertises multi-conn. Default 1. */
  readonly connections?: number;
}

/** Open an NBD export with as many connections as asked for and the server allows. */
export async function openNbdDevice(uri: string | NbdUri, opts: NbdOpenOptions = {}): Promise<BlockDevice & { readonly name: string }> {
  const first = await NbdClientDevice.open(uri, opts);
  const wanted = Math.min(MAX_NBD_CONNECTIONS, Math.max(1, Math.floor(opts.connections ?? 1)));
  if (wanted === 1 || (first.exportInfo.transmissionFlags & NBD_FLAG_CAN_MULTI_CONN) === 0) return first;
  const lanes = [first];
  try {
    for (let i = 1; i < wanted; i++) lanes.push(await NbdClientDevice.open(uri, opts));
  } catch (e) {
    await Promise.allSettled(lanes.map((l) => l.close()));
    throw e;
  }
  return new MultiConnNbdDevice(lanes);
}

export class MultiConnNbdDevice implements BlockDevice {
  readonly name: string;
  readonly caps: BlockDeviceCaps;
  readonly sizeBytes: number;
  private next = 0;

  constructor(readonly lanes: readonly NbdClientDevice[]) {
    const first = lanes[0]!;
    this.name = first.name;
    this.caps = first.caps;
    this.sizeBytes = first.sizeBytes;
  }

  private lane(): NbdClientDevice {
    const l = this.lanes[this.next]!;
    this.next = (this.next + 1) % this.lanes.length;
    return l;
  }

  read(offsetBytes: number, into: Uint8Array): Promise<void> {
    return this.lane().read(offsetBytes, into);
  }

  write(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    return this.lane().write(offsetBytes, data, opts);
  }

  discard(offsetBytes: number, lengthBytes: number): Promise<void> {
    return this.lane().discard(offsetBytes, lengthBytes);
  }

  async flush(): Promise<void> {
    const results = await Promise.allSettled(this.lanes.map((l) => l.flush()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.lanes.map((l) => l.close()));
  }
}
