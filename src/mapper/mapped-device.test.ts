import { test } from "node:test";
import assert from "node:assert/strict";
import { MappedDevice } from "./mapped-device.js";
import { MapperRegistry } from "./mapper-registry.js";
import { Table } from "./table.js";
import { TableError } from "./table-error.js";
import { FaultBlockDevice } from "../blockdev/fault-block-device.js";
import { BusyError, IoError } from "../errors/errors.js";
import { mem, testEnv, tick } from "./test-helpers.js";

const isIo = (errno: string) => (e: unknown) => e instanceof IoError && e.errno === errno;

function linearDev(name = "dm0") {
  const pv = mem("pv", 1 << 20);
  const env = testEnv({ pv });
  const dev = new MappedDevice(name, { env });
  return { pv, env, dev };
}

test("a device without a live table has size 0 and fails I/O with ENXIO", async () => {
  const { dev } = linearDev();
  assert.equal(dev.sizeBytes, 0);
  await assert.rejects(dev.read(0, new Uint8Array(512)), isIo("ENXIO"));
  await assert.rejects(dev.resume(), TableError);
});

test("load() builds the inactive table; resume() makes it live", async () => {
  const { dev, pv } = linearDev();
  await dev.load(Table.parse("0 16 linear pv 8\n16 8 zero\n"));
  assert.equal(dev.sizeBytes, 0, "loading does not touch the live table");
  assert.equal(dev.info().inactiveTable, true);
  await dev.resume();
  assert.equal(dev.sizeBytes, 24 * 512);
  await dev.write(0, new Uint8Array(512).fill(7));
  assert.equal(pv.bytes[8 * 512], 7);
  assert.equal(dev.table(), "0 16 linear pv 8\n16 8 zero\n");
  assert.equal(dev.status(), "0 16 linear\n16 8 zero\n");
  assert.deepEqual(dev.info(), { name: "dm0", state: "ACTIVE", liveTable: true, inactiveTable: false, sizeSectors: 24, eventNr: 0, inflight: 0 });
});

test("load() rejects unknown target types and bad arguments with TableError, releasing opened devices", async () => {
  const { dev, env } = linearDev();
  await assert.rejects(dev.load(Table.parse("0 8 nosuch\n")), /unknown target type "nosuch"/);
  await assert.rejects(dev.load(Table.parse("0 8 linear pv\n")), /Invalid argument count/);
  await assert.rejects(dev.load(Table.parse("0 8 linear pv x\n")), /Invalid device sector/);
  await assert.rejects(dev.load(Table.parse("0 8 linear nodev 0\n")), /Device lookup failed: nodev/);
  await assert.rejects(dev.load(Table.parse("0 8 zero 1\n")), /No arguments required/);
  // line 1 opens pv, line 2 fails: pv must be given back
  await assert.rejects(dev.load(Table.parse("0 8 linear pv 0\n8 4096 linear pv 0\n")), /pv too small for target/);
  assert.deepEqual(env.released, ["pv", "pv"], "both opens were given back");
  assert.equal(dev.info().inactiveTable, false);
});

test("striped arguments are checked like dm-stripe's constructor", async () => {
  const { dev } = linearDev();
  await assert.rejects(dev.load(Table.parse("0 64 striped 0 8 pv 0\n")), /Invalid stripe count/);
  await assert.rejects(dev.load(Table.parse("0 64 striped 2 0 pv 0 pv 64\n")), /Invalid chunk_size/);
  await assert.rejects(dev.load(Table.parse("0 63 striped 2 8 pv 0 pv 64\n")), /not divisible by number of stripes/);
  await assert.rejects(dev.load(Table.parse("0 64 striped 2 24 pv 0 pv 64\n")), /not divisible by chunk size/);
  await assert.rejects(dev.load(Table.parse("0 64 striped 2 8 pv 0\n")), /Not enough destinations/);
  await assert.rejects(dev.load(Table.parse("0 64 striped 2 8 pv 0 pv y\n")), /Couldn't parse stripe destination/);
  await dev.load(Table.parse("0 64 striped 2 8 pv 0 pv 64\n"));
});

test("requests must lie inside the device", async () => {
  const { dev } = linearDev();
  await dev.load(Table.parse("0 16 zero\n"));
  await dev.resume();
  await assert.rejects(dev.read(16 * 512, new Uint8Array(512)), isIo("EINVAL"));
  await assert.rejects(dev.read(-512, new Uint8Array(512)), isIo("EINVAL"));
  await assert.rejects(dev.write(15 * 512, new Uint8Array(1024)), isIo("ENOSPC"));
  await assert.rejects(dev.write(16 * 512 - 1, new Uint8Array(2)), isIo("ENOSPC"));
  const z = new Uint8Array(512).fill(1);
  await dev.read(0, z);
  assert.equal(z[0], 0);
});

test("unaligned reads and writes are served by bounce buffers and read-modify-write", async () => {
  const { dev, pv } = linearDev();
  await dev.load(Table.parse("0 16 linear pv 8\n16 16 linear pv 100\n"));
  await dev.resume();
  const base = 8 * 512;
  pv.bytes.fill(0xee);
  await dev.write(3, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...pv.bytes.subarray(base, base + 8)], [0xee, 0xee, 0xee, 1, 2, 3, 0xee, 0xee]);
  // across a sector and a target boundary
  const data = new Uint8Array(700).fill(7);
  await dev.write(16 * 512 - 300, data);
  assert.ok(pv.bytes.subarray(base + 16 * 512 - 300, base + 16 * 512).every((b) => b === 7));
  assert.ok(pv.bytes.subarray(100 * 512, 100 * 512 + 400).every((b) => b === 7));
  assert.equal(pv.bytes[100 * 512 + 400], 0xee);
  assert.equal(pv.bytes[base + 16 * 512 - 301], 0xee);
  const back = new Uint8Array(5);
  await dev.read(16 * 512 - 2, back);
  assert.deepEqual([...back], [7, 7, 7, 7, 7]);
  await dev.read(2, back);
  assert.deepEqual([...back], [0xee, 1, 2, 3, 0xee]);
  await dev.writeZeroes(10, 2000);
  assert.ok(pv.bytes.subarray(base + 10, base + 2010).every((b) => b === 0));
  assert.equal(pv.bytes[base + 2010], 0xee);
  pv.bytes.fill(0xee);
  await dev.writeZeroes(10, 100);
  assert.ok(pv.bytes.subarray(base + 10, base + 110).every((b) => b === 0));
  assert.equal(pv.bytes[base + 110], 0xee);
  assert.equal(pv.bytes[base + 9], 0xee);
});

test("concurrent partial writes to one sector do not lose each other's bytes", async () => {
  const pv = mem("pv", 1 << 20);
  const slow = new FaultBlockDevice(pv, { name: "slow" });
  slow.setDelay(() => Math.floor(Math.random() * 2));
  const dev = new MappedDevice("dm0", { env: testEnv({ slow }) });
  await dev.load(Table.parse("0 64 linear slow 0\n"));
  await dev.resume();
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 64; i++) writes.push(dev.write(i * 8, new Uint8Array(8).fill(i + 1)));
  writes.push(dev.write(1024, new Uint8Array(1024).fill(0x80)));
  await Promise.all(writes);
  for (let i = 0; i < 64; i++) assert.ok(pv.bytes.subarray(i * 8, i * 8 + 8).every((b) => b === i + 1), `piece ${i}`);
  assert.ok(pv.bytes.subarray(1024, 2048).every((b) => b === 0x80));
});

test("suspend queues new I/O and waits for in-flight I/O; reload swaps the table under a queued client", async () => {
  const pv = mem("pv", 1 << 20);
  const slow = new FaultBlockDevice(pv, { name: "slow" });
  const env = testEnv({ pv, slow });
  const dev = new MappedDevice("dm0", { env });
  await dev.load(Table.parse("0 64 linear slow 0\n"));
  await dev.resume();

  slow.hold(["write"]);
  let firstDone = false;
  const first = dev.write(0, new Uint8Array(512).fill(1)).then(() => (firstDone = true));
  await tick();
  let suspended = false;
  const susp = dev.suspend().then(() => (suspended = true));
  await tick();
  assert.equal(suspended, false, "suspend waits for in-flight I/O");
  // A request arriving now is queued, not failed.
  let queuedDone = false;
  const queued = dev.write(512, new Uint8Array(512).fill(2)).then(() => (queuedDone = true));
  slow.release();
  await susp;
  assert.equal(firstDone, true);
  await tick();
  assert.equal(queuedDone, false, "queued while suspended");
  assert.equal(dev.info().state, "SUSPENDED");

  // Reload onto a different offset of the same PV, then resume: the queued write lands on the new table.
  await dev.load(Table.parse("0 64 linear pv 128\n"));
  await dev.resume();
  await queued;
  await first;
  assert.equal(pv.bytes[0], 1);
  assert.equal(pv.bytes[128 * 512 + 512], 2);
  assert.equal(dev.table(), "0 64 linear pv 128\n");
  assert.ok(env.released.includes("slow"), "old targets were destroyed");
});

test("resume() with an inactive table suspends an active device first", async () => {
  const { dev, pv } = linearDev();
  await dev.load(Table.parse("0 8 linear pv 0\n"));
  await dev.resume();
  await dev.load(Table.parse("0 16 linear pv 16\n"));
  await dev.write(0, new Uint8Array(512).fill(3));
  assert.equal(pv.bytes[0], 3, "live table still serves until resume");
  await dev.resume();
  assert.equal(dev.sizeBytes, 16 * 512);
  await dev.write(0, new Uint8Array(512).fill(4));
  assert.equal(pv.bytes[16 * 512], 4);
});

test("remove() fails queued and later I/O with ENXIO", async () => {
  const { dev } = linearDev();
  await dev.load(Table.parse("0 8 zero\n"));
  await dev.resume();
  await dev.suspend();
  const queued = dev.read(0, new Uint8Array(512));
  await dev.remove();
  await assert.rejects(queued, isIo("ENXIO"));
  await assert.rejects(dev.read(0, new Uint8Array(512)), isIo("ENXIO"));
  assert.equal(dev.info().state, "REMOVED");
});

test("error target fails I/O; zero target reads zeroes and swallows writes", async () => {
  const { dev } = linearDev();
  await dev.load(Table.parse("0 8 zero\n8 8 error\n"));
  await dev.resume();
  await dev.write(0, new Uint8Array(512).fill(9));
  const b = new Uint8Array(512).fill(1);
  await dev.read(0, b);
  assert.ok(b.every((x) => x === 0));
  await assert.rejects(dev.read(8 * 512, new Uint8Array(512)), isIo("EIO"));
  await assert.rejects(dev.read(7 * 512, new Uint8Array(1024)), isIo("EIO"), "a request spanning into the error target fails");
});

test("registry resolves mapped devices by name, tracks holders and refuses busy removal and loops", async () => {
  const pv = mem("/dev/pv0", 4 << 20);
  const env = testEnv({ "/dev/pv0": pv });
  const reg = new MapperRegistry(env);
  const low = reg.create("vg-lv_mimage_0");
  await low.load(Table.parse("0 64 linear /dev/pv0 2048\n"));
  await low.resume();
  const top = reg.create("vg-lv");
  await top.load(Table.parse("0 32 linear vg-lv_mimage_0 32\n"));
  await top.resume();
  await top.write(0, new Uint8Array(512).fill(5));
  assert.equal(pv.bytes[(2048 + 32) * 512], 5);
  assert.deepEqual(reg.holders("vg-lv_mimage_0"), ["vg-lv"]);
  await assert.rejects(reg.remove("vg-lv_mimage_0"), BusyError);
  assert.throws(() => reg.create("vg-lv"), BusyError);
  // vg-lv_mimage_0 -> vg-lv would be a loop
  await assert.rejects(low.load(Table.parse("0 32 linear vg-lv 0\n")), /depend on itself/);
  await assert.rejects(top.load(Table.parse("0 32 linear vg-lv 0\n")), /depend on itself/);
  await reg.remove("vg-lv");
  await reg.remove("vg-lv_mimage_0");
  assert.deepEqual(reg.names(), []);
  assert.deepEqual(env.released, ["/dev/pv0"], "the PV is released once; mapped devices are not released to the base env");
});

test("message() routes to the target holding the sector", async () => {
  const { dev } = linearDev();
  await dev.load(Table.parse("0 8 zero\n"));
  await dev.resume();
  await assert.rejects(dev.message(0, ["hello"]), /takes no messages/);
});
