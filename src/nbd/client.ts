/**
 * NbdClientDevice: an NBD export as a BlockDevice, so a PV can live on
 * another host (issue 18). One connection at a time, many requests in
 * flight on it.
 *
 * Requests honour the server's block-size constraints: they are split at
 * the maximum payload, and a range not aligned to the minimum block size is
 * widened (reads) or read-modified-written (writes). FLUSH, FUA and TRIM are
 * used only when the server advertises them.
 *
 * Failures, as a mirror leg needs them (shared/reference/pvmove-network-legs.md B5):
 *   - every request has a deadline (`devices { nbd_timeout_s }`); a request
 *     that misses it fails with ETIMEDOUT and the connection is dropped, since
 *     a server that stalls one request cannot be trusted with the others;
 *   - when a connection drops, the writes, trims and flushes in flight fail
 *     with IoError (their fate on the server is unknown: they count as not on
 *     that leg); reads are sent again once, on the next connection;
 *   - libnbd never reconnects; this does, with exponential backoff, for as long
 *     as the device is open. Requests made meanwhile wait for the new
 *     connection within their own deadline.
 */
import type { BlockDevice, BlockDeviceCaps, WriteOptions } from "../blockdev/block-device.js";
import { IoError } from "../errors/errors.js";
import { NbdClientConnection, type NbdExportInfo, type WireRequest } from "./client-connection.js";
import { parseNbdUri, NbdUriError, type NbdUri } from "./nbd-uri.js";
import {
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
} from "./protocol.js";

export interface NbdClientOptions {
  /** Per-request deadline, and the handshake's. Default 30 s. */
  readonly timeoutMs?: number;
  /** First reconnection delay; doubles up to maxReconnectDelayMs. */
  readonly reconnectDelayMs?: number;
  readonly maxReconnectDelayMs?: number;
  /** Refuse writes even when the export takes them. */
  readonly readOnly?: boolean;
}

export const DEFAULT_NBD_TIMEOUT_MS = 30_000;

interface Queued {
  readonly req: WireRequest;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  /** Times a read may still be sent again after its connection dropped. */
  retries: number;
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
}

export class NbdClientDevice implements BlockDevice {
  readonly caps: BlockDeviceCaps;
  readonly sizeBytes: number;
  private conn: NbdClientConnection | undefined;
  private reconnecting: Promise<void> | undefined;
  /** Requests waiting for a connection. */
  private waiting: Queued[] = [];
  private closed = false;
  private readonly timeoutMs: number;
  /** Connections made after the first (for tests and status). */
  reconnects = 0;

  private constructor(
    readonly name: string,
    private readonly uri: NbdUri,
    private info: NbdExportInfo,
    first: NbdClientConnection,
    private readonly opts: NbdClientOptions,
  ) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_NBD_TIMEOUT_MS;
    this.sizeBytes = info.sizeBytes;
    const flags = info.transmissionFlags;
    this.caps = {
      write: !opts.readOnly && (flags & NBD_FLAG_READ_ONLY) === 0,
      flush: (flags & NBD_FLAG_SEND_FLUSH) !== 0,
      fua: (flags & NBD_FLAG_SEND_FUA) !== 0,
      trim: (flags & NBD_FLAG_SEND_TRIM) !== 0,
    };
    this.adopt(first);
  }

  /** Connect to `uri` (an NBD URI string or parsed); the device's name is the URI's display form. */
  static async open(uri: string | NbdUri, opts: NbdClientOptions = {}): Promise<NbdClientDevice> {
    let parsed: NbdUri;
    try {
      parsed = typeof uri === "string" ? parseNbdUri(uri) : uri;
    } catch (e) {
      if (e instanceof NbdUriError) throw new IoError(e.message, "EINVAL");
      throw e;
    }
    const conn = await NbdClientConnection.connect(parsed, parsed.display, opts.timeoutMs ?? DEFAULT_NBD_TIMEOUT_MS);
    return new NbdClientDevice(parsed.display, parsed, conn.info, conn, opts);
  }

  /** What the handshake agreed (block sizes, flags). */
  get exportInfo(): NbdExportInfo {
    return this.info;
  }

  async read(offsetBytes: number, into: Uint8Array): Promise<void> {
    this.checkRange(offsetBytes, into.length);
    const { start, end } = this.aligned(offsetBytes, into.length);
    if (start === offsetBytes && end === offsetBytes + into.length) return this.readAligned(offsetBytes, into);
    const tmp = new Uint8Array(end - start);
    await this.readAligned(start, tmp);
    into.set(tmp.subarray(offsetBytes - start, offsetBytes - start + into.length));
  }

  async write(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    if (!this.caps.write) throw new IoError(`${this.name}: NBD export is read-only`, "EROFS");
    this.checkRange(offsetBytes, data.length);
    const fua = opts?.fua === true;
    const { start, end } = this.aligned(offsetBytes, data.length);
    if (start === offsetBytes && end === offsetBytes + data.length) return this.writeAligned(offsetBytes, data, fua);
    // Below the server's minimum block size: read, modify, write the whole blocks.
    const tmp = new Uint8Array(end - start);
    await this.readAligned(start, tmp);
    tmp.set(data, offsetBytes - start);
    await this.writeAligned(start, tmp, fua);
  }

  async flush(): Promise<void> {
    // Without NBD_FLAG_SEND_FLUSH the server writes through (proto.md): nothing to ask for.
    if (!this.caps.flush) return;
    await this.submit({ type: NBD_CMD_FLUSH, flags: 0, offsetBytes: 0, lengthBytes: 0 });
  }

  async discard(offsetBytes: number, lengthBytes: number): Promise<void> {
    if (!this.caps.trim || !this.caps.write) return;
    this.checkRange(offsetBytes, lengthBytes);
    // Trim is a hint: only the whole minimum blocks inside the range.
    const min = this.info.minimumBlockBytes;
    const start = Math.ceil(offsetBytes / min) * min;
    const end = Math.floor((offsetBytes + lengthBytes) / min) * min;
    const step = Math.max(min, Math.floor(0x80000000 / min) * min);
    const parts: Promise<void>[] = [];
    for (let at = start; at < end; at += step) {
      parts.push(this.submit({ type: NBD_CMD_TRIM, flags: 0, offsetBytes: at, lengthBytes: Math.min(step, end - at) }));
    }
    await Promise.all(parts);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const gone = new IoError(`${this.name}: NBD device closed`, "ESHUTDOWN");
    for (const q of this.waiting.splice(0)) this.settle(q, gone);
    const conn = this.conn;
    this.conn = undefined;
    if (conn && !conn.dead) {
      if (conn.pending === 0) await conn.disconnect();
      else conn.kill(gone);
    }
  }

  // ------------------------------------------------------------ splitting

  private checkRange(offsetBytes: number, lengthBytes: number): void {
    if (this.closed) throw new IoError(`${this.name}: NBD device closed`, "ESHUTDOWN");
    if (offsetBytes < 0 || offsetBytes + lengthBytes > this.sizeBytes) {
      throw new IoError(`${this.name}: I/O of ${lengthBytes} bytes at ${offsetBytes} beyond the end of the ${this.sizeBytes}-byte export`, "EIO");
    }
  }

  private aligned(offsetBytes: number, lengthBytes: number): { start: number; end: number } {
    const min = this.info.minimumBlockBytes;
    return { start: Math.floor(offsetBytes / min) * min, end: Math.min(this.sizeBytes, Math.ceil((offsetBytes + lengthBytes) / min) * min) };
  }

  /** Largest request payload, a multiple of the minimum block size. */
  private get maxPayload(): number {
    const min = this.info.minimumBlockBytes;
    return Math.max(min, Math.floor(this.info.maximumPayloadBytes / min) * min);
  }

  private async readAligned(offsetBytes: number, into: Uint8Array): Promise<void> {
    const step = this.maxPayload;
    const parts: Promise<void>[] = [];
    for (let at = 0; at < into.length; at += step) {
      const len = Math.min(step, into.length - at);
      parts.push(this.submit({ type: NBD_CMD_READ, flags: 0, offsetBytes: offsetBytes + at, lengthBytes: len, into: into.subarray(at, at + len) }));
    }
    await settleAll(parts);
  }

  private async writeAligned(offsetBytes: number, data: Uint8Array, fua: boolean): Promise<void> {
    // FUA where the server has it; otherwise a flush after the write gives the same promise.
    const flags = fua && this.caps.fua ? NBD_CMD_FLAG_FUA : 0;
    const step = this.maxPayload;
    const parts: Promise<void>[] = [];
    for (let at = 0; at < data.length; at += step) {
      const len = Math.min(step, data.length - at);
      parts.push(this.submit({ type: NBD_CMD_WRITE, flags, offsetBytes: offsetBytes + at, lengthBytes: len, payload: data.subarray(at, at + len) }));
    }
    await settleAll(parts);
    if (fua && !this.caps.fua) await this.flush();
  }

  // ------------------------------------------------------------ requests, deadlines, reconnection

  private submit(req: WireRequest): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const q: Queued = { req, resolve, reject, retries: req.type === NBD_CMD_READ ? 1 : 0, settled: false, timer: undefined };
      q.timer = setTimeout(() => this.expire(q), this.timeoutMs);
      this.dispatch(q);
    });
  }

  private dispatch(q: Queued): void {
    if (q.settled) return;
    if (this.closed) return this.settle(q, new IoError(`${this.name}: NBD device closed`, "ESHUTDOWN"));
    const conn = this.conn;
    if (conn === undefined || conn.dead) {
      this.waiting.push(q);
      this.startReconnecting();
      return;
    }
    conn.send(q.req).then(
      () => this.settle(q),
      (e: Error) => {
        if (q.settled) return;
        // A dropped connection: a read goes again on the next one; anything else fails.
        // Not after a protocol violation (EPROTO): a lying server gets no second chance.
        const dropped = conn.deathReason === e && (e as IoError).errno !== "EPROTO";
        if (dropped && q.retries > 0) {
          q.retries--;
          this.dispatch(q);
        } else this.settle(q, e);
      },
    );
  }

  private settle(q: Queued, e?: Error): void {
    if (q.settled) return;
    q.settled = true;
    if (q.timer) clearTimeout(q.timer);
    if (e) q.reject(e);
    else q.resolve();
  }

  private expire(q: Queued): void {
    if (q.settled) return;
    const what = q.req.type === NBD_CMD_READ ? "read" : q.req.type === NBD_CMD_WRITE ? "write" : q.req.type === NBD_CMD_FLUSH ? "flush" : "request";
    this.settle(q, new IoError(`${this.name}: NBD ${what} of ${q.req.lengthBytes} bytes at ${q.req.offsetBytes} timed out after ${this.timeoutMs / 1000} s`, "ETIMEDOUT"));
    this.waiting = this.waiting.filter((w) => w !== q);
    // A server that stalls one request holds the others too: start over on a new connection.
    const conn = this.conn;
    if (conn && !conn.dead && conn.pending > 0) conn.kill(new IoError(`${this.name}: NBD server stopped answering (${this.timeoutMs / 1000} s)`, "EPIPE"));
  }

  private adopt(conn: NbdClientConnection): void {
    this.conn = conn;
    conn.onDead(() => {
      if (this.conn === conn && !this.closed && this.waiting.length > 0) this.startReconnecting();
    });
  }

  private startReconnecting(): void {
    if (this.reconnecting || this.closed) return;
    this.reconnecting = this.reconnectLoop().finally(() => (this.reconnecting = undefined));
  }

  private async reconnectLoop(): Promise<void> {
    let delay = this.opts.reconnectDelayMs ?? 100;
    const maxDelay = this.opts.maxReconnectDelayMs ?? 5000;
    for (let first = true; !this.closed; first = false) {
      if (!first) {
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(maxDelay, delay * 2);
      }
      if (this.closed) return;
      // Nobody waits: stop; the next request starts again.
      if (this.waiting.length === 0) return;
      let conn: NbdClientConnection;
      try {
        conn = await NbdClientConnection.connect(this.uri, this.name, this.timeoutMs);
      } catch {
        continue;
      }
      if (this.closed) {
        conn.kill(new IoError(`${this.name}: NBD device closed`, "ESHUTDOWN"));
        return;
      }
      if (conn.info.sizeBytes !== this.sizeBytes) {
        // Not the export we had: never write to it as if it were.
        conn.kill(new IoError(`${this.name}: NBD export changed size`, "EIO"));
        for (const q of this.waiting.splice(0)) this.settle(q, new IoError(`${this.name}: NBD export changed size from ${this.sizeBytes} to ${conn.info.sizeBytes} bytes`, "EIO"));
        return;
      }
      this.reconnects++;
      this.info = conn.info;
      this.adopt(conn);
      for (const q of this.waiting.splice(0)) this.dispatch(q);
      return;
    }
  }
}

/** Wait for every part (none left running on a buffer the caller may reuse), then throw the first failure. */
async function settleAll(parts: Promise<void>[]): Promise<void> {
  if (parts.length === 1) return parts[0];
  const results = await Promise.allSettled(parts);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}
