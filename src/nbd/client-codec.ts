/**
 * The client side of the NBD wire codec: encoders for what a client sends
 * and `ReplyParser`, a push parser for what a server answers. Used by the
 * tests (raw-socket clients that send what libnbd never would) and usable
 * for health checks. No transport inside.
 */
import {
  CLIENT_FLAGS_BYTES,
  EXPORT_NAME_PADDING_BYTES,
  GREETING_BYTES,
  IHAVEOPT,
  NBDMAGIC,
  NBD_REP_MAGIC,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  OPTION_HEADER_BYTES,
  OPTION_REPLY_HEADER_BYTES,
  REQUEST_HEADER_BYTES,
  SIMPLE_REPLY_HEADER_BYTES,
  STRUCTURED_REPLY_HEADER_BYTES,
} from "./protocol.js";

// ---------------------------------------------------------------- client → server encoders

export function encodeClientFlags(flags: number): Buffer {
  const b = Buffer.allocUnsafe(CLIENT_FLAGS_BYTES);
  b.writeUInt32BE(flags >>> 0, 0);
  return b;
}

export function encodeOption(code: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const b = Buffer.allocUnsafe(OPTION_HEADER_BYTES + data.length);
  b.writeBigUInt64BE(IHAVEOPT, 0);
  b.writeUInt32BE(code >>> 0, 8);
  b.writeUInt32BE(data.length, 12);
  b.set(data, OPTION_HEADER_BYTES);
  return b;
}

/** Data of NBD_OPT_INFO / NBD_OPT_GO: u32 name length, name, u16 count, info types. */
export function encodeInfoRequest(exportName: string, infoTypes: readonly number[] = []): Buffer {
  const name = Buffer.from(exportName, "utf8");
  const b = Buffer.allocUnsafe(4 + name.length + 2 + 2 * infoTypes.length);
  b.writeUInt32BE(name.length, 0);
  name.copy(b, 4);
  b.writeUInt16BE(infoTypes.length, 4 + name.length);
  infoTypes.forEach((t, i) => b.writeUInt16BE(t, 6 + name.length + 2 * i));
  return b;
}

/** Data of NBD_OPT_LIST/SET_META_CONTEXT: u32 name length, name, u32 count, (u32 length, query)... */
export function encodeMetaContextRequest(exportName: string, queries: readonly string[]): Buffer {
  const name = Buffer.from(exportName, "utf8");
  const qs = queries.map((q) => Buffer.from(q, "utf8"));
  const b = Buffer.allocUnsafe(4 + name.length + 4 + qs.reduce((n, q) => n + 4 + q.length, 0));
  b.writeUInt32BE(name.length, 0);
  name.copy(b, 4);
  let at = 4 + name.length;
  b.writeUInt32BE(qs.length, at);
  at += 4;
  for (const q of qs) {
    b.writeUInt32BE(q.length, at);
    q.copy(b, at + 4);
    at += 4 + q.length;
  }
  return b;
}

export interface RequestFields {
  readonly flags?: number;
  readonly type: number;
  readonly cookie: bigint;
  /** u64; a bigint to reach offsets above 2^53. */
  readonly offsetBytes: number | bigint;
  readonly lengthBytes: number;
}

export function encodeRequest(r: RequestFields, payload?: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(REQUEST_HEADER_BYTES + (payload?.length ?? 0));
  b.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  b.writeUInt16BE(r.flags ?? 0, 4);
  b.writeUInt16BE(r.type, 6);
  b.writeBigUInt64BE(BigInt.asUintN(64, r.cookie), 8);
  b.writeBigUInt64BE(BigInt.asUintN(64, BigInt(r.offsetBytes)), 16);
  b.writeUInt32BE(r.lengthBytes >>> 0, 24);
  if (payload !== undefined) b.set(payload, REQUEST_HEADER_BYTES);
  return b;
}

// ---------------------------------------------------------------- client-side reply parser

export type ServerMessage =
  | { readonly kind: "greeting"; readonly handshakeFlags: number; readonly magicOk: boolean }
  | { readonly kind: "optionReply"; readonly option: number; readonly replyType: number; readonly data: Buffer; readonly magicOk: boolean }
  | { readonly kind: "exportNameReply"; readonly sizeBytes: bigint; readonly transmissionFlags: number }
  | { readonly kind: "simpleReply"; readonly error: number; readonly cookie: bigint; readonly data: Buffer | null }
  | { readonly kind: "chunk"; readonly flags: number; readonly chunkType: number; readonly cookie: bigint; readonly payload: Buffer }
  | { readonly kind: "badMagic"; readonly magic: number }
  /** A structured chunk longer than the parser's limit: the stream cannot be trusted after it. */
  | { readonly kind: "oversized"; readonly cookie: bigint; readonly lengthBytes: number };

/**
 * Client-side push parser. Simple replies carry no length, so the caller
 * says how many data bytes a successful reply to each cookie carries
 * (`readLengthOf`, §4.2). `expectExportNameReply(noZeroes)` frames the
 * answer to NBD_OPT_EXPORT_NAME, and `enterTransmission()` switches from
 * option replies to transmission replies.
 */
export class ReplyParser {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private phase: "greeting" | "options" | "exportName" | "transmission" = "greeting";
  private exportNameBytes = 10;

  /**
   * `maxChunkBytes` bounds a structured chunk's payload: a server that
   * announces more is answered with an "oversized" message at once, rather
   * than buffered until the bytes arrive (they may never).
   */
  constructor(
    private readonly readLengthOf: (cookie: bigint) => number = () => 0,
    private readonly maxChunkBytes = Number.POSITIVE_INFINITY,
  ) {}

  /** Skip the greeting: option haggling starts over after NBD_OPT_STARTTLS. */
  enterOptions(): void {
    this.phase = "options";
  }

  enterTransmission(): void {
    this.phase = "transmission";
  }

  expectExportNameReply(noZeroes: boolean): void {
    this.phase = "exportName";
    this.exportNameBytes = noZeroes ? 10 : 10 + EXPORT_NAME_PADDING_BYTES;
  }

  push(chunk: Uint8Array): ServerMessage[] {
    this.chunks.push(Buffer.from(chunk));
    this.buffered += chunk.length;
    const out: ServerMessage[] = [];
    for (;;) {
      const m = this.next();
      if (m === null) return out;
      out.push(m);
    }
  }

  private peek(n: number): Buffer | null {
    if (this.buffered < n) return null;
    // Join only when the first chunk is short: re-joining a growing buffer
    // on every push would make a large reply cost quadratic copying.
    if (this.chunks.length > 1 && this.chunks[0]!.length < n) {
      const all = Buffer.concat(this.chunks);
      this.chunks.length = 0;
      this.chunks.push(all);
    }
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  private consume(n: number): void {
    const first = this.chunks[0];
    if (first === undefined) return;
    this.chunks[0] = first.subarray(n);
    this.buffered -= n;
  }

  private next(): ServerMessage | null {
    switch (this.phase) {
      case "greeting": {
        const b = this.peek(GREETING_BYTES);
        if (b === null) return null;
        const m: ServerMessage = {
          kind: "greeting",
          magicOk: b.readBigUInt64BE(0) === NBDMAGIC && b.readBigUInt64BE(8) === IHAVEOPT,
          handshakeFlags: b.readUInt16BE(16),
        };
        this.consume(GREETING_BYTES);
        this.phase = "options";
        return m;
      }
      case "options": {
        const h = this.peek(OPTION_REPLY_HEADER_BYTES);
        if (h === null) return null;
        const len = h.readUInt32BE(16);
        const b = this.peek(OPTION_REPLY_HEADER_BYTES + len);
        if (b === null) return null;
        const m: ServerMessage = {
          kind: "optionReply",
          magicOk: b.readBigUInt64BE(0) === NBD_REP_MAGIC,
          option: b.readUInt32BE(8),
          replyType: b.readUInt32BE(12),
          data: Buffer.from(b.subarray(OPTION_REPLY_HEADER_BYTES, OPTION_REPLY_HEADER_BYTES + len)),
        };
        this.consume(OPTION_REPLY_HEADER_BYTES + len);
        return m;
      }
      case "exportName": {
        const b = this.peek(this.exportNameBytes);
        if (b === null) return null;
        const m: ServerMessage = { kind: "exportNameReply", sizeBytes: b.readBigUInt64BE(0), transmissionFlags: b.readUInt16BE(8) };
        this.consume(this.exportNameBytes);
        this.phase = "transmission";
        return m;
      }
      case "transmission": {
        const h = this.peek(4);
        if (h === null) return null;
        const magic = h.readUInt32BE(0);
        if (magic === NBD_SIMPLE_REPLY_MAGIC) {
          const hb = this.peek(SIMPLE_REPLY_HEADER_BYTES);
          if (hb === null) return null;
          const error = hb.readUInt32BE(4);
          const cookie = hb.readBigUInt64BE(8);
          const dataBytes = error === 0 ? this.readLengthOf(cookie) : 0;
          const b = this.peek(SIMPLE_REPLY_HEADER_BYTES + dataBytes);
          if (b === null) return null;
          const data = dataBytes > 0 ? Buffer.from(b.subarray(SIMPLE_REPLY_HEADER_BYTES, SIMPLE_REPLY_HEADER_BYTES + dataBytes)) : null;
          this.consume(SIMPLE_REPLY_HEADER_BYTES + dataBytes);
          return { kind: "simpleReply", error, cookie, data };
        }
        if (magic === NBD_STRUCTURED_REPLY_MAGIC) {
          const hb = this.peek(STRUCTURED_REPLY_HEADER_BYTES);
          if (hb === null) return null;
          const len = hb.readUInt32BE(16);
          if (len > this.maxChunkBytes) {
            this.chunks.length = 0;
            this.buffered = 0;
            return { kind: "oversized", cookie: hb.readBigUInt64BE(8), lengthBytes: len };
          }
          const b = this.peek(STRUCTURED_REPLY_HEADER_BYTES + len);
          if (b === null) return null;
          const m: ServerMessage = {
            kind: "chunk",
            flags: b.readUInt16BE(4),
            chunkType: b.readUInt16BE(6),
            cookie: b.readBigUInt64BE(8),
            payload: Buffer.from(b.subarray(STRUCTURED_REPLY_HEADER_BYTES, STRUCTURED_REPLY_HEADER_BYTES + len)),
          };
          this.consume(STRUCTURED_REPLY_HEADER_BYTES + len);
          return m;
        }
        this.chunks.length = 0;
        this.buffered = 0;
        return { kind: "badMagic", magic };
      }
    }
  }
}
