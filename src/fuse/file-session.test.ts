import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryBlockDevice } from "../blockdev/memory-block-device.js";
import { FileSession, MAX_PAGES, MAX_WRITE } from "./file-session.js";
import { view } from "./codec.js";
import { Errno, FATTR_SIZE, FOPEN_DIRECT_IO, FOPEN_KEEP_CACHE, InitFlag, Opcode } from "./protocol.js";
import { WriteWatch, WriteWatchedDevice } from "../blockdev/write-watched-device.js";

/** A request as the kernel writes it: fuse_in_header + body. */
function req(opcode: number, unique: number, nodeid: number, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const b = new Uint8Array(40 + body.byteLength);
  const dv = view(b);
  dv.setUint32(0, b.byteLength, true);
  dv.setUint32(4, opcode, true);
  dv.setBigUint64(8, BigInt(unique), true);
  dv.setBigUint64(16, BigInt(nodeid), true);
  b.set(body, 40);
  return b;
}

function words(...fields: Array<[number, bigint | number]>): Uint8Array {
  const size = fields.reduce((n, [w]) => n + w, 0);
  const b = new Uint8Array(size);
  const dv = view(b);
  let at = 0;
  for (const [w, v] of fields) {
    if (w === 8) dv.setBigUint64(at, BigInt(v), true);
    else dv.setUint32(at, Number(v), true);
    at += w;
  }
  return b;
}

const initBody = (minor = 31, flags = 0xffffffff) => words([4, 7], [4, minor], [4, 128 * 1024], [4, flags]);
const readBody = (off: number, size: number) => words([8, 0], [8, off], [4, size], [4, 0], [8, 0], [4, 0], [4, 0]);
const writeBody = (off: number, data: Uint8Array) => {
  const h = words([8, 0], [8, off], [4, data.byteLength], [4, 0], [8, 0], [4, 0], [4, 0]);
  const b = new Uint8Array(h.byteLength + data.byteLength);
  b.set(h);
  b.set(data, h.byteLength);
  return b;
};

function outHeader(r: Uint8Array | undefined): { len: number; error: number; unique: bigint } {
  assert.ok(r, "a reply");
  const dv = view(r);
  return { len: dv.getUint32(0, true), error: dv.getInt32(4, true), unique: dv.getBigUint64(8, true) };
}

class FlushCountingDevice extends MemoryBlockDevice {
  flushes = 0;
  override async flush(): Promise<void> {
    this.flushes++;
    await super.flush();
  }
}

async function session(opts: { readOnly?: boolean; size?: number } = {}) {
  const dev = new FlushCountingDevice("lv", opts.size ?? 1 << 20);
  const s = new FileSession(dev, { fileName: "dev", readOnly: opts.readOnly ?? false });
  const r = await s.handle(req(Opcode.INIT, 1, 0, initBody()));
  assert.equal(outHeader(r).error, 0);
  return { dev, s };
}

test("INIT agrees on 7.31 with 1 MiB requests and only the flags both sides know", async () => {
  const s = new FileSession(new MemoryBlockDevice("lv", 4096), { fileName: "dev", readOnly: false });
  const r = await s.handle(req(Opcode.INIT, 7, 0, initBody(40, InitFlag.ASYNC_READ | InitFlag.MAX_PAGES | (1 << 16))));
  const h = outHeader(r);
  assert.deepEqual(h, { len: 16 + 64, error: 0, unique: 7n });
  const dv = view(r!);
  assert.equal(dv.getUint32(16, true), 7);
  assert.equal(dv.getUint32(20, true), 31);
  assert.equal(dv.getUint32(24, true), 128 * 1024, "max_readahead no more than the kernel's");
  assert.equal(dv.getUint32(28, true), InitFlag.ASYNC_READ | InitFlag.MAX_PAGES, "no writeback cache even though offered");
  assert.equal(dv.getUint32(36, true), MAX_WRITE);
  assert.equal(dv.getUint16(44, true), MAX_PAGES);
});

test("INIT from an older kernel gets the reply size of its minor version", async () => {
  const s = new FileSession(new MemoryBlockDevice("lv", 4096), { fileName: "dev", readOnly: false });
  const r = await s.handle(req(Opcode.INIT, 1, 0, initBody(22)));
  assert.equal(outHeader(r).len, 16 + 24);
  assert.equal(view(r!).getUint32(20, true), 22);
});

test("requests before INIT are refused; a newer major gets our version back", async () => {
  const s = new FileSession(new MemoryBlockDevice("lv", 4096), { fileName: "dev", readOnly: false });
  assert.equal(outHeader(await s.handle(req(Opcode.GETATTR, 2, 1, new Uint8Array(16)))).error, -Errno.EIO);
  const r = await s.handle(req(Opcode.INIT, 3, 0, words([4, 8], [4, 0], [4, 0], [4, 0])));
  assert.equal(outHeader(r).len, 16 + 8);
  assert.equal(view(r!).getUint32(16, true), 7);
  assert.equal(s.initialized, false);
});

test("LOOKUP finds the one file; GETATTR gives its size as the device's", async () => {
  const { s } = await session({ size: 3 << 20 });
  const name = new TextEncoder().encode("dev\0");
  const r = await s.handle(req(Opcode.LOOKUP, 5, 1, name));
  assert.equal(outHeader(r).len, 16 + 128);
  const dv = view(r!);
  assert.equal(dv.getBigUint64(16, true), 2n, "nodeid");
  assert.equal(dv.getBigUint64(16 + 40 + 8, true), BigInt(3 << 20), "attr.size");
  assert.equal(dv.getUint32(16 + 40 + 60, true), 0o100600, "attr.mode");
  assert.equal(outHeader(await s.handle(req(Opcode.LOOKUP, 6, 1, new TextEncoder().encode("other\0")))).error, -Errno.ENOENT);
  assert.equal(outHeader(await s.handle(req(Opcode.LOOKUP, 7, 1, new TextEncoder().encode("dev")))).error, -Errno.EINVAL, "no NUL");
  const g = await s.handle(req(Opcode.GETATTR, 8, 2, new Uint8Array(16)));
  assert.equal(outHeader(g).len, 16 + 104);
  assert.equal(view(g!).getBigUint64(16 + 16 + 8, true), BigInt(3 << 20));
  assert.equal(view((await s.handle(req(Opcode.GETATTR, 9, 1, new Uint8Array(16))))!).getUint32(16 + 16 + 60, true), 0o40755);
});

test("OPEN answers direct I/O; a read-only LV refuses opening for writing", async () => {
  const { s } = await session();
  const r = await s.handle(req(Opcode.OPEN, 10, 2, words([4, 2], [4, 0])));
  assert.equal(outHeader(r).error, 0);
  assert.equal(view(r!).getUint32(24, true), FOPEN_DIRECT_IO);
  const ro = (await session({ readOnly: true })).s;
  assert.equal(outHeader(await ro.handle(req(Opcode.OPEN, 11, 2, words([4, 2], [4, 0])))).error, -Errno.EROFS);
  assert.equal(outHeader(await ro.handle(req(Opcode.OPEN, 12, 2, words([4, 0], [4, 0])))).error, 0);
});

test("WRITE then READ go to the device; reads past the end are short, writes past it refused", async () => {
  const { s, dev } = await session({ size: 8192 });
  const data = new Uint8Array(4096).fill(0xab);
  const w = await s.handle(req(Opcode.WRITE, 20, 2, writeBody(4096, data)));
  assert.deepEqual(outHeader(w), { len: 24, error: 0, unique: 20n });
  assert.equal(view(w!).getUint32(16, true), 4096);
  const back = new Uint8Array(4096);
  await dev.read(4096, back);
  assert.deepEqual(back, data);
  const r = await s.handle(req(Opcode.READ, 21, 2, readBody(6144, 4096)));
  assert.equal(outHeader(r).len, 16 + 2048, "short read at the end");
  assert.ok(r!.subarray(16).every((b) => b === 0xab));
  assert.equal(outHeader(await s.handle(req(Opcode.READ, 22, 2, readBody(8192, 4096)))).len, 16, "EOF");
  assert.equal(outHeader(await s.handle(req(Opcode.WRITE, 23, 2, writeBody(6144, data)))).error, -Errno.ENOSPC);
  assert.equal(outHeader(await s.handle(req(Opcode.READ, 24, 2, readBody(0, MAX_WRITE + 4096)))).error, -Errno.EINVAL, "more than max_write");
});

test("FSYNC and FLUSH reach the device's flush; a read-only LV refuses writes", async () => {
  const { s, dev } = await session();
  assert.equal(outHeader(await s.handle(req(Opcode.FSYNC, 30, 2, words([8, 0], [4, 0], [4, 0])))).error, 0);
  assert.equal(outHeader(await s.handle(req(Opcode.FLUSH, 31, 2, words([8, 0], [4, 0], [4, 0], [8, 0])))).error, 0);
  assert.equal(dev.flushes, 2);
  const ro = (await session({ readOnly: true })).s;
  assert.equal(outHeader(await ro.handle(req(Opcode.WRITE, 32, 2, writeBody(0, new Uint8Array(512))))).error, -Errno.EROFS);
});

test("a device error is EIO, never a throw", async () => {
  const dev = new MemoryBlockDevice("lv", 4096);
  dev.read = () => Promise.reject(new Error("leg gone"));
  const s = new FileSession(dev, { fileName: "dev", readOnly: false });
  await s.handle(req(Opcode.INIT, 1, 0, initBody()));
  assert.equal(outHeader(await s.handle(req(Opcode.READ, 2, 2, readBody(0, 512)))).error, -Errno.EIO);
});

test("malformed requests: short header dropped or EINVAL, length mismatch EINVAL, short bodies EINVAL", async () => {
  const { s } = await session();
  assert.equal(await s.handle(new Uint8Array(10)), undefined, "no unique to answer");
  const short = req(Opcode.GETATTR, 40, 1).subarray(0, 30);
  assert.deepEqual(outHeader(await s.handle(short)), { len: 16, error: -Errno.EINVAL, unique: 40n });
  const lying = req(Opcode.GETATTR, 41, 1, new Uint8Array(16));
  view(lying).setUint32(0, 4096, true);
  assert.equal(outHeader(await s.handle(lying)).error, -Errno.EINVAL);
  for (const op of [Opcode.READ, Opcode.WRITE, Opcode.OPEN, Opcode.FSYNC, Opcode.INIT]) {
    assert.equal(outHeader(await s.handle(req(op, 42, 2, new Uint8Array(4)))).error, -Errno.EINVAL, `opcode ${op}`);
  }
  const badSize = writeBody(0, new Uint8Array(512));
  view(badSize).setUint32(16, 1024, true);
  assert.equal(outHeader(await s.handle(req(Opcode.WRITE, 43, 2, badSize))).error, -Errno.EINVAL, "size field beyond the data");
});

test("unknown opcodes are ENOSYS; FORGET, BATCH_FORGET and INTERRUPT get no reply", async () => {
  const { s } = await session();
  assert.equal(outHeader(await s.handle(req(9999, 51, 2))).error, -Errno.ENOSYS);
  assert.equal(await s.handle(req(Opcode.FORGET, 52, 2, words([8, 1]))), undefined);
  assert.equal(await s.handle(req(Opcode.BATCH_FORGET, 53, 0, words([4, 0], [4, 0]))), undefined);
  assert.equal(await s.handle(req(Opcode.INTERRUPT, 54, 0, words([8, 20]))), undefined);
  assert.equal(outHeader(await s.handle(req(Opcode.DESTROY, 55, 0))).error, 0);
});

test("READDIR lists ., .. and the file, resuming at the offset", async () => {
  const { s } = await session();
  const r = await s.handle(req(Opcode.READDIR, 60, 1, readBody(0, 4096)));
  const names: string[] = [];
  const dv = view(r!);
  for (let at = 16; at < r!.byteLength; ) {
    const n = dv.getUint32(at + 16, true);
    names.push(new TextDecoder().decode(r!.subarray(at + 24, at + 24 + n)));
    at += (24 + n + 7) & ~7;
  }
  assert.deepEqual(names, [".", "..", "dev"]);
  assert.equal(outHeader(await s.handle(req(Opcode.READDIR, 61, 1, readBody(3, 4096)))).len, 16);
});

const setattrBody = (valid: number, size: number) => {
  const b = new Uint8Array(88);
  view(b).setUint32(0, valid, true);
  view(b).setBigUint64(16, BigInt(size), true);
  return b;
};

test("SETATTR (the writeback cache's mtime updates) answers the attributes unchanged; a size change is refused", async () => {
  const { s } = await session({ size: 1 << 20 });
  const r = await s.handle(req(Opcode.SETATTR, 60, 2, setattrBody(1 << 5, 0))); // FATTR_MTIME
  assert.equal(outHeader(r).error, 0);
  assert.equal(view(r!).getBigUint64(16 + 16 + 8, true), BigInt(1 << 20), "fuse_attr.size");
  assert.equal(outHeader(await s.handle(req(Opcode.SETATTR, 61, 2, setattrBody(FATTR_SIZE, 1 << 20)))).error, 0, "same size");
  assert.equal(outHeader(await s.handle(req(Opcode.SETATTR, 62, 2, setattrBody(FATTR_SIZE, 2 << 20)))).error, -Errno.ENOSPC);
  assert.equal(outHeader(await s.handle(req(Opcode.SETATTR, 63, 2, setattrBody(FATTR_SIZE, 4096)))).error, -Errno.EINVAL);
  assert.equal(outHeader(await s.handle(req(Opcode.SETATTR, 64, 2, new Uint8Array(8)))).error, -Errno.EINVAL, "short body");
});

test("cached: INIT asks for the writeback cache, OPEN keeps the cache; uncached and read-only do not", async () => {
  for (const [cached, readOnly] of [[true, false], [false, false], [true, true]] as const) {
    const s = new FileSession(new MemoryBlockDevice("lv", 4096), { fileName: "dev", readOnly, cached });
    const init = await s.handle(req(Opcode.INIT, 1, 0, initBody()));
    const wb = (view(init!).getUint32(16 + 12, true) & InitFlag.WRITEBACK_CACHE) !== 0;
    assert.equal(wb, cached && !readOnly, `writeback cache, cached=${cached} readOnly=${readOnly}`);
    const open = await s.handle(req(Opcode.OPEN, 2, 2, words([4, 0], [4, 0])));
    assert.equal(view(open!).getUint32(24, true), cached ? FOPEN_KEEP_CACHE : FOPEN_DIRECT_IO);
  }
});

test("cached: a READ that overlapped a write by another path reads again, never answers the older bytes", async () => {
  const dev = new MemoryBlockDevice("lv", 1 << 20);
  const watch = new WriteWatch();
  const other = new WriteWatchedDevice(dev, watch);
  const written: Array<[number, number]> = [];
  watch.onWritten = (off, len) => written.push([off, len]);
  // The first read of the device is held until the other path's write has landed.
  let reads = 0;
  const origRead = dev.read.bind(dev);
  dev.read = async (off: number, into: Uint8Array) => {
    reads++;
    await origRead(off, into);
    if (reads === 1) await other.write(0, new Uint8Array(4096).fill(7));
  };
  const s = new FileSession(dev, { fileName: "dev", readOnly: false, cached: true, otherWrites: watch });
  await s.handle(req(Opcode.INIT, 1, 0, initBody()));
  const r = await s.handle(req(Opcode.READ, 2, 2, readBody(0, 4096)));
  assert.equal(outHeader(r).error, 0);
  assert.equal(reads, 2, "read again");
  assert.ok(r!.subarray(16).every((b) => b === 7), "the bytes after the write");
  assert.deepEqual(written, [[0, 4096]], "the write was announced (invalidation)");
});
