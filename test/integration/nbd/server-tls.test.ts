/**
 * TLS on ulvm's NBD server (issue 18): NBD_OPT_STARTTLS with nbdkit's PSK
 * file and with X.509, "on" and "require", against real clients (nbdinfo,
 * nbdcopy, qemu-io with --object tls-creds-psk) and ulvm's own client, and
 * at the protocol level (RawNbdClient): before TLS, "require" answers every
 * option but STARTTLS with NBD_REP_ERR_TLS_REQD; after it, negotiation starts
 * over. The daemon's `nbd { tls ... }` config is checked in a Lab.
 */
import { test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { FileBlockDevice } from "../../../src/blockdev/file-block-device.js";
import { NbdServer } from "../../../src/nbd/server.js";
import { NbdClientDevice } from "../../../src/nbd/client.js";
import { serverTls, type TlsMode } from "../../../src/nbd/server-tls.js";
import { NBD_OPT_GO, NBD_OPT_LIST, NBD_OPT_STARTTLS, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NBD_REP_ERR_POLICY, NBD_REP_ERR_TLS_REQD } from "../../../src/nbd/protocol.js";
import { encodeInfoRequest } from "../../../src/nbd/client-codec.js";
import { pattern, skipUnless, tempDir } from "./nbd-fixture.js";
import { RawNbdClient } from "./raw-client.js";
import { Lab, which } from "../../helpers/lab.js";

const run = promisify(execFile);
const SIZE = 16 << 20;
const KEY_HEX = "3c".repeat(32);

interface TlsFixture {
  readonly dir: string;
  readonly socketPath: string;
  readonly port: number;
  readonly pskFile: string;
  readonly file: string;
}

/** A server in this process exporting a file as "vg0/lv0", with TLS `mode` on a unix socket and on loopback TCP. */
async function serveTls(t: TestContext, mode: TlsMode, creds: "psk" | "x509" = "psk"): Promise<TlsFixture> {
  const dir = tempDir(t);
  const pskFile = path.join(dir, "keys.psk");
  fs.writeFileSync(pskFile, `alice:${KEY_HEX}\n`, { mode: 0o600 });
  const file = path.join(dir, "disk.img");
  fs.writeFileSync(file, pattern(SIZE, 7));
  const device = await FileBlockDevice.open(file);
  t.after(() => device.close());
  const tls = creds === "psk" ? serverTls({ mode, pskFile }) : serverTls({ mode, certificatesDir: makeCertificates(dir) });
  const server = new NbdServer();
  server.addExport({ name: "vg0/lv0", device });
  const socketPath = path.join(dir, "nbd.sock");
  await server.listenUnix(socketPath, { tls });
  const { port } = await server.listenTcp({ host: "127.0.0.1", port: 0, tls });
  t.after(() => server.close({ timeoutMs: 2000 }));
  return { dir, socketPath, port, pskFile, file };
}

/** A CA and a server certificate for 127.0.0.1 / localhost, made with openssl, in DIR/certs (nbdkit's and qemu's file names). */
function makeCertificates(dir: string): string {
  const d = path.join(dir, "certs");
  fs.mkdirSync(d);
  const ssl = (...args: string[]): void => {
    const r = spawnSync("openssl", args, { cwd: d, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  };
  ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca-cert.pem", "-days", "2", "-subj", "/CN=ulvm test CA");
  ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server-key.pem", "-out", "server.csr", "-subj", "/CN=localhost");
  fs.writeFileSync(path.join(d, "ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  ssl("x509", "-req", "-in", "server.csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", "server-cert.pem", "-days", "2", "-extfile", "ext.cnf");
  return d;
}

test("require: before STARTTLS every option but STARTTLS/ABORT gets NBD_REP_ERR_TLS_REQD; after it, negotiation starts over", async (t) => {
  const fx = await serveTls(t, "require");
  const c = await RawNbdClient.open(fx.socketPath);
  try {
    for (const code of [NBD_OPT_LIST, NBD_OPT_STRUCTURED_REPLY]) assert.equal((await c.option(code))[0]?.replyType, NBD_REP_ERR_TLS_REQD);
    assert.equal((await c.option(NBD_OPT_GO, encodeInfoRequest("vg0/lv0", [])))[0]?.replyType, NBD_REP_ERR_TLS_REQD);
    assert.equal((await c.option(NBD_OPT_STARTTLS))[0]?.replyType, NBD_REP_ACK);
  } finally {
    c.destroy();
  }
});

test("off: STARTTLS is refused with NBD_REP_ERR_POLICY and the session goes on in the clear", async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, "disk.img");
  fs.writeFileSync(file, pattern(SIZE, 7));
  const device = await FileBlockDevice.open(file);
  t.after(() => device.close());
  const server = new NbdServer();
  server.addExport({ name: "vg0/lv0", device });
  await server.listenUnix(path.join(dir, "nbd.sock"));
  t.after(() => server.close({ timeoutMs: 2000 }));
  const c = await RawNbdClient.open(path.join(dir, "nbd.sock"));
  try {
    assert.equal((await c.option(NBD_OPT_STARTTLS))[0]?.replyType, NBD_REP_ERR_POLICY);
    assert.equal((await c.option(NBD_OPT_GO, encodeInfoRequest("vg0/lv0", []))).at(-1)?.replyType, NBD_REP_ACK);
  } finally {
    c.destroy();
  }
});

test("require, PSK: nbdinfo and nbdcopy over nbds:// and nbds+unix://; plain nbd:// and a wrong key are refused", { skip: skipUnless("nbdinfo") ?? skipUnless("nbdcopy") }, async (t) => {
  const fx = await serveTls(t, "require");
  const q = `tls-psk-file=${fx.pskFile}`;
  const tcp = `nbds://alice@127.0.0.1:${fx.port}/vg0/lv0?${q}`;
  const unix = `nbds+unix://alice@/vg0/lv0?socket=${fx.socketPath}&${q}`;
  assert.equal((await run("nbdinfo", ["--size", tcp])).stdout.trim(), String(SIZE));
  assert.equal((await run("nbdinfo", ["--size", unix])).stdout.trim(), String(SIZE));
  const info = JSON.parse((await run("nbdinfo", ["--json", tcp])).stdout) as { TLS: boolean };
  assert.equal(info.TLS, true, "nbdinfo reports the session as TLS");

  await assert.rejects(run("nbdinfo", ["--size", `nbd://127.0.0.1:${fx.port}/vg0/lv0`]), "a plain client is refused");
  const wrong = path.join(fx.dir, "wrong.psk");
  fs.writeFileSync(wrong, `alice:${"11".repeat(32)}\n`, { mode: 0o600 });
  await assert.rejects(run("nbdinfo", ["--size", `nbds://alice@127.0.0.1:${fx.port}/vg0/lv0?tls-psk-file=${wrong}`]), "a wrong key is refused");

  // nbdcopy: a new image into the export over TLS, then back out over TLS on the unix socket.
  const src = path.join(fx.dir, "src.img");
  const back = path.join(fx.dir, "back.img");
  fs.writeFileSync(src, pattern(SIZE, 42));
  await run("nbdcopy", [src, tcp]);
  assert.ok(fs.readFileSync(fx.file).equals(pattern(SIZE, 42)), "the export holds what nbdcopy wrote");
  await run("nbdcopy", [unix, back]);
  assert.ok(fs.readFileSync(back).equals(pattern(SIZE, 42)));
});

test("require, PSK: qemu-io with --object tls-creds-psk writes and reads back patterns", { skip: skipUnless("qemu-io") }, async (t) => {
  const fx = await serveTls(t, "require");
  // qemu reads DIR/keys.psk.
  const qdir = path.join(fx.dir, "qemu");
  fs.mkdirSync(qdir);
  fs.copyFileSync(fx.pskFile, path.join(qdir, "keys.psk"));
  const io = (cmd: string): Promise<{ stdout: string; stderr: string }> =>
    run("qemu-io", [
      "--object",
      `tls-creds-psk,id=tls0,endpoint=client,dir=${qdir},username=alice`,
      "--image-opts",
      `driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=${fx.port},export=vg0/lv0,tls-creds=tls0`,
      "-c",
      cmd,
    ]);
  const w = await io("write -P 0x5d 1M 2M");
  assert.doesNotMatch(w.stdout + w.stderr, /error|failed/i);
  const r = await io("read -P 0x5d 1M 2M");
  assert.doesNotMatch(r.stdout + r.stderr, /error|failed|verification/i);
  assert.ok(fs.readFileSync(fx.file).subarray(1 << 20, 3 << 20).equals(Buffer.alloc(2 << 20, 0x5d)));
});

test("on, PSK: ulvm's own client reaches the server with nbds:// and plain nbd+unix:// still works", async (t) => {
  const fx = await serveTls(t, "on");
  const secure = await NbdClientDevice.open(`nbds://alice@127.0.0.1:${fx.port}/vg0/lv0?tls-psk-file=${fx.pskFile}`);
  try {
    const data = pattern(1 << 20, 9);
    await secure.write(4096, data, { fua: true });
    const back = Buffer.alloc(data.length);
    await secure.read(4096, back);
    assert.ok(back.equals(data));
  } finally {
    await secure.close();
  }
  const plain = await NbdClientDevice.open(`nbd+unix:///vg0/lv0?socket=${fx.socketPath}`);
  try {
    const back = Buffer.alloc(1 << 20);
    await plain.read(4096, back);
    assert.ok(back.equals(pattern(1 << 20, 9)), "a plain client sees what the TLS one wrote");
  } finally {
    await plain.close();
  }
});

test("require, X.509: nbdinfo with tls-certificates verifies the server's certificate", { skip: skipUnless("nbdinfo") ?? (which("openssl") ? undefined : "openssl not installed") }, async (t) => {
  const fx = await serveTls(t, "require", "x509");
  // libnbd looks for ca-cert.pem (and client-cert.pem, optional) in the directory.
  const cdir = path.join(fx.dir, "client");
  fs.mkdirSync(cdir);
  fs.copyFileSync(path.join(fx.dir, "certs", "ca-cert.pem"), path.join(cdir, "ca-cert.pem"));
  const { stdout } = await run("nbdinfo", ["--size", `nbds://localhost:${fx.port}/vg0/lv0?tls-certificates=${cdir}`]);
  assert.equal(stdout.trim(), String(SIZE));
  // Another CA: the server's certificate does not verify.
  const odir = path.join(fx.dir, "other");
  fs.mkdirSync(odir);
  const r = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out", "ca-cert.pem", "-days", "2", "-subj", "/CN=other"], { cwd: odir });
  assert.equal(r.status, 0);
  await assert.rejects(run("nbdinfo", ["--size", `nbds://localhost:${fx.port}/vg0/lv0?tls-certificates=${odir}`]));
});

test("daemon: nbd { tls = \"require\" } on its TCP listener; a bad mode or a missing key file stops the start with an lvm-style message", { skip: skipUnless("nbdinfo") }, async () => {
  const lab = new Lab("ulvm-nbdtls-");
  try {
    const psk = path.join(lab.dir, "keys.psk");
    fs.writeFileSync(psk, `alice:${KEY_HEX}\n`, { mode: 0o600 });
    const port = 20000 + (process.pid % 20000);
    const conf = (tls: string, file: string): void =>
      lab.writeConfig(`devices {\n\tscan = [ "${path.join(lab.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 0\n}\nnbd {\n\ttcp = 1\n\tport = ${port}\n\ttls = "${tls}"\n\ttls_psk_file = "${file}"\n}\n`);
    conf("require", psk);
    const d = lab.addDisk("d1", 64);
    lab.ok("pvcreate", d);
    lab.ok("vgcreate", "vg", d);
    lab.ok("lvcreate", "-L", "8m", "-n", "lv", "vg");
    const { stdout } = await run("nbdinfo", ["--size", `nbds://alice@127.0.0.1:${port}/vg/lv?tls-psk-file=${psk}`]);
    assert.equal(stdout.trim(), String(8 << 20));
    await assert.rejects(run("nbdinfo", ["--size", `nbd://127.0.0.1:${port}/vg/lv`]), "plain TCP is refused");
    // The unix socket offers TLS without requiring it.
    const sock = path.join(lab.dir, "run", "nbd.sock");
    assert.equal((await run("nbdinfo", ["--size", `nbds+unix://alice@/vg/lv?socket=${sock}&tls-psk-file=${psk}`])).stdout.trim(), String(8 << 20));
    assert.equal((await run("nbdinfo", ["--size", `nbd+unix:///vg/lv?socket=${sock}`])).stdout.trim(), String(8 << 20));
    lab.ok("vgchange", "-an", "vg");
    lab.stopDaemon();

    conf("sometimes", psk);
    const bad = lab.ulvm("lvchange", "-ay", "vg/lv");
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /nbd\/tls" invalid/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /);
    conf("require", path.join(lab.dir, "none.psk"));
    const missing = lab.ulvm("lvchange", "-ay", "vg/lv");
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /cannot read TLS PSK file/);
    assert.doesNotMatch(missing.stderr, /\n\s+at /);
  } finally {
    lab.cleanup();
  }
});
