/**
 * One NBD client connection: the transport (TCP, unix socket, TLS), the
 * fixed-newstyle handshake, and transmission with many requests in flight,
 * each known by its cookie. It never retries: a protocol violation, a reset
 * or a close ends it, and `onDead` tells the owner (NbdClientDevice), which
 * decides what to retry and when to reconnect.
 *
 * Replies are validated strictly. Wrong magic, a cookie nobody asked for, a
 * chunk longer than the request or the negotiated maximum, data outside the
 * requested range, a read whose chunks do not add up to its length: each
 * kills the connection, so no wrong byte ever reaches a caller.
 */
import net from "node:net";
import tls from "node:tls";
import { PSK_CIPHERS, readPskKey } from "./psk-file.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { IoError } from "../errors/errors.js";
import { encodeClientFlags, encodeInfoRequest, encodeOption, encodeRequest, ReplyParser, type ServerMessage } from "./client-codec.js";
import type { NbdUri } from "./nbd-uri.js";
import { nbdErrorName } from "./nbd-error.js";
import {
  NBD_CMD_DISC,
  NBD_CMD_READ,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_EXPORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_ERROR_OFFSET,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  isOptionReplyError,
  optionName,
} from "./protocol.js";

/** What the handshake agreed. */
export interface NbdExportInfo {
  readonly sizeBytes: number;
  readonly transmissionFlags: number;
  readonly structuredReplies: boolean;
  /** 1 when the server gave no NBD_INFO_BLOCK_SIZE. */
  readonly minimumBlockBytes: number;
  readonly preferredBlockBytes: number;
  readonly maximumPayloadBytes: number;
}

/** The interop defaults when the server states no limit (proto.md "Size constraints"). */
const DEFAULT_MAXIMUM_PAYLOAD_BYTES = 32 * 1024 * 1024;

export interface WireRequest {
  readonly type: number;
  readonly flags: number;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  /** WRITE payload. */
  readonly payload?: Uint8Array;
  /** READ destination, exactly lengthBytes long. */
  readonly into?: Uint8Array;
}

interface InFlight {
  readonly req: WireRequest;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  /** Structured READ: bytes covered by data and hole chunks so far. */
  covered: number;
  /** An ERROR chunk arrived; the request fails when DONE comes. */
  error?: IoError;
}

export class NbdClientConnection {
  private readonly inFlight = new Map<bigint, InFlight>();
  private nextCookie = 1n;
  private deadReason: IoError | undefined;
  private onDeadHandlers: Array<(why: IoError) => void> = [];

  private constructor(
    private readonly label: string,
    private socket: net.Socket,
    readonly info: NbdExportInfo,
    private readonly parser: ReplyParser,
  ) {}

  /** Connect and negotiate; throws IoError (the server's refusal, a bad greeting, a timeout). */
  static async connect(uri: NbdUri, label: string, timeoutMs: number): Promise<NbdClientConnection> {
    const socket = uri.socketPath !== undefined ? net.connect({ path: uri.socketPath }) : net.connect({ host: uri.host!, port: uri.port! });
    socket.setNoDelay(true);
    const hs = new Handshake(label, socket, uri);
    const timer = setTimeout(() => hs.fail(new IoError(`${label}: NBD handshake timed out after ${timeoutMs} ms`, "ETIMEDOUT")), timeoutMs);
    try {
      const { info, socket: live } = await hs.run();
      let conn: NbdClientConnection | undefined;
      const parser = new ReplyParser(
        (cookie) => conn?.simpleReplyLength(cookie) ?? 0,
        Math.max(info.maximumPayloadBytes, DEFAULT_MAXIMUM_PAYLOAD_BYTES) + 64,
      );
      parser.enterTransmission();
      conn = new NbdClientConnection(label, live, info, parser);
      conn.attach(hs.release());
      return conn;
    } catch (e) {
      hs.destroy();
      throw e instanceof IoError ? e : new IoError(`${label}: ${(e as Error).message}`, "EIO", {}, e);
    } finally {
      clearTimeout(timer);
    }
  }

  get dead(): boolean {
    return this.deadReason !== undefined;
  }

  /** Why it died: the very error its in-flight requests were failed with. */
  get deathReason(): IoError | undefined {
    return this.deadReason;
  }

  get pending(): number {
    return this.inFlight.size;
  }

  onDead(fn: (why: IoError) => void): void {
    if (this.deadReason) fn(this.deadReason);
    else this.onDeadHandlers.push(fn);
  }

  /** Send one request; resolves when its reply (all chunks) arrived. */
  send(req: WireRequest): Promise<void> {
    if (this.deadReason) return Promise.reject(this.deadReason);
    return new Promise<void>((resolve, reject) => {
      const cookie = this.nextCookie++;
      this.inFlight.set(cookie, { req, resolve, reject, covered: 0 });
      const header = encodeRequest({ type: req.type, flags: req.flags, cookie, offsetBytes: req.offsetBytes, lengthBytes: req.lengthBytes });
      this.socket.write(header);
      if (req.payload !== undefined) this.socket.write(req.payload);
    });
  }

  /** Fail every request and close the transport. */
  kill(why: IoError): void {
    if (this.deadReason) return;
    this.deadReason = why;
    this.socket.destroy();
    const pending = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const p of pending) p.reject(why);
    for (const fn of this.onDeadHandlers) fn(why);
    this.onDeadHandlers = [];
  }

  /** Soft disconnect (NBD_CMD_DISC) and close. */
  async disconnect(): Promise<void> {
    if (this.deadReason) return;
    await new Promise<void>((resolve) => {
      this.socket.once("close", () => resolve());
      this.socket.end(encodeRequest({ type: NBD_CMD_DISC, cookie: this.nextCookie++, offsetBytes: 0, lengthBytes: 0 }));
      setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 1000).unref();
    });
    this.kill(new IoError(`${this.label}: NBD connection closed`, "ESHUTDOWN"));
  }

  private attach(leftover: Buffer[]): void {
    this.socket.on("data", (chunk: Buffer) => this.onBytes(chunk));
    this.socket.on("error", (e) => this.kill(new IoError(`${this.label}: NBD connection failed: ${e.message}`, "EIO", {}, e)));
    this.socket.on("close", () => this.kill(new IoError(`${this.label}: NBD server closed the connection`, "EPIPE")));
    for (const b of leftover) this.onBytes(b);
  }

  private simpleReplyLength(cookie: bigint): number {
    const p = this.inFlight.get(cookie);
    return p !== undefined && p.req.type === NBD_CMD_READ ? p.req.lengthBytes : 0;
  }

  private violation(what: string): void {
    this.kill(new IoError(`${this.label}: NBD protocol violation: ${what}`, "EPROTO"));
  }

  private onBytes(chunk: Buffer): void {
    if (this.deadReason) return;
    let msgs: ServerMessage[];
    try {
      msgs = this.parser.push(chunk);
    } catch (e) {
      this.violation(`unparsable reply (${(e as Error).message})`);
      return;
    }
    for (const m of msgs) {
      if (this.deadReason) return;
      this.onMessage(m);
    }
  }

  private onMessage(m: ServerMessage): void {
    switch (m.kind) {
      case "simpleReply": {
        const p = this.inFlight.get(m.cookie);
        if (p === undefined) return this.violation(`reply to unknown handle ${m.cookie}`);
        if (p.req.type === NBD_CMD_READ && this.info.structuredReplies) return this.violation("simple reply to a READ after structured replies were agreed");
        this.inFlight.delete(m.cookie);
        if (m.error !== 0) return p.reject(this.serverError(p.req, m.error));
        if (p.req.type === NBD_CMD_READ) p.req.into!.set(m.data!);
        return p.resolve();
      }
      case "chunk":
        return this.onChunk(m);
      case "badMagic":
        return this.violation(`wrong reply magic 0x${m.magic.toString(16)}`);
      case "oversized":
        return this.violation(`reply chunk of ${m.lengthBytes} bytes for handle ${m.cookie}`);
      default:
        return this.violation(`unexpected ${m.kind} in transmission`);
    }
  }

  private onChunk(m: Extract<ServerMessage, { kind: "chunk" }>): void {
    const p = this.inFlight.get(m.cookie);
    if (p === undefined) return this.violation(`reply chunk to unknown handle ${m.cookie}`);
    if (!this.info.structuredReplies) return this.violation("structured reply that was never negotiated");
    const req = p.req;
    const data = m.payload;
    switch (m.chunkType) {
      case NBD_REPLY_TYPE_NONE:
        if (data.length !== 0 || (m.flags & NBD_REPLY_FLAG_DONE) === 0) return this.violation("bad NONE chunk");
        break;
      case NBD_REPLY_TYPE_OFFSET_DATA:
      case NBD_REPLY_TYPE_OFFSET_HOLE: {
        if (req.type !== NBD_CMD_READ) return this.violation("data chunk in reply to a non-READ");
        if (data.length < (m.chunkType === NBD_REPLY_TYPE_OFFSET_DATA ? 9 : 12)) return this.violation("short data chunk");
        const at = Number(data.readBigUInt64BE(0)) - req.offsetBytes;
        const len = m.chunkType === NBD_REPLY_TYPE_OFFSET_DATA ? data.length - 8 : data.readUInt32BE(8);
        if (m.chunkType === NBD_REPLY_TYPE_OFFSET_HOLE && data.length !== 12) return this.violation("bad hole chunk");
        if (at < 0 || len === 0 || at + len > req.lengthBytes || p.covered + len > req.lengthBytes) {
          return this.violation(`chunk [${at}, +${len}) outside the ${req.lengthBytes}-byte read`);
        }
        if (m.chunkType === NBD_REPLY_TYPE_OFFSET_DATA) req.into!.set(data.subarray(8), at);
        else req.into!.fill(0, at, at + len);
        p.covered += len;
        break;
      }
      case NBD_REPLY_TYPE_ERROR:
      case NBD_REPLY_TYPE_ERROR_OFFSET: {
        if (data.length < 6) return this.violation("short error chunk");
        const msgLen = data.readUInt16BE(4);
        if (6 + msgLen > data.length) return this.violation("error chunk message overruns the chunk");
        const msg = data.subarray(6, 6 + msgLen).toString("utf8").replace(/[^\x20-\x7e]/g, "?");
        const err = data.readUInt32BE(0);
        p.error ??= this.serverError(req, err === 0 ? 5 : err, msg);
        break;
      }
      default:
        // Unknown chunk types with the error bit set are errors; others may be ignored (proto.md).
        if ((m.chunkType & 0x8000) !== 0) p.error ??= new IoError(`${this.label}: NBD server error (chunk type ${m.chunkType})`, "EIO");
        else return this.violation(`unknown chunk type ${m.chunkType}`);
    }
    if ((m.flags & NBD_REPLY_FLAG_DONE) === 0) return;
    this.inFlight.delete(m.cookie);
    if (p.error) return p.reject(p.error);
    if (req.type === NBD_CMD_READ && p.covered !== req.lengthBytes) {
      p.reject(new IoError(`${this.label}: NBD read reply covered ${p.covered} of ${req.lengthBytes} bytes`, "EPROTO"));
      return this.violation(`READ reply covered ${p.covered} of ${req.lengthBytes} bytes`);
    }
    p.resolve();
  }

  private serverError(req: WireRequest, error: number, msg?: string): IoError {
    const name = nbdErrorName(error);
    const errno = name.startsWith("NBD_ERROR_") || name === "OK" ? "EIO" : name;
    return new IoError(
      `${this.label}: NBD server answered ${name} to ${req.lengthBytes} bytes at ${req.offsetBytes}${msg ? `: ${msg}` : ""}`,
      errno,
    );
  }
}

/** The handshake: greeting, flags, STARTTLS, STRUCTURED_REPLY, GO (or EXPORT_NAME). */
class Handshake {
  private parser = new ReplyParser();
  private readonly queue: ServerMessage[] = [];
  private waiter: { resolve: (m: ServerMessage) => void; reject: (e: Error) => void } | undefined;
  private failed: Error | undefined;
  /** Bytes that arrived after the last handshake message. */
  private readonly early: Buffer[] = [];
  private inTransmission = false;
  /** Set while the TLS handshake runs, so that the deadline can end it too. */
  private abortTls: ((e: Error) => void) | undefined;
  private readonly onData = (chunk: Buffer): void => this.push(chunk);
  private readonly onError = (e: Error): void => this.fail(new IoError(`${this.label}: cannot connect to NBD server: ${e.message}`, errnoOf(e), {}, e));
  private readonly onClose = (): void => this.fail(new IoError(`${this.label}: NBD server closed the connection during the handshake`, "EPIPE"));

  constructor(
    private readonly label: string,
    private socket: net.Socket,
    private readonly uri: NbdUri,
  ) {
    this.listen();
  }

  private listen(): void {
    this.socket.on("data", this.onData);
    this.socket.on("error", this.onError);
    this.socket.on("close", this.onClose);
  }

  private unlisten(): void {
    this.socket.off("data", this.onData);
    this.socket.off("error", this.onError);
    this.socket.off("close", this.onClose);
  }

  fail(e: Error): void {
    this.failed ??= e;
    this.waiter?.reject(e);
    this.waiter = undefined;
    this.abortTls?.(e);
  }

  /** Hand the socket over: stop listening, return what arrived meanwhile. */
  release(): Buffer[] {
    this.unlisten();
    return this.early;
  }

  destroy(): void {
    this.unlisten();
    this.socket.destroy();
  }

  private push(chunk: Buffer): void {
    if (this.inTransmission) {
      this.early.push(Buffer.from(chunk));
      return;
    }
    try {
      for (const m of this.parser.push(chunk)) this.queue.push(m);
    } catch (e) {
      this.fail(e as Error);
    }
    while (this.waiter && this.queue.length > 0) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(this.queue.shift()!);
    }
  }

  private next(): Promise<ServerMessage> {
    if (this.failed) return Promise.reject(this.failed);
    const m = this.queue.shift();
    if (m !== undefined) return Promise.resolve(m);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private bad(what: string): IoError {
    return new IoError(`${this.label}: NBD handshake failed: ${what}`, "EPROTO");
  }

  private async optionReply(option: number): Promise<Extract<ServerMessage, { kind: "optionReply" }>> {
    const m = await this.next();
    if (m.kind !== "optionReply" || !m.magicOk) throw this.bad(`bad reply to ${optionName(option)}`);
    if (m.option !== option) throw this.bad(`reply to ${optionName(m.option)} when ${optionName(option)} was asked`);
    return m;
  }

  private refusal(option: number, m: { replyType: number; data: Buffer }): IoError {
    const text = m.data.toString("utf8").replace(/[^\x20-\x7e]/g, "?");
    if (m.replyType === NBD_REP_ERR_TLS_REQD) return new IoError(`${this.label}: NBD server requires TLS (use an nbds:// URI)`, "EACCES");
    if (m.replyType === NBD_REP_ERR_UNKNOWN) return new IoError(`${this.label}: NBD server has no export "${this.uri.exportName}"${text ? `: ${text}` : ""}`, "ENOENT");
    return new IoError(`${this.label}: NBD server refused ${optionName(option)} (0x${m.replyType.toString(16)})${text ? `: ${text}` : ""}`, "EIO");
  }

  async run(): Promise<{ info: NbdExportInfo; socket: net.Socket }> {
    const g = await this.next();
    if (g.kind !== "greeting" || !g.magicOk) throw this.bad("not an NBD server (bad greeting)");
    if ((g.handshakeFlags & NBD_FLAG_FIXED_NEWSTYLE) === 0) throw this.bad("server does not speak fixed newstyle");
    const noZeroes = (g.handshakeFlags & NBD_FLAG_NO_ZEROES) !== 0;
    this.socket.write(encodeClientFlags(NBD_FLAG_C_FIXED_NEWSTYLE | (noZeroes ? NBD_FLAG_C_NO_ZEROES : 0)));

    if (this.uri.tls) await this.startTls();

    // Structured replies: asked for first (after STARTTLS, which forgets them).
    this.socket.write(encodeOption(NBD_OPT_STRUCTURED_REPLY));
    const sr = await this.optionReply(NBD_OPT_STRUCTURED_REPLY);
    const structuredReplies = sr.replyType === NBD_REP_ACK;

    this.socket.write(encodeOption(NBD_OPT_GO, encodeInfoRequest(this.uri.exportName, [NBD_INFO_BLOCK_SIZE])));
    let size: bigint | undefined;
    let flags = 0;
    let minimum = 1;
    let preferred = 4096;
    let maximum = DEFAULT_MAXIMUM_PAYLOAD_BYTES;
    for (;;) {
      const m = await this.optionReply(NBD_OPT_GO);
      if (m.replyType === NBD_REP_INFO) {
        if (m.data.length < 2) throw this.bad("short NBD_REP_INFO");
        const type = m.data.readUInt16BE(0);
        if (type === NBD_INFO_EXPORT) {
          if (m.data.length !== 12) throw this.bad("bad NBD_INFO_EXPORT");
          size = m.data.readBigUInt64BE(2);
          flags = m.data.readUInt16BE(10);
        } else if (type === NBD_INFO_BLOCK_SIZE) {
          if (m.data.length !== 14) throw this.bad("bad NBD_INFO_BLOCK_SIZE");
          minimum = m.data.readUInt32BE(2);
          preferred = m.data.readUInt32BE(6);
          maximum = m.data.readUInt32BE(10);
          if (minimum < 1 || minimum > 65536 || (minimum & (minimum - 1)) !== 0 || maximum < minimum) throw this.bad("bad block size constraints");
        }
        continue;
      }
      if (m.replyType === NBD_REP_ACK) break;
      if (m.replyType === NBD_REP_ERR_UNSUP) {
        // An old server: NBD_OPT_EXPORT_NAME, whose answer is the export itself (no block sizes).
        this.parser.expectExportNameReply(noZeroes);
        this.socket.write(encodeOption(NBD_OPT_EXPORT_NAME, Buffer.from(this.uri.exportName, "utf8")));
        const e = await this.next();
        if (e.kind !== "exportNameReply") throw this.bad("bad reply to NBD_OPT_EXPORT_NAME");
        size = e.sizeBytes;
        flags = e.transmissionFlags;
        break;
      }
      if (isOptionReplyError(m.replyType)) throw this.refusal(NBD_OPT_GO, m);
      throw this.bad(`unexpected reply type ${m.replyType} to NBD_OPT_GO`);
    }
    if (size === undefined) throw this.bad("server gave no export size");
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw this.bad("export too large");
    // From here on bytes are replies: kept for the connection, which takes over the socket.
    this.inTransmission = true;
    const socket = this.socket;
    return {
      socket,
      info: {
        sizeBytes: Number(size),
        transmissionFlags: flags,
        structuredReplies,
        minimumBlockBytes: minimum,
        preferredBlockBytes: preferred,
        maximumPayloadBytes: Math.min(maximum, DEFAULT_MAXIMUM_PAYLOAD_BYTES),
      },
    };
  }

  /** NBD_OPT_STARTTLS, then a TLS handshake on the same socket; option haggling starts over. */
  private async startTls(): Promise<void> {
    this.socket.write(encodeOption(NBD_OPT_STARTTLS));
    const m = await this.optionReply(NBD_OPT_STARTTLS);
    if (m.replyType !== NBD_REP_ACK) {
      // A client that insists on TLS quits on any error (no downgrade).
      const why = isOptionReplyError(m.replyType) ? this.refusal(NBD_OPT_STARTTLS, m).message : `reply type ${m.replyType}`;
      throw new IoError(`${this.label}: NBD server does not offer TLS: ${why}`, "EPROTO");
    }
    this.unlisten();
    const secure = tls.connect({ socket: this.socket, ...tlsOptions(this.uri) });
    await new Promise<void>((resolve, reject) => {
      this.abortTls = (e) => {
        secure.destroy();
        reject(e);
      };
      if (this.failed) this.abortTls(this.failed);
      secure.once("secureConnect", () => resolve());
      secure.once("error", (e) => reject(new IoError(`${this.label}: TLS handshake with NBD server failed: ${e.message}`, "EACCES", {}, e)));
      secure.once("close", () => reject(new IoError(`${this.label}: NBD server closed the connection during the TLS handshake`, "EPIPE")));
    });
    this.abortTls = undefined;
    this.socket = secure;
    this.parser = new ReplyParser();
    this.parser.enterOptions();
    this.listen();
  }
}

/**
 * TLS settings from the URI, as libnbd takes them: a PSK file of nbdkit's
 * `user:hexkey` lines (identity: the URI's user, else the login name), or a
 * certificates directory with ca-cert.pem, client-cert.pem, client-key.pem.
 */
function tlsOptions(uri: NbdUri): tls.ConnectionOptions {
  if (uri.tlsPskFile !== undefined) {
    const identity = uri.tlsUsername ?? process.env.USER ?? process.env.LOGNAME ?? "root";
    const key = readPskKey(uri.tlsPskFile, identity);
    return {
      ciphers: PSK_CIPHERS,
      minVersion: "TLSv1.2",
      maxVersion: "TLSv1.2",
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ psk: key, identity }),
    };
  }
  const dir = uri.tlsCertificates;
  const read = (f: string): Buffer | undefined => {
    if (dir === undefined) return undefined;
    try {
      return readFileSync(join(dir, f));
    } catch {
      return undefined;
    }
  };
  const ca = read("ca-cert.pem");
  const cert = read("client-cert.pem");
  const key = read("client-key.pem");
  return {
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    rejectUnauthorized: uri.tlsVerifyPeer,
    // SNI takes names only; an IP address is still checked against the certificate (as `host`).
    ...(uri.tlsHostname !== undefined || (uri.host !== undefined && net.isIP(uri.host) === 0) ? { servername: uri.tlsHostname ?? uri.host! } : {}),
    ...(uri.host !== undefined ? { host: uri.host } : {}),
    ...(uri.tlsVerifyPeer ? {} : { checkServerIdentity: () => undefined }),
  };
}

function errnoOf(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? "EIO";
}
