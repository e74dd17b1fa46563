import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freeNbdDevices, kernelHasNbd, nbdBlockSize, nbdConnectArgs, nbdConnectionPid, nbdDisconnectArgs, nbdIndex, ownsNbdConnection } from "./kernel-nbd.js";

/**
 * The parts of the kernel nbd device path that need no kernel, on a fake
 * sysfs directory laid out as the kernel lays out /sys (block/nbdX/pid exists
 * only while nbdX is connected; module/nbd while the driver is loaded). The
 * real driver is absent on the machine these were written on:
 * test/integration/daemon/kernel-nbd-device-path.test.ts drives it where it exists.
 */
function fakeSys(devices: Record<string, number | undefined>, opts: { module?: boolean; others?: string[] } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-fake-sys-"));
  mkdirSync(join(dir, "block"));
  for (const [name, pid] of Object.entries(devices)) {
    mkdirSync(join(dir, "block", name));
    writeFileSync(join(dir, "block", name, "size"), "0\n");
    if (pid !== undefined) writeFileSync(join(dir, "block", name, "pid"), `${pid}\n`);
  }
  for (const name of opts.others ?? []) mkdirSync(join(dir, "block", name));
  if (opts.module) mkdirSync(join(dir, "module", "nbd"), { recursive: true });
  return dir;
}

test("kernelHasNbd: /sys/module/nbd present or not", () => {
  const withModule = fakeSys({}, { module: true });
  const without = fakeSys({});
  try {
    assert.equal(kernelHasNbd(withModule), true);
    assert.equal(kernelHasNbd(without), false);
  } finally {
    rmSync(withModule, { recursive: true });
    rmSync(without, { recursive: true });
  }
});

test("freeNbdDevices: unconnected nbd devices in numeric order; connected, taken and other block devices left out", () => {
  const sys = fakeSys({ nbd0: 4242, nbd1: undefined, nbd10: undefined, nbd2: undefined, nbd3: 17 }, { others: ["loop0", "sda", "nbd1p1x"] });
  try {
    assert.deepEqual(freeNbdDevices(sys), ["/dev/nbd1", "/dev/nbd2", "/dev/nbd10"]);
    assert.deepEqual(freeNbdDevices(sys, new Set(["/dev/nbd1"])), ["/dev/nbd2", "/dev/nbd10"]);
  } finally {
    rmSync(sys, { recursive: true });
  }
});

test("freeNbdDevices: none when every device is connected, or there is no block directory", () => {
  const sys = fakeSys({ nbd0: 1, nbd1: 2 });
  try {
    assert.deepEqual(freeNbdDevices(sys), []);
    assert.deepEqual(freeNbdDevices(join(sys, "nowhere")), []);
  } finally {
    rmSync(sys, { recursive: true });
  }
});

test("nbdConnectionPid: the kernel's pid for a connected device, undefined when unconnected, absent or garbled", () => {
  const sys = fakeSys({ nbd0: 4242, nbd1: undefined, nbd2: undefined });
  try {
    writeFileSync(join(sys, "block", "nbd2", "pid"), "garbage\n");
    assert.equal(nbdConnectionPid("/dev/nbd0", sys), 4242);
    assert.equal(nbdConnectionPid("/dev/nbd1", sys), undefined);
    assert.equal(nbdConnectionPid("/dev/nbd2", sys), undefined);
    assert.equal(nbdConnectionPid("/dev/nbd9", sys), undefined);
  } finally {
    rmSync(sys, { recursive: true });
  }
});

test("ownsNbdConnection: only the connection whose pid was recorded (by the kernel, or nbd-client's before it connected)", () => {
  const own = { device: "/dev/nbd0", clientPid: 100, pid: 200 };
  assert.equal(ownsNbdConnection(own, 200), true, "the pid the kernel showed after our connect");
  assert.equal(ownsNbdConnection(own, 100), true, "the nbd-client we started");
  assert.equal(ownsNbdConnection(own, 300), false, "connected by someone else since");
  assert.equal(ownsNbdConnection(own, undefined), false, "not connected");
  // Killed between starting nbd-client and recording the kernel's pid.
  assert.equal(ownsNbdConnection({ device: "/dev/nbd0", clientPid: 100, pid: undefined }, 100), true);
  assert.equal(ownsNbdConnection({ device: "/dev/nbd0", clientPid: undefined, pid: undefined }, 100), false);
});

test("nbdIndex: nbd device names only", () => {
  assert.equal(nbdIndex("/dev/nbd12"), 12);
  assert.equal(nbdIndex("nbd0"), 0);
  assert.equal(nbdIndex("nbd1p1"), undefined);
  assert.equal(nbdIndex("/dev/loop3"), undefined);
});

test("nbdBlockSize: 4096 where the LV size allows, else 512", () => {
  assert.equal(nbdBlockSize(32 << 20), 4096);
  assert.equal(nbdBlockSize(4096 * 3 + 512), 512);
  assert.equal(nbdBlockSize(1024), 512);
});

test("nbdConnectArgs / nbdDisconnectArgs: nbd-client(8)'s spelling", () => {
  assert.deepEqual(nbdConnectArgs({ socket: "/run/ulvm/nbd.sock", exportName: "#dev/vg/lv", device: "/dev/nbd3", sizeBytes: 32 << 20, readOnly: false }), [
    "-unix",
    "/run/ulvm/nbd.sock",
    "/dev/nbd3",
    "-name",
    "#dev/vg/lv",
    "-block-size",
    "4096",
  ]);
  assert.deepEqual(nbdConnectArgs({ socket: "/s", exportName: "#dev/vg/ro", device: "/dev/nbd0", sizeBytes: 1536, readOnly: true }), [
    "-unix",
    "/s",
    "/dev/nbd0",
    "-name",
    "#dev/vg/ro",
    "-block-size",
    "512",
    "-readonly",
  ]);
  assert.deepEqual(nbdDisconnectArgs("/dev/nbd3"), ["-d", "/dev/nbd3"]);
});
