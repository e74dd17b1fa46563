/**
 * Option haggling over a raw socket (nbd-protocol.md §2, §7.2 handshake row).
 */
import { test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { MemoryBlockDevice } from "../../../src/blockdev/memory-block-device.js";
import {
  encodeClientFlags,
  encodeInfoRequest,
  encodeMetaContextRequest,
  encodeOption,
} from "../../../src/nbd/client-codec.js";
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_READ,
  NBD_EINVAL,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_EXTENDED_HEADERS,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_TOO_BIG,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
} from "../../../src/nbd/protocol.js";
import { RawNbdClient } from "./raw-client.js";
import type { OptionReply } from "./raw-client.js";
import { pattern, startServer } from "./nbd-fixture.js";

const SIZE = 1 << 20;

async function fixture(t: TestContext, limits = {}) {
  const fx = await startServer(
    t,
    [
      { name: "", device: new MemoryBlockDevice("default", pattern(SIZE, 1)) },
      { name: "vg0/lv0", device: new MemoryBlockDevice("lv0", pattern(2 * SIZE, 2)), description: "linear volume" },
      { name: "vg0/ro", device: new MemoryBlockDevice("ro", pattern(SIZE, 3)), readOnly: true },
    ],
    { limits },
  );
  return fx;
}

async function open(t: TestContext, socketPath: string, flags?: number): Promise<RawNbdClient> {
  const c = await RawNbdClient.open(socketPath, flags);
  t.after(() => c.destroy());
  return c;
}

const types = (rs: readonly OptionReply[]): number[] => rs.map((r) => r.replyType);
const infoTypes = (rs: readonly OptionReply[]): number[] => rs.filter((r) => r.replyType === NBD_REP_INFO).map((r) => r.data.readUInt16BE(0));

test("greeting offers FIXED_NEWSTYLE | NO_ZEROES; an unknown client flag is a hard close", async (t) => {
  const fx = await fixture(t);
  const c = await RawNbdClient.connect(fx.socketPath);
  t.after(() => c.destroy());
  assert.equal(await c.greeting(), 0x3);
  c.send(encodeClientFlags(0x103));
  c.send(encodeOption(NBD_OPT_LIST));
  assert.equal(await c.closesWithin(2000), true);
});

test("LIST names every export with its description; LIST with data is ERR_INVALID", async (t) => {
  const fx = await fixture(t);
  const c = await open(t, fx.socketPath);
  const rs = await c.option(NBD_OPT_LIST);
  assert.deepEqual(types(rs), [NBD_REP_SERVER, NBD_REP_SERVER, NBD_REP_SERVER, NBD_REP_ACK]);
  const names = rs.slice(0, 3).map((r) => r.data.subarray(4, 4 + r.data.readUInt32BE(0)).toString());
  assert.deepEqual(names.sort(), ["", "vg0/lv0", "vg0/ro"]);
  const lv0 = rs.find((r) => r.data.subarray(4, 11).toString() === "vg0/lv0");
  assert.equal(lv0?.data.subarray(11).toString(), "linear volume");
  assert.deepEqual(types(await c.option(NBD_OPT_LIST, Buffer.from([1]))), [NBD_REP_ERR_INVALID]);
});

test("STARTTLS is ERR_POLICY, EXTENDED_HEADERS and unknown options (even with 1 MiB of data) ERR_UNSUP", async (t) => {
  const fx = await fixture(t);
  const c = await open(t, fx.socketPath);
  const tls = await c.option(NBD_OPT_STARTTLS);
  assert.deepEqual(types(tls), [NBD_REP_ERR_POLICY]);
  assert.ok((tls[0]?.data.length ?? 0) > 0, "error replies carry a message");
  assert.deepEqual(types(await c.option(NBD_OPT_EXTENDED_HEADERS)), [NBD_REP_ERR_UNSUP]);
  assert.deepEqual(types(await c.option(99, Buffer.from("abc"))), [NBD_REP_ERR_UNSUP]);
  assert.deepEqual(types(await c.option(99, Buffer.alloc(1 << 20, 7))), [NBD_REP_ERR_UNSUP]);
  // still negotiating normally
  await c.go("");
});

test("INFO: unknown export ERR_UNKNOWN, malformed ERR_INVALID, oversized ERR_TOO_BIG; answers each info once and stays in negotiation", async (t) => {
  const fx = await fixture(t);
  const c = await open(t, fx.socketPath);
  assert.deepEqual(types(await c.option(NBD_OPT_INFO, encodeInfoRequest("no-such-export"))), [NBD_REP_ERR_UNKNOWN]);
  assert.deepEqual(types(await c.option(NBD_OPT_INFO, Buffer.alloc(3))), [NBD_REP_ERR_INVALID]);
  const bad = encodeInfoRequest("vg0/lv0", [1]);
  bad.writeUInt16BE(5, 4 + 7);
  assert.deepEqual(types(await c.option(NBD_OPT_INFO, bad)), [NBD_REP_ERR_INVALID]);
  assert.deepEqual(types(await c.option(NBD_OPT_INFO, Buffer.alloc(100 * 1024))), [NBD_REP_ERR_TOO_BIG]);
  const rs = await c.option(NBD_OPT_INFO, encodeInfoRequest("vg0/lv0", [NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE, NBD_INFO_NAME, 77]));
  assert.equal(rs[rs.length - 1]?.replyType, NBD_REP_ACK);
  assert.deepEqual(infoTypes(rs).sort(), [NBD_INFO_EXPORT, NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE].sort());
  const bs = rs.find((r) => r.replyType === NBD_REP_INFO && r.data.readUInt16BE(0) === NBD_INFO_BLOCK_SIZE);
  assert.deepEqual([bs?.data.readUInt32BE(2), bs?.data.readUInt32BE(6), bs?.data.readUInt32BE(10)], [1, 4096, 32 << 20]);
  const ex = rs.find((r) => r.replyType === NBD_REP_INFO && r.data.readUInt16BE(0) === NBD_INFO_EXPORT);
  assert.equal(ex?.data.readBigUInt64BE(2), BigInt(2 * SIZE));
  // INFO did not start transmission: GO still works
  const go = await c.go("vg0/lv0");
  assert.equal(go.sizeBytes, BigInt(2 * SIZE));
});

test("GO sends INFO_EXPORT unasked, with the flags we document", async (t) => {
  const fx = await fixture(t);
  const plain = await open(t, fx.socketPath);
  const g1 = await plain.go("");
  assert.equal(g1.transmissionFlags, 0x0d6d);
  assert.deepEqual(infoTypes(g1.replies).sort(), [NBD_INFO_EXPORT, NBD_INFO_BLOCK_SIZE].sort());
  const sr = await open(t, fx.socketPath);
  await sr.option(NBD_OPT_STRUCTURED_REPLY);
  assert.equal((await sr.go("")).transmissionFlags, 0x0ded, "SEND_DF once structured replies are on");
  const ro = await open(t, fx.socketPath);
  assert.equal((await ro.go("vg0/ro")).transmissionFlags, 0x0507);
  const r = await ro.request({ type: NBD_CMD_READ, offsetBytes: 0, lengthBytes: 16 });
  assert.deepEqual(r.data, pattern(SIZE, 3).subarray(0, 16));
});

test("EXPORT_NAME: known export answers size+flags (124 zero bytes unless NO_ZEROES); unknown is a hard close", async (t) => {
  const fx = await fixture(t);
  for (const [flags, noZeroes] of [
    [3, true],
    [1, false],
    [0, false], // not even FIXED_NEWSTYLE: EXPORT_NAME is all such a client may send
  ] as const) {
    const c = await open(t, fx.socketPath, flags);
    c.send(encodeOption(NBD_OPT_EXPORT_NAME, Buffer.from("vg0/lv0")));
    const rep = await c.exportNameReply(noZeroes);
    assert.deepEqual(rep, { sizeBytes: BigInt(2 * SIZE), transmissionFlags: 0x0d6d });
    const r = await c.request({ type: NBD_CMD_READ, offsetBytes: 8, lengthBytes: 8 });
    assert.deepEqual(r.data, pattern(2 * SIZE, 2).subarray(8, 16), `client flags ${flags}`);
  }
  const c = await open(t, fx.socketPath);
  c.send(encodeOption(NBD_OPT_EXPORT_NAME, Buffer.from("no-such-export")));
  assert.equal(await c.closesWithin(2000), true);
});

test("STRUCTURED_REPLY: data is ERR_INVALID; asking twice is ACKed", async (t) => {
  const fx = await fixture(t);
  const c = await open(t, fx.socketPath);
  assert.deepEqual(types(await c.option(NBD_OPT_STRUCTURED_REPLY, Buffer.from([0]))), [NBD_REP_ERR_INVALID]);
  assert.deepEqual(types(await c.option(NBD_OPT_STRUCTURED_REPLY)), [NBD_REP_ACK]);
  assert.deepEqual(types(await c.option(NBD_OPT_STRUCTURED_REPLY)), [NBD_REP_ACK]);
});

test("meta contexts: refused before structured replies; LIST and SET base:allocation; a GO on another export drops the context", async (t) => {
  const fx = await fixture(t);
  const c = await open(t, fx.socketPath);
  const q = encodeMetaContextRequest("vg0/lv0", ["base:allocation"]);
  assert.deepEqual(types(await c.option(NBD_OPT_SET_META_CONTEXT, q)), [NBD_REP_ERR_INVALID]);
  await c.option(NBD_OPT_STRUCTURED_REPLY);
  assert.deepEqual(types(await c.option(NBD_OPT_LIST_META_CONTEXT, encodeMetaContextRequest("vg0/lv0", []))), [NBD_REP_META_CONTEXT, NBD_REP_ACK]);
  assert.deepEqual(types(await c.option(NBD_OPT_LIST_META_CONTEXT, encodeMetaContextRequest("vg0/lv0", ["base:"]))), [NBD_REP_META_CONTEXT, NBD_REP_ACK]);
  assert.deepEqual(types(await c.option(NBD_OPT_LIST_META_CONTEXT, encodeMetaContextRequest("vg0/lv0", ["qemu:dirty-bitmap:x"]))), [NBD_REP_ACK]);
  assert.deepEqual(types(await c.option(NBD_OPT_SET_META_CONTEXT, Buffer.alloc(5))), [NBD_REP_ERR_INVALID]);
  assert.deepEqual(types(await c.option(NBD_OPT_SET_META_CONTEXT, encodeMetaContextRequest("nope", ["base:allocation"]))), [NBD_REP_ERR_UNKNOWN]);
  const set = await c.option(NBD_OPT_SET_META_CONTEXT, q);
  assert.deepEqual(types(set), [NBD_REP_META_CONTEXT, NBD_REP_ACK]);
  assert.equal(set[0]?.data.subarray(4).toString(), "base:allocation");
  await c.go(""); // a different export than the context was set for
  const r = await c.request({ type: NBD_CMD_BLOCK_STATUS, offsetBytes: 0, lengthBytes: 512 });
  assert.equal(r.error, NBD_EINVAL);
});

test("ABORT is ACKed, then the server closes", async (t) => {
  const fx = await fixture(t);
  const c = await open(t, fx.socketPath);
  assert.deepEqual(types(await c.option(NBD_OPT_ABORT)), [NBD_REP_ACK]);
  assert.equal(await c.closesWithin(2000), true);
});

test("bad option magic, too many options and absurd option length are hard closes", async (t) => {
  const fx = await fixture(t, { maxOptions: 5 });
  const a = await open(t, fx.socketPath);
  const bad = encodeOption(NBD_OPT_LIST);
  bad.write("IHAVEOPX", 0);
  a.send(bad);
  assert.equal(await a.closesWithin(2000), true);

  const b = await open(t, fx.socketPath);
  for (let i = 0; i < 5; i++) assert.deepEqual(types(await b.option(NBD_OPT_STRUCTURED_REPLY)), [NBD_REP_ACK]);
  b.send(encodeOption(NBD_OPT_STRUCTURED_REPLY));
  assert.equal(await b.closesWithin(2000), true);

  const c = await open(t, fx.socketPath);
  const huge = encodeOption(99);
  huge.writeUInt32BE(0x40000000, 12);
  c.send(huge);
  assert.equal(await c.closesWithin(2000), true);
});

test("a client that never finishes the handshake is closed after the handshake timeout", async (t) => {
  const fx = await fixture(t, { handshakeTimeoutMs: 100 });
  const c = await RawNbdClient.connect(fx.socketPath);
  t.after(() => c.destroy());
  assert.equal(await c.closesWithin(5000), true);
});

test("GO on an export name given as UTF-8 with a slash works", async (t) => {
  const fx = await startServer(t, [{ name: "vg-ä/lv 1", device: new MemoryBlockDevice("x", 4096) }]);
  const c = await open(t, fx.socketPath);
  assert.equal((await c.go("vg-ä/lv 1")).sizeBytes, 4096n);
  assert.deepEqual(types(await (await open(t, fx.socketPath)).option(NBD_OPT_GO, encodeInfoRequest("vg-a/lv 1"))), [NBD_REP_ERR_UNKNOWN]);
});
