import { test } from "node:test";
import assert from "node:assert/strict";
import { FaultBlockDevice, IoRecorder, crashImage } from "./fault-block-device.js";
import { MemoryBlockDevice } from "./memory-block-device.js";
import { IoError } from "../errors/errors.js";

const isIo = (errno: string) => (e: unknown) => e instanceof IoError && e.errno === errno;

test("FaultBlockDevice passes I/O through when no fault is scripted", async () => {
  const m = new MemoryBlockDevice("m", 4096);
  const f = new FaultBlockDevice(m);
  await f.write(512, new Uint8Array([1, 2, 3]));
  const b = new Uint8Array(3);
  await f.read(512, b);
  assert.deepEqual([...b], [1, 2, 3]);
  assert.equal(f.sizeBytes, 4096);
  assert.equal(f.stats.writes, 1);
  assert.equal(f.stats.reads, 1);
});

test("a range rule fails only ops touching the range, for the given ops", async () => {
  const f = new FaultBlockDevice(new MemoryBlockDevice("m", 8192));
  f.failRange(1024, 512, ["read"]);
  await f.read(0, new Uint8Array(1024));
  await f.read(1536, new Uint8Array(512));
  await assert.rejects(f.read(1000, new Uint8Array(100)), isIo("EIO"));
  await f.write(1024, new Uint8Array(512));
  await f.flush();
});

test("afterCount lets N matching ops through, failCount retires the rule", async () => {
  const f = new FaultBlockDevice(new MemoryBlockDevice("m", 4096));
  f.addRule({ ops: ["write"], afterCount: 2, failCount: 1, errno: "ENOSPC" });
  await f.write(0, new Uint8Array(1));
  await f.write(0, new Uint8Array(1));
  await assert.rejects(f.write(0, new Uint8Array(1)), isIo("ENOSPC"));
  await f.write(0, new Uint8Array(1));
  assert.equal(f.stats.injectedErrors, 1);
});

test("vanish fails every op with ENXIO until reappear", async () => {
  const f = new FaultBlockDevice(new MemoryBlockDevice("m", 4096));
  f.vanish();
  await assert.rejects(f.read(0, new Uint8Array(1)), isIo("ENXIO"));
  await assert.rejects(f.write(0, new Uint8Array(1)), isIo("ENXIO"));
  await assert.rejects(f.flush(), isIo("ENXIO"));
  f.reappear();
  await f.flush();
});

test("hold freezes ops until release", async () => {
  const m = new MemoryBlockDevice("m", 4096);
  const f = new FaultBlockDevice(m);
  f.hold(["write"]);
  let done = false;
  const p = f.write(0, new Uint8Array([9])).then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(done, false);
  assert.equal(f.heldCount, 1);
  assert.equal(m.bytes[0], 0);
  f.release();
  await p;
  assert.equal(m.bytes[0], 9);
});

test("delay postpones ops but they still complete", async () => {
  const f = new FaultBlockDevice(new MemoryBlockDevice("m", 4096));
  f.setDelay(1);
  await f.write(0, new Uint8Array([1]));
  await f.flush();
});

test("recording logs writes, FUA and flushes in global order; crashImage keeps what was durable", async () => {
  const rec = new IoRecorder();
  const a = new FaultBlockDevice(new MemoryBlockDevice("a", 4096), { recorder: rec });
  const b = new FaultBlockDevice(new MemoryBlockDevice("b", 4096), { recorder: rec });
  await a.write(0, new Uint8Array([1])); // seq 0, made durable by flush 2
  await b.write(0, new Uint8Array([2]), { fua: true }); // seq 1
  await a.flush(); // seq 2
  await a.write(1, new Uint8Array([3])); // seq 3, not durable
  assert.deepEqual(
    rec.records.map((r) => `${r.device}:${r.op}${r.fua ? "+fua" : ""}`),
    ["a:write", "b:write+fua", "a:flush", "a:write"],
  );
  const base = new Uint8Array(4);
  assert.deepEqual([...crashImage(base, rec.records, "a", 4, () => false)], [1, 0, 0, 0]);
  assert.deepEqual([...crashImage(base, rec.records, "a", 4, () => true)], [1, 3, 0, 0]);
  assert.deepEqual([...crashImage(base, rec.records, "a", 2, () => false)], [0, 0, 0, 0]);
  assert.deepEqual([...crashImage(base, rec.records, "b", 4, () => false)], [2, 0, 0, 0]);
});

test("the recorder keeps its own copy of the data, even of a Buffer the caller reuses", async () => {
  // Found by the torture suite (power-loss): Buffer#slice() is a view, so records of writes from the
  // NBD server's pooled buffers changed when the pool reused them, and crash images held later data.
  const rec = new IoRecorder();
  const f = new FaultBlockDevice(new MemoryBlockDevice("m", 4096), { name: "m", recorder: rec });
  const pooled = Buffer.alloc(512, 1);
  await f.write(0, pooled);
  pooled.fill(2);
  assert.equal(rec.records[0]!.data[0], 1);
  assert.equal(crashImage(new Uint8Array(4096), rec.records, "m", 1, () => true)[0], 1);
});
