import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ServerParser,
  decodeInfoRequest,
  decodeMetaContextRequest,
  encodeBlockStatus,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoText,
  encodeOffsetDataHeader,
  encodeOptionError,
  encodeOptionReply,
  encodeRepMetaContext,
  encodeRepServer,
  encodeSimpleReply,
  encodeStructuredError,
  encodeStructuredNone,
} from "./codec.js";
import {
  ReplyParser,
  encodeClientFlags,
  encodeInfoRequest,
  encodeMetaContextRequest,
  encodeOption,
  encodeRequest,
} from "./client-codec.js";
import type { NbdOption, NbdRequest, PayloadDisposition, ServerParserHandler } from "./codec.js";
import type { ServerMessage } from "./client-codec.js";
import {
  NBD_CMD_DISC,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_WRITE,
  NBD_EINVAL,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_NAME,
  NBD_OPT_GO,
  NBD_OPT_LIST,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REP_ACK,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
} from "./protocol.js";

type Event =
  | { kind: "flags"; flags: number }
  | { kind: "option"; code: number; lengthBytes: number; data: string | null }
  | { kind: "request"; request: NbdRequest; payload: string | null }
  | { kind: "error"; message: string };

/** A handler that records events; GO enters transmission, writes get a fresh buffer. */
function recorder(opts: { discardWrites?: boolean } = {}): { handler: ServerParserHandler; events: Event[]; parser: () => ServerParser; set: (p: ServerParser) => void } {
  const events: Event[] = [];
  let parser: ServerParser | null = null;
  const handler: ServerParserHandler = {
    onClientFlags: (flags) => events.push({ kind: "flags", flags }),
    onOption: (o: NbdOption) => {
      events.push({ kind: "option", code: o.code, lengthBytes: o.lengthBytes, data: o.data === null ? null : o.data.toString("hex") });
      if (o.code === NBD_OPT_GO) parser?.enterTransmission();
    },
    onWriteHeader: (r): PayloadDisposition => (opts.discardWrites === true ? "discard" : Buffer.alloc(r.lengthBytes)),
    onRequest: (request, payload) => events.push({ kind: "request", request, payload: payload === null ? null : payload.toString("hex") }),
    onProtocolError: (message) => events.push({ kind: "error", message }),
  };
  return { handler, events, parser: () => parser as ServerParser, set: (p) => (parser = p) };
}

function run(stream: Buffer, splits: readonly number[], opts: { discardWrites?: boolean } = {}): Event[] {
  const r = recorder(opts);
  const p = new ServerParser(r.handler);
  r.set(p);
  let at = 0;
  for (const s of [...splits, stream.length]) {
    p.push(stream.subarray(at, s));
    at = s;
  }
  return r.events;
}

const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff));

/** A whole session: flags, two options (one GO), then five requests incl. a WRITE with payload and a DISC. */
function sessionBytes(): Buffer {
  return Buffer.concat([
    encodeClientFlags(3),
    encodeOption(NBD_OPT_STRUCTURED_REPLY),
    encodeOption(NBD_OPT_GO, encodeInfoRequest("vg0/lv0", [NBD_INFO_NAME, NBD_INFO_BLOCK_SIZE])),
    encodeRequest({ type: NBD_CMD_READ, cookie: 0x0102030405060708n, offsetBytes: 4096, lengthBytes: 512 }),
    encodeRequest({ type: NBD_CMD_WRITE, flags: NBD_CMD_FLAG_FUA, cookie: 2n, offsetBytes: 2n ** 40n + 3n, lengthBytes: payload.length }, payload),
    encodeRequest({ type: NBD_CMD_WRITE, cookie: 3n, offsetBytes: 0, lengthBytes: 0 }),
    encodeRequest({ type: NBD_CMD_FLUSH, cookie: 0xffffffffffffffffn, offsetBytes: 0, lengthBytes: 0 }),
    encodeRequest({ type: NBD_CMD_DISC, cookie: 5n, offsetBytes: 0, lengthBytes: 0 }),
  ]);
}

test("ServerParser decodes a whole session pushed in one chunk", () => {
  const events = run(sessionBytes(), []);
  assert.equal(events.length, 8);
  assert.deepEqual(events[0], { kind: "flags", flags: 3 });
  assert.deepEqual(events[1], { kind: "option", code: NBD_OPT_STRUCTURED_REPLY, lengthBytes: 0, data: "" });
  const go = events[2];
  assert.ok(go?.kind === "option" && go.code === NBD_OPT_GO && go.data !== null);
  assert.deepEqual(decodeInfoRequest(Buffer.from(go.data, "hex")), { exportName: "vg0/lv0", infoTypes: [NBD_INFO_NAME, NBD_INFO_BLOCK_SIZE] });
  const read = events[3];
  assert.ok(read?.kind === "request");
  assert.deepEqual(read.request, { flags: 0, type: NBD_CMD_READ, cookieHi: 0x01020304, cookieLo: 0x05060708, offsetBytes: 4096, lengthBytes: 512 });
  const write = events[4];
  assert.ok(write?.kind === "request");
  assert.equal(write.request.offsetBytes, 2 ** 40 + 3);
  assert.equal(write.request.flags, NBD_CMD_FLAG_FUA);
  assert.equal(write.payload, payload.toString("hex"));
  const empty = events[5];
  assert.ok(empty?.kind === "request" && empty.payload === null && empty.request.lengthBytes === 0);
  const flush = events[6];
  assert.ok(flush?.kind === "request" && flush.request.cookieHi === 0xffffffff && flush.request.cookieLo === 0xffffffff);
});

test("ServerParser gives the same events for a session split at every byte boundary", () => {
  const stream = sessionBytes();
  const whole = run(stream, []);
  for (let i = 1; i < stream.length; i++) assert.deepEqual(run(stream, [i]), whole, `split at ${i}`);
  // and one byte at a time
  assert.deepEqual(run(stream, Array.from({ length: stream.length - 1 }, (_, i) => i + 1)), whole);
});

test("ServerParser discards a WRITE payload when told to and stays in sync", () => {
  const stream = Buffer.concat([
    encodeClientFlags(1),
    encodeOption(NBD_OPT_GO, encodeInfoRequest("", [])),
    encodeRequest({ type: NBD_CMD_WRITE, cookie: 1n, offsetBytes: 0, lengthBytes: payload.length }, payload),
    encodeRequest({ type: NBD_CMD_READ, cookie: 2n, offsetBytes: 0, lengthBytes: 1 }),
  ]);
  for (const splits of [[], [40], [60, 61, 62]]) {
    const events = run(stream, splits, { discardWrites: true });
    const reqs = events.filter((e) => e.kind === "request");
    assert.equal(reqs.length, 2);
    assert.ok(reqs[0]?.kind === "request" && reqs[0].payload === null && reqs[0].request.type === NBD_CMD_WRITE);
    assert.ok(reqs[1]?.kind === "request" && reqs[1].request.type === NBD_CMD_READ);
  }
});

test("ServerParser payloadWindow lets a transport read a payload in place", () => {
  const r = recorder();
  const p = new ServerParser(r.handler);
  r.set(p);
  p.push(Buffer.concat([encodeClientFlags(1), encodeOption(NBD_OPT_GO, encodeInfoRequest("", []))]));
  const header = encodeRequest({ type: NBD_CMD_WRITE, cookie: 9n, offsetBytes: 0, lengthBytes: payload.length });
  p.push(Buffer.concat([header, payload.subarray(0, 10)]));
  const w1 = p.payloadWindow();
  assert.ok(w1 !== null);
  assert.equal(w1.length, payload.length - 10);
  payload.copy(w1, 0, 10, 110);
  p.payloadReceived(100);
  const w2 = p.payloadWindow();
  assert.ok(w2 !== null);
  assert.equal(w2.length, payload.length - 110);
  payload.copy(w2, 0, 110);
  p.payloadReceived(w2.length);
  assert.equal(p.payloadWindow(), null);
  const last = r.events[r.events.length - 1];
  assert.ok(last?.kind === "request" && last.payload === payload.toString("hex"));
});

test("ServerParser: bad option magic, bad request magic and absurd option length are protocol errors", () => {
  const badOpt = Buffer.concat([encodeClientFlags(1), Buffer.from("IHAVEOPX"), Buffer.alloc(8)]);
  assert.deepEqual(run(badOpt, [])[1], { kind: "error", message: "bad option magic" });

  const tooLong = Buffer.concat([encodeClientFlags(1), encodeOption(99)]);
  tooLong.writeUInt32BE(0x7fffffff, 4 + 12);
  const e = run(tooLong, []);
  assert.equal(e[1]?.kind, "error");

  const badReq = Buffer.concat([encodeClientFlags(1), encodeOption(NBD_OPT_GO, encodeInfoRequest("", [])), Buffer.alloc(28, 0xee)]);
  const events = run(badReq, []);
  assert.equal(events[events.length - 1]?.kind, "error");
});

test("ServerParser delivers long option data as null after draining it", () => {
  const big = Buffer.alloc(200 * 1024, 1);
  const stream = Buffer.concat([encodeClientFlags(1), encodeOption(99, big), encodeOption(NBD_OPT_LIST)]);
  const events = run(stream, [1000, 100_000]);
  assert.deepEqual(events.slice(1), [
    { kind: "option", code: 99, lengthBytes: big.length, data: null },
    { kind: "option", code: NBD_OPT_LIST, lengthBytes: 0, data: "" },
  ]);
});

test("ServerParser keeps u64 offsets beyond 2^53 larger than any export", () => {
  const stream = Buffer.concat([
    encodeClientFlags(1),
    encodeOption(NBD_OPT_GO, encodeInfoRequest("", [])),
    encodeRequest({ type: NBD_CMD_READ, cookie: 1n, offsetBytes: 2n ** 64n - 1n, lengthBytes: 2 }),
  ]);
  const last = run(stream, []).pop();
  assert.ok(last?.kind === "request");
  assert.ok(last.request.offsetBytes >= 2 ** 64 - 4096);
});

// ---------------------------------------------------------------- serializers ↔ ReplyParser

function parseAll(parser: ReplyParser, bytes: Buffer, everyByte: boolean): ServerMessage[] {
  if (!everyByte) return parser.push(bytes);
  const out: ServerMessage[] = [];
  for (let i = 0; i < bytes.length; i++) out.push(...parser.push(bytes.subarray(i, i + 1)));
  return out;
}

test("option replies round-trip through ReplyParser, whole and byte by byte", () => {
  const bytes = Buffer.concat([
    encodeGreeting(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES),
    encodeRepServer(NBD_OPT_LIST, "vg0/lv0", "a volume"),
    encodeOptionReply(NBD_OPT_LIST, NBD_REP_ACK),
    encodeInfoText(NBD_OPT_GO, NBD_INFO_NAME, "vg0/lv0"),
    encodeInfoBlockSize(NBD_OPT_GO, 1, 4096, 32 << 20),
    encodeInfoExport(NBD_OPT_GO, 2 ** 40, 0x0ded),
    encodeRepMetaContext(10, 1, "base:allocation"),
    encodeOptionError(NBD_OPT_GO, NBD_REP_ERR_UNKNOWN, "no such export"),
  ]);
  for (const everyByte of [false, true]) {
    const m = parseAll(new ReplyParser(), bytes, everyByte);
    assert.equal(m.length, 8);
    assert.deepEqual(m[0], { kind: "greeting", magicOk: true, handshakeFlags: 3 });
    const server = m[1];
    assert.ok(server?.kind === "optionReply" && server.magicOk && server.replyType === NBD_REP_SERVER);
    assert.equal(server.data.readUInt32BE(0), 7);
    assert.equal(server.data.subarray(4, 11).toString(), "vg0/lv0");
    assert.equal(server.data.subarray(11).toString(), "a volume");
    const bs = m[4];
    assert.ok(bs?.kind === "optionReply" && bs.replyType === NBD_REP_INFO);
    assert.deepEqual([bs.data.readUInt16BE(0), bs.data.readUInt32BE(2), bs.data.readUInt32BE(6), bs.data.readUInt32BE(10)], [NBD_INFO_BLOCK_SIZE, 1, 4096, 32 << 20]);
    const ex = m[5];
    assert.ok(ex?.kind === "optionReply");
    assert.equal(ex.data.readBigUInt64BE(2), 2n ** 40n);
    assert.equal(ex.data.readUInt16BE(10), 0x0ded);
    const meta = m[6];
    assert.ok(meta?.kind === "optionReply" && meta.replyType === NBD_REP_META_CONTEXT && meta.data.readUInt32BE(0) === 1);
    const err = m[7];
    assert.ok(err?.kind === "optionReply" && err.replyType === NBD_REP_ERR_UNKNOWN && err.data.toString() === "no such export");
  }
});

test("EXPORT_NAME reply is 10 bytes with NO_ZEROES and 134 without", () => {
  assert.equal(encodeExportNameReply(512, 3, true).length, 10);
  const padded = encodeExportNameReply(512, 3, false);
  assert.equal(padded.length, 134);
  assert.ok(padded.subarray(10).every((b) => b === 0));
  const p = new ReplyParser();
  p.push(encodeGreeting(3));
  p.expectExportNameReply(false);
  assert.deepEqual(p.push(padded), [{ kind: "exportNameReply", sizeBytes: 512n, transmissionFlags: 3 }]);
});

test("transmission replies round-trip: simple, simple with read data, structured chunks", () => {
  const data = Buffer.from("0123456789abcdef");
  const bytes = Buffer.concat([
    encodeSimpleReply(0, 0, 1),
    data,
    encodeSimpleReply(NBD_EINVAL, 0xdeadbeef, 2),
    encodeOffsetDataHeader(0, 3, 2 ** 33, data.length),
    data,
    encodeStructuredError(0, 4, NBD_EINVAL, "beyond the end"),
    encodeStructuredNone(0, 5),
    encodeBlockStatus(0, 6, 1, [{ lengthBytes: 65536, flags: 0 }, { lengthBytes: 512, flags: 3 }], true),
  ]);
  for (const everyByte of [false, true]) {
    const parser = new ReplyParser((cookie) => (cookie === 1n ? data.length : 0));
    parser.push(encodeGreeting(3));
    parser.enterTransmission();
    const m = parseAll(parser, bytes, everyByte);
    assert.equal(m.length, 6);
    assert.deepEqual(m[0], { kind: "simpleReply", error: 0, cookie: 1n, data });
    assert.deepEqual(m[1], { kind: "simpleReply", error: NBD_EINVAL, cookie: 0xdeadbeef00000002n, data: null });
    const od = m[2];
    assert.ok(od?.kind === "chunk" && od.chunkType === NBD_REPLY_TYPE_OFFSET_DATA && od.flags === NBD_REPLY_FLAG_DONE);
    assert.equal(od.payload.readBigUInt64BE(0), 2n ** 33n);
    assert.deepEqual(od.payload.subarray(8), data);
    const er = m[3];
    assert.ok(er?.kind === "chunk" && er.chunkType === NBD_REPLY_TYPE_ERROR);
    assert.equal(er.payload.readUInt32BE(0), NBD_EINVAL);
    assert.equal(er.payload.subarray(6, 6 + er.payload.readUInt16BE(4)).toString(), "beyond the end");
    const none = m[4];
    assert.ok(none?.kind === "chunk" && none.chunkType === NBD_REPLY_TYPE_NONE && none.payload.length === 0);
    const bs = m[5];
    assert.ok(bs?.kind === "chunk" && bs.chunkType === NBD_REPLY_TYPE_BLOCK_STATUS);
    assert.deepEqual([bs.payload.readUInt32BE(0), bs.payload.readUInt32BE(4), bs.payload.readUInt32BE(8), bs.payload.readUInt32BE(12), bs.payload.readUInt32BE(16)], [1, 65536, 0, 512, 3]);
  }
});

test("decodeInfoRequest and decodeMetaContextRequest round-trip and reject malformed data", () => {
  assert.deepEqual(decodeInfoRequest(encodeInfoRequest("vg/lv", [3, 1, 2])), { exportName: "vg/lv", infoTypes: [3, 1, 2] });
  assert.deepEqual(decodeInfoRequest(encodeInfoRequest("", [])), { exportName: "", infoTypes: [] });
  assert.equal(decodeInfoRequest(Buffer.alloc(3)), null, "shorter than 6 bytes");
  const longName = encodeInfoRequest("abc", []);
  longName.writeUInt32BE(100, 0);
  assert.equal(decodeInfoRequest(longName), null, "name runs past the end");
  const badCount = encodeInfoRequest("abc", [1]);
  badCount.writeUInt16BE(2, 7);
  assert.equal(decodeInfoRequest(badCount), null, "count does not match the length");

  assert.deepEqual(decodeMetaContextRequest(encodeMetaContextRequest("x", ["base:allocation", "qemu:"])), { exportName: "x", queries: ["base:allocation", "qemu:"] });
  assert.deepEqual(decodeMetaContextRequest(encodeMetaContextRequest("", [])), { exportName: "", queries: [] });
  const trailing = Buffer.concat([encodeMetaContextRequest("x", ["a"]), Buffer.from([0])]);
  assert.equal(decodeMetaContextRequest(trailing), null, "trailing garbage");
  const truncated = encodeMetaContextRequest("x", ["abc"]).subarray(0, -1);
  assert.equal(decodeMetaContextRequest(truncated), null, "query runs past the end");
});

test("ServerParser holds input after a WRITE header answered \"wait\" and resumes it intact", () => {
  const stream = sessionBytes();
  const whole = run(stream, []);
  for (const split of [0, 90, 200, 250, 400]) {
    const r = recorder();
    let waits = 0;
    const handler: ServerParserHandler = {
      ...r.handler,
      // The first time a WRITE with a payload shows up: no buffer yet.
      onWriteHeader: (req) => (waits++ === 0 ? "wait" : Buffer.alloc(req.lengthBytes)),
    };
    const p = new ServerParser(handler);
    r.set(p);
    if (split > 0) p.push(stream.subarray(0, split));
    p.push(stream.subarray(split));
    assert.equal(p.waitingForPayloadBuffer, true, `split ${split}`);
    assert.equal(p.payloadWindow(), null);
    p.resumePayload();
    assert.equal(p.waitingForPayloadBuffer, false);
    assert.deepEqual(r.events, whole, `split ${split}`);
  }
});
