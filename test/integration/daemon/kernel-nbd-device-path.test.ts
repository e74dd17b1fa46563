import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, devicePathUnavailable, isRoot, which } from "../../helpers/lab.js";
import { devicePathRecord } from "../../helpers/device-path-record.js";
import type { DevicePathRecord } from "../../../src/daemon/device-path.js";
import { kernelHasNbd, nbdConnectArgs, nbdConnectionPid, ownsNbdConnection, type NbdOwnership } from "../../../src/daemon/kernel-nbd.js";

/**
 * Device paths on the kernel's nbd driver (activation { device_path_server =
 * "nbd" }): /dev/nbdX connected by nbd-client to the LV's NBD export. The
 * machine this was written on has no nbd module (no /sys/module/nbd, no
 * modprobe), so the tests that need the driver skip there with a message; the
 * tests that run everywhere check the refusal, that "auto" keeps the FUSE
 * path, and that the nbd-client arguments ulvm builds negotiate with the
 * daemon's export (nbd-client only fails at the kernel step without a module).
 */
function nbdLab(server: string): Lab {
  const lab = new Lab("ulvm-knbd-");
  lab.addDisk("d1", 64);
  lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 1\n\tdevice_path_server = "${server}"\n}\n`);
  lab.ok("pvcreate", lab.disk("d1"));
  lab.ok("vgcreate", "vg", lab.disk("d1"));
  lab.ok("lvcreate", "-an", "-L", "32m", "-n", "lv", "vg");
  return lab;
}

const hasNbd = kernelHasNbd();
const basics = isRoot ? undefined : "needs root";
const noModuleSkip = hasNbd ? "the kernel has the nbd module here: the refusal cannot be seen" : basics;
const needsNbd = !hasNbd
  ? "the kernel has no nbd module (/sys/module/nbd absent): kernel nbd device paths cannot run here"
  : !which("nbd-client")
    ? "nbd-client not installed (apt-get install nbd-client)"
    : (devicePathUnavailable() ?? (which("mkfs.ext4") ? basics : "mkfs.ext4 missing"));

/** Disconnect, at cleanup, the nbd device a lab's daemon connected, if it still holds that connection. */
function releaseNbdAtCleanup(lab: Lab, own: NbdOwnership): void {
  lab.onCleanup(() => {
    if (ownsNbdConnection(own, nbdConnectionPid(own.device))) lab.run("nbd-client", ["-d", own.device]);
  });
}

function lvAttr(lab: Lab): string {
  return lab.ok("lvs", "--noheadings", "-o", "lv_attr", "vg/lv").trim();
}

test("kernel nbd: without the nbd module, lvchange -ay is refused with an lvm-style message and activates nothing", { skip: noModuleSkip }, () => {
  const lab = nbdLab("nbd");
  try {
    const r = lab.ulvm("lvchange", "-ay", "vg/lv");
    assert.equal(r.code, 5);
    assert.equal(r.stderr, "  device_path_server nbd: the kernel has no nbd module\n");
    assert.equal(r.stdout, "");
    assert.equal(lvAttr(lab)[4], "-", "not active");
    assert.equal(existsSync(join(lab.dir, "dev", "vg", "lv")), false);
    const devices = join(lab.dir, "run", "devices");
    assert.deepEqual(existsSync(devices) ? readdirSync(devices) : [], [], "no device-path record");
  } finally {
    lab.cleanup();
  }
});

test("kernel nbd: device_path_server = \"auto\" without the nbd module keeps the daemon's FUSE path", { skip: noModuleSkip ?? devicePathUnavailable() }, () => {
  const lab = nbdLab("auto");
  try {
    lab.ok("lvchange", "-ay", "vg/lv");
    assert.match(readlinkSync(join(lab.dir, "dev", "vg", "lv")), /^\/dev\/loop\d+$/);
    assert.equal(devicePathRecord(lab).server, "fuse");
    lab.ok("lvchange", "-an", "vg/lv");
  } finally {
    lab.cleanup();
  }
});

test("kernel nbd: the nbd-client arguments ulvm builds negotiate with the daemon's device-path export", { skip: which("nbd-client") ? (hasNbd ? "the nbd module is here: the tests below connect for real" : devicePathUnavailable()) : "nbd-client not installed (apt-get install nbd-client)" }, () => {
  // Without the module nbd-client gets as far as it can: it negotiates the
  // export (its size is the LV's) and then fails to reach the kernel.
  const lab = nbdLab("fuse");
  try {
    lab.ok("lvchange", "-ay", "vg/lv");
    const socket = join(lab.dir, "run", "nbd.sock");
    const ok = lab.run("nbd-client", nbdConnectArgs({ socket, exportName: "#dev/vg/lv", device: "/dev/nbd0", sizeBytes: 32 << 20, readOnly: false }));
    assert.match(ok.stdout, /size = 32MB/, ok.stdout + ok.stderr);
    assert.match(ok.stderr, /nbd module/);
    const unknown = lab.run("nbd-client", nbdConnectArgs({ socket, exportName: "#dev/vg/nope", device: "/dev/nbd0", sizeBytes: 32 << 20, readOnly: false }));
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /export "#dev\/vg\/nope" not found/);
    lab.ok("lvchange", "-an", "vg/lv");
  } finally {
    lab.cleanup();
  }
});

test("kernel nbd: /dev/nbdX device path: mkfs, mount, lvchange -an refused while mounted, same bytes as the export, disconnected on -an", { skip: needsNbd }, () => {
  const lab = nbdLab("nbd");
  try {
    lab.ok("lvchange", "-ay", "vg/lv");
    const dev = join(lab.dir, "dev", "vg", "lv");
    const rec = devicePathRecord(lab);
    assert.equal(rec.server, "nbd");
    assert.ok(rec.nbd);
    releaseNbdAtCleanup(lab, rec.nbd);
    assert.equal(readlinkSync(dev), rec.nbd.device);
    assert.ok(statSync(dev).isBlockDevice());
    assert.equal(nbdConnectionPid(rec.nbd.device), rec.nbd.pid, "the kernel's connection is the recorded one");
    assert.equal(Number(readFileSync(`/sys/block/${rec.nbd.device.slice(5)}/size`, "utf8")) * 512, 32 << 20);

    assert.equal(lab.run("mkfs.ext4", ["-q", dev]).code, 0);
    const mnt = join(lab.dir, "mnt");
    mkdirSync(mnt);
    assert.equal(lab.run("mount", [dev, mnt]).code, 0);
    const data = Buffer.alloc(3 << 20, 0x5a);
    writeFileSync(join(mnt, "big"), data);
    const busy = lab.ulvm("lvchange", "-an", "vg/lv");
    assert.equal(busy.code, 5);
    assert.match(busy.stderr, /Logical volume vg\/lv contains a filesystem in use\./);
    assert.equal(lab.run("umount", [mnt]).code, 0);
    const fsck = lab.run("e2fsck", ["-fn", dev]);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);

    const viaNbd = join(lab.dir, "nbd.img");
    assert.equal(lab.run("nbdcopy", [`nbd+unix:///vg/lv?socket=${join(lab.dir, "run", "nbd.sock")}`, viaNbd]).code, 0);
    assert.ok(readFileSync(viaNbd).equals(readFileSync(dev)));

    lab.ok("lvchange", "-an", "vg/lv");
    assert.equal(nbdConnectionPid(rec.nbd.device), undefined, "disconnected");
    assert.equal(existsSync(dev), false);
  } finally {
    lab.cleanup();
  }
});

test("kernel nbd: lvrename of an active LV moves the link, the nbd connection stays", { skip: needsNbd }, () => {
  const lab = nbdLab("nbd");
  try {
    lab.ok("lvchange", "-ay", "vg/lv");
    const before = devicePathRecord(lab);
    releaseNbdAtCleanup(lab, before.nbd!);
    lab.ok("lvrename", "vg", "lv", "data");
    const after = devicePathRecord(lab);
    assert.equal(after.lv, "data");
    assert.deepEqual(after.nbd, before.nbd);
    assert.equal(readlinkSync(join(lab.dir, "dev", "vg", "data")), before.nbd!.device);
    assert.equal(existsSync(join(lab.dir, "dev", "vg", "lv")), false);
    assert.equal(nbdConnectionPid(before.nbd!.device), before.nbd!.pid);
    lab.ok("lvchange", "-an", "vg/data");
    assert.equal(nbdConnectionPid(before.nbd!.device), undefined);
  } finally {
    lab.cleanup();
  }
});

test("kernel nbd: after kill -9 the next daemon disconnects the devices it recorded, never one connected by someone else", { skip: needsNbd }, () => {
  const lab = nbdLab("nbd");
  try {
    lab.ok("lvcreate", "-an", "-L", "8m", "-n", "other", "vg");
    lab.ok("lvchange", "-ay", "vg/lv");
    const ours = recordOf(lab, "vg-lv");
    releaseNbdAtCleanup(lab, ours.nbd!);
    lab.stopDaemon("SIGKILL");
    assert.equal(nbdConnectionPid(ours.nbd!.device), ours.nbd!.pid, "still connected after the kill");
    lab.ok("lvchange", "-ay", "vg/other"); // a new daemon: cleans what the dead one recorded first
    assert.equal(nbdConnectionPid(ours.nbd!.device), undefined, "ours disconnected at restart");

    // A record whose device now shows another connection (another pid): what
    // a device disconnected behind ulvm's back and connected by someone else
    // looks like. Stand-in: the lab rewrites the recorded pids of a live one.
    const other = recordOf(lab, "vg-other");
    releaseNbdAtCleanup(lab, other.nbd!);
    lab.stopDaemon("SIGKILL");
    writeFileSync(join(lab.dir, "run", "devices", "vg-other.json"), JSON.stringify({ ...other, nbd: { device: other.nbd!.device, clientPid: 1, pid: 1 } }));
    lab.ok("lvchange", "-ay", "vg/lv");
    assert.equal(nbdConnectionPid(other.nbd!.device), other.nbd!.pid, "a connection the record does not own is left alone");
    lab.ok("lvchange", "-an", "vg/lv");
  } finally {
    lab.cleanup();
  }
});

function recordOf(lab: Lab, name: string): DevicePathRecord {
  return JSON.parse(readFileSync(join(lab.dir, "run", "devices", `${name}.json`), "utf8")) as DevicePathRecord;
}
