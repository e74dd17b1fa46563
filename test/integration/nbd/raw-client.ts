/**
 * A raw NBD client for tests: speaks the protocol byte by byte so tests can
 * send what real clients never would (libnbd validates on the client side).
 */
import net from "node:net";
import {
  ReplyParser,
  encodeClientFlags,
  encodeInfoRequest,
  encodeMetaContextRequest,
  encodeOption,
  encodeRequest,
} from "../../../src/nbd/client-codec.js";
import type { RequestFields, ServerMessage } from "../../../src/nbd/client-codec.js";
import {
  NBD_CMD_READ,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_INFO_EXPORT,
  NBD_OPT_GO,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REPLY_FLAG_DONE,
  NBD_REP_ACK,
  NBD_REP_INFO,
  isOptionReplyError,
} from "../../../src/nbd/protocol.js";

export interface OptionReply {
  readonly option: number;
  readonly replyType: number;
  readonly data: Buffer;
}

export interface Chunk {
  readonly flags: number;
  readonly chunkType: number;
  readonly payload: Buffer;
}

/** A whole reply: simple (chunks empty) or structured (every chunk up to DONE). */
export interface Reply {
  readonly cookie: bigint;
  readonly structured: boolean;
  /** Simple reply error, or the error of the first ERROR chunk (0 if none). */
  readonly error: number;
  readonly data: Buffer | null;
  readonly chunks: readonly Chunk[];
}

export interface GoResult {
  readonly sizeBytes: bigint;
  readonly transmissionFlags: number;
  readonly replies: readonly OptionReply[];
}

type Waiter<T> = { resolve: (v: T) => void; reject: (e: Error) => void };

export class RawNbdClient {
  readonly socket: net.Socket;
  readonly parser: ReplyParser;
  handshakeFlags = -1;
  /** Resolves when the socket closes (true if the server closed or reset it). */
  readonly closed: Promise<void>;
  isClosed = false;
  private readonly readLengths = new Map<bigint, number>();
  private readonly optionQueue: OptionReply[] = [];
  private optionWaiter: Waiter<OptionReply> | null = null;
  private greetingWaiter: Waiter<number> | null = null;
  private readonly replyWaiters = new Map<bigint, Waiter<Reply>>();
  private readonly partial = new Map<bigint, Chunk[]>();
  private readonly earlyReplies = new Map<bigint, Reply>();
  private exportNameWaiter: Waiter<{ sizeBytes: bigint; transmissionFlags: number }> | null = null;
  private nextCookie = 1n;
  /** Replies with cookies nobody waited for, and bad magic seen. */
  readonly unexpected: ServerMessage[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.parser = new ReplyParser((cookie) => this.readLengths.get(cookie) ?? 0);
    socket.on("data", (d: Buffer) => {
      for (const m of this.parser.push(d)) this.dispatch(m);
    });
    socket.on("error", () => {});
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        this.isClosed = true;
        const err = new Error("connection closed");
        this.optionWaiter?.reject(err);
        this.greetingWaiter?.reject(err);
        this.exportNameWaiter?.reject(err);
        for (const w of this.replyWaiters.values()) w.reject(err);
        this.replyWaiters.clear();
        resolve();
      }),
    );
  }

  static connect(path: string): Promise<RawNbdClient> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(path);
      s.once("connect", () => resolve(new RawNbdClient(s)));
      s.once("error", reject);
    });
  }

  /** Connect, read the greeting, send client flags. */
  static async open(path: string, clientFlags = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES): Promise<RawNbdClient> {
    const c = await RawNbdClient.connect(path);
    await c.greeting();
    c.send(encodeClientFlags(clientFlags));
    return c;
  }

  /** Open, optionally negotiate structured replies and base:allocation, then GO. */
  static async ready(path: string, opts: { exportName?: string; structured?: boolean; meta?: boolean } = {}): Promise<{ client: RawNbdClient; go: GoResult }> {
    const c = await RawNbdClient.open(path);
    if (opts.structured === true || opts.meta === true) await c.option(NBD_OPT_STRUCTURED_REPLY);
    if (opts.meta === true) await c.option(NBD_OPT_SET_META_CONTEXT, encodeMetaContextRequest(opts.exportName ?? "", ["base:allocation"]));
    const go = await c.go(opts.exportName ?? "");
    return { client: c, go };
  }

  private dispatch(m: ServerMessage): void {
    switch (m.kind) {
      case "greeting": {
        this.handshakeFlags = m.handshakeFlags;
        const w = this.greetingWaiter;
        this.greetingWaiter = null;
        w?.resolve(m.handshakeFlags);
        return;
      }
      case "optionReply": {
        const r: OptionReply = { option: m.option, replyType: m.replyType, data: m.data };
        const w = this.optionWaiter;
        if (w !== null) {
          this.optionWaiter = null;
          w.resolve(r);
        } else this.optionQueue.push(r);
        return;
      }
      case "exportNameReply": {
        const w = this.exportNameWaiter;
        this.exportNameWaiter = null;
        w?.resolve({ sizeBytes: m.sizeBytes, transmissionFlags: m.transmissionFlags });
        return;
      }
      case "simpleReply":
        this.complete({ cookie: m.cookie, structured: false, error: m.error, data: m.data, chunks: [] });
        return;
      case "chunk": {
        const list = this.partial.get(m.cookie) ?? [];
        list.push({ flags: m.flags, chunkType: m.chunkType, payload: m.payload });
        if ((m.flags & NBD_REPLY_FLAG_DONE) === 0) {
          this.partial.set(m.cookie, list);
          return;
        }
        this.partial.delete(m.cookie);
        const errChunk = list.find((c) => (c.chunkType & 0x8000) !== 0);
        const dataChunks = list.filter((c) => c.chunkType === 1);
        const data = dataChunks.length > 0 ? Buffer.concat(dataChunks.map((c) => c.payload.subarray(8))) : null;
        this.complete({ cookie: m.cookie, structured: true, error: errChunk?.payload.readUInt32BE(0) ?? 0, data, chunks: list });
        return;
      }
      case "badMagic":
        this.unexpected.push(m);
    }
  }

  private complete(r: Reply): void {
    const w = this.replyWaiters.get(r.cookie);
    if (w === undefined) {
      this.earlyReplies.set(r.cookie, r);
      return;
    }
    this.replyWaiters.delete(r.cookie);
    w.resolve(r);
  }

  send(b: Uint8Array): void {
    this.socket.write(b);
  }

  greeting(): Promise<number> {
    if (this.handshakeFlags >= 0) return Promise.resolve(this.handshakeFlags);
    return new Promise((resolve, reject) => (this.greetingWaiter = { resolve, reject }));
  }

  nextOptionReply(): Promise<OptionReply> {
    const q = this.optionQueue.shift();
    if (q !== undefined) return Promise.resolve(q);
    if (this.isClosed) return Promise.reject(new Error("connection closed"));
    return new Promise((resolve, reject) => (this.optionWaiter = { resolve, reject }));
  }

  /** Send an option and collect replies up to the final ACK or error. */
  async option(code: number, data?: Uint8Array): Promise<OptionReply[]> {
    this.send(encodeOption(code, data));
    const out: OptionReply[] = [];
    for (;;) {
      const r = await this.nextOptionReply();
      out.push(r);
      if (r.replyType === NBD_REP_ACK || isOptionReplyError(r.replyType)) return out;
    }
  }

  async go(exportName: string, infoTypes: readonly number[] = []): Promise<GoResult> {
    const replies = await this.option(NBD_OPT_GO, encodeInfoRequest(exportName, infoTypes));
    const last = replies[replies.length - 1];
    if (last === undefined || last.replyType !== NBD_REP_ACK) throw new Error(`GO refused: 0x${last?.replyType.toString(16)} ${last?.data.toString()}`);
    const info = replies.find((r) => r.replyType === NBD_REP_INFO && r.data.readUInt16BE(0) === NBD_INFO_EXPORT);
    if (info === undefined) throw new Error("GO without NBD_INFO_EXPORT");
    this.parser.enterTransmission();
    return { sizeBytes: info.data.readBigUInt64BE(2), transmissionFlags: info.data.readUInt16BE(10), replies };
  }

  /** After sending NBD_OPT_EXPORT_NAME yourself. */
  exportNameReply(noZeroes: boolean): Promise<{ sizeBytes: bigint; transmissionFlags: number }> {
    this.parser.expectExportNameReply(noZeroes);
    return new Promise((resolve, reject) => (this.exportNameWaiter = { resolve, reject }));
  }

  /** Send a request (cookie assigned unless given); resolves with its complete reply. */
  request(fields: Omit<RequestFields, "cookie"> & { cookie?: bigint }, payload?: Uint8Array): Promise<Reply> {
    const cookie = fields.cookie ?? this.nextCookie++;
    if (fields.type === NBD_CMD_READ) this.readLengths.set(cookie, fields.lengthBytes);
    const p = this.waitReply(cookie);
    this.send(encodeRequest({ ...fields, cookie }, payload));
    return p;
  }

  /** Send a request without waiting (for pipelining); returns its cookie. */
  sendRequest(fields: Omit<RequestFields, "cookie">, payload?: Uint8Array): bigint {
    const cookie = this.nextCookie++;
    if (fields.type === NBD_CMD_READ) this.readLengths.set(cookie, fields.lengthBytes);
    this.send(encodeRequest({ ...fields, cookie }, payload));
    return cookie;
  }

  waitReply(cookie: bigint): Promise<Reply> {
    const early = this.earlyReplies.get(cookie);
    if (early !== undefined) {
      this.earlyReplies.delete(cookie);
      return Promise.resolve(early);
    }
    if (this.isClosed) return Promise.reject(new Error("connection closed"));
    return new Promise((resolve, reject) => this.replyWaiters.set(cookie, { resolve, reject }));
  }

  /** Resolves true if the server closes the connection within `ms`. */
  async closesWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      this.closed.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
    clearTimeout(timer);
    return r;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
