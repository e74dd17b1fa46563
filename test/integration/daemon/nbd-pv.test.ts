import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, which } from "../../helpers/lab.js";
import { NbdClientDevice } from "../../../src/nbd/client.js";

/**
 * A PV on an NBD export (issue 18): nbdkit's file plugin serves an image
 * from outside the scanned directories, and ulvm reaches it only through
 * its nbd+unix URI, as a remote host's disk. pvcreate, vgcreate and lvcreate
 * take the URI; reports show it; data written through the daemon's own NBD
 * export of the LV lands in the remote image at the PV's data offset.
 */
const nbdkitMissing = which("nbdkit") ? undefined : "nbdkit not installed";

async function startNbdkit(lab: Lab): Promise<{ child: ChildProcess; uri: string; image: string }> {
  const dir = join(lab.dir, "remote");
  mkdirSync(dir);
  const image = join(dir, "pv.img");
  writeFileSync(image, "");
  truncateSync(image, 64 * 1024 * 1024);
  const socket = join(dir, "nbdkit.sock");
  // nbdkit writes its pid file once it accepts connections (the socket file exists a moment before).
  const pidFile = join(dir, "nbdkit.pid");
  const child = spawn("nbdkit", ["-f", "--exit-with-parent", "-P", pidFile, "-U", socket, "file", image], { stdio: "ignore" });
  for (let i = 0; i < 500 && !(existsSync(pidFile) && readFileSync(pidFile, "utf8").endsWith("\n")); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(existsSync(pidFile), "nbdkit is listening");
  return { child, uri: `nbd+unix:///?socket=${socket}`, image };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await gone;
}

test("a VG on an nbd+unix PV: pvcreate, vgcreate, lvcreate, reports show the URI, LV data lands on the remote image", { skip: nbdkitMissing }, async () => {
  const lab = new Lab("ulvm-nbdpv-");
  let server: ChildProcess | undefined;
  try {
    const remote = await startNbdkit(lab);
    server = remote.child;
    lab.writeConfig(
      `devices {\n\tscan = [ "${join(lab.dir, "disks")}", "${remote.uri}" ]\n\tnbd_timeout_s = 10\n}\nactivation {\n\tdevice_path = 0\n}\n`,
    );
    assert.match(lab.ok("pvcreate", remote.uri), /Physical volume "nbd\+unix:\/\/\/\?socket=.*" successfully created/);
    lab.ok("vgcreate", "vgr", remote.uri);
    lab.ok("lvcreate", "-L", "8m", "-n", "lv1", "vgr");

    const pvs = lab.ok("pvs", "--noheadings", "-o", "pv_name,vg_name,pe_start", "--units", "b", "--nosuffix");
    const row = pvs.split("\n").map((l) => l.trim().split(/\s+/)).find((f) => f[1] === "vgr");
    assert.ok(row, pvs);
    assert.equal(row[0], remote.uri);
    const peStart = Number(row[2]);
    assert.match(lab.ok("lvs", "--noheadings", "-o", "devices", "vgr/lv1").trim(), new RegExp(`^${remote.uri.replace(/[?+/]/g, "\\$&")}\\(0\\)$`));

    // Through the daemon's NBD export of the LV, with ulvm's own client.
    const data = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
    const lv = await NbdClientDevice.open(`nbd+unix:///vgr/lv1?socket=${join(lab.dir, "run", "nbd.sock")}`);
    try {
      await lv.write(4096, data, { fua: true });
      const back = Buffer.alloc(data.length);
      await lv.read(4096, back);
      assert.ok(back.equals(data));
    } finally {
      await lv.close();
    }
    lab.ok("vgchange", "-an", "vgr");
    const onRemote = Buffer.alloc(data.length);
    const fd = openSync(remote.image, "r");
    try {
      readSync(fd, onRemote, 0, onRemote.length, peStart + 4096);
    } finally {
      closeSync(fd);
    }
    assert.ok(onRemote.equals(data), "the LV's bytes are in the remote image after pe_start");

    // --devices names the export alone.
    assert.match(lab.ok("pvs", "--devices", remote.uri, "--noheadings", "-o", "pv_name,vg_name"), /nbd\+unix:\/\/\/\?socket=\S+\s+vgr/);
  } finally {
    if (server) await stop(server);
    lab.cleanup();
  }
});

test("an unreachable or malformed NBD URI: lvm-style message, exit 5, no stack trace", () => {
  const lab = new Lab("ulvm-nbdpv-");
  try {
    const missing = `nbd+unix:///?socket=${join(lab.dir, "none.sock")}`;
    const r = lab.ulvm("pvcreate", "--devices", missing, missing);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /Cannot use nbd\+unix:\/\/\/\?socket=\S+: cannot connect to NBD server/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    const bad = lab.ulvm("pvcreate", "--devices", "nbd://host/?frobnicate=1", "nbd://host/?frobnicate=1");
    assert.equal(bad.code, 5);
    assert.match(bad.stderr, /unknown NBD URI parameter "frobnicate"/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /);
  } finally {
    lab.cleanup();
  }
});
