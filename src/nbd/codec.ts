/**
 * NBD wire codec: push parsers and serializers, no transport.
 *
 * `ServerParser` is what a server runs on the bytes it receives: the client
 * flags, option requests (§2.2) and transmission requests (§4.1). It accepts
 * input split at any byte boundary and never keeps a reference to a pushed
 * chunk after `push` returns, so the transport may reuse its read buffer.
 * Serializers build the exact bytes of every message we send. The client
 * side (request encoders, ReplyParser) is in client-codec.ts.
 */
import {
  CLIENT_FLAGS_BYTES,
  EXPORT_NAME_PADDING_BYTES,
  GREETING_BYTES,
  IHAVEOPT,
  NBDMAGIC,
  NBD_CMD_WRITE,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REP_INFO,
  NBD_REP_MAGIC,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  OFFSET_DATA_HEADER_BYTES,
  OPTION_HEADER_BYTES,
  OPTION_REPLY_HEADER_BYTES,
  REQUEST_HEADER_BYTES,
  SIMPLE_REPLY_HEADER_BYTES,
  STRUCTURED_REPLY_HEADER_BYTES,
} from "./protocol.js";

const TWO_POW_32 = 0x1_0000_0000;
const IHAVEOPT_HI = Number(IHAVEOPT >> 32n);
const IHAVEOPT_LO = Number(IHAVEOPT & 0xffffffffn);

/** An option request (§2.2). `data` is null when it was longer than the parser buffers and was discarded. */
export interface NbdOption {
  readonly code: number;
  readonly lengthBytes: number;
  readonly data: Buffer | null;
}

/**
 * A transmission request (§4.1). The cookie is kept as two u32 halves so the
 * hot path never allocates a BigInt; it is only ever echoed back.
 * `offsetBytes` is the u64 offset as a Number: exact up to 2^53, and above
 * that still larger than any device, so range checks stay correct.
 */
export interface NbdRequest {
  readonly flags: number;
  readonly type: number;
  readonly cookieHi: number;
  readonly cookieLo: number;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

/**
 * What to do with a WRITE's payload: receive it into this buffer (exactly
 * lengthBytes long), discard it, stop parsing ("close"), or hold everything
 * after the header until resumePayload() ("wait": no buffer to spare now).
 */
export type PayloadDisposition = Buffer | "discard" | "close" | "wait";

export interface ServerParserHandler {
  onClientFlags(flags: number): void;
  onOption(option: NbdOption): void;
  /** Called for NBD_CMD_WRITE headers only, before the payload is read. */
  onWriteHeader(request: NbdRequest): PayloadDisposition;
  /** A complete request; `payload` is the buffer onWriteHeader returned, or null. */
  onRequest(request: NbdRequest, payload: Buffer | null): void;
  /** The byte stream cannot be resynchronised; the parser has stopped and the caller must hard-close. */
  onProtocolError(message: string): void;
}

export interface ServerParserLimits {
  /** Option data up to this length is buffered and delivered; longer data is discarded (data: null). */
  readonly maxBufferedOptionBytes: number;
  /** Option data longer than this is a protocol error (hard close). */
  readonly maxOptionBytes: number;
}

export const DEFAULT_PARSER_LIMITS: ServerParserLimits = {
  maxBufferedOptionBytes: 64 * 1024,
  maxOptionBytes: 16 * 1024 * 1024,
};

const enum State {
  ClientFlags,
  OptionHeader,
  OptionData,
  RequestHeader,
  Payload,
  /** A WRITE header was answered "wait": input is held until resumePayload(). */
  PayloadWait,
  Stopped,
}

/**
 * Push parser for everything a server receives. Phases: client flags, then
 * options until the handler calls enterTransmission() (GO/EXPORT_NAME
 * accepted), then requests. Handler callbacks run synchronously inside
 * push(); they may call enterTransmission() or stop().
 */
export class ServerParser {
  private state: State = State.ClientFlags;
  /** Holds a header that arrived split across chunks. */
  private readonly scratch = Buffer.alloc(REQUEST_HEADER_BYTES);
  private scratchFill = 0;
  private optionCode = 0;
  private optionLength = 0;
  private optionData: Buffer | null = null;
  private optionFill = 0;
  private request: NbdRequest | null = null;
  private payload: Buffer | null = null;
  private payloadFill = 0;
  private payloadLength = 0;
  /** Input that arrived after a header answered "wait" (a copy: chunks are not ours to keep). */
  private held: Buffer | null = null;

  constructor(
    private readonly handler: ServerParserHandler,
    private readonly limits: ServerParserLimits = DEFAULT_PARSER_LIMITS,
  ) {}

  get stopped(): boolean {
    return this.state === State.Stopped;
  }

  get inTransmission(): boolean {
    return this.state === State.RequestHeader || this.state === State.Payload || this.state === State.PayloadWait;
  }

  /** True between a WRITE header and the end of its payload (including while waiting for a buffer). */
  get receivingPayload(): boolean {
    return this.state === State.Payload || this.state === State.PayloadWait;
  }

  /** True while a WRITE header waits for a payload buffer (onWriteHeader said "wait"). */
  get waitingForPayloadBuffer(): boolean {
    return this.state === State.PayloadWait;
  }

  /** Ask onWriteHeader again for the waiting WRITE, then parse the input held meanwhile. */
  resumePayload(): void {
    if (this.state !== State.PayloadWait || this.request === null) return;
    const request = this.request;
    this.state = State.RequestHeader;
    this.request = null;
    this.beginPayload(request);
    if (this.waitingForPayloadBuffer) return;
    const held = this.held;
    this.held = null;
    if (held !== null) this.push(held);
  }

  /** Switch from option haggling to transmission; bytes after the current option are parsed as requests. */
  enterTransmission(): void {
    if (this.state === State.Stopped) return;
    this.state = State.RequestHeader;
    this.scratchFill = 0;
  }

  /** Ignore all further input (NBD_OPT_ABORT, NBD_CMD_DISC, errors). */
  stop(): void {
    this.state = State.Stopped;
    this.payload = null;
    this.optionData = null;
    this.request = null;
    this.held = null;
  }

  /**
   * While a WRITE payload is being received into a buffer: the part of that
   * buffer still to be filled, so a transport can read straight into it
   * (then call payloadReceived). Null otherwise.
   */
  payloadWindow(): Buffer | null {
    if (this.state !== State.Payload || this.payload === null) return null;
    return this.payload.subarray(this.payloadFill, this.payloadLength);
  }

  /** `byteCount` bytes were written into the start of the last payloadWindow(). */
  payloadReceived(byteCount: number): void {
    if (this.state !== State.Payload || this.payload === null) return;
    this.payloadFill += byteCount;
    if (this.payloadFill >= this.payloadLength) this.finishPayload();
  }

  push(chunk: Uint8Array): void {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let pos = 0;
    const end = buf.length;
    while (pos < end) {
      switch (this.state) {
        case State.RequestHeader: {
          if (this.scratchFill === 0 && end - pos >= REQUEST_HEADER_BYTES) {
            const p = pos;
            pos += REQUEST_HEADER_BYTES;
            this.onRequestHeader(buf, p);
          } else {
            pos = this.fillScratch(buf, pos, end, REQUEST_HEADER_BYTES);
            if (this.scratchFill === REQUEST_HEADER_BYTES) {
              this.scratchFill = 0;
              this.onRequestHeader(this.scratch, 0);
            }
          }
          break;
        }
        case State.PayloadWait: {
          const rest = buf.subarray(pos);
          this.held = this.held === null ? Buffer.from(rest) : Buffer.concat([this.held, rest]);
          return;
        }
        case State.Payload: {
          const n = Math.min(this.payloadLength - this.payloadFill, end - pos);
          if (this.payload !== null) buf.copy(this.payload, this.payloadFill, pos, pos + n);
          pos += n;
          this.payloadFill += n;
          if (this.payloadFill === this.payloadLength) this.finishPayload();
          break;
        }
        case State.OptionHeader: {
          pos = this.fillScratch(buf, pos, end, OPTION_HEADER_BYTES);
          if (this.scratchFill === OPTION_HEADER_BYTES) {
            this.scratchFill = 0;
            this.onOptionHeader();
          }
          break;
        }
        case State.OptionData: {
          const n = Math.min(this.optionLength - this.optionFill, end - pos);
          if (this.optionData !== null) buf.copy(this.optionData, this.optionFill, pos, pos + n);
          pos += n;
          this.optionFill += n;
          if (this.optionFill === this.optionLength) this.finishOption();
          break;
        }
        case State.ClientFlags: {
          pos = this.fillScratch(buf, pos, end, CLIENT_FLAGS_BYTES);
          if (this.scratchFill === CLIENT_FLAGS_BYTES) {
            this.scratchFill = 0;
            this.state = State.OptionHeader;
            this.handler.onClientFlags(this.scratch.readUInt32BE(0));
          }
          break;
        }
        case State.Stopped:
          return;
      }
    }
  }

  private fillScratch(buf: Buffer, pos: number, end: number, want: number): number {
    const n = Math.min(want - this.scratchFill, end - pos);
    buf.copy(this.scratch, this.scratchFill, pos, pos + n);
    this.scratchFill += n;
    return pos + n;
  }

  private onOptionHeader(): void {
    const s = this.scratch;
    if (s.readUInt32BE(0) !== IHAVEOPT_HI || s.readUInt32BE(4) !== IHAVEOPT_LO) {
      this.protocolError("bad option magic");
      return;
    }
    this.optionCode = s.readUInt32BE(8);
    this.optionLength = s.readUInt32BE(12);
    if (this.optionLength > this.limits.maxOptionBytes) {
      this.protocolError(`option ${this.optionCode} data too long (${this.optionLength} bytes)`);
      return;
    }
    this.optionFill = 0;
    this.optionData = this.optionLength <= this.limits.maxBufferedOptionBytes ? Buffer.alloc(this.optionLength) : null;
    if (this.optionLength === 0) this.finishOption();
    else this.state = State.OptionData;
  }

  private finishOption(): void {
    const option: NbdOption = { code: this.optionCode, lengthBytes: this.optionLength, data: this.optionData };
    this.optionData = null;
    this.state = State.OptionHeader;
    this.handler.onOption(option);
  }

  private onRequestHeader(b: Buffer, p: number): void {
    if (b.readUInt32BE(p) !== NBD_REQUEST_MAGIC) {
      this.protocolError(`bad request magic 0x${b.readUInt32BE(p).toString(16)}`);
      return;
    }
    const request: NbdRequest = {
      flags: b.readUInt16BE(p + 4),
      type: b.readUInt16BE(p + 6),
      cookieHi: b.readUInt32BE(p + 8),
      cookieLo: b.readUInt32BE(p + 12),
      offsetBytes: b.readUInt32BE(p + 16) * TWO_POW_32 + b.readUInt32BE(p + 20),
      lengthBytes: b.readUInt32BE(p + 24),
    };
    // §4.1: only WRITE carries a payload; an unknown command is assumed to carry none (§7.2).
    if (request.type !== NBD_CMD_WRITE || request.lengthBytes === 0) {
      this.handler.onRequest(request, null);
      return;
    }
    this.beginPayload(request);
  }

  private beginPayload(request: NbdRequest): void {
    const disposition = this.handler.onWriteHeader(request);
    if (this.state === State.Stopped) return;
    if (disposition === "close") {
      this.stop();
      return;
    }
    this.request = request;
    if (disposition === "wait") {
      this.state = State.PayloadWait;
      return;
    }
    this.payload = disposition === "discard" ? null : disposition;
    this.payloadFill = 0;
    this.payloadLength = request.lengthBytes;
    this.state = State.Payload;
  }

  private finishPayload(): void {
    const request = this.request;
    const payload = this.payload;
    this.request = null;
    this.payload = null;
    this.state = State.RequestHeader;
    if (request !== null) this.handler.onRequest(request, payload);
  }

  private protocolError(message: string): void {
    this.stop();
    this.handler.onProtocolError(message);
  }
}

// ---------------------------------------------------------------- server → client serializers

/** §2.1: NBDMAGIC, IHAVEOPT, handshake flags. */
export function encodeGreeting(handshakeFlags: number): Buffer {
  const b = Buffer.allocUnsafe(GREETING_BYTES);
  b.writeBigUInt64BE(NBDMAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(handshakeFlags, 16);
  return b;
}

/** §2.2 option reply: header then data. */
export function encodeOptionReply(optionCode: number, replyType: number, data?: Uint8Array): Buffer {
  const dataBytes = data?.length ?? 0;
  const b = Buffer.allocUnsafe(OPTION_REPLY_HEADER_BYTES + dataBytes);
  b.writeBigUInt64BE(NBD_REP_MAGIC, 0);
  b.writeUInt32BE(optionCode, 8);
  b.writeUInt32BE(replyType >>> 0, 12);
  b.writeUInt32BE(dataBytes, 16);
  if (data !== undefined) b.set(data, OPTION_REPLY_HEADER_BYTES);
  return b;
}

/** An option error reply carrying a human-readable message (§2.4). */
export function encodeOptionError(optionCode: number, replyType: number, message: string): Buffer {
  return encodeOptionReply(optionCode, replyType, Buffer.from(message, "utf8"));
}

/** REP_SERVER (answer to LIST): u32 name length, name, optional description. */
export function encodeRepServer(optionCode: number, exportName: string, description = ""): Buffer {
  const name = Buffer.from(exportName, "utf8");
  const desc = Buffer.from(description, "utf8");
  const data = Buffer.allocUnsafe(4 + name.length + desc.length);
  data.writeUInt32BE(name.length, 0);
  name.copy(data, 4);
  desc.copy(data, 4 + name.length);
  return encodeOptionReply(optionCode, NBD_REP_SERVER, data);
}

/** REP_INFO / NBD_INFO_EXPORT: u64 size, u16 transmission flags. */
export function encodeInfoExport(optionCode: number, sizeBytes: number, transmissionFlags: number): Buffer {
  const data = Buffer.allocUnsafe(12);
  data.writeUInt16BE(NBD_INFO_EXPORT, 0);
  data.writeBigUInt64BE(BigInt(sizeBytes), 2);
  data.writeUInt16BE(transmissionFlags, 10);
  return encodeOptionReply(optionCode, NBD_REP_INFO, data);
}

/** REP_INFO / NBD_INFO_NAME or NBD_INFO_DESCRIPTION. */
export function encodeInfoText(optionCode: number, infoType: typeof NBD_INFO_NAME | typeof NBD_INFO_DESCRIPTION, text: string): Buffer {
  const t = Buffer.from(text, "utf8");
  const data = Buffer.allocUnsafe(2 + t.length);
  data.writeUInt16BE(infoType, 0);
  t.copy(data, 2);
  return encodeOptionReply(optionCode, NBD_REP_INFO, data);
}

/** REP_INFO / NBD_INFO_BLOCK_SIZE: minimum, preferred, maximum payload. */
export function encodeInfoBlockSize(optionCode: number, minimumBytes: number, preferredBytes: number, maximumBytes: number): Buffer {
  const data = Buffer.allocUnsafe(14);
  data.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 0);
  data.writeUInt32BE(minimumBytes, 2);
  data.writeUInt32BE(preferredBytes, 6);
  data.writeUInt32BE(maximumBytes, 10);
  return encodeOptionReply(optionCode, NBD_REP_INFO, data);
}

/** REP_META_CONTEXT: u32 context id, context name. */
export function encodeRepMetaContext(optionCode: number, contextId: number, contextName: string): Buffer {
  const name = Buffer.from(contextName, "utf8");
  const data = Buffer.allocUnsafe(4 + name.length);
  data.writeUInt32BE(contextId, 0);
  name.copy(data, 4);
  return encodeOptionReply(optionCode, NBD_REP_META_CONTEXT, data);
}

/** Answer to a successful NBD_OPT_EXPORT_NAME: size, flags, and 124 zeroes unless NO_ZEROES was agreed. */
export function encodeExportNameReply(sizeBytes: number, transmissionFlags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(10 + (noZeroes ? 0 : EXPORT_NAME_PADDING_BYTES));
  b.writeBigUInt64BE(BigInt(sizeBytes), 0);
  b.writeUInt16BE(transmissionFlags, 8);
  return b;
}

/** §4.2 simple reply header (16 bytes) at `at`. */
export function writeSimpleReply(b: Buffer, at: number, error: number, cookieHi: number, cookieLo: number): void {
  b.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, at);
  b.writeUInt32BE(error, at + 4);
  b.writeUInt32BE(cookieHi, at + 8);
  b.writeUInt32BE(cookieLo, at + 12);
}

export function encodeSimpleReply(error: number, cookieHi: number, cookieLo: number): Buffer {
  const b = Buffer.allocUnsafe(SIMPLE_REPLY_HEADER_BYTES);
  writeSimpleReply(b, 0, error, cookieHi, cookieLo);
  return b;
}

/** §5 structured chunk header (20 bytes) at `at`. */
export function writeChunkHeader(b: Buffer, at: number, flags: number, chunkType: number, cookieHi: number, cookieLo: number, payloadBytes: number): void {
  b.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, at);
  b.writeUInt16BE(flags, at + 4);
  b.writeUInt16BE(chunkType, at + 6);
  b.writeUInt32BE(cookieHi, at + 8);
  b.writeUInt32BE(cookieLo, at + 12);
  b.writeUInt32BE(payloadBytes, at + 16);
}

/** Header (28 bytes) of a DONE OFFSET_DATA chunk carrying `dataBytes` of data read at `offsetBytes`; the data follows it on the wire. */
export function writeOffsetDataHeader(b: Buffer, at: number, cookieHi: number, cookieLo: number, offsetBytes: number, dataBytes: number): void {
  writeChunkHeader(b, at, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, cookieHi, cookieLo, 8 + dataBytes);
  b.writeUInt32BE(Math.floor(offsetBytes / TWO_POW_32), at + 20);
  b.writeUInt32BE(offsetBytes >>> 0, at + 24);
}

export function encodeOffsetDataHeader(cookieHi: number, cookieLo: number, offsetBytes: number, dataBytes: number): Buffer {
  const b = Buffer.allocUnsafe(OFFSET_DATA_HEADER_BYTES);
  writeOffsetDataHeader(b, 0, cookieHi, cookieLo, offsetBytes, dataBytes);
  return b;
}

/** A DONE ERROR chunk: u32 error, u16 message length, message (truncated to stay short). */
export function encodeStructuredError(cookieHi: number, cookieLo: number, error: number, message: string): Buffer {
  let msg = Buffer.from(message, "utf8");
  if (msg.length > 1024) msg = msg.subarray(0, 1024);
  const b = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_BYTES + 6 + msg.length);
  writeChunkHeader(b, 0, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, cookieHi, cookieLo, 6 + msg.length);
  b.writeUInt32BE(error, 20);
  b.writeUInt16BE(msg.length, 24);
  msg.copy(b, 26);
  return b;
}

/** A DONE NONE chunk: a structured reply with nothing to say. */
export function encodeStructuredNone(cookieHi: number, cookieLo: number): Buffer {
  const b = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_BYTES);
  writeChunkHeader(b, 0, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, cookieHi, cookieLo, 0);
  return b;
}

export interface BlockStatusExtent {
  readonly lengthBytes: number;
  readonly flags: number;
}

/** A BLOCK_STATUS chunk for one context: u32 context id, then (u32 length, u32 flags) per extent. */
export function encodeBlockStatus(cookieHi: number, cookieLo: number, contextId: number, extents: readonly BlockStatusExtent[], done: boolean): Buffer {
  const payloadBytes = 4 + 8 * extents.length;
  const b = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_BYTES + payloadBytes);
  writeChunkHeader(b, 0, done ? NBD_REPLY_FLAG_DONE : 0, NBD_REPLY_TYPE_BLOCK_STATUS, cookieHi, cookieLo, payloadBytes);
  b.writeUInt32BE(contextId, 20);
  let at = 24;
  for (const e of extents) {
    b.writeUInt32BE(e.lengthBytes, at);
    b.writeUInt32BE(e.flags, at + 4);
    at += 8;
  }
  return b;
}

// ---------------------------------------------------------------- decoders of option data (server side)

export interface InfoRequest {
  readonly exportName: string;
  readonly infoTypes: readonly number[];
}

/** Decode NBD_OPT_INFO / NBD_OPT_GO data; null when malformed (→ ERR_INVALID, §2.3). */
export function decodeInfoRequest(data: Buffer): InfoRequest | null {
  if (data.length < 6) return null;
  const nameBytes = data.readUInt32BE(0);
  if (nameBytes > data.length - 6) return null;
  const count = data.readUInt16BE(4 + nameBytes);
  if (data.length !== 6 + nameBytes + 2 * count) return null;
  const infoTypes: number[] = [];
  for (let i = 0; i < count; i++) infoTypes.push(data.readUInt16BE(6 + nameBytes + 2 * i));
  return { exportName: data.toString("utf8", 4, 4 + nameBytes), infoTypes };
}

export interface MetaContextRequest {
  readonly exportName: string;
  readonly queries: readonly string[];
}

/** Decode NBD_OPT_LIST/SET_META_CONTEXT data; null when malformed. */
export function decodeMetaContextRequest(data: Buffer): MetaContextRequest | null {
  if (data.length < 8) return null;
  const nameBytes = data.readUInt32BE(0);
  if (nameBytes > data.length - 8) return null;
  let at = 4 + nameBytes;
  const count = data.readUInt32BE(at);
  at += 4;
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    if (data.length - at < 4) return null;
    const q = data.readUInt32BE(at);
    at += 4;
    if (q > data.length - at) return null;
    queries.push(data.toString("utf8", at, at + q));
    at += q;
  }
  if (at !== data.length) return null;
  return { exportName: data.toString("utf8", 4, 4 + nameBytes), queries };
}
