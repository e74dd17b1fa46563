/**
 * NbdConnection: one client, from the greeting to the close. The option
 * phase lives in handshake.ts; this file runs the transmission phase (§4):
 * every request is validated once (validate-request.ts), then run against
 * the export's BlockDevice; replies go out in completion order, several per
 * socket write when they complete in the same tick (cork, uncork on
 * nextTick).
 *
 * Memory is bounded. Per connection, requests beyond `maxInFlightRequests`
 * or `maxInFlightBytes` wait as headers in a queue and the socket is paused,
 * so at most one socket read's worth of requests plus one WRITE payload
 * arrive beyond the limits. Server-wide, every buffer (WRITE payloads, READ
 * data) is reserved from one byte budget first; a connection that cannot
 * reserve waits (socket paused) until another releases. A READ's buffer is
 * held until its reply has been written to the socket, so a client that does
 * not read its replies stops being read from.
 *
 * Hard closes (§7.2, §10) happen only for: bad option or request magic,
 * unknown client flags, over-long option data or too many options, an
 * unknown export in EXPORT_NAME (all in the handshake or parser), and WRITE
 * payloads over `maxDrainedPayloadBytes`.
 */
import type net from "node:net";
import tls from "node:tls";
import { NO_TLS, type ServerTls, type TlsMode } from "./server-tls.js";
import {
  ServerParser,
  encodeBlockStatus,
  encodeGreeting,
  encodeOffsetDataHeader,
  encodeSimpleReply,
  encodeStructuredError,
  encodeStructuredNone,
} from "./codec.js";
import type { NbdRequest, PayloadDisposition, ServerParserHandler } from "./codec.js";
import type { BudgetWaiter, ConnectionHost } from "./connection-host.js";
import { BASE_ALLOCATION_CONTEXT_ID, Handshake } from "./handshake.js";
import type { HandshakeSession, Negotiated } from "./handshake.js";
import type { ExportClient, NbdExport } from "./nbd-export.js";
import { nbdErrorOf } from "./nbd-error.js";
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_ENOTSUP,
  NBD_ESHUTDOWN,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
} from "./protocol.js";
import { validateRequest } from "./validate-request.js";
import type { Rejection, RequestContext } from "./validate-request.js";
import { adoptAcceptedSocket } from "./socket-reader.js";
import type { ByteSink } from "./socket-reader.js";

interface QueuedRequest {
  readonly req: NbdRequest;
  readonly payload: Buffer | null;
  readonly pooled: Buffer | null;
}

const SHUTDOWN: Rejection = { error: NBD_ESHUTDOWN, message: "server is shutting down" };

/** After ending a socket, how long a peer that never reads may keep it half-open. */
const END_GRACE_MS = 5000;

let nextConnectionId = 1;

export class NbdConnection implements ExportClient, ByteSink, BudgetWaiter, HandshakeSession {
  readonly id = nextConnectionId++;
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  /** The accepted socket, or the TLS socket over it after STARTTLS. */
  private socket: net.Socket;
  tlsActive = false;
  private readonly parser: ServerParser;
  private readonly handshake: Handshake;
  private phase: "handshake" | "transmission" | "closed" = "handshake";
  private handshakeTimer: NodeJS.Timeout | null = null;
  exportEntry: NbdExport | null = null;
  private ctx: RequestContext = { sizeBytes: 0, transmissionFlags: 0, structuredReplies: false, blockStatusContext: false };

  // transmission state
  private inFlightCount = 0;
  private inFlightBytes = 0;
  private readonly queue: QueuedRequest[] = [];
  private readingPaused = false;
  private waitingForBudget = false;
  /** DISC received, peer half-closed, or shutdown requested: close once idle. */
  private draining = false;
  shuttingDown = false;
  /** The WRITE whose payload is being received: its pooled buffer and any rejection to answer once drained. */
  private receivingPooled: Buffer | null = null;
  private receivingRejection: Rejection | null = null;
  private corked = false;
  private ended = false;

  constructor(
    readonly host: ConnectionHost,
    accepted: net.Socket,
    readonly remote: string,
    private readonly tls: ServerTls = NO_TLS,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.handshake = new Handshake(this);
    const handler: ServerParserHandler = {
      onClientFlags: (flags) => this.handshake.onClientFlags(flags),
      onOption: (opt) => this.handshake.onOption(opt),
      onWriteHeader: (req) => this.onWriteHeader(req),
      onRequest: (req, payload) => this.onRequest(req, payload),
      onProtocolError: (message) => this.hardClose(message),
    };
    this.parser = new ServerParser(handler, {
      maxBufferedOptionBytes: host.limits.maxBufferedOptionBytes,
      maxOptionBytes: host.limits.maxOptionBytes,
    });
    // A socket that may become a TLS one reads through 'data' events (the handle-adopting fast path cannot be wrapped).
    this.socket = adoptAcceptedSocket(accepted, this, { userBuffers: host.userBuffers && tls.mode === "off" });
    const socket = this.socket;
    this.watch(socket);
    if (host.limits.handshakeTimeoutMs > 0) {
      this.handshakeTimer = setTimeout(() => this.hardClose("handshake timed out"), host.limits.handshakeTimeoutMs);
      this.handshakeTimer.unref();
    }
    socket.write(encodeGreeting(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES));
  }

  private watch(socket: net.Socket): void {
    socket.on("error", (e) => this.host.log("debug", `connection ${this.id}: socket error: ${e.message}`));
    socket.on("close", () => this.onSocketClosed());
    socket.on("end", () => {
      // The peer half-closed: nothing more will arrive; finish what we have.
      this.parser.stop();
      this.startDraining();
    });
  }

  get tlsMode(): TlsMode {
    return this.tls.mode;
  }

  /** After the STARTTLS ACK: from now on every byte goes through TLS on the same socket. */
  startTls(): void {
    const raw = this.socket;
    raw.removeAllListeners("data");
    raw.removeAllListeners("end");
    const secure = new tls.TLSSocket(raw, { ...this.tls.options, isServer: true });
    secure.on("data", (chunk: Buffer) => this.onBytes(chunk));
    secure.on("error", (e) => this.hardClose(`TLS: ${e.message}`));
    secure.on("close", () => this.onSocketClosed());
    secure.on("end", () => {
      this.parser.stop();
      this.startDraining();
    });
    this.socket = secure;
    this.tlsActive = true;
  }

  get inTransmission(): boolean {
    return this.phase === "transmission";
  }

  /** Requests received and not yet answered (running or queued). */
  get requestsInFlight(): number {
    return this.inFlightCount + this.queue.length;
  }

  // ------------------------------------------------------------ ByteSink (socket-reader.ts)

  // A bug must cost one connection, never the daemon: these run straight
  // from libuv's read callback, where an exception would be fatal.

  onBytes(chunk: Buffer): void {
    try {
      this.parser.push(chunk);
    } catch (e) {
      this.internalError(e);
    }
  }

  directTarget(): Buffer | null {
    return this.parser.payloadWindow();
  }

  onDirectBytes(byteCount: number): void {
    try {
      this.parser.payloadReceived(byteCount);
    } catch (e) {
      this.internalError(e);
    }
  }

  private internalError(e: unknown): void {
    this.host.log("warn", `connection ${this.id} (${this.remote}): internal error, closing: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    this.destroy();
  }

  // ------------------------------------------------------------ HandshakeSession

  send(reply: Buffer): void {
    if (!this.ended) this.socket.write(reply);
  }

  endGracefully(): void {
    this.endSocket();
  }

  enterTransmission(exp: NbdExport, transmissionFlags: number, negotiated: Negotiated): void {
    this.phase = "transmission";
    if (this.handshakeTimer !== null) {
      clearTimeout(this.handshakeTimer);
      this.handshakeTimer = null;
    }
    this.exportEntry = exp;
    exp.clients.add(this);
    this.ctx = {
      sizeBytes: exp.sizeBytes,
      transmissionFlags,
      structuredReplies: negotiated.structuredReplies,
      blockStatusContext: negotiated.blockStatusContext,
    };
    this.parser.enterTransmission();
    this.host.log("debug", `connection ${this.id} (${this.remote}): export "${exp.name}", flags 0x${transmissionFlags.toString(16)}`);
  }

  hardClose(reason: string): void {
    this.host.log("info", `connection ${this.id} (${this.remote}): closing: ${reason}`);
    this.destroy();
  }

  // ------------------------------------------------------------ closing

  /** Graceful: requests already received finish, new ones get ESHUTDOWN, then the socket closes. */
  shutdown(): void {
    if (this.phase === "closed") return;
    this.shuttingDown = true;
    if (this.phase === "handshake") {
      // Nothing negotiated yet: no state to finish.
      this.endSocket();
      return;
    }
    // A WRITE waiting for a buffer is answered ESHUTDOWN now (its payload is drained).
    this.parser.resumePayload();
    this.startDraining();
  }

  /** Close at once (protocol violation, shutdown timeout). */
  destroy(): void {
    this.parser.stop();
    this.socket.destroy();
  }

  private startDraining(): void {
    this.draining = true;
    this.maybeFinishDraining();
  }

  private maybeFinishDraining(): void {
    if (!this.draining || this.phase === "closed") return;
    if (this.inFlightCount > 0 || this.queue.length > 0) return;
    // During a shutdown a payload being received still gets its ESHUTDOWN reply first.
    if (this.parser.receivingPayload) return;
    this.endSocket();
  }

  private endSocket(): void {
    if (this.ended) return;
    this.ended = true;
    this.parser.stop();
    this.uncork();
    this.socket.end();
    // Keep reading (into a stopped parser) so the peer's EOF is seen and the socket closes.
    this.readingPaused = false;
    this.socket.resume();
    setTimeout(() => this.socket.destroy(), END_GRACE_MS).unref();
  }

  private onSocketClosed(): void {
    if (this.phase === "closed") return;
    this.phase = "closed";
    this.parser.stop();
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    if (this.receivingPooled !== null) {
      this.releaseBytes(this.receivingPooled);
      this.receivingPooled = null;
    }
    for (const q of this.queue.splice(0)) {
      if (q.pooled !== null) this.releaseBytes(q.pooled);
    }
    this.exportEntry?.clients.delete(this);
    this.host.connectionClosed(this);
    this.resolveClosed();
  }

  // ------------------------------------------------------------ buffers and flow control

  /** A pooled buffer for `lengthBytes`, reserved from the server-wide budget; null if the budget is exhausted. */
  private tryAcquire(lengthBytes: number): Buffer | null {
    const b = this.host.pool.acquire(lengthBytes);
    if (!this.host.tryReserve(b.length)) {
      this.host.pool.release(b);
      return null;
    }
    this.inFlightBytes += b.length;
    return b;
  }

  private releaseBytes(b: Buffer): void {
    this.inFlightBytes -= b.length;
    this.host.pool.release(b);
    this.host.unreserve(b.length);
  }

  private waitForBudget(): void {
    this.pauseReading();
    if (this.waitingForBudget) return;
    this.waitingForBudget = true;
    this.host.waitForBudget(this);
  }

  /** BudgetWaiter: another connection released buffer bytes. */
  onBudgetAvailable(): void {
    this.waitingForBudget = false;
    if (this.phase === "closed") return;
    this.parser.resumePayload();
    this.startQueued();
    this.maybeResumeReading();
  }

  private pauseReading(): void {
    if (this.readingPaused || this.phase === "closed") return;
    this.readingPaused = true;
    this.socket.pause();
  }

  private maybeResumeReading(): void {
    if (!this.readingPaused || this.queue.length > 0 || this.parser.waitingForPayloadBuffer) return;
    const limits = this.host.limits;
    if (this.inFlightCount >= limits.maxInFlightRequests) return;
    if (this.inFlightBytes >= limits.maxInFlightBytes && this.inFlightCount > 0) return;
    this.readingPaused = false;
    if (this.phase !== "closed") this.socket.resume();
  }

  /** Per-connection limits: may one more request start now? (Always, if none is running: progress.) */
  private underLimits(req: NbdRequest): boolean {
    if (this.inFlightCount === 0) return true;
    const limits = this.host.limits;
    if (this.inFlightCount >= limits.maxInFlightRequests) return false;
    return req.type !== NBD_CMD_READ || this.inFlightBytes + req.lengthBytes <= limits.maxInFlightBytes;
  }

  // ------------------------------------------------------------ transmission: intake

  /**
   * The negotiated context, with the size clamped to the device's current
   * size: a client keeps the size it was told (NBD has no resize
   * notification), but must never reach past a device that shrank since.
   */
  private currentContext(): RequestContext {
    const deviceBytes = this.exportEntry?.device.sizeBytes ?? 0;
    if (deviceBytes < this.ctx.sizeBytes) this.ctx = { ...this.ctx, sizeBytes: deviceBytes };
    return this.ctx;
  }

  private onWriteHeader(req: NbdRequest): PayloadDisposition {
    const rejection = this.shuttingDown ? SHUTDOWN : validateRequest(req, this.currentContext());
    if (rejection !== null) {
      if (req.lengthBytes > this.host.limits.maxDrainedPayloadBytes) {
        this.hardClose(`NBD_CMD_WRITE payload of ${req.lengthBytes} bytes is absurd`);
        return "close";
      }
      this.receivingRejection = rejection;
      return "discard";
    }
    // Hold the payload back (socket paused) while this connection is at its
    // byte limit; finish() resumes it. Running requests guarantee progress.
    if (this.inFlightCount > 0 && this.inFlightBytes + req.lengthBytes > this.host.limits.maxInFlightBytes) {
      this.pauseReading();
      return "wait";
    }
    const pooled = this.tryAcquire(req.lengthBytes);
    if (pooled === null) {
      this.waitForBudget();
      return "wait";
    }
    this.receivingPooled = pooled;
    this.receivingRejection = null;
    return pooled.subarray(0, req.lengthBytes);
  }

  private onRequest(req: NbdRequest, payload: Buffer | null): void {
    if (req.type === NBD_CMD_DISC) {
      // §4.3: no reply; finish what was received, then close. Anything after DISC is ignored.
      this.parser.stop();
      this.startDraining();
      return;
    }
    let pooled: Buffer | null = null;
    let rejection: Rejection | null;
    if (req.type === NBD_CMD_WRITE && req.lengthBytes > 0) {
      pooled = this.receivingPooled;
      rejection = this.receivingRejection;
      this.receivingPooled = null;
      this.receivingRejection = null;
    } else {
      rejection = this.shuttingDown ? SHUTDOWN : validateRequest(req, this.currentContext());
    }
    if (rejection !== null) {
      if (pooled !== null) this.releaseBytes(pooled);
      this.inFlightCount++;
      this.sendError(req, rejection.error, rejection.message, null);
      return;
    }
    this.queue.push({ req, payload, pooled });
    this.startQueued();
    if (this.queue.length > 0 || this.inFlightCount >= this.host.limits.maxInFlightRequests) this.pauseReading();
  }

  /** Start queued requests in order while limits and the budget allow. */
  private startQueued(): void {
    while (this.queue.length > 0 && this.phase !== "closed") {
      const next = this.queue[0];
      if (next === undefined || !this.underLimits(next.req)) return;
      if (next.req.type === NBD_CMD_READ && next.req.lengthBytes > 0) {
        const buf = this.tryAcquire(next.req.lengthBytes);
        if (buf === null) {
          this.waitForBudget();
          return;
        }
        this.queue.shift();
        this.startRead(next.req, buf);
      } else {
        this.queue.shift();
        this.start(next);
      }
    }
  }

  /** A request's reply has been handed to the socket (or dropped): account for it and let the next ones in. */
  private finish(pooled: Buffer | null): void {
    this.inFlightCount--;
    if (pooled !== null) this.releaseBytes(pooled);
    if (this.parser.waitingForPayloadBuffer) this.parser.resumePayload();
    this.startQueued();
    this.maybeResumeReading();
    this.maybeFinishDraining();
  }

  // ------------------------------------------------------------ transmission: execution

  private startRead(req: NbdRequest, pooled: Buffer): void {
    this.inFlightCount++;
    const device = this.exportEntry?.device;
    if (device === undefined) {
      this.sendError(req, NBD_ESHUTDOWN, "export is gone", pooled);
      return;
    }
    const view = pooled.subarray(0, req.lengthBytes);
    let op: Promise<void>;
    try {
      op = device.read(req.offsetBytes, view);
    } catch (e) {
      this.sendFailure(req, e, pooled);
      return;
    }
    op.then(
      () => this.sendReadData(req, pooled, view),
      (e: unknown) => this.sendFailure(req, e, pooled),
    ).catch((e: unknown) => this.internalError(e));
  }

  private start(item: QueuedRequest): void {
    const { req, pooled } = item;
    this.inFlightCount++;
    const device = this.exportEntry?.device;
    if (device === undefined) {
      this.sendError(req, NBD_ESHUTDOWN, "export is gone", pooled);
      return;
    }
    const fua = (req.flags & NBD_CMD_FLAG_FUA) !== 0;
    let op: Promise<void>;
    try {
      switch (req.type) {
        case NBD_CMD_READ: // only zero-length reads get here
        case NBD_CMD_CACHE: // a prefetch hint; the page cache does its own readahead (§4.3: may do nothing)
          op = Promise.resolve();
          break;
        case NBD_CMD_WRITE:
          op = item.payload === null ? Promise.resolve() : device.write(req.offsetBytes, item.payload, fua ? { fua: true } : undefined);
          break;
        case NBD_CMD_FLUSH:
          op = device.flush();
          break;
        case NBD_CMD_TRIM:
          if (req.lengthBytes === 0 || device.discard === undefined) op = fua ? device.flush() : Promise.resolve();
          else op = fua ? device.discard(req.offsetBytes, req.lengthBytes).then(() => device.flush()) : device.discard(req.offsetBytes, req.lengthBytes);
          break;
        case NBD_CMD_WRITE_ZEROES:
          if ((req.flags & NBD_CMD_FLAG_FAST_ZERO) !== 0) {
            // §4.3: zeroing here is never faster than writing; say so at once, touching nothing.
            this.sendError(req, NBD_ENOTSUP, "fast zeroing is not supported", pooled);
            return;
          }
          op = req.lengthBytes === 0 ? Promise.resolve() : writeZeroes(device, req.offsetBytes, req.lengthBytes, fua);
          break;
        case NBD_CMD_BLOCK_STATUS:
          // base:allocation: everything is allocated data (flags 0 is always safe, §5).
          this.sendBlockStatus(req);
          return;
        default:
          this.sendError(req, NBD_EINVAL, `unknown command ${req.type}`, pooled);
          return;
      }
    } catch (e) {
      this.sendFailure(req, e, pooled);
      return;
    }
    op.then(
      () => this.sendOk(req, pooled),
      (e: unknown) => this.sendFailure(req, e, pooled),
    ).catch((e: unknown) => this.internalError(e));
  }

  // ------------------------------------------------------------ replies

  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(uncorkConnection, this);
  }

  /** @internal (nextTick callback) */
  uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }

  private get canWrite(): boolean {
    return this.phase !== "closed" && !this.ended;
  }

  private sendReadData(req: NbdRequest, pooled: Buffer, view: Buffer): void {
    if (!this.canWrite) {
      this.finish(pooled);
      return;
    }
    // The data is in hand before the header goes out (§4.2: once a success
    // header is sent, the only way out of a failed read is a hard close).
    const header = this.ctx.structuredReplies
      ? encodeOffsetDataHeader(req.cookieHi, req.cookieLo, req.offsetBytes, req.lengthBytes)
      : encodeSimpleReply(0, req.cookieHi, req.cookieLo);
    this.cork();
    this.socket.write(header);
    // The buffer goes back to the pool only once the socket is done with it.
    this.socket.write(view, () => this.finish(pooled));
  }

  private sendOk(req: NbdRequest, pooled: Buffer | null): void {
    // A zero-length READ with structured replies still needs a structured reply: NONE + DONE.
    const reply =
      req.type === NBD_CMD_READ && this.ctx.structuredReplies
        ? encodeStructuredNone(req.cookieHi, req.cookieLo)
        : encodeSimpleReply(0, req.cookieHi, req.cookieLo);
    this.sendSmall(reply, pooled);
  }

  private sendBlockStatus(req: NbdRequest): void {
    const extent = [{ lengthBytes: req.lengthBytes, flags: 0 }];
    this.sendSmall(encodeBlockStatus(req.cookieHi, req.cookieLo, BASE_ALLOCATION_CONTEXT_ID, extent, true), null);
  }

  private sendFailure(req: NbdRequest, e: unknown, pooled: Buffer | null): void {
    const message = e instanceof Error ? e.message : String(e);
    this.host.log("debug", `connection ${this.id}: request failed: ${message}`);
    this.sendError(req, nbdErrorOf(e), message, pooled);
  }

  /** Error reply: a structured ERROR chunk with a message once structured replies are on (§5), else simple. */
  private sendError(req: NbdRequest, error: number, message: string, pooled: Buffer | null): void {
    const reply = this.ctx.structuredReplies
      ? encodeStructuredError(req.cookieHi, req.cookieLo, error, message)
      : encodeSimpleReply(error, req.cookieHi, req.cookieLo);
    this.sendSmall(reply, pooled);
  }

  /** A reply without a data buffer: socket.write copies nothing we keep, so the request is done now. */
  private sendSmall(reply: Buffer, pooled: Buffer | null): void {
    if (this.canWrite) {
      this.cork();
      this.socket.write(reply);
    }
    this.finish(pooled);
  }
}

function uncorkConnection(conn: NbdConnection): void {
  conn.uncork();
}

let zeroBuffer: Buffer | null = null;

/** WRITE_ZEROES through the device, or emulated with plain writes from a shared 1 MiB zero buffer. */
function writeZeroes(device: NbdExport["device"], offsetBytes: number, lengthBytes: number, fua: boolean): Promise<void> {
  if (device.writeZeroes !== undefined) return device.writeZeroes(offsetBytes, lengthBytes, fua ? { fua: true } : undefined);
  zeroBuffer ??= Buffer.alloc(1024 * 1024);
  const zero = zeroBuffer;
  const loop = async (): Promise<void> => {
    for (let done = 0; done < lengthBytes; done += zero.length) {
      await device.write(offsetBytes + done, zero.subarray(0, Math.min(zero.length, lengthBytes - done)));
    }
    if (fua) await device.flush();
  };
  return loop();
}
