/**
 * Hostile input: random bytes and random request headers after a valid
 * handshake must never crash the server, never write outside the export,
 * and never leak buffers; a well-behaved client is served afterwards.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryBlockDevice } from "../../../src/blockdev/memory-block-device.js";
import { ServerParser } from "../../../src/nbd/codec.js";
import { encodeRequest } from "../../../src/nbd/client-codec.js";
import { NBD_CMD_READ, NBD_CMD_WRITE } from "../../../src/nbd/protocol.js";
import { RawNbdClient } from "./raw-client.js";
import { pattern, startServer, waitFor } from "./nbd-fixture.js";

const SIZE = 1 << 20;

/**
 * Seeded generator (xorshift32), so a failure reproduces: the seed is in the
 * assertion message. No dependency: these tests also run from a build
 * directory outside the repository (no node_modules there).
 */
class Rng {
  private x: number;
  constructor(readonly seed: number) {
    this.x = seed >>> 0 || 1;
  }
  u32(): number {
    this.x ^= this.x << 13;
    this.x >>>= 0;
    this.x ^= this.x >>> 17;
    this.x ^= this.x << 5;
    this.x >>>= 0;
    return this.x;
  }
  int(maxInclusive: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * (maxInclusive + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length - 1)] as T;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

interface HostileRequest {
  readonly type: number;
  readonly flags: number;
  readonly offsetBytes: bigint;
  readonly lengthBytes: number;
  /** How much of a WRITE payload actually gets sent. */
  readonly payloadFraction: number;
  readonly garbageBefore: Buffer;
}

function hostileRequest(r: Rng): HostileRequest {
  return {
    type: r.int(3) === 0 ? r.int(0xffff) : r.int(8),
    flags: r.pick([0, 0, r.int(0x3f), r.int(0xffff)]),
    offsetBytes: r.int(1) === 0 ? BigInt(r.int(SIZE)) : (BigInt(r.u32()) << 32n) | BigInt(r.u32()),
    lengthBytes: r.int(4) === 0 ? r.pick([32 << 20, (32 << 20) + 1, (64 << 20) + 1, 0xffffffff]) : r.int(70_000),
    payloadFraction: r.pick([0, 0.5, 1, 1, r.u32() / 0x1_0000_0000]),
    garbageBefore: r.int(5) === 0 ? r.bytes(r.int(40)) : Buffer.alloc(0),
  };
}

test("ServerParser never throws on random input, whatever the split", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const r = new Rng(seed);
    const bytes = r.bytes(r.int(2000));
    const p = new ServerParser({
      onClientFlags: () => {},
      onOption: (o) => {
        if (o.code % 2 === 0) p.enterTransmission();
      },
      onWriteHeader: (req) => (req.lengthBytes > 65536 ? "discard" : Buffer.alloc(req.lengthBytes)),
      onRequest: () => {},
      onProtocolError: () => {},
    });
    let at = 0;
    assert.doesNotThrow(() => {
      while (at < bytes.length) {
        const n = 1 + r.int(63);
        p.push(bytes.subarray(at, at + n));
        at += n;
      }
    }, `seed ${seed}`);
  }
});

test("random request headers and truncated payloads never crash the server, leak buffers or touch bytes outside writes", async (t) => {
  const content = pattern(SIZE, 41);
  const mem = new MemoryBlockDevice("mem", Buffer.from(content));
  const fx = await startServer(t, [{ name: "", device: mem }], { limits: { handshakeTimeoutMs: 2000 } });
  for (let seed = 1; seed <= 60; seed++) {
    const r = new Rng(seed);
    const structured = r.int(1) === 1;
    const { client } = await RawNbdClient.ready(fx.socketPath, { structured, meta: structured });
    const count = 1 + r.int(11);
    for (let i = 0; i < count; i++) {
      const q = hostileRequest(r);
      if (q.garbageBefore.length > 0) client.send(q.garbageBefore);
      const full = q.type === NBD_CMD_WRITE ? Math.min(q.lengthBytes, 70_000) : 0;
      const sent = Math.floor(full * q.payloadFraction);
      client.send(encodeRequest({ type: q.type, flags: q.flags, cookie: BigInt(i), offsetBytes: q.offsetBytes, lengthBytes: q.lengthBytes }, Buffer.alloc(sent, 0xee)));
    }
    await client.closesWithin(20); // let the server chew on it (or hang up)
    client.destroy();
    await client.closed;
  }
  await waitFor(() => fx.server.stats().connectionCount === 0, "every connection to close");
  assert.equal(fx.server.stats().globalInFlightBytes, 0, "no buffer leaked");
  // Writes with payload 0xee may have landed inside the export; nothing else may differ.
  const now = Buffer.from(mem.bytes);
  for (let i = 0; i < SIZE; i++) {
    if (now[i] !== content[i] && now[i] !== 0xee && now[i] !== 0) assert.fail(`byte ${i} changed to ${now[i]}`);
  }
  const { client } = await RawNbdClient.ready(fx.socketPath);
  t.after(() => client.destroy());
  const r = await client.request({ type: NBD_CMD_READ, offsetBytes: 0, lengthBytes: 4096 });
  assert.equal(r.error, 0);
});
