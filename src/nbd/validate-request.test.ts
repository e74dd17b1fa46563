import { test } from "node:test";
import assert from "node:assert/strict";
import { validateRequest } from "./validate-request.js";
import type { RequestContext } from "./validate-request.js";
import type { NbdRequest } from "./codec.js";
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_ENOSPC,
  NBD_EPERM,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
} from "./protocol.js";

const SIZE = 1 << 20;
const RW_FLAGS =
  NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_SEND_CACHE | NBD_FLAG_CAN_MULTI_CONN;
const plain: RequestContext = { sizeBytes: SIZE, transmissionFlags: RW_FLAGS, structuredReplies: false, blockStatusContext: false };
const sr: RequestContext = { ...plain, transmissionFlags: RW_FLAGS | NBD_FLAG_SEND_DF, structuredReplies: true, blockStatusContext: true };
const ro: RequestContext = { ...plain, transmissionFlags: NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_CACHE | NBD_FLAG_READ_ONLY };

function req(type: number, offsetBytes: number, lengthBytes: number, flags = 0): NbdRequest {
  return { type, flags, cookieHi: 0, cookieLo: 1, offsetBytes, lengthBytes };
}

function errorOf(r: NbdRequest, ctx: RequestContext): number {
  return validateRequest(r, ctx)?.error ?? 0;
}

test("validateRequest accepts in-range requests, zero lengths and FLUSH with junk fields", () => {
  for (const type of [NBD_CMD_READ, NBD_CMD_WRITE, NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES, NBD_CMD_CACHE]) {
    assert.equal(errorOf(req(type, 0, SIZE), plain), 0);
    assert.equal(errorOf(req(type, SIZE - 1, 1), plain), 0);
    assert.equal(errorOf(req(type, SIZE, 0), plain), 0, "zero length at the end");
    assert.equal(errorOf(req(type, 17, 0), plain), 0, "zero length");
  }
  assert.equal(errorOf(req(NBD_CMD_FLUSH, 4096, 12), plain), 0, "FLUSH offset/length are ignored");
  assert.equal(errorOf(req(NBD_CMD_READ, 0, 512, NBD_CMD_FLAG_FUA), plain), 0, "FUA on a read is accepted");
  assert.equal(errorOf(req(NBD_CMD_WRITE_ZEROES, 0, 512, NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FUA), plain), 0);
  assert.equal(errorOf(req(NBD_CMD_WRITE_ZEROES, 0, 512, NBD_CMD_FLAG_FAST_ZERO), plain), 0, "FAST_ZERO reaches execution (ENOTSUP there)");
  assert.equal(errorOf(req(NBD_CMD_READ, 0, 512, NBD_CMD_FLAG_DF), sr), 0);
  assert.equal(errorOf(req(NBD_CMD_BLOCK_STATUS, 0, SIZE, NBD_CMD_FLAG_REQ_ONE), sr), 0);
  assert.equal(errorOf(req(NBD_CMD_TRIM, 0, 0xffffffff), { ...plain, sizeBytes: 2 ** 40 }), 0, "payload-less commands may exceed 32 MiB");
});

test("validateRequest: past the end is EINVAL for READ/TRIM/CACHE/BLOCK_STATUS and ENOSPC for WRITE/WRITE_ZEROES", () => {
  for (const [type, err] of [
    [NBD_CMD_READ, NBD_EINVAL],
    [NBD_CMD_TRIM, NBD_EINVAL],
    [NBD_CMD_CACHE, NBD_EINVAL],
    [NBD_CMD_BLOCK_STATUS, NBD_EINVAL],
    [NBD_CMD_WRITE, NBD_ENOSPC],
    [NBD_CMD_WRITE_ZEROES, NBD_ENOSPC],
  ] as const) {
    assert.equal(errorOf(req(type, SIZE - 1, 2), sr), err, `crossing the end, type ${type}`);
    assert.equal(errorOf(req(type, SIZE + 1, 1), sr), err, `starting past the end, type ${type}`);
    assert.equal(errorOf(req(type, 2 ** 64 - 1, 2), sr), err, `u64 wrap, type ${type}`);
    assert.equal(errorOf(req(type, 2 ** 53 + 2, 0), sr), type === NBD_CMD_BLOCK_STATUS ? NBD_EINVAL : err, `beyond 2^53, type ${type}`);
  }
});

test("validateRequest: unknown commands and flags, and flags on the wrong command, are EINVAL", () => {
  assert.equal(errorOf(req(42, 0, 0), plain), NBD_EINVAL);
  assert.equal(errorOf(req(8, 0, 0), plain), NBD_EINVAL, "RESIZE is an extension we do not speak");
  assert.equal(errorOf(req(NBD_CMD_READ, 0, 512, 0x8000), plain), NBD_EINVAL);
  assert.equal(errorOf(req(NBD_CMD_READ, 0, 512, 0x20), plain), NBD_EINVAL, "PAYLOAD_LEN extension flag");
  assert.equal(errorOf(req(NBD_CMD_READ, 0, 512, NBD_CMD_FLAG_NO_HOLE), plain), NBD_EINVAL);
  assert.equal(errorOf(req(NBD_CMD_WRITE, 0, 512, NBD_CMD_FLAG_FAST_ZERO), plain), NBD_EINVAL);
  assert.equal(errorOf(req(NBD_CMD_WRITE, 0, 512, NBD_CMD_FLAG_DF), sr), NBD_EINVAL);
  assert.equal(errorOf(req(NBD_CMD_READ, 0, 512, NBD_CMD_FLAG_REQ_ONE), sr), NBD_EINVAL);
});

test("validateRequest: features that were not advertised are EINVAL", () => {
  assert.equal(errorOf(req(NBD_CMD_READ, 0, 512, NBD_CMD_FLAG_DF), plain), NBD_EINVAL, "DF without structured replies");
  assert.equal(errorOf(req(NBD_CMD_BLOCK_STATUS, 0, 512), plain), NBD_EINVAL, "BLOCK_STATUS without structured replies");
  assert.equal(errorOf(req(NBD_CMD_BLOCK_STATUS, 0, 512), { ...sr, blockStatusContext: false }), NBD_EINVAL, "without a context");
  const bare: RequestContext = { ...plain, transmissionFlags: NBD_FLAG_HAS_FLAGS };
  assert.equal(errorOf(req(NBD_CMD_FLUSH, 0, 0), bare), NBD_EINVAL);
  assert.equal(errorOf(req(NBD_CMD_TRIM, 0, 512), bare), NBD_EINVAL);
  assert.equal(errorOf(req(NBD_CMD_WRITE_ZEROES, 0, 512), bare), NBD_EINVAL);
  assert.equal(errorOf(req(NBD_CMD_CACHE, 0, 512), bare), NBD_EINVAL);
  assert.equal(errorOf(req(NBD_CMD_WRITE, 0, 512, NBD_CMD_FLAG_FUA), bare), NBD_EINVAL);
  assert.equal(errorOf(req(NBD_CMD_WRITE_ZEROES, 0, 512, NBD_CMD_FLAG_FAST_ZERO), { ...plain, transmissionFlags: RW_FLAGS & ~NBD_FLAG_SEND_FAST_ZERO }), NBD_EINVAL);
  assert.equal(errorOf(req(NBD_CMD_BLOCK_STATUS, 0, 0), sr), NBD_EINVAL, "zero-length BLOCK_STATUS");
});

test("validateRequest: writes on a read-only export are EPERM, even past the end", () => {
  for (const type of [NBD_CMD_WRITE, NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES]) {
    assert.equal(errorOf(req(type, 0, 512), ro), NBD_EPERM);
    assert.equal(errorOf(req(type, SIZE, 512), ro), NBD_EPERM);
  }
  assert.equal(errorOf(req(NBD_CMD_READ, 0, 512), ro), 0);
  assert.equal(errorOf(req(NBD_CMD_FLUSH, 0, 0), ro), 0);
});

test("validateRequest: READ/WRITE over 32 MiB are EINVAL", () => {
  const big: RequestContext = { ...plain, sizeBytes: 2 ** 40 };
  assert.equal(errorOf(req(NBD_CMD_READ, 0, 32 << 20), big), 0);
  assert.equal(errorOf(req(NBD_CMD_WRITE, 0, 32 << 20), big), 0);
  assert.equal(errorOf(req(NBD_CMD_READ, 0, (32 << 20) + 1), big), NBD_EINVAL);
  assert.equal(errorOf(req(NBD_CMD_WRITE, 0, (32 << 20) + 4096), big), NBD_EINVAL);
});
