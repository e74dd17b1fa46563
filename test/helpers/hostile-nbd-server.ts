import { closeSync, openSync, readSync, writeSync } from "node:fs";
import net from "node:net";
import { encodeGreeting, encodeInfoExport, encodeOptionReply } from "../../src/nbd/codec.js";
import {
  NBD_CMD_DISC,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_WRITE,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_NO_ZEROES,
  NBD_FLAG_SEND_FLUSH,
  NBD_OPT_ABORT,
  NBD_OPT_GO,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_UNSUP,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
} from "../../src/nbd/protocol.js";

/**
 * How a hostile NBD server breaks the transmission rules (issue 18: a remote
 * PV whose server lies must cost a leg, never a wrong byte):
 *   wrong-magic        a reply whose magic is neither simple nor structured;
 *   reply-too-long     a READ answered with more data than asked (a data
 *                      chunk running past the request), a WRITE with data;
 *   oversized-chunk    a chunk header announcing 1 GiB (beyond any request
 *                      and the negotiated maximum), then a little of it;
 *   unknown-handle     a reply to a cookie nobody sent;
 *   stall-mid-reply    the first bytes of a reply, then silence (only the
 *                      client's `nbd_timeout_s` ends it);
 *   bad-chunk-type     a chunk of an unknown type without the error bit;
 *   error-reply        an honest NBD_EIO (simple reply, or an error chunk).
 */
export type ServerFault = "wrong-magic" | "reply-too-long" | "oversized-chunk" | "unknown-handle" | "stall-mid-reply" | "bad-chunk-type" | "error-reply";
export const SERVER_FAULTS: readonly ServerFault[] = ["wrong-magic", "reply-too-long", "oversized-chunk", "unknown-handle", "stall-mid-reply", "bad-chunk-type", "error-reply"];

const NBD_EIO = 5;

/**
 * An NBD server written in the test (node's net) serving an image file
 * honestly — fixed newstyle, structured replies, NBD_OPT_GO, FLUSH — until
 * `misbehave(fault)`; from then on every READ and WRITE, on this connection
 * and every later one, gets the fault's reply instead (writes are not
 * applied), while handshakes stay correct so that the client's reconnections
 * reach the lie too. A stand-in by nature: no real server can be made to
 * send these replies.
 *
 * It runs on the test's event loop: commands that use its export must be
 * run asynchronously (a spawnSync would block the server it waits for).
 */
export class HostileNbdServer {
  /** Replies that broke the rules (or errors sent) since `misbehave`. */
  faultsSent = 0;
  /** Requests served honestly. */
  honestRequests = 0;
  private fault: ServerFault | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly fd: number;

  private constructor(
    private readonly server: net.Server,
    readonly socketPath: string,
    private readonly image: string,
    private readonly sizeBytes: number,
  ) {
    this.fd = openSync(image, "r+");
  }

  /** Listen on `socketPath`, serving `image` (its size is the export's). */
  static async start(socketPath: string, image: string, sizeBytes: number): Promise<HostileNbdServer> {
    const server = net.createServer();
    const h = new HostileNbdServer(server, socketPath, image, sizeBytes);
    server.on("connection", (s) => h.serve(s));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(socketPath, () => resolve());
    });
    return h;
  }

  /** The URI a PV on this export is named by. */
  get uri(): string {
    return `nbd+unix:///?socket=${this.socketPath}`;
  }

  misbehave(fault: ServerFault): void {
    this.fault = fault;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
    closeSync(this.fd);
  }

  private serve(s: net.Socket): void {
    this.sockets.add(s);
    s.on("close", () => this.sockets.delete(s));
    s.on("error", () => undefined);
    let buf: Buffer = Buffer.alloc(0);
    let phase: "flags" | "options" | "transmission" = "flags";
    let stalled = false;
    s.write(encodeGreeting(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES));
    s.on("data", (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      for (;;) {
        if (phase === "flags") {
          if (buf.length < 4) return;
          buf = buf.subarray(4);
          phase = "options";
        } else if (phase === "options") {
          if (buf.length < 16) return;
          const len = buf.readUInt32BE(12);
          if (buf.length < 16 + len) return;
          const code = buf.readUInt32BE(8);
          buf = buf.subarray(16 + len);
          if (code === NBD_OPT_STRUCTURED_REPLY) s.write(encodeOptionReply(code, NBD_REP_ACK));
          else if (code === NBD_OPT_GO) {
            s.write(encodeInfoExport(code, this.sizeBytes, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH));
            s.write(encodeOptionReply(code, NBD_REP_ACK));
            phase = "transmission";
          } else if (code === NBD_OPT_ABORT) {
            s.end(encodeOptionReply(code, NBD_REP_ACK));
            return;
          } else s.write(encodeOptionReply(code, NBD_REP_ERR_UNSUP));
        } else {
          if (buf.length < 28) return;
          const type = buf.readUInt16BE(6);
          const cookie = buf.readBigUInt64BE(8);
          const offset = Number(buf.readBigUInt64BE(16));
          const length = buf.readUInt32BE(24);
          const payloadBytes = type === NBD_CMD_WRITE ? length : 0;
          if (buf.length < 28 + payloadBytes) return;
          const payload = buf.subarray(28, 28 + payloadBytes);
          buf = buf.subarray(28 + payloadBytes);
          if (type === NBD_CMD_DISC) {
            s.end();
            return;
          }
          if (stalled) continue;
          const fault = this.fault;
          if (fault !== undefined && (type === NBD_CMD_READ || type === NBD_CMD_WRITE)) {
            this.faultsSent++;
            if (fault === "stall-mid-reply") stalled = true;
            s.write(hostileReply(fault, type, cookie, offset, length));
            continue;
          }
          this.honestRequests++;
          s.write(this.honestReply(type, cookie, offset, length, payload));
        }
      }
    });
  }

  private honestReply(type: number, cookie: bigint, offset: number, length: number, payload: Buffer): Buffer {
    if (offset + length > this.sizeBytes) return simple(cookie, NBD_EIO);
    if (type === NBD_CMD_READ) {
      const data = Buffer.alloc(length);
      for (let at = 0; at < length; ) {
        const n = readSync(this.fd, data, at, length - at, offset + at);
        if (n === 0) break;
        at += n;
      }
      return dataChunk(cookie, offset, data);
    }
    if (type === NBD_CMD_WRITE) {
      for (let at = 0; at < length; ) at += writeSync(this.fd, payload, at, length - at, offset + at);
      return simple(cookie);
    }
    if (type === NBD_CMD_FLUSH) return simple(cookie);
    return simple(cookie, 22 /* NBD_EINVAL */);
  }
}

function hostileReply(fault: ServerFault, type: number, cookie: bigint, offset: number, length: number): Buffer {
  const isRead = type === NBD_CMD_READ;
  switch (fault) {
    case "wrong-magic":
      return simple(cookie, 0, 0xdeadbeef);
    case "reply-too-long":
      return isRead ? dataChunk(cookie, offset, Buffer.alloc(length + 4096, 0x66)) : dataChunk(cookie, offset, Buffer.alloc(4096, 0x66));
    case "oversized-chunk":
      return Buffer.concat([chunkHeader(NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, cookie, 1 << 30), Buffer.alloc(4096, 0x66)]);
    case "unknown-handle":
      return isRead ? dataChunk(cookie + 1000n, offset, Buffer.alloc(length, 0x66)) : simple(cookie + 1000n);
    case "stall-mid-reply": {
      const whole = isRead ? dataChunk(cookie, offset, Buffer.alloc(length, 0x66)) : simple(cookie);
      return whole.subarray(0, Math.max(4, Math.floor(whole.length / 2)));
    }
    case "bad-chunk-type":
      return chunkHeader(NBD_REPLY_FLAG_DONE, 0x7777, cookie, 0);
    case "error-reply": {
      if (!isRead) return simple(cookie, NBD_EIO);
      const msg = Buffer.from("hostile server: I/O error");
      const p = Buffer.alloc(6 + msg.length);
      p.writeUInt32BE(NBD_EIO, 0);
      p.writeUInt16BE(msg.length, 4);
      msg.copy(p, 6);
      return Buffer.concat([chunkHeader(NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, cookie, p.length), p]);
    }
  }
}

function chunkHeader(flags: number, type: number, cookie: bigint, length: number): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, 0);
  h.writeUInt16BE(flags, 4);
  h.writeUInt16BE(type, 6);
  h.writeBigUInt64BE(cookie, 8);
  h.writeUInt32BE(length, 16);
  return h;
}

function dataChunk(cookie: bigint, offset: number, data: Buffer): Buffer {
  const off = Buffer.alloc(8);
  off.writeBigUInt64BE(BigInt(offset));
  return Buffer.concat([chunkHeader(NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, cookie, 8 + data.length), off, data]);
}

function simple(cookie: bigint, error = 0, magic = NBD_SIMPLE_REPLY_MAGIC): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(magic >>> 0, 0);
  b.writeUInt32BE(error, 4);
  b.writeBigUInt64BE(cookie, 8);
  return b;
}
