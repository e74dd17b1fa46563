/**
 * NbdConnection: one client, from the greeting to the close.
 *
 * Handshake (§2): fixed newstyle with NO_ZEROES; options are answered
 * synchronously, one at a time, as clients send them. Transmission (§4):
 * every request is validated once (validate-request.ts), then run against
 * the export's BlockDevice; replies go out in completion order, several per
 * socket write when they complete in the same tick (cork, uncork on
 * nextTick).
 *
 * Memory is bounded per connection: requests that would exceed
 * `maxInFlightRequests` or `maxInFlightBytes` (or the server-wide byte
 * budget) wait in a queue of headers and the socket is paused, so at most one
 * socket read's worth of requests plus one WRITE payload arrive beyond the
 * limits. A READ's buffer is held until its reply is written to the socket,
 * so a client that does not read its replies stops being read from.
 *
 * Hard closes (§7.2, §10) happen only for: bad option or request magic,
 * unknown client flags, over-long option data or too many options, an
 * unknown export in EXPORT_NAME, and WRITE payloads over 64 MiB.
 */
import type net from "node:net";
import type { BufferPool } from "../blockdev/buffer-pool.js";
import {
  DEFAULT_PARSER_LIMITS,
  ServerParser,
  decodeInfoRequest,
  decodeMetaContextRequest,
  encodeBlockStatus,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoText,
  encodeOffsetDataHeader,
  encodeOptionError,
  encodeOptionReply,
  encodeRepMetaContext,
  encodeRepServer,
  encodeSimpleReply,
  encodeStructuredError,
  encodeStructuredNone,
} from "./codec.js";
import type { NbdOption, NbdRequest, PayloadDisposition, ServerParserHandler } from "./codec.js";
import type { ExportClient, NbdExport } from "./nbd-export.js";
import { nbdErrorOf } from "./nbd-error.js";
import {
  BASE_ALLOCATION_CONTEXT,
  BLOCK_SIZE_MAXIMUM_BYTES,
  BLOCK_SIZE_MINIMUM_BYTES,
  BLOCK_SIZE_PREFERRED_BYTES,
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
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_NAME,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_TOO_BIG,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  optionName,
} from "./protocol.js";
import { validateRequest } from "./validate-request.js";
import type { Rejection, RequestContext } from "./validate-request.js";
import { IoError } from "../errors/errors.js";
import { adoptAcceptedSocket } from "./socket-reader.js";
import type { ByteSink } from "./socket-reader.js";

export interface ConnectionLimits {
  /** Options per connection before a hard close (§2.2; nbdkit stops at 32, but nbdinfo --list asks per export). */
  readonly maxOptions: number;
  /** Option data buffered for known options; longer known options get ERR_TOO_BIG. */
  readonly maxBufferedOptionBytes: number;
  /** Option data above this is a hard close. */
  readonly maxOptionBytes: number;
  /** WRITE payloads above our maximum but up to this are drained and answered EINVAL; beyond: hard close (§7.2). */
  readonly maxDrainedPayloadBytes: number;
  readonly maxInFlightRequests: number;
  readonly maxInFlightBytes: number;
  /** Close connections that have not reached transmission after this long (0 = never). */
  readonly handshakeTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxOptions: 256,
  maxBufferedOptionBytes: DEFAULT_PARSER_LIMITS.maxBufferedOptionBytes,
  maxOptionBytes: DEFAULT_PARSER_LIMITS.maxOptionBytes,
  maxDrainedPayloadBytes: 64 * 1024 * 1024,
  maxInFlightRequests: 256,
  maxInFlightBytes: 64 * 1024 * 1024,
  handshakeTimeoutMs: 30_000,
};

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly limits: ConnectionLimits;
  readonly pool: BufferPool;
  /** Read into user buffers (socket-reader.ts); false forces plain 'data' events. */
  readonly userBuffers: boolean;
  readonly shuttingDown: boolean;
  /** Bytes held by all connections, and the cap on it. */
  globalInFlightBytes: number;
  readonly maxGlobalInFlightBytes: number;
  findExport(name: string): NbdExport | undefined;
  listExports(): readonly NbdExport[];
  connectionClosed(conn: NbdConnection): void;
  log(level: "debug" | "info" | "warn", message: string): void;
}

interface QueuedRequest {
  readonly req: NbdRequest;
  readonly payload: Buffer | null;
  readonly pooled: Buffer | null;
}

const META_CONTEXT_ID = 1;

let nextConnectionId = 1;

export class NbdConnection implements ExportClient, ByteSink {
  readonly id = nextConnectionId++;
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private socket: net.Socket;
  private readonly parser: ServerParser;
  private phase: "handshake" | "transmission" | "closed" = "handshake";
  private noZeroes = false;
  private optionCount = 0;
  private structuredReplies = false;
  /** Export name a SET_META_CONTEXT selected base:allocation for (§2.3: only valid for a GO on that name). */
  private metaContextExport: string | null = null;
  private handshakeTimer: NodeJS.Timeout | null = null;
  exportEntry: NbdExport | null = null;
  private ctx: RequestContext = { sizeBytes: 0, transmissionFlags: 0, structuredReplies: false, blockStatusContext: false };

  // transmission state
  private inFlightCount = 0;
  private inFlightBytes = 0;
  private readonly queue: QueuedRequest[] = [];
  private readingPaused = false;
  /** DISC received or shutdown requested: close once idle. */
  private draining = false;
  private shuttingDown = false;
  /** The WRITE whose payload is being received: its pooled buffer and any rejection to answer once drained. */
  private receivingPooled: Buffer | null = null;
  private receivingRejection: Rejection | null = null;
  private corked = false;
  private ended = false;

  constructor(
    private readonly host: ConnectionHost,
    accepted: net.Socket,
    readonly remote: string,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    const handler: ServerParserHandler = {
      onClientFlags: (flags) => this.onClientFlags(flags),
      onOption: (opt) => this.onOption(opt),
      onWriteHeader: (req) => this.onWriteHeader(req),
      onRequest: (req, payload) => this.onRequest(req, payload),
      onProtocolError: (message) => this.hardClose(message),
    };
    this.parser = new ServerParser(handler, {
      maxBufferedOptionBytes: host.limits.maxBufferedOptionBytes,
      maxOptionBytes: host.limits.maxOptionBytes,
    });
    accepted.on("error", () => {});
    this.socket = adoptAcceptedSocket(accepted, this, { userBuffers: host.userBuffers });
    const socket = this.socket;
    socket.on("error", (e) => this.host.log("debug", `connection ${this.id}: socket error: ${e.message}`));
    socket.on("close", () => this.onSocketClosed());
    socket.on("end", () => {
      // Client half-closed: nothing more will arrive; finish what we have.
      this.parser.stop();
      this.startDraining();
    });
    if (host.limits.handshakeTimeoutMs > 0) {
      this.handshakeTimer = setTimeout(() => this.hardClose("handshake timed out"), host.limits.handshakeTimeoutMs);
      this.handshakeTimer.unref();
    }
    socket.write(encodeGreeting(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES));
  }

  get inTransmission(): boolean {
    return this.phase === "transmission";
  }

  get requestsInFlight(): number {
    return this.inFlightCount + this.queue.length;
  }

  // ------------------------------------------------------------ ByteSink

  onBytes(chunk: Buffer): void {
    this.parser.push(chunk);
  }

  directTarget(): Buffer | null {
    return this.parser.payloadWindow();
  }

  onDirectBytes(byteCount: number): void {
    this.parser.payloadReceived(byteCount);
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
    this.startDraining();
  }

  /** Close at once (protocol violation, shutdown timeout). */
  destroy(): void {
    this.parser.stop();
    this.socket.destroy();
  }

  private hardClose(reason: string): void {
    this.host.log("info", `connection ${this.id} (${this.remote}): closing: ${reason}`);
    this.destroy();
  }

  private startDraining(): void {
    this.draining = true;
    this.maybeFinishDraining();
  }

  private maybeFinishDraining(): void {
    if (!this.draining || this.phase === "closed") return;
    if (this.inFlightCount > 0 || this.queue.length > 0) return;
    // A shutdown must not cut off a payload being received: its request gets its ESHUTDOWN first.
    if (this.shuttingDown && this.parser.receivingPayload) return;
    this.endSocket();
  }

  private endSocket(): void {
    if (this.ended) return;
    this.ended = true;
    this.parser.stop();
    this.uncork();
    this.socket.end();
    // A peer that never reads would keep a half-closed socket open forever.
    setTimeout(() => this.socket.destroy(), 5000).unref();
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

  // ------------------------------------------------------------ handshake

  private onClientFlags(flags: number): void {
    const known = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES;
    if ((flags & ~known) !== 0) {
      // §2.1: an unknown client flag means we cannot talk; both peers drop the connection.
      this.hardClose(`unknown client flags 0x${flags.toString(16)}`);
      return;
    }
    this.noZeroes = (flags & NBD_FLAG_C_NO_ZEROES) !== 0;
  }

  private replyOption(buf: Buffer): void {
    if (!this.ended) this.socket.write(buf);
  }

  private optionError(code: number, replyType: number, message: string): void {
    this.replyOption(encodeOptionError(code, replyType, message));
  }

  private onOption(opt: NbdOption): void {
    if (++this.optionCount > this.host.limits.maxOptions) {
      this.hardClose(`more than ${this.host.limits.maxOptions} options`);
      return;
    }
    const { code } = opt;
    if (this.shuttingDown || this.host.shuttingDown) {
      this.optionError(code, NBD_REP_ERR_SHUTDOWN, "server is shutting down");
      this.endSocket();
      return;
    }
    switch (code) {
      case NBD_OPT_EXPORT_NAME:
        this.onExportName(opt);
        return;
      case NBD_OPT_ABORT:
        // Reply, then close; a client that does not wait for the ACK is fine (§2.3).
        this.replyOption(encodeOptionReply(code, NBD_REP_ACK));
        this.endSocket();
        return;
      case NBD_OPT_LIST:
        if (opt.lengthBytes !== 0) {
          this.optionError(code, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
          return;
        }
        for (const e of this.host.listExports()) this.replyOption(encodeRepServer(code, e.name, e.description));
        this.replyOption(encodeOptionReply(code, NBD_REP_ACK));
        return;
      case NBD_OPT_STARTTLS:
        this.optionError(code, NBD_REP_ERR_POLICY, "TLS not configured");
        return;
      case NBD_OPT_INFO:
      case NBD_OPT_GO:
        this.onInfoOrGo(opt);
        return;
      case NBD_OPT_STRUCTURED_REPLY:
        if (opt.lengthBytes !== 0) {
          this.optionError(code, NBD_REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data");
          return;
        }
        this.structuredReplies = true;
        this.replyOption(encodeOptionReply(code, NBD_REP_ACK));
        return;
      case NBD_OPT_LIST_META_CONTEXT:
      case NBD_OPT_SET_META_CONTEXT:
        this.onMetaContext(opt);
        return;
      default:
        // Unknown (incl. PEEK_EXPORT, EXTENDED_HEADERS): the parser already drained the data (§2.2).
        this.optionError(code, NBD_REP_ERR_UNSUP, `${optionName(code)} is not supported`);
    }
  }

  private onExportName(opt: NbdOption): void {
    // No option reply exists for EXPORT_NAME: the only way to refuse is to hang up (§2.3).
    if (opt.data === null) {
      this.hardClose("NBD_OPT_EXPORT_NAME name too long");
      return;
    }
    const name = opt.data.toString("utf8");
    const exp = this.host.findExport(name);
    if (exp === undefined) {
      this.hardClose(`NBD_OPT_EXPORT_NAME: no export "${name}"`);
      return;
    }
    const flags = exp.transmissionFlags(this.structuredReplies);
    this.replyOption(encodeExportNameReply(exp.sizeBytes, flags, this.noZeroes));
    this.enterTransmission(exp, flags);
  }

  private onInfoOrGo(opt: NbdOption): void {
    const { code } = opt;
    if (opt.data === null) {
      this.optionError(code, NBD_REP_ERR_TOO_BIG, `${optionName(code)} data too long`);
      return;
    }
    const info = decodeInfoRequest(opt.data);
    if (info === null) {
      this.optionError(code, NBD_REP_ERR_INVALID, `${optionName(code)}: malformed request`);
      return;
    }
    const exp = this.host.findExport(info.exportName);
    if (exp === undefined) {
      this.optionError(code, NBD_REP_ERR_UNKNOWN, `export "${info.exportName}" not found`);
      return;
    }
    const flags = exp.transmissionFlags(this.structuredReplies);
    // Each requested info at most once; INFO_EXPORT and INFO_BLOCK_SIZE always (qemu needs the former unasked).
    const asked = new Set(info.infoTypes);
    if (asked.has(NBD_INFO_NAME)) this.replyOption(encodeInfoText(code, NBD_INFO_NAME, exp.name));
    if (asked.has(NBD_INFO_DESCRIPTION) && exp.description !== "") this.replyOption(encodeInfoText(code, NBD_INFO_DESCRIPTION, exp.description));
    this.replyOption(encodeInfoBlockSize(code, BLOCK_SIZE_MINIMUM_BYTES, BLOCK_SIZE_PREFERRED_BYTES, BLOCK_SIZE_MAXIMUM_BYTES));
    this.replyOption(encodeInfoExport(code, exp.sizeBytes, flags));
    this.replyOption(encodeOptionReply(code, NBD_REP_ACK));
    if (code === NBD_OPT_GO) this.enterTransmission(exp, flags);
  }

  private onMetaContext(opt: NbdOption): void {
    const { code } = opt;
    if (!this.structuredReplies) {
      this.optionError(code, NBD_REP_ERR_INVALID, `${optionName(code)} needs structured replies first`);
      return;
    }
    if (opt.data === null) {
      this.optionError(code, NBD_REP_ERR_TOO_BIG, `${optionName(code)} data too long`);
      return;
    }
    const req = decodeMetaContextRequest(opt.data);
    if (req === null) {
      this.optionError(code, NBD_REP_ERR_INVALID, `${optionName(code)}: malformed request`);
      return;
    }
    if (this.host.findExport(req.exportName) === undefined) {
      this.optionError(code, NBD_REP_ERR_UNKNOWN, `export "${req.exportName}" not found`);
      return;
    }
    if (code === NBD_OPT_LIST_META_CONTEXT) {
      // No queries = list everything; "base:" is a namespace wildcard in LIST only (§5).
      const matches = req.queries.length === 0 || req.queries.some((q) => q === BASE_ALLOCATION_CONTEXT || q === "base:");
      if (matches) this.replyOption(encodeRepMetaContext(code, 0, BASE_ALLOCATION_CONTEXT));
    } else {
      const selected = req.queries.includes(BASE_ALLOCATION_CONTEXT);
      this.metaContextExport = selected ? req.exportName : null;
      if (selected) this.replyOption(encodeRepMetaContext(code, META_CONTEXT_ID, BASE_ALLOCATION_CONTEXT));
    }
    this.replyOption(encodeOptionReply(code, NBD_REP_ACK));
  }

  private enterTransmission(exp: NbdExport, flags: number): void {
    this.phase = "transmission";
    if (this.handshakeTimer !== null) {
      clearTimeout(this.handshakeTimer);
      this.handshakeTimer = null;
    }
    this.exportEntry = exp;
    exp.clients.add(this);
    this.ctx = {
      sizeBytes: exp.sizeBytes,
      transmissionFlags: flags,
      structuredReplies: this.structuredReplies,
      blockStatusContext: this.structuredReplies && this.metaContextExport === exp.name,
    };
    this.parser.enterTransmission();
    this.host.log("debug", `connection ${this.id} (${this.remote}): export "${exp.name}", flags 0x${flags.toString(16)}`);
  }

  // ------------------------------------------------------------ transmission: intake

  private onWriteHeader(req: NbdRequest): PayloadDisposition {
    const rejection = this.shuttingDown
      ? { error: NBD_ESHUTDOWN, message: "server is shutting down" }
      : validateRequest(req, this.ctx);
    if (rejection !== null) {
      if (req.lengthBytes > this.host.limits.maxDrainedPayloadBytes) {
        this.hardClose(`NBD_CMD_WRITE payload of ${req.lengthBytes} bytes is absurd`);
        return "close";
      }
      this.receivingRejection = rejection;
      return "discard";
    }
    const pooled = this.acquireBytes(req.lengthBytes);
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
      rejection = this.shuttingDown ? { error: NBD_ESHUTDOWN, message: "server is shutting down" } : validateRequest(req, this.ctx);
    }
    if (rejection !== null) {
      if (pooled !== null) this.releaseBytes(pooled);
      this.inFlightCount++;
      this.sendError(req, rejection.error, rejection.message);
      return;
    }
    const item: QueuedRequest = { req, payload, pooled };
    if (this.queue.length > 0 || !this.canStart(req)) {
      this.queue.push(item);
      this.pauseReading();
      return;
    }
    this.start(item);
    if (this.inFlightCount >= this.host.limits.maxInFlightRequests) this.pauseReading();
  }

  private canStart(req: NbdRequest): boolean {
    const limits = this.host.limits;
    if (this.inFlightCount === 0) return true; // always make progress
    if (this.inFlightCount >= limits.maxInFlightRequests) return false;
    if (req.type !== NBD_CMD_READ) return true;
    return (
      this.inFlightBytes + req.lengthBytes <= limits.maxInFlightBytes &&
      this.host.globalInFlightBytes + req.lengthBytes <= this.host.maxGlobalInFlightBytes
    );
  }

  private pauseReading(): void {
    if (this.readingPaused || this.phase === "closed") return;
    this.readingPaused = true;
    this.socket.pause();
  }

  private maybeResumeReading(): void {
    if (!this.readingPaused || this.queue.length > 0) return;
    const limits = this.host.limits;
    if (this.inFlightCount >= limits.maxInFlightRequests) return;
    if (this.inFlightBytes >= limits.maxInFlightBytes && this.inFlightCount > 0) return;
    this.readingPaused = false;
    if (this.phase !== "closed") this.socket.resume();
  }

  private acquireBytes(lengthBytes: number): Buffer {
    const b = this.host.pool.acquire(lengthBytes);
    this.inFlightBytes += b.length;
    this.host.globalInFlightBytes += b.length;
    return b;
  }

  private releaseBytes(b: Buffer): void {
    this.inFlightBytes -= b.length;
    this.host.globalInFlightBytes -= b.length;
    this.host.pool.release(b);
  }

  /** A request's reply has been handed to the socket (or dropped): account for it and let the next ones in. */
  private finish(pooled: Buffer | null): void {
    this.inFlightCount--;
    if (pooled !== null) this.releaseBytes(pooled);
    while (this.queue.length > 0 && this.phase !== "closed") {
      const next = this.queue[0];
      if (next === undefined || !this.canStart(next.req)) break;
      this.queue.shift();
      this.start(next);
    }
    this.maybeResumeReading();
    this.maybeFinishDraining();
  }

  // ------------------------------------------------------------ transmission: execution

  private start(item: QueuedRequest): void {
    const { req } = item;
    const device = this.exportEntry?.device;
    this.inFlightCount++;
    if (device === undefined) {
      this.sendError(req, NBD_ESHUTDOWN, "export is gone", item.pooled);
      return;
    }
    const fua = (req.flags & NBD_CMD_FLAG_FUA) !== 0;
    let op: Promise<void>;
    try {
      switch (req.type) {
        case NBD_CMD_READ: {
          if (req.lengthBytes === 0) {
            this.sendOk(req, null);
            return;
          }
          const pooled = this.acquireBytes(req.lengthBytes);
          const view = pooled.subarray(0, req.lengthBytes);
          device.read(req.offsetBytes, view).then(
            () => this.sendReadData(req, pooled, view),
            (e: unknown) => this.sendFailure(req, e, pooled),
          );
          return;
        }
        case NBD_CMD_WRITE:
          if (item.payload === null || req.lengthBytes === 0) {
            this.sendOk(req, item.pooled);
            return;
          }
          op = device.write(req.offsetBytes, item.payload, fua ? { fua: true } : undefined);
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
            // §4.3: zeroing here is never faster than writing; say so at once.
            this.sendError(req, NBD_ENOTSUP, "fast zeroing is not supported", item.pooled);
            return;
          }
          op = req.lengthBytes === 0 ? Promise.resolve() : this.writeZeroes(req.offsetBytes, req.lengthBytes, fua);
          break;
        case NBD_CMD_CACHE:
          // A prefetch hint; the page cache does its own readahead (§4.3: may do nothing).
          op = Promise.resolve();
          break;
        case NBD_CMD_BLOCK_STATUS:
          // base:allocation: everything is allocated data (flags 0 is always safe, §5).
          this.sendBlockStatus(req);
          return;
        default:
          this.sendError(req, NBD_EINVAL, `unknown command ${req.type}`, item.pooled);
          return;
      }
    } catch (e) {
      this.sendFailure(req, e, item.pooled);
      return;
    }
    const pooled = item.pooled;
    op.then(
      () => this.sendOk(req, pooled),
      (e: unknown) => this.sendFailure(req, e, pooled),
    );
  }

  private writeZeroes(offsetBytes: number, lengthBytes: number, fua: boolean): Promise<void> {
    const device = this.exportEntry?.device;
    if (device === undefined) return Promise.reject(new IoError("export is gone", "ESHUTDOWN"));
    if (device.writeZeroes !== undefined) return device.writeZeroes(offsetBytes, lengthBytes, fua ? { fua: true } : undefined);
    // Emulate with plain writes from the shared zero buffer, one chunk at a time.
    const zero = sharedZeroBuffer();
    const loop = async (): Promise<void> => {
      for (let done = 0; done < lengthBytes; done += zero.length) {
        await device.write(offsetBytes + done, zero.subarray(0, Math.min(zero.length, lengthBytes - done)));
      }
      if (fua) await device.flush();
    };
    return loop();
  }

  // ------------------------------------------------------------ replies

  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(uncorkConnection, this);
  }

  /** @internal */
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
    // The data is in hand before the header goes out (§4.2: after a success
    // header the only way out of a failed read would be a hard close).
    const header = this.ctx.structuredReplies
      ? encodeOffsetDataHeader(req.cookieHi, req.cookieLo, req.offsetBytes, req.lengthBytes)
      : encodeSimpleReply(0, req.cookieHi, req.cookieLo);
    this.cork();
    this.socket.write(header);
    this.socket.write(view, () => this.finish(pooled));
  }

  private sendOk(req: NbdRequest, pooled: Buffer | null): void {
    if (!this.canWrite) {
      this.finish(pooled);
      return;
    }
    // A zero-length READ with structured replies still needs a structured reply: NONE + DONE.
    const reply =
      req.type === NBD_CMD_READ && this.ctx.structuredReplies
        ? encodeStructuredNone(req.cookieHi, req.cookieLo)
        : encodeSimpleReply(0, req.cookieHi, req.cookieLo);
    this.cork();
    this.socket.write(reply);
    this.finish(pooled);
  }

  private sendBlockStatus(req: NbdRequest): void {
    if (!this.canWrite) {
      this.finish(null);
      return;
    }
    this.cork();
    this.socket.write(encodeBlockStatus(req.cookieHi, req.cookieLo, META_CONTEXT_ID, [{ lengthBytes: req.lengthBytes, flags: 0 }], true));
    this.finish(null);
  }

  private sendFailure(req: NbdRequest, e: unknown, pooled: Buffer | null): void {
    const message = e instanceof Error ? e.message : String(e);
    this.host.log("debug", `connection ${this.id}: request failed: ${message}`);
    this.sendError(req, nbdErrorOf(e), message, pooled);
  }

  /** Error reply: a structured ERROR chunk with a message once structured replies are on (§5), else simple. */
  private sendError(req: NbdRequest, error: number, message: string, pooled: Buffer | null = null): void {
    if (!this.canWrite) {
      this.finish(pooled);
      return;
    }
    const reply = this.ctx.structuredReplies
      ? encodeStructuredError(req.cookieHi, req.cookieLo, error, message)
      : encodeSimpleReply(error, req.cookieHi, req.cookieLo);
    this.cork();
    this.socket.write(reply);
    this.finish(pooled);
  }
}

let zeroBuffer: Buffer | null = null;

/** 1 MiB of zeroes, shared; devices only read from it. */
function sharedZeroBuffer(): Buffer {
  zeroBuffer ??= Buffer.alloc(1024 * 1024);
  return zeroBuffer;
}

function uncorkConnection(conn: NbdConnection): void {
  conn.uncork();
}
