/**
 * Hostile input: random bytes and random request headers after a valid
 * handshake must never crash the server, never write outside the export,
 * and never leak buffers; a well-behaved client is served afterwards.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { MemoryBlockDevice } from "../../../src/blockdev/memory-block-device.js";
import { ServerParser } from "../../../src/nbd/codec.js";
import { encodeRequest } from "../../../src/nbd/client-codec.js";
import { NBD_CMD_READ, NBD_CMD_WRITE } from "../../../src/nbd/protocol.js";
import { RawNbdClient } from "./raw-client.js";
import { pattern, startServer, waitFor } from "./nbd-fixture.js";

const SIZE = 1 << 20;

const header = fc.record({
  type: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 0xffff })),
  flags: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0x3f }), fc.integer({ min: 0, max: 0xffff })),
  offsetBytes: fc.oneof(fc.bigInt({ min: 0n, max: BigInt(SIZE) }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
  lengthBytes: fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.constantFrom(32 << 20, (32 << 20) + 1, (64 << 20) + 1, 0xffffffff)),
  // how much of a WRITE payload to actually send
  payloadFraction: fc.double({ min: 0, max: 1, noNaN: true }),
  garbageBefore: fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 40 })),
});

test("ServerParser never throws on random input, whatever the split", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 50 }), (bytes, cuts) => {
      const p = new ServerParser({
        onClientFlags: () => {},
        onOption: (o) => {
          if (o.code % 2 === 0) p.enterTransmission();
        },
        onWriteHeader: (r) => (r.lengthBytes > 65536 ? "discard" : Buffer.alloc(r.lengthBytes)),
        onRequest: () => {},
        onProtocolError: () => {},
      });
      let at = 0;
      for (const c of cuts) {
        p.push(bytes.subarray(at, at + c));
        at += c;
      }
      p.push(bytes.subarray(at));
    }),
    { numRuns: 300 },
  );
});

test("random request headers and truncated payloads never crash the server, leak buffers or touch bytes outside writes", async (t) => {
  const content = pattern(SIZE, 41);
  const mem = new MemoryBlockDevice("mem", Buffer.from(content));
  const fx = await startServer(t, [{ name: "", device: mem }], { limits: { handshakeTimeoutMs: 2000 } });
  await fc.assert(
    fc.asyncProperty(fc.array(header, { minLength: 1, maxLength: 12 }), fc.boolean(), async (reqs, structured) => {
      const { client } = await RawNbdClient.ready(fx.socketPath, { structured, meta: structured });
      for (const r of reqs) {
        if (r.garbageBefore.length > 0) client.send(r.garbageBefore);
        const full = r.type === NBD_CMD_WRITE ? Math.min(r.lengthBytes, 70_000) : 0;
        const sent = Math.floor(full * r.payloadFraction);
        client.send(encodeRequest({ type: r.type, flags: r.flags, cookie: 1n, offsetBytes: r.offsetBytes, lengthBytes: r.lengthBytes }, Buffer.alloc(sent, 0xee)));
      }
      await client.closesWithin(20); // let the server chew on it (or hang up)
      client.destroy();
      await client.closed;
    }),
    { numRuns: 60 },
  );
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
