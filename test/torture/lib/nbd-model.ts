import { RawNbdClient, type Reply } from "../../integration/nbd/raw-client.js";
import { NBD_CMD_FLAG_FUA, NBD_CMD_FLUSH, NBD_CMD_READ, NBD_CMD_WRITE } from "../../../src/nbd/protocol.js";
import { lvmCrc } from "../../../src/base/crc.js";
import { xorshiftFill, type Rng } from "./rng.js";

/**
 * A model-checked NBD client: the oracle of the data scenarios.
 *
 * It owns a range of an export and writes 512-byte sectors that name
 * themselves: magic, the write's token (tokens grow in issue order), the LV
 * sector, a pattern and a CRC. It never has two writes in flight on the same
 * sector, so per sector it knows
 *   acked    the token of the last write the server acknowledged,
 *   durable  the token acknowledged before the last *completed* flush
 *            (a flush covers what was acknowledged before it was sent),
 *   inflight the token of a write sent but not answered (crash: maybe there).
 * After a crash a sector must hold the required token (acked for a killed
 * process, whose page cache survives; durable for a power cut) or a later
 * token that was written to that very sector. Token 0 is the all-zero sector
 * of a fresh LV.
 */
export const SECTOR = 512;
const MAGIC = 0x54524f54; // "TORT"

export interface WriteEvent {
  readonly token: number;
  /** LV byte range of the write. */
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  readonly error: number;
}

export interface Violation {
  readonly sector: number;
  readonly expected: number;
  readonly found: number | "garbage";
}

export class ModelClient {
  readonly sectors: number;
  readonly acked: Uint32Array;
  readonly durable: Uint32Array;
  readonly inflight: Uint32Array;
  /** token -> [first sector, sector count] (relative to the area). */
  private readonly spans = new Map<number, [number, number]>();
  private nextToken = 1;
  /** Errors the server returned to a write, read or flush (client-visible errors). */
  errors: Array<{ op: string; error: number; offsetBytes: number }> = [];
  writesAcked = 0;
  flushesDone = 0;
  readsChecked = 0;
  /** Reads whose data did not match the model while nothing crashed. */
  readMismatches: Violation[] = [];
  dead = false;
  /** The first error thrown by onWriteReply (rethrown by load()). */
  hookError: unknown;
  /** Called with each write's outcome before the model counts it acknowledged. */
  onWriteReply: ((w: WriteEvent) => void | Promise<void>) | undefined;
  /** Called as a write is sent. */
  onWriteSent: ((token: number) => void) | undefined;
  /** Called each time `durable` grew (a flush completed, a FUA write was acknowledged). */
  onDurable: (() => void) | undefined;

  private constructor(
    readonly client: RawNbdClient,
    readonly exportSizeBytes: number,
    /** The area this client owns, in LV bytes. */
    readonly areaStartBytes: number,
    areaBytes: number,
    readonly tag: number,
  ) {
    this.sectors = Math.floor(areaBytes / SECTOR);
    this.acked = new Uint32Array(this.sectors);
    this.durable = new Uint32Array(this.sectors);
    this.inflight = new Uint32Array(this.sectors);
  }

  static async open(socketPath: string, exportName: string, area?: { startBytes: number; lengthBytes: number }, tag = 1): Promise<ModelClient> {
    const { client, go } = await RawNbdClient.ready(socketPath, { exportName, structured: true });
    const size = Number(go.sizeBytes);
    const start = area?.startBytes ?? 0;
    const len = area?.lengthBytes ?? size - start;
    if (start + len > size) throw new Error(`model area ${start}+${len} beyond export size ${size}`);
    const m = new ModelClient(client, size, start, len, tag);
    void client.closed.then(() => (m.dead = true));
    return m;
  }

  close(): void {
    this.client.destroy();
  }

  // ------------------------------------------------------------ sector codec

  sectorBytes(token: number, lvSector: number): Buffer {
    const b = Buffer.allocUnsafe(SECTOR);
    b.writeUInt32LE(MAGIC, 0);
    b.writeUInt32LE(token, 4);
    b.writeUInt32LE(lvSector >>> 0, 8);
    b.writeUInt32LE(Math.floor(lvSector / 4294967296), 12);
    b.writeUInt32LE(this.tag, 16);
    xorshiftFill(b, 20, SECTOR - 4, Math.imul(token, 2654435761) ^ Math.imul(lvSector + 1, 40503) ^ this.tag);
    b.writeUInt32LE(lvmCrc(b.subarray(0, SECTOR - 4)), SECTOR - 4);
    return b;
  }

  /** The token a sector holds: 0 for zeroes, "garbage" for anything else that is not a whole sector of ours. */
  decode(buf: Uint8Array, lvSector: number): number | "garbage" {
    const b = Buffer.from(buf.buffer, buf.byteOffset, SECTOR);
    if (b.readUInt32LE(0) !== MAGIC) return isZero(b) ? 0 : "garbage";
    if (b.readUInt32LE(SECTOR - 4) !== lvmCrc(b.subarray(0, SECTOR - 4))) return "garbage";
    const s = b.readUInt32LE(8) + b.readUInt32LE(12) * 4294967296;
    if (s !== lvSector || b.readUInt32LE(16) !== this.tag) return "garbage";
    return b.readUInt32LE(4);
  }

  private lvSector(areaSector: number): number {
    return this.areaStartBytes / SECTOR + areaSector;
  }

  /** Was `token` written to area sector `s`? */
  wrote(token: number, s: number): boolean {
    const sp = this.spans.get(token);
    return sp !== undefined && s >= sp[0] && s < sp[0] + sp[1];
  }

  // ------------------------------------------------------------ operations

  private freeRange(first: number, count: number): boolean {
    for (let s = first; s < first + count; s++) if (this.inflight[s] !== 0) return false;
    return true;
  }

  /** Write `count` sectors at area sector `first`; resolves with the NBD error (0 = acknowledged). */
  async write(first: number, count: number, fua = false): Promise<number> {
    if (!this.freeRange(first, count)) throw new Error("model: overlapping writes in flight");
    const token = this.nextToken++;
    this.spans.set(token, [first, count]);
    const payload = Buffer.allocUnsafe(count * SECTOR);
    for (let i = 0; i < count; i++) this.sectorBytes(token, this.lvSector(first + i)).copy(payload, i * SECTOR);
    for (let s = first; s < first + count; s++) this.inflight[s] = token;
    this.onWriteSent?.(token);
    const offsetBytes = this.areaStartBytes + first * SECTOR;
    let reply: Reply;
    try {
      reply = await this.client.request({ type: NBD_CMD_WRITE, flags: fua ? NBD_CMD_FLAG_FUA : 0, offsetBytes, lengthBytes: payload.length }, payload);
    } catch {
      this.dead = true;
      return -1; // stays in flight: maybe written
    }
    try {
      await this.onWriteReply?.({ token, offsetBytes, lengthBytes: payload.length, error: reply.error });
    } catch (e) {
      // A property checked at the reply failed: stop the load, report it from load().
      this.hookError ??= e;
      this.dead = true;
    }
    if (reply.error !== 0) {
      this.errors.push({ op: "write", error: reply.error, offsetBytes });
      return reply.error; // stays "in flight": the content is unspecified
    }
    for (let s = first; s < first + count; s++) {
      this.acked[s] = token;
      this.inflight[s] = 0;
      if (fua) this.durable[s] = token;
    }
    this.writesAcked++;
    if (fua) this.onDurable?.();
    return 0;
  }

  async flush(): Promise<number> {
    const snapshot = this.acked.slice();
    let reply: Reply;
    try {
      reply = await this.client.request({ type: NBD_CMD_FLUSH, offsetBytes: 0, lengthBytes: 0 });
    } catch {
      this.dead = true;
      return -1;
    }
    if (reply.error !== 0) {
      this.errors.push({ op: "flush", error: reply.error, offsetBytes: 0 });
      return reply.error;
    }
    for (let s = 0; s < this.sectors; s++) if (snapshot[s]! > this.durable[s]!) this.durable[s] = snapshot[s]!;
    this.flushesDone++;
    this.onDurable?.();
    return 0;
  }

  /** Read and check against the model (no crash happened): every sector holds its acked token, or its in-flight one. */
  async readCheck(first: number, count: number): Promise<number> {
    let reply: Reply;
    try {
      reply = await this.client.request({ type: NBD_CMD_READ, offsetBytes: this.areaStartBytes + first * SECTOR, lengthBytes: count * SECTOR });
    } catch {
      this.dead = true;
      return -1;
    }
    if (reply.error !== 0 || !reply.data) {
      this.errors.push({ op: "read", error: reply.error, offsetBytes: this.areaStartBytes + first * SECTOR });
      return reply.error || -2;
    }
    for (let i = 0; i < count; i++) {
      const s = first + i;
      const t = this.decode(reply.data.subarray(i * SECTOR, (i + 1) * SECTOR), this.lvSector(s));
      if (t === this.acked[s] || (this.inflight[s] !== 0 && t === this.inflight[s])) continue;
      if (this.readMismatches.length < 20) this.readMismatches.push({ sector: s, expected: this.acked[s]!, found: t });
    }
    this.readsChecked++;
    return 0;
  }

  /**
   * Random I/O until `stop()` says so, the connection dies or `ops` run out:
   * up to `depth` requests in flight, writes of 1..maxSectors sectors, a
   * flush every so often, some FUA writes and some checked reads.
   */
  async load(rng: Rng, o: { depth: number; maxSectors: number; flushEvery: number; fuaChance?: number; readChance?: number; ops?: number; stop?: () => boolean }): Promise<void> {
    let issued = 0;
    const worker = async (): Promise<void> => {
      while (!this.dead && !(o.stop?.() ?? false) && (o.ops === undefined || issued < o.ops)) {
        issued++;
        const k = rng.next();
        if (k < 1 / Math.max(1, o.flushEvery)) {
          await this.flush();
          continue;
        }
        const count = 1 + rng.int(o.maxSectors);
        let first = -1;
        for (let tries = 0; tries < 16; tries++) {
          const f = rng.int(Math.max(1, this.sectors - count + 1));
          if (this.freeRange(f, Math.min(count, this.sectors - f))) {
            first = f;
            break;
          }
        }
        if (first < 0) {
          await new Promise((r) => setImmediate(r));
          continue;
        }
        const n = Math.min(count, this.sectors - first);
        if (rng.next() < (o.readChance ?? 0.15)) await this.readCheck(first, n);
        else await this.write(first, n, rng.next() < (o.fuaChance ?? 0.05));
      }
    };
    await Promise.all(Array.from({ length: o.depth }, worker));
    if (this.hookError !== undefined) throw this.hookError;
  }

  /**
   * After a crash and recovery: read the whole area and check every sector
   * against the model. `mode` "acked": a killed process (every acknowledged
   * write must be there); "durable": a power cut (what a completed flush
   * covered must be there). Then the model adopts what it found.
   */
  async verifyAll(mode: "acked" | "durable", read?: (offsetBytes: number, lengthBytes: number) => Promise<Buffer>): Promise<Violation[]> {
    const out: Violation[] = [];
    const chunk = 256;
    for (let first = 0; first < this.sectors; first += chunk) {
      const count = Math.min(chunk, this.sectors - first);
      let data: Buffer;
      if (read) data = await read(this.areaStartBytes + first * SECTOR, count * SECTOR);
      else {
        const reply = await this.client.request({ type: NBD_CMD_READ, offsetBytes: this.areaStartBytes + first * SECTOR, lengthBytes: count * SECTOR });
        if (reply.error !== 0 || !reply.data) throw new Error(`read at sector ${first} failed with NBD error ${reply.error}`);
        data = reply.data;
      }
      for (let i = 0; i < count; i++) {
        const s = first + i;
        const t = this.decode(data.subarray(i * SECTOR, (i + 1) * SECTOR), this.lvSector(s));
        const v = this.judge(s, t, mode);
        if (v) out.push(v);
      }
    }
    return out;
  }

  /** Is token `t` (found in area sector s) acceptable? */
  judge(s: number, t: number | "garbage", mode: "acked" | "durable"): Violation | undefined {
    return this.judgeWith(s, t, mode === "acked" ? this.acked[s]! : this.durable[s]!);
  }

  /** Is token `t` acceptable where `required` must be (or a later write to that sector)? */
  judgeWith(s: number, t: number | "garbage", required: number): Violation | undefined {
    if (t !== "garbage") {
      if (t === required) return undefined;
      if (t > required && this.wrote(t, s)) return undefined;
      if (t === this.inflight[s] && t !== 0) return undefined;
    }
    return { sector: s, expected: required, found: t };
  }

  /** After verification: what the device holds now is what later checks build on. */
  adopt(found: (s: number) => number): void {
    for (let s = 0; s < this.sectors; s++) {
      const t = found(s);
      this.acked[s] = t;
      this.durable[s] = t;
      this.inflight[s] = 0;
    }
  }
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

export function describeViolations(v: readonly Violation[], max = 8): string {
  return v
    .slice(0, max)
    .map((x) => `sector ${x.sector}: expected token ${x.expected} (or later), found ${x.found}`)
    .join("; ") + (v.length > max ? `; ... ${v.length} in all` : "");
}
