import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { FileBlockDevice } from "./file-block-device.js";
import { IoError } from "../errors/errors.js";

function tmpFile(bytes: Uint8Array): { file: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ulvm-fbd-"));
  const file = path.join(dir, "disk.img");
  fs.writeFileSync(file, bytes);
  return { file, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

for (const mode of [
  { label: "inline", opts: { inlineReadMaxBytes: 1 << 20, inlineWriteMaxBytes: 1 << 20 } },
  { label: "thread pool", opts: { inlineReadMaxBytes: 0, inlineWriteMaxBytes: 0 } },
]) {
  test(`FileBlockDevice (${mode.label}) reads and writes at explicit offsets`, async (t) => {
    const init = pattern(1 << 20);
    const { file, cleanup } = tmpFile(init);
    t.after(cleanup);
    const dev = await FileBlockDevice.open(file, mode.opts);
    assert.equal(dev.sizeBytes, 1 << 20);
    assert.deepEqual(dev.caps, { write: true, flush: true, fua: true, trim: true });
    const into = Buffer.alloc(1000);
    await dev.read(4097, into);
    assert.deepEqual(into, init.subarray(4097, 5097));
    const data = pattern(3000, 7);
    await dev.write(12345, data);
    await dev.write(20000, data, { fua: true });
    await dev.read(12345, into);
    assert.deepEqual(into, data.subarray(0, 1000));
    const zeroAt = 30000;
    await dev.writeZeroes(zeroAt, 3 << 18);
    const z = Buffer.alloc(3 << 18);
    await dev.read(zeroAt, z);
    assert.ok(z.every((b) => b === 0));
    const after = Buffer.alloc(10);
    await dev.read(zeroAt + (3 << 18), after);
    assert.deepEqual(after, init.subarray(zeroAt + (3 << 18), zeroAt + 10 + (3 << 18)), "bytes after the zeroed range are untouched");
    await dev.flush();
    await dev.close();
    const onDisk = fs.readFileSync(file);
    assert.deepEqual(onDisk.subarray(12345, 15345), data);
    assert.deepEqual(onDisk.subarray(20000, 23000), data);
    assert.deepEqual(onDisk.subarray(0, 100), init.subarray(0, 100));
  });
}

test("FileBlockDevice: bulk transfers (a resync's copy) up to 1 MiB run in-line; the same sizes from clients go to the thread pool", async (t) => {
  const size = 4 << 20;
  const { file, cleanup } = tmpFile(pattern(size, 3));
  t.after(cleanup);
  const dev = await FileBlockDevice.open(file);
  const buf = new Uint8Array(1 << 20);
  await dev.read(1 << 20, buf, { bulk: true });
  assert.deepEqual(Buffer.from(buf), pattern(size, 3).subarray(1 << 20, 2 << 20));
  await dev.write(2 << 20, buf, { bulk: true });
  assert.deepEqual({ r: dev.stats.inlineBulkReads, w: dev.stats.inlineBulkWrites }, { r: 1, w: 1 });
  // Client-sized requests of 1 MiB stay off the event loop (their own gates' limits).
  await dev.read(0, buf);
  await dev.write(3 << 20, buf);
  assert.deepEqual({ r: dev.stats.inlineReads, w: dev.stats.inlineWrites, br: dev.stats.inlineBulkReads }, { r: 0, w: 0, br: 1 });
  // Bigger than the bulk limit: the pool again.
  await dev.read(0, new Uint8Array(2 << 20), { bulk: true });
  assert.equal(dev.stats.inlineBulkReads, 1);
  await dev.close();
  const b = fs.readFileSync(file);
  assert.deepEqual(b.subarray(2 << 20, 3 << 20), pattern(size, 3).subarray(1 << 20, 2 << 20));
  assert.deepEqual(b.subarray(3 << 20, 4 << 20), pattern(size, 3).subarray(0, 1 << 20));
});

test("FileBlockDevice.writeZeroes handles ranges larger than its iovec batch", async (t) => {
  const size = 20 << 20;
  const { file, cleanup } = tmpFile(Buffer.alloc(size, 0xaa));
  t.after(cleanup);
  const dev = await FileBlockDevice.open(file);
  await dev.writeZeroes(1, size - 2, { fua: true });
  await dev.close();
  const b = fs.readFileSync(file);
  assert.equal(b[0], 0xaa);
  assert.equal(b[size - 1], 0xaa);
  assert.ok(b.subarray(1, size - 1).every((x) => x === 0));
});

test("FileBlockDevice read past the end of the file fails with EIO", async (t) => {
  const { file, cleanup } = tmpFile(pattern(4096));
  t.after(cleanup);
  for (const inline of [0, 65536]) {
    const dev = await FileBlockDevice.open(file, { inlineReadMaxBytes: inline });
    await assert.rejects(dev.read(4000, Buffer.alloc(200)), (e: unknown) => e instanceof IoError && e.errno === "EIO");
    await dev.close();
  }
});

test("FileBlockDevice read-only refuses writes with EROFS and reports caps", async (t) => {
  const { file, cleanup } = tmpFile(pattern(8192));
  t.after(cleanup);
  const dev = await FileBlockDevice.open(file, { readOnly: true });
  assert.equal(dev.caps.write, false);
  await assert.rejects(dev.write(0, Buffer.alloc(1)), (e: unknown) => e instanceof IoError && e.errno === "EROFS");
  await assert.rejects(dev.writeZeroes(0, 1), (e: unknown) => e instanceof IoError && e.errno === "EROFS");
  await dev.close();
});

test("FileBlockDevice.open fails with the errno: missing file, directory, character device", async () => {
  await assert.rejects(FileBlockDevice.open("/nonexistent/x.img"), (e: unknown) => e instanceof IoError && e.errno === "ENOENT");
  await assert.rejects(FileBlockDevice.open(os.tmpdir()), (e: unknown) => e instanceof IoError && (e.errno === "EISDIR" || e.errno === "EINVAL"));
  await assert.rejects(FileBlockDevice.open("/dev/null"), (e: unknown) => e instanceof IoError && e.errno === "EINVAL");
});

test("FileBlockDevice after close fails with EBADF and close waits for operations in flight", async (t) => {
  const { file, cleanup } = tmpFile(pattern(1 << 20));
  t.after(cleanup);
  const dev = await FileBlockDevice.open(file, { inlineReadMaxBytes: 0 });
  const pending = dev.read(0, Buffer.alloc(1 << 20));
  const closing = dev.close();
  await pending; // completes on the still-open descriptor
  await closing;
  await assert.rejects(dev.read(0, Buffer.alloc(1)), (e: unknown) => e instanceof IoError && e.errno === "EBADF");
  await assert.rejects(dev.flush(), (e: unknown) => e instanceof IoError && e.errno === "EBADF");
});

test("FileBlockDevice.flush shares an fdatasync only among callers that arrived before it started", async (t) => {
  const { file, cleanup } = tmpFile(pattern(4096));
  t.after(cleanup);
  const dev = await FileBlockDevice.open(file);
  const real = fs.fdatasync;
  let calls = 0;
  const started: Array<() => void> = [];
  // Hold each fdatasync until released, to control overlap.
  (fs as { fdatasync: unknown }).fdatasync = (fd: number, cb: (e: Error | null) => void) => {
    calls++;
    started.push(() => real(fd, cb));
  };
  t.after(() => {
    (fs as { fdatasync: unknown }).fdatasync = real;
  });
  const f1 = dev.flush(); // starts sync #1
  const f2 = dev.flush(); // arrives during #1: must wait for #2
  const f3 = dev.flush(); // shares #2 with f2
  assert.equal(calls, 1);
  let f2done = false;
  void f2.then(() => (f2done = true));
  started.shift()?.();
  await f1;
  assert.equal(f2done, false, "a flush never rides on an fdatasync that started before it");
  assert.equal(calls, 2);
  started.shift()?.();
  await Promise.all([f2, f3]);
  assert.equal(calls, 2, "f2 and f3 shared one fdatasync");
  await dev.close();
});

test("FileBlockDevice: a failed fdatasync is sticky and never retried into success", async (t) => {
  const { file, cleanup } = tmpFile(pattern(4096));
  t.after(cleanup);
  const dev = await FileBlockDevice.open(file);
  const real = fs.fdatasync;
  let calls = 0;
  (fs as { fdatasync: unknown }).fdatasync = (_fd: number, cb: (e: Error | null) => void) => {
    calls++;
    setImmediate(() => cb(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" })));
  };
  t.after(() => {
    (fs as { fdatasync: unknown }).fdatasync = real;
  });
  await assert.rejects(dev.flush(), (e: unknown) => e instanceof IoError && e.errno === "EIO");
  (fs as { fdatasync: unknown }).fdatasync = real; // the disk "recovers"
  await assert.rejects(dev.flush(), (e: unknown) => e instanceof IoError && e.errno === "EIO");
  await assert.rejects(dev.write(0, Buffer.alloc(512), { fua: true }), (e: unknown) => e instanceof IoError && e.errno === "EIO");
  await dev.write(0, Buffer.alloc(512)); // plain writes still go to the page cache
  assert.equal(calls, 1);
  await dev.close();
});

test("FileBlockDevice maps write errors to IoError with the errno", async (t) => {
  const { file, cleanup } = tmpFile(pattern(4096));
  t.after(cleanup);
  const dev = await FileBlockDevice.open(file, { inlineWriteMaxBytes: 0 });
  const real = fs.write;
  (fs as { write: unknown }).write = (...args: unknown[]) => {
    const cb = args[args.length - 1] as (e: Error | null, n: number) => void;
    setImmediate(() => cb(Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" }), 0));
  };
  t.after(() => {
    (fs as { write: unknown }).write = real;
  });
  await assert.rejects(dev.write(0, Buffer.alloc(512)), (e: unknown) => e instanceof IoError && e.errno === "ENOSPC");
  (fs as { write: unknown }).write = real;
  await dev.close();
});
