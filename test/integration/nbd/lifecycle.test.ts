/**
 * Export registry, listeners, graceful shutdown, durability ordering across
 * connections, out-of-order replies and backpressure.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { MemoryBlockDevice } from "../../../src/blockdev/memory-block-device.js";
import { FaultBlockDevice, IoRecorder } from "../../../src/blockdev/fault-block-device.js";
import type { BlockDevice, BlockDeviceCaps, WriteOptions } from "../../../src/blockdev/block-device.js";
import { BusyError, IoError, NotFoundError } from "../../../src/errors/errors.js";
import { NbdServer } from "../../../src/nbd/server.js";
import {
  NBD_CMD_DISC,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_WRITE,
  NBD_ESHUTDOWN,
} from "../../../src/nbd/protocol.js";
import { encodeRequest } from "../../../src/nbd/client-codec.js";
import { RawNbdClient } from "./raw-client.js";
import { pattern, startServer, tempDir, waitFor } from "./nbd-fixture.js";

const SIZE = 1 << 20;

/** Reads at offsets in `slowOffsets` wait until release() is called. */
class GatedDevice implements BlockDevice {
  readonly caps: BlockDeviceCaps = { write: true, flush: true, fua: true, trim: false };
  private waiting: Array<() => void> = [];
  constructor(
    readonly inner: MemoryBlockDevice,
    readonly slowOffsets: Set<number>,
  ) {}
  get name(): string {
    return "gated";
  }
  get sizeBytes(): number {
    return this.inner.sizeBytes;
  }
  get heldCount(): number {
    return this.waiting.length;
  }
  release(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const f of w) f();
  }
  async read(offsetBytes: number, into: Uint8Array): Promise<void> {
    if (this.slowOffsets.has(offsetBytes)) await new Promise<void>((r) => this.waiting.push(r));
    return this.inner.read(offsetBytes, into);
  }
  write(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    return this.inner.write(offsetBytes, data, opts);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

test("listenUnix: mode 0600, a stale socket is replaced, a live one or a non-socket refused, long paths refused", async (t) => {
  const dir = tempDir(t);
  const sock = path.join(dir, "nbd.sock");
  // a stale socket: bound, then the listener went away without unlinking
  const stale = net.createServer();
  await new Promise<void>((r) => stale.listen(sock, r));
  fs.renameSync(sock, sock + ".keep"); // keep the inode from being unlinked by close()
  await new Promise<void>((r) => stale.close(() => r()));
  fs.renameSync(sock + ".keep", sock);

  const server = new NbdServer();
  t.after(() => server.close());
  server.addExport({ name: "", device: new MemoryBlockDevice("m", 4096) });
  await server.listenUnix(sock);
  assert.equal(fs.statSync(sock).mode & 0o777, 0o600);
  const { client } = await RawNbdClient.ready(sock);
  client.destroy();

  const other = new NbdServer();
  await assert.rejects(other.listenUnix(sock), (e: unknown) => e instanceof IoError && e.errno === "EADDRINUSE");
  const plain = path.join(dir, "file");
  fs.writeFileSync(plain, "x");
  await assert.rejects(other.listenUnix(plain), (e: unknown) => e instanceof IoError && e.errno === "EEXIST");
  assert.equal(fs.readFileSync(plain, "utf8"), "x");
  await assert.rejects(other.listenUnix(path.join(dir, "x".repeat(120))), (e: unknown) => e instanceof IoError && e.errno === "ENAMETOOLONG");
  await other.close();
});

test("listenTcp binds loopback by default and serves", async (t) => {
  const server = new NbdServer();
  t.after(() => server.close());
  server.addExport({ name: "vg/lv", device: new MemoryBlockDevice("m", pattern(4096)) });
  const addr = await server.listenTcp({ port: 0 });
  assert.equal(addr.address, "127.0.0.1");
  const s = net.createConnection(addr.port, "127.0.0.1");
  const greeting = await new Promise<Buffer>((resolve) => s.once("data", resolve));
  assert.equal(greeting.subarray(0, 8).toString(), "NBDMAGIC");
  s.destroy();
});

test("export registry: duplicates refused, unknown removal refused, openCount follows clients", async (t) => {
  const fx = await startServer(t, [{ name: "vg/a", device: new MemoryBlockDevice("a", SIZE) }]);
  const { server } = fx;
  assert.throws(() => server.addExport({ name: "vg/a", device: new MemoryBlockDevice("a2", SIZE) }), BusyError);
  await assert.rejects(server.removeExport("vg/none"), NotFoundError);
  server.addExport({ name: "vg/b", device: new MemoryBlockDevice("b", SIZE) });
  assert.deepEqual(server.exportNames().sort(), ["vg/a", "vg/b"]);
  assert.equal(server.openCount("vg/a"), 0);

  const handshaking = await RawNbdClient.open(fx.socketPath);
  t.after(() => handshaking.destroy());
  const c1 = (await RawNbdClient.ready(fx.socketPath, { exportName: "vg/a" })).client;
  const c2 = (await RawNbdClient.ready(fx.socketPath, { exportName: "vg/a" })).client;
  assert.equal(server.openCount("vg/a"), 2, "only clients past GO count");
  assert.equal(server.isOpen("vg/b"), false);
  c1.destroy();
  await waitFor(() => server.openCount("vg/a") === 1, "openCount to drop");
  c2.send(Buffer.from([0x25, 0x60, 0x95, 0x13, 0, 0, 0, NBD_CMD_DISC, ...new Array(20).fill(0)]));
  assert.equal(await c2.closesWithin(2000), true, "DISC closes");
  await waitFor(() => server.openCount("vg/a") === 0, "openCount to reach 0");
  await server.removeExport("vg/b");
  assert.deepEqual(server.exportNames(), ["vg/a"]);
});

test("removeExport refuses while open, or disconnects cleanly: in-flight requests finish, new ones get ESHUTDOWN", async (t) => {
  const gated = new GatedDevice(new MemoryBlockDevice("m", pattern(SIZE, 5)), new Set([8192]));
  const fx = await startServer(t, [{ name: "vg/lv", device: gated }]);
  const { server } = fx;
  const { client } = await RawNbdClient.ready(fx.socketPath, { exportName: "vg/lv" });
  t.after(() => client.destroy());
  await assert.rejects(server.removeExport("vg/lv"), (e: unknown) => e instanceof BusyError && e.details["openCount"] === 1);
  assert.equal(server.hasExport("vg/lv"), true);

  const slow = client.request({ type: NBD_CMD_READ, offsetBytes: 8192, lengthBytes: 4096 });
  await waitFor(() => gated.heldCount === 1, "the read to reach the device");
  const removing = server.removeExport("vg/lv", { disconnect: true });
  assert.equal(server.hasExport("vg/lv"), false, "no new client can open it");
  const late = await client.request({ type: NBD_CMD_READ, offsetBytes: 0, lengthBytes: 512 });
  assert.equal(late.error, NBD_ESHUTDOWN);
  gated.release();
  const r = await slow;
  assert.equal(r.error, 0, "the request in flight finished");
  assert.deepEqual(r.data, pattern(SIZE, 5).subarray(8192, 12288));
  await removing;
  assert.equal(await client.closesWithin(2000), true);
});

test("close(): in-flight requests finish, new ones get ESHUTDOWN, the socket file goes away", async (t) => {
  const gated = new GatedDevice(new MemoryBlockDevice("m", pattern(SIZE, 6)), new Set([0]));
  const fx = await startServer(t, [{ name: "", device: gated }]);
  const { client } = await RawNbdClient.ready(fx.socketPath, { structured: true });
  const idle = (await RawNbdClient.ready(fx.socketPath)).client;
  const handshaking = await RawNbdClient.open(fx.socketPath);
  const slow = client.request({ type: NBD_CMD_READ, offsetBytes: 0, lengthBytes: 4096 });
  await waitFor(() => gated.heldCount === 1, "the read to reach the device");
  const closing = fx.server.close();
  assert.equal(await idle.closesWithin(2000), true, "an idle connection closes at once");
  assert.equal(await handshaking.closesWithin(2000), true);
  const late = await client.request({ type: NBD_CMD_WRITE, offsetBytes: 0, lengthBytes: 512 }, Buffer.alloc(512));
  assert.equal(late.error, NBD_ESHUTDOWN);
  gated.release();
  assert.equal((await slow).error, 0);
  await closing;
  assert.equal(await client.closesWithin(2000), true);
  assert.equal(fs.existsSync(fx.socketPath), false);
  assert.deepEqual(Buffer.from(gated.inner.bytes.subarray(0, 512)), pattern(SIZE, 6).subarray(0, 512), "the late write was not done");
});

test("close() destroys connections still busy after its timeout", async (t) => {
  const gated = new GatedDevice(new MemoryBlockDevice("m", SIZE), new Set([0]));
  const fx = await startServer(t, [{ name: "", device: gated }]);
  const { client } = await RawNbdClient.ready(fx.socketPath);
  void client.request({ type: NBD_CMD_READ, offsetBytes: 0, lengthBytes: 512 }).catch(() => {});
  await waitFor(() => gated.heldCount === 1, "the read to reach the device");
  await fx.server.close({ timeoutMs: 50 });
  assert.equal(await client.closesWithin(2000), true);
  gated.release();
});

test("FLUSH on one connection covers writes completed on another (multi-conn); FUA reaches the device", async (t) => {
  const recorder = new IoRecorder();
  const dev = new FaultBlockDevice(new MemoryBlockDevice("m", SIZE));
  dev.startRecording(recorder);
  const fx = await startServer(t, [{ name: "", device: dev }]);
  const a = (await RawNbdClient.ready(fx.socketPath)).client;
  const b = (await RawNbdClient.ready(fx.socketPath)).client;
  t.after(() => (a.destroy(), b.destroy()));
  const go = await RawNbdClient.ready(fx.socketPath);
  go.client.destroy();
  assert.ok((go.go.transmissionFlags & 0x100) !== 0, "CAN_MULTI_CONN");
  assert.equal((await a.request({ type: NBD_CMD_WRITE, offsetBytes: 4096, lengthBytes: 4096 }, pattern(4096, 9))).error, 0);
  assert.equal((await b.request({ type: NBD_CMD_FLUSH, offsetBytes: 0, lengthBytes: 0 })).error, 0);
  const write = recorder.records.find((r) => r.op === "write");
  const flush = recorder.records.find((r) => r.op === "flush");
  assert.ok(write !== undefined && flush !== undefined);
  assert.ok(flush.startSeq >= write.seq, "the flush was issued after the acknowledged write completed");
  assert.equal((await a.request({ type: NBD_CMD_WRITE, flags: NBD_CMD_FLAG_FUA, offsetBytes: 0, lengthBytes: 512 }, pattern(512, 10))).error, 0);
  const last = recorder.records[recorder.records.length - 1];
  assert.ok(last !== undefined && last.op === "write" && last.fua, "FUA passed down with the write");
});

test("replies come back out of order; many requests in flight on one connection", async (t) => {
  const mem = new MemoryBlockDevice("m", pattern(SIZE, 7));
  const gated = new GatedDevice(mem, new Set([0]));
  const fx = await startServer(t, [{ name: "", device: gated }]);
  const { client } = await RawNbdClient.ready(fx.socketPath, { structured: true });
  t.after(() => client.destroy());
  const order: number[] = [];
  const slow = client.request({ type: NBD_CMD_READ, offsetBytes: 0, lengthBytes: 4096 }).then((r) => (order.push(0), r));
  const fast: Array<Promise<unknown>> = [];
  for (let i = 1; i <= 64; i++) {
    const off = i * 8192;
    fast.push(client.request({ type: NBD_CMD_WRITE, offsetBytes: off, lengthBytes: 4096 }, pattern(4096, i)).then(() => order.push(i)));
  }
  await Promise.all(fast);
  assert.equal(order.includes(0), false, "the held read has not been answered yet");
  gated.release();
  assert.deepEqual((await slow).data, pattern(SIZE, 7).subarray(0, 4096));
  for (let i = 1; i <= 64; i++) {
    const r = await client.request({ type: NBD_CMD_READ, offsetBytes: i * 8192, lengthBytes: 4096 });
    assert.deepEqual(r.data, pattern(4096, i));
  }
});

test("a client that does not read its replies is paused: server memory stays bounded, nothing is lost", async (t) => {
  const maxInFlightBytes = 4 << 20;
  const fx = await startServer(t, [{ name: "", device: new MemoryBlockDevice("m", pattern(4 << 20, 8)) }], { limits: { maxInFlightBytes } });
  const { client } = await RawNbdClient.ready(fx.socketPath);
  t.after(() => client.destroy());
  client.socket.pause(); // stop reading replies
  const count = 150; // 150 MiB of reads requested
  const cookies: bigint[] = [];
  for (let i = 0; i < count; i++) cookies.push(client.sendRequest({ type: NBD_CMD_READ, offsetBytes: (i % 4) << 20, lengthBytes: 1 << 20 }));
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, fx.server.stats().globalInFlightBytes)), 2);
  t.after(() => clearInterval(sampler));
  await waitFor(() => fx.server.stats().globalInFlightBytes >= maxInFlightBytes, "the server to fill its window");
  // give a hostile client every chance to push the server further
  await new Promise((r) => setTimeout(r, 100));
  peak = Math.max(peak, fx.server.stats().globalInFlightBytes);
  assert.ok(peak <= maxInFlightBytes + (1 << 20), `server held ${peak} bytes`);
  // a second client is still served meanwhile
  const other = (await RawNbdClient.ready(fx.socketPath)).client;
  t.after(() => other.destroy());
  assert.equal((await other.request({ type: NBD_CMD_READ, offsetBytes: 0, lengthBytes: 512 })).error, 0);
  client.socket.resume();
  const replies = await Promise.all(cookies.map((c) => client.waitReply(c)));
  replies.forEach((r, i) => {
    assert.equal(r.error, 0);
    assert.equal(r.data?.length, 1 << 20);
    assert.equal(r.data?.[0], pattern(4 << 20, 8)[(i % 4) << 20]);
  });
  clearInterval(sampler);
  await waitFor(() => fx.server.stats().globalInFlightBytes === 0, "buffers to return");
});

for (const userBuffers of [true, false]) {
  test(`pipelined writes of mixed sizes land intact (${userBuffers ? "user-buffer" : "'data' event"} socket reads)`, async (t) => {
    const size = 16 << 20;
    const mem = new MemoryBlockDevice("m", size);
    const fx = await startServer(t, [{ name: "", device: mem }], { userBuffers });
    const { client } = await RawNbdClient.ready(fx.socketPath);
    t.after(() => client.destroy());
    const model = Buffer.alloc(size);
    const sizes = [1, 511, 4096, 65535, 65536, 65537, 200_000, 1 << 20, 3 << 20];
    const pending: Array<Promise<unknown>> = [];
    let off = 0;
    sizes.forEach((n, i) => {
      const data = pattern(n, 100 + i);
      data.copy(model, off);
      pending.push(client.request({ type: NBD_CMD_WRITE, offsetBytes: off, lengthBytes: n }, data));
      off += n + 3;
    });
    for (const r of await Promise.all(pending)) assert.equal((r as { error: number }).error, 0);
    assert.ok(Buffer.from(mem.bytes).equals(model));
    const r = await client.request({ type: NBD_CMD_READ, offsetBytes: 0, lengthBytes: off });
    assert.ok(r.data?.equals(model.subarray(0, off)));
  });
}

test("per-connection byte limit: WRITE payloads wait (socket paused) while the device holds earlier ones", async (t) => {
  const mem = new MemoryBlockDevice("m", 8 << 20);
  const dev = new FaultBlockDevice(mem);
  const limit = 1 << 20;
  const fx = await startServer(t, [{ name: "", device: dev }], { limits: { maxInFlightBytes: limit } });
  const { client } = await RawNbdClient.ready(fx.socketPath);
  t.after(() => client.destroy());
  dev.hold(["write"]);
  const replies: Array<Promise<unknown>> = [];
  for (let i = 0; i < 10; i++) replies.push(client.request({ type: NBD_CMD_WRITE, offsetBytes: i << 19, lengthBytes: 1 << 19 }, pattern(1 << 19, 200 + i)));
  await waitFor(() => dev.heldCount >= 2, "writes to reach the device");
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(fx.server.stats().globalInFlightBytes <= limit + (1 << 19), `held ${fx.server.stats().globalInFlightBytes} bytes`);
  assert.ok(dev.heldCount <= 3);
  dev.release();
  for (const r of await Promise.all(replies)) assert.equal((r as { error: number }).error, 0);
  for (let i = 0; i < 10; i++) assert.ok(Buffer.from(mem.bytes.subarray(i << 19, (i + 1) << 19)).equals(pattern(1 << 19, 200 + i)));
});

test("server-wide byte budget: a second client's WRITE waits for buffer space, then completes", async (t) => {
  const mem = new MemoryBlockDevice("m", 8 << 20);
  const fx = await startServer(t, [{ name: "", device: mem }], { maxGlobalInFlightBytes: 2 << 20 });
  const a = (await RawNbdClient.ready(fx.socketPath)).client;
  const b = (await RawNbdClient.ready(fx.socketPath)).client;
  t.after(() => (a.destroy(), b.destroy()));
  // A announces 2 MiB and sends only half: its payload buffer holds the whole budget.
  const aData = pattern(2 << 20, 31);
  const aWait = a.waitReply(77n);
  a.send(encodeRequest({ type: NBD_CMD_WRITE, cookie: 77n, offsetBytes: 0, lengthBytes: 2 << 20 }));
  a.send(aData.subarray(0, 1 << 20));
  await waitFor(() => fx.server.stats().globalInFlightBytes >= 2 << 20, "A to hold the budget");
  let bAnswered = false;
  const bData = pattern(1 << 20, 32);
  const bDone = b.request({ type: NBD_CMD_WRITE, offsetBytes: 4 << 20, lengthBytes: 1 << 20 }, bData).then((r) => ((bAnswered = true), r));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(bAnswered, false, "B waits while the budget is exhausted");
  assert.ok(fx.server.stats().globalInFlightBytes <= 2 << 20);
  a.send(aData.subarray(1 << 20));
  assert.equal((await aWait).error, 0);
  assert.equal((await bDone).error, 0);
  assert.ok(Buffer.from(mem.bytes.subarray(0, 2 << 20)).equals(aData));
  assert.ok(Buffer.from(mem.bytes.subarray(4 << 20, 5 << 20)).equals(bData));
  await waitFor(() => fx.server.stats().globalInFlightBytes === 0, "buffers to return");
});
