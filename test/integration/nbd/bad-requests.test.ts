/**
 * Raw-socket tests for every row of nbd-protocol.md §7.2 ("ours" column):
 * the exact NBD error or disconnect, that the connection keeps working after
 * an error reply, and that no byte outside (or inside) a rejected range
 * changes.
 */
import { test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { MemoryBlockDevice } from "../../../src/blockdev/memory-block-device.js";
import { FaultBlockDevice } from "../../../src/blockdev/fault-block-device.js";
import type { BlockDevice } from "../../../src/blockdev/block-device.js";
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_EIO,
  NBD_ENOSPC,
  NBD_ENOTSUP,
  NBD_EPERM,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
} from "../../../src/nbd/protocol.js";
import { encodeRequest } from "../../../src/nbd/client-codec.js";
import { RawNbdClient } from "./raw-client.js";
import type { Reply } from "./raw-client.js";
import { pattern, startServer, waitFor } from "./nbd-fixture.js";

const SIZE = 1 << 20;

interface Setup {
  readonly mem: MemoryBlockDevice;
  readonly expected: Buffer;
  readonly socketPath: string;
  readonly server: Awaited<ReturnType<typeof startServer>>["server"];
}

async function setup(t: TestContext, opts: { readOnly?: boolean; wrap?: (d: MemoryBlockDevice) => BlockDevice } = {}): Promise<Setup> {
  const content = pattern(SIZE, 3);
  const mem = new MemoryBlockDevice("mem", Buffer.from(content));
  const device = opts.wrap?.(mem) ?? mem;
  const fx = await startServer(t, [{ name: "", device, readOnly: opts.readOnly ?? false }]);
  return { mem, expected: Buffer.from(content), socketPath: fx.socketPath, server: fx.server };
}

async function session(t: TestContext, s: Setup, structured = false, meta = false): Promise<RawNbdClient> {
  const { client } = await RawNbdClient.ready(s.socketPath, { structured, meta });
  t.after(() => client.destroy());
  return client;
}

function unchanged(s: Setup): void {
  assert.ok(Buffer.compare(Buffer.from(s.mem.bytes), s.expected) === 0, "device content changed");
}

async function stillWorks(c: RawNbdClient, s: Setup): Promise<void> {
  const r = await c.request({ type: NBD_CMD_READ, offsetBytes: 4096, lengthBytes: 512 });
  assert.equal(r.error, 0);
  assert.deepEqual(r.data, s.expected.subarray(4096, 4608));
}

function structuredError(r: Reply): number {
  assert.equal(r.structured, true, "structured reply expected");
  assert.equal(r.chunks.length, 1);
  const c = r.chunks[0];
  assert.ok(c !== undefined && c.chunkType === NBD_REPLY_TYPE_ERROR);
  const msgLen = c.payload.readUInt16BE(4);
  assert.ok(msgLen > 0, "error chunks carry a message");
  return c.payload.readUInt32BE(0);
}

test("bad request magic: hard close, no reply", async (t) => {
  const s = await setup(t);
  const c = await session(t, s);
  const bad = encodeRequest({ type: NBD_CMD_READ, cookie: 1n, offsetBytes: 0, lengthBytes: 512 });
  bad.writeUInt32BE(0xdeadbeef, 0);
  c.send(bad);
  assert.equal(await c.closesWithin(2000), true);
  assert.equal(c.unexpected.length, 0);
});

test("unknown command: EINVAL, no payload assumed, connection keeps working", async (t) => {
  const s = await setup(t);
  for (const structured of [false, true]) {
    const c = await session(t, s, structured);
    const r = await c.request({ type: 42, offsetBytes: 0, lengthBytes: 4096 });
    assert.equal(structured ? structuredError(r) : r.error, NBD_EINVAL);
    await stillWorks(c, s);
  }
});

test("unknown flags and flags on the wrong command: EINVAL; a WRITE's payload is drained and not written", async (t) => {
  const s = await setup(t);
  const c = await session(t, s);
  assert.equal((await c.request({ type: NBD_CMD_READ, flags: 0x8000, offsetBytes: 0, lengthBytes: 512 })).error, NBD_EINVAL);
  assert.equal((await c.request({ type: NBD_CMD_READ, flags: NBD_CMD_FLAG_NO_HOLE, offsetBytes: 0, lengthBytes: 512 })).error, NBD_EINVAL);
  assert.equal((await c.request({ type: NBD_CMD_WRITE, flags: NBD_CMD_FLAG_FAST_ZERO, offsetBytes: 0, lengthBytes: 8192 }, Buffer.alloc(8192, 0x55))).error, NBD_EINVAL);
  assert.equal((await c.request({ type: NBD_CMD_WRITE, flags: 0x40, offsetBytes: 0, lengthBytes: 100_000 }, Buffer.alloc(100_000, 0x55))).error, NBD_EINVAL);
  unchanged(s);
  await stillWorks(c, s);
});

test("features not advertised: DF and BLOCK_STATUS without structured replies, BLOCK_STATUS without a context, TRIM without discard", async (t) => {
  const s = await setup(t, { wrap: (m) => new FaultBlockDevice(m) }); // FaultBlockDevice has no discard()
  const plain = await session(t, s);
  assert.equal((await plain.request({ type: NBD_CMD_READ, flags: NBD_CMD_FLAG_DF, offsetBytes: 0, lengthBytes: 512 })).error, NBD_EINVAL);
  assert.equal((await plain.request({ type: NBD_CMD_BLOCK_STATUS, offsetBytes: 0, lengthBytes: 512 })).error, NBD_EINVAL);
  assert.equal((await plain.request({ type: NBD_CMD_TRIM, offsetBytes: 0, lengthBytes: 512 })).error, NBD_EINVAL);
  const sr = await session(t, s, true);
  assert.equal(structuredError(await sr.request({ type: NBD_CMD_BLOCK_STATUS, offsetBytes: 0, lengthBytes: 512 })), NBD_EINVAL);
  const df = await sr.request({ type: NBD_CMD_READ, flags: NBD_CMD_FLAG_DF, offsetBytes: 0, lengthBytes: 512 });
  assert.equal(df.error, 0, "DF is fine once structured replies are on");
  assert.deepEqual(df.data, s.expected.subarray(0, 512));
  unchanged(s);
});

test("past the end: READ/TRIM/CACHE/BLOCK_STATUS EINVAL, WRITE/WRITE_ZEROES ENOSPC (payload drained), incl. u64 wrap", async (t) => {
  const s = await setup(t);
  for (const structured of [false, true]) {
    const c = await session(t, s, structured, structured);
    const err = (r: Reply): number => (structured ? structuredError(r) : r.error);
    for (const [offsetBytes, lengthBytes] of [
      [SIZE - 512, 1024],
      [SIZE + 4096, 512],
      [2n ** 64n - 512n, 1024],
      [2n ** 63n, 1],
    ] as const) {
      assert.equal(err(await c.request({ type: NBD_CMD_READ, offsetBytes, lengthBytes })), NBD_EINVAL);
      assert.equal(err(await c.request({ type: NBD_CMD_TRIM, offsetBytes, lengthBytes })), NBD_EINVAL);
      assert.equal(err(await c.request({ type: NBD_CMD_CACHE, offsetBytes, lengthBytes })), NBD_EINVAL);
      if (structured) assert.equal(err(await c.request({ type: NBD_CMD_BLOCK_STATUS, offsetBytes, lengthBytes })), NBD_EINVAL);
      assert.equal(err(await c.request({ type: NBD_CMD_WRITE, offsetBytes, lengthBytes }, Buffer.alloc(lengthBytes, 0x77))), NBD_ENOSPC);
      assert.equal(err(await c.request({ type: NBD_CMD_WRITE_ZEROES, offsetBytes, lengthBytes })), NBD_ENOSPC);
    }
    unchanged(s); // not even the in-range part of a crossing write was written
    await stillWorks(c, s);
  }
});

test("read-only export: WRITE/TRIM/WRITE_ZEROES get EPERM (payload drained), FUA is not advertised", async (t) => {
  const s = await setup(t, { readOnly: true });
  const c = await session(t, s);
  assert.equal((await c.request({ type: NBD_CMD_WRITE, offsetBytes: 0, lengthBytes: 65536 }, Buffer.alloc(65536, 1))).error, NBD_EPERM);
  assert.equal((await c.request({ type: NBD_CMD_WRITE, offsetBytes: SIZE, lengthBytes: 512 }, Buffer.alloc(512, 1))).error, NBD_EPERM);
  assert.equal((await c.request({ type: NBD_CMD_TRIM, offsetBytes: 0, lengthBytes: 512 })).error, NBD_EPERM);
  assert.equal((await c.request({ type: NBD_CMD_WRITE_ZEROES, offsetBytes: 0, lengthBytes: 512 })).error, NBD_EPERM);
  assert.equal((await c.request({ type: NBD_CMD_READ, flags: NBD_CMD_FLAG_FUA, offsetBytes: 0, lengthBytes: 512 })).error, NBD_EINVAL);
  assert.equal((await c.request({ type: NBD_CMD_FLUSH, offsetBytes: 0, lengthBytes: 0 })).error, 0);
  unchanged(s);
  await stillWorks(c, s);
});

test("zero-length READ/WRITE/TRIM/WRITE_ZEROES/CACHE succeed without I/O; structured zero READ is a NONE chunk", async (t) => {
  const s = await setup(t);
  const c = await session(t, s);
  for (const type of [NBD_CMD_READ, NBD_CMD_WRITE, NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES, NBD_CMD_CACHE]) {
    const r = await c.request({ type, offsetBytes: 12345, lengthBytes: 0 });
    assert.equal(r.error, 0, `type ${type}`);
    assert.equal(r.data, null);
  }
  const sr = await session(t, s, true);
  const r = await sr.request({ type: NBD_CMD_READ, offsetBytes: SIZE, lengthBytes: 0 });
  assert.equal(r.error, 0);
  assert.deepEqual(r.chunks.map((x) => x.chunkType), [NBD_REPLY_TYPE_NONE]);
  unchanged(s);
});

test("READ over 32 MiB: EINVAL; WRITE of 32 MiB + 4 KiB: EINVAL after draining; WRITE over 64 MiB: hard close", async (t) => {
  const s = await setup(t);
  const c = await session(t, s);
  assert.equal((await c.request({ type: NBD_CMD_READ, offsetBytes: 0, lengthBytes: (32 << 20) + 1 })).error, NBD_EINVAL);
  const big = (32 << 20) + 4096;
  assert.equal((await c.request({ type: NBD_CMD_WRITE, offsetBytes: 0, lengthBytes: big }, Buffer.alloc(big, 0x33))).error, NBD_EINVAL);
  unchanged(s);
  await stillWorks(c, s);
  // Only the header of an absurd WRITE: the server must not wait for 64 MiB to hang up.
  c.send(encodeRequest({ type: NBD_CMD_WRITE, cookie: 999n, offsetBytes: 0, lengthBytes: (64 << 20) + 1 }));
  assert.equal(await c.closesWithin(2000), true);
  unchanged(s);
});

test("FLUSH with non-zero offset/length is accepted (reserved fields ignored)", async (t) => {
  const s = await setup(t);
  const c = await session(t, s);
  assert.equal((await c.request({ type: NBD_CMD_FLUSH, offsetBytes: 4096, lengthBytes: 512 })).error, 0);
});

test("WRITE_ZEROES: FAST_ZERO gets ENOTSUP and writes nothing; NO_HOLE and FUA zero exactly the range", async (t) => {
  const s = await setup(t);
  const c = await session(t, s);
  assert.equal((await c.request({ type: NBD_CMD_WRITE_ZEROES, flags: NBD_CMD_FLAG_FAST_ZERO, offsetBytes: 0, lengthBytes: 4096 })).error, NBD_ENOTSUP);
  unchanged(s);
  const r = await c.request({ type: NBD_CMD_WRITE_ZEROES, flags: NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FUA, offsetBytes: 1001, lengthBytes: 3000 });
  assert.equal(r.error, 0);
  s.expected.fill(0, 1001, 4001);
  unchanged(s);
});

test("backing-device errors become their NBD errors; structured ones carry a message; the connection survives", async (t) => {
  let fault: FaultBlockDevice | null = null;
  const s = await setup(t, { wrap: (m) => (fault = new FaultBlockDevice(m)) });
  assert.ok(fault !== null);
  const f = fault as FaultBlockDevice;
  f.failRange(65536, 4096, ["read"], "EIO");
  f.failRange(131072, 4096, ["write"], "ENOSPC");
  f.failRange(196608, 4096, ["read"], "EWEIRD");
  const c = await session(t, s);
  assert.equal((await c.request({ type: NBD_CMD_READ, offsetBytes: 65536, lengthBytes: 512 })).error, NBD_EIO);
  assert.equal((await c.request({ type: NBD_CMD_WRITE, offsetBytes: 131072, lengthBytes: 512 }, Buffer.alloc(512))).error, NBD_ENOSPC);
  assert.equal((await c.request({ type: NBD_CMD_READ, offsetBytes: 196608, lengthBytes: 512 })).error, NBD_EIO, "unknown errno → EIO");
  const sr = await session(t, s, true);
  assert.equal(structuredError(await sr.request({ type: NBD_CMD_READ, offsetBytes: 65536, lengthBytes: 512 })), NBD_EIO);
  await stillWorks(c, s);
  await stillWorks(sr, s);
  unchanged(s);
});

test("structured READ is one OFFSET_DATA chunk with DONE; BLOCK_STATUS reports allocated data", async (t) => {
  const s = await setup(t);
  const c = await session(t, s, true, true);
  const r = await c.request({ type: NBD_CMD_READ, offsetBytes: 777, lengthBytes: 70000 });
  assert.deepEqual(r.chunks.map((x) => [x.chunkType, x.flags]), [[NBD_REPLY_TYPE_OFFSET_DATA, 1]]);
  assert.equal(r.chunks[0]?.payload.readBigUInt64BE(0), 777n);
  assert.deepEqual(r.data, s.expected.subarray(777, 70777));
  const bs = await c.request({ type: NBD_CMD_BLOCK_STATUS, offsetBytes: 0, lengthBytes: 65536 });
  assert.equal(bs.chunks.length, 1);
  const chunk = bs.chunks[0];
  assert.ok(chunk !== undefined && chunk.chunkType === NBD_REPLY_TYPE_BLOCK_STATUS);
  assert.deepEqual([chunk.payload.readUInt32BE(4), chunk.payload.readUInt32BE(8)], [65536, 0]);
});

test("client closing mid-payload: the request is dropped, nothing is written, buffers are released", async (t) => {
  const s = await setup(t);
  const c = await session(t, s);
  const full = encodeRequest({ type: NBD_CMD_WRITE, cookie: 1n, offsetBytes: 0, lengthBytes: 1 << 19 }, Buffer.alloc(1 << 19, 0x99));
  c.send(full.subarray(0, 100_000));
  await waitFor(() => s.server.stats().globalInFlightBytes > 0, "the server to start receiving the payload");
  c.destroy();
  await waitFor(() => s.server.stats().connectionCount === 0, "the server to notice the close");
  unchanged(s);
  assert.equal(s.server.stats().globalInFlightBytes, 0);
  const c2 = await session(t, s);
  await stillWorks(c2, s);
});

test("a device that shrank under a connected client: requests past its new end are refused, not passed down", async (t) => {
  const mem = new MemoryBlockDevice("mem", pattern(SIZE, 4));
  let sizeBytes = SIZE;
  const shrinking: BlockDevice = {
    name: "shrinking",
    caps: mem.caps,
    get sizeBytes() {
      return sizeBytes;
    },
    read: (o, into) => mem.read(o, into),
    write: (o, d, opts) => mem.write(o, d, opts),
    flush: () => mem.flush(),
    close: () => mem.close(),
  };
  const fx = await startServer(t, [{ name: "", device: shrinking }]);
  const { client, go } = await RawNbdClient.ready(fx.socketPath);
  t.after(() => client.destroy());
  assert.equal(go.sizeBytes, BigInt(SIZE));
  sizeBytes = SIZE / 2;
  assert.equal((await client.request({ type: NBD_CMD_READ, offsetBytes: SIZE / 2, lengthBytes: 512 })).error, NBD_EINVAL);
  assert.equal((await client.request({ type: NBD_CMD_WRITE, offsetBytes: SIZE / 2 - 1, lengthBytes: 2 }, Buffer.alloc(2))).error, NBD_ENOSPC);
  assert.equal((await client.request({ type: NBD_CMD_READ, offsetBytes: SIZE / 2 - 512, lengthBytes: 512 })).error, 0);
});
