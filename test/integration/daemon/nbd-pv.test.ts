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

/** nbdkit's file plugin serving every image in remote/ as an export of its own name (dir=). */
async function startNbdkit(lab: Lab, images: readonly string[]): Promise<{ child: ChildProcess; uri: (image: string) => string; image: (name: string) => string }> {
  const dir = join(lab.dir, "remote");
  mkdirSync(dir);
  for (const name of images) {
    writeFileSync(join(dir, name), "");
    truncateSync(join(dir, name), 64 * 1024 * 1024);
  }
  const socket = join(lab.dir, "nbdkit.sock");
  // nbdkit writes its pid file once it accepts connections (the socket file exists a moment before).
  const pidFile = join(lab.dir, "nbdkit.pid");
  const child = spawn("nbdkit", ["-f", "--exit-with-parent", "-P", pidFile, "-U", socket, "file", `dir=${dir}`], { stdio: "ignore" });
  for (let i = 0; i < 500 && !(existsSync(pidFile) && readFileSync(pidFile, "utf8").endsWith("\n")); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(existsSync(pidFile), "nbdkit is listening");
  return { child, uri: (name) => `nbd+unix:///${name}?socket=${socket}`, image: (name) => join(dir, name) };
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
    const remote = await startNbdkit(lab, ["pv1.img", "pv2.img"]);
    server = remote.child;
    const [uri1, uri2] = [remote.uri("pv1.img"), remote.uri("pv2.img")];
    lab.writeConfig(
      `devices {\n\tscan = [ "${join(lab.dir, "disks")}", "${uri1}", "${uri2}" ]\n\tnbd_timeout_s = 10\n}\nactivation {\n\tdevice_path = 0\n}\n`,
    );
    assert.match(lab.ok("pvcreate", uri1), /Physical volume "nbd\+unix:\/\/\/pv1\.img\?socket=.*" successfully created/);
    lab.ok("vgcreate", "vgr", uri1);
    lab.ok("vgextend", "vgr", uri2);
    lab.ok("lvcreate", "-L", "8m", "-n", "lv1", "vgr", uri1);
    // A PV list naming the second export with a PE range (the URI's own colons are not the range's).
    lab.ok("lvcreate", "-an", "-L", "4m", "-n", "lv2", "vgr", `${uri2}:1-1`);
    const esc = (u: string): string => u.replace(/[?+/.]/g, "\\$&");
    assert.match(lab.ok("lvs", "--noheadings", "-o", "devices", "vgr/lv2").trim(), new RegExp(`^${esc(uri2)}\\(1\\)$`));

    const pvs = lab.ok("pvs", "--noheadings", "-o", "pv_name,vg_name,pe_start", "--units", "b", "--nosuffix");
    const row = pvs.split("\n").map((l) => l.trim().split(/\s+/)).find((f) => f[0] === uri1);
    assert.ok(row, pvs);
    assert.equal(row[1], "vgr");
    const peStart = Number(row[2]);
    assert.match(lab.ok("lvs", "--noheadings", "-o", "devices", "vgr/lv1").trim(), new RegExp(`^${esc(uri1)}\\(0\\)$`));

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
    const fd = openSync(remote.image("pv1.img"), "r");
    try {
      readSync(fd, onRemote, 0, onRemote.length, peStart + 4096);
    } finally {
      closeSync(fd);
    }
    assert.ok(onRemote.equals(data), "the LV's bytes are in the remote image after pe_start");

    // --devices names the export alone.
    assert.match(lab.ok("pvs", "--devices", uri2, "--noheadings", "-o", "pv_name,vg_name"), new RegExp(`${esc(uri2)}\\s+vgr`));
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

test("devices { nbd_connections = 3 }: the daemon reaches a PV on nbdkit (multi-conn) over 3 connections, round-robin", { skip: nbdkitMissing }, async () => {
  const lab = new Lab("ulvm-nbdmc-");
  let server: ChildProcess | undefined;
  try {
    const image = join(lab.dir, "remote.img");
    writeFileSync(image, "");
    truncateSync(image, 64 * 1024 * 1024);
    const socket = join(lab.dir, "nbdkit.sock");
    const pidFile = join(lab.dir, "nbdkit.pid");
    const logFile = join(lab.dir, "requests.log");
    // nbdkit's log filter: a line per request, with the connection it came on.
    server = spawn("nbdkit", ["-f", "--exit-with-parent", "-P", pidFile, "-U", socket, "--filter=log", "file", image, `logfile=${logFile}`], { stdio: "ignore" });
    for (let i = 0; i < 500 && !(existsSync(pidFile) && readFileSync(pidFile, "utf8").endsWith("\n")); i++) await new Promise((r) => setTimeout(r, 10));
    const uri = `nbd+unix:///?socket=${socket}`;
    lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}", "${uri}" ]\n\tnbd_connections = 3\n}\nactivation {\n\tdevice_path = 0\n}\n`);
    lab.ok("pvcreate", uri);
    lab.ok("vgcreate", "vgm", uri);
    lab.ok("lvcreate", "-L", "8m", "-n", "lv", "vgm");
    const mark = readFileSync(logFile, "utf8").length;
    const data = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13 + 5) & 0xff;
    const lv = await NbdClientDevice.open(`nbd+unix:///vgm/lv?socket=${join(lab.dir, "run", "nbd.sock")}`);
    try {
      await Promise.all(Array.from({ length: 8 }, (_, i) => lv.write(i << 20, data.subarray(i << 20, (i + 1) << 20))));
      await lv.flush();
      const back = Buffer.alloc(data.length);
      await lv.read(0, back);
      assert.ok(back.equals(data), "the LV reads back what was written");
    } finally {
      await lv.close();
    }
    const since = readFileSync(logFile, "utf8").slice(mark).split("\n");
    const writers = new Set(since.map((l) => /connection=(\d+) Write /.exec(l)?.[1]).filter((c) => c !== undefined));
    const flushers = new Set(since.map((l) => /connection=(\d+) Flush /.exec(l)?.[1]).filter((c) => c !== undefined));
    assert.equal(writers.size, 3, `the LV's writes reached nbdkit on 3 connections (${[...writers].join(",")})`);
    for (const c of writers) assert.ok(flushers.has(c), `connection ${c} got the flush`);
    lab.ok("vgchange", "-an", "vgm");
  } finally {
    lab.cleanup();
    if (server) await stop(server);
  }
});
