import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { NbdClientDevice } from "../../../src/nbd/client.js";
import { IoError } from "../../../src/errors/errors.js";
import { encodeExportNameReply, encodeGreeting, encodeInfoExport, encodeOptionReply } from "../../../src/nbd/codec.js";
import {
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_NO_ZEROES,
  NBD_FLAG_SEND_FLUSH,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_UNSUP,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_CMD_READ,
  NBD_CMD_WRITE,
} from "../../../src/nbd/protocol.js";
import { pattern, skipUnless, tempDir, waitFor } from "./nbd-fixture.js";

/**
 * ulvm's NBD client (issue 18) against real servers (nbdkit's file plugin,
 * qemu-nbd; plain, TLS with PSK and with X.509) and against a hostile server
 * written here, which speaks a correct handshake and then breaks the
 * transmission rules in one way each.
 */

const MiB = 1024 * 1024;

/**
 * A scratch directory, and `defer` for cleanups that must run before it is
 * released (node:test runs after-hooks in the order they were added, and
 * releaseUnder would otherwise wait for servers that still have clients).
 */
const deferred = new WeakMap<TestContext, Array<() => unknown>>();

function scratch(t: TestContext): string {
  const list: Array<() => unknown> = [];
  deferred.set(t, list);
  t.after(async () => {
    for (const fn of list.reverse()) await fn();
  });
  return tempDir(t);
}

function defer(t: TestContext, fn: () => unknown): void {
  const list = deferred.get(t);
  if (list) list.push(fn);
  else t.after(fn);
}

/** Start a server process; killed after the test whatever happens (and by tempDir's releaseUnder). */
function startProcess(t: TestContext, cmd: string, args: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  child.on("exit", (code) => {
    if (code !== 0 && code !== null) process.stderr.write(`${cmd} exited ${code}: ${stderr}\n`);
  });
  defer(t, () => stopProcess(child));
  return child;
}

/**
 * SIGKILL: nbdkit waits on SIGTERM for its clients to leave, and a test's
 * client may still be connected when cleanup runs (or the test is about a
 * server that crashes).
 */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await gone;
}

async function nbdkitOnSocket(t: TestContext, dir: string, file: string, extra: string[] = []): Promise<{ socket: string; child: ChildProcess }> {
  const socket = path.join(dir, `nbdkit-${Math.random().toString(36).slice(2, 8)}.sock`);
  // nbdkit writes its pid file once it accepts connections (the socket file exists a moment before).
  const pidFile = `${socket}.pid`;
  const child = startProcess(t, "nbdkit", ["-f", "--exit-with-parent", "-P", pidFile, "-U", socket, ...extra, "file", file]);
  await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, "utf8").endsWith("\n"), `nbdkit ready on ${socket}`);
  return { socket, child };
}

function imageFile(dir: string, name: string, sizeBytes: number): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, "");
  fs.truncateSync(f, sizeBytes);
  return f;
}

/** Write, read back, and check what reached the file itself. */
async function roundTrip(dev: NbdClientDevice, file: string, offsetBytes: number, data: Buffer): Promise<void> {
  await dev.write(offsetBytes, data, { fua: true });
  const back = Buffer.alloc(data.length);
  await dev.read(offsetBytes, back);
  assert.ok(back.equals(data), "read back what was written");
  const fd = fs.openSync(file, "r");
  try {
    const onDisk = Buffer.alloc(data.length);
    fs.readSync(fd, onDisk, 0, data.length, offsetBytes);
    assert.ok(onDisk.equals(data), "the server's file holds the bytes");
  } finally {
    fs.closeSync(fd);
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

test("nbdkit file plugin over a unix socket: GO, block sizes, structured replies, large and unaligned I/O", { skip: skipUnless("nbdkit") }, async (t) => {
  const dir = scratch(t);
  const file = imageFile(dir, "disk.img", 80 * MiB);
  const { socket } = await nbdkitOnSocket(t, dir, file);
  const dev = await NbdClientDevice.open(`nbd+unix:///?socket=${socket}`);
  defer(t, () => dev.close());
  assert.equal(dev.sizeBytes, 80 * MiB);
  assert.equal(dev.exportInfo.structuredReplies, true);
  assert.deepEqual(dev.caps, { write: true, flush: true, fua: true, trim: true });
  assert.equal(dev.name, `nbd+unix:///?socket=${socket}`);
  // Larger than the 32 MiB maximum payload: split into several requests, all in flight together.
  await roundTrip(dev, file, 3, pattern(40 * MiB + 5, 7));
  // Many small requests in flight on one connection.
  const bufs = Array.from({ length: 64 }, (_, i) => pattern(4096, 100 + i));
  await Promise.all(bufs.map((b, i) => dev.write(50 * MiB + i * 4096, b)));
  const backs = Array.from({ length: 64 }, () => Buffer.alloc(4096));
  await Promise.all(backs.map((b, i) => dev.read(50 * MiB + i * 4096, b)));
  backs.forEach((b, i) => assert.ok(b.equals(bufs[i]!), `block ${i}`));
  await dev.flush();
  await dev.discard(60 * MiB, MiB);
  await assert.rejects(dev.read(80 * MiB - 10, Buffer.alloc(20)), IoError);
});

test("nbdkit without structured replies (--no-sr): simple replies to READ", { skip: skipUnless("nbdkit") }, async (t) => {
  const dir = scratch(t);
  const file = imageFile(dir, "disk.img", 8 * MiB);
  const { socket } = await nbdkitOnSocket(t, dir, file, ["--no-sr"]);
  const dev = await NbdClientDevice.open(`nbd+unix:///?socket=${socket}`);
  defer(t, () => dev.close());
  assert.equal(dev.exportInfo.structuredReplies, false);
  await roundTrip(dev, file, 4096, pattern(MiB, 3));
});

test("nbdkit over TCP (nbd://127.0.0.1:PORT/)", { skip: skipUnless("nbdkit") }, async (t) => {
  const dir = scratch(t);
  const file = imageFile(dir, "disk.img", 8 * MiB);
  const port = await freePort();
  startProcess(t, "nbdkit", ["-f", "--exit-with-parent", "-i", "127.0.0.1", "-p", String(port), "file", file]);
  let dev: NbdClientDevice | undefined;
  const deadline = Date.now() + 5000;
  while (dev === undefined) {
    try {
      dev = await NbdClientDevice.open(`nbd://127.0.0.1:${port}/`);
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  defer(t, () => dev!.close());
  await roundTrip(dev, file, 0, pattern(2 * MiB, 5));
});

test("qemu-nbd over a unix socket", { skip: skipUnless("qemu-nbd") }, async (t) => {
  const dir = scratch(t);
  const file = imageFile(dir, "disk.img", 8 * MiB);
  const socket = path.join(dir, "qemu.sock");
  startProcess(t, "qemu-nbd", ["-f", "raw", "-k", socket, file]);
  await waitFor(() => fs.existsSync(socket), "qemu-nbd socket");
  const dev = await NbdClientDevice.open(`nbd+unix:///?socket=${socket}`);
  defer(t, () => dev.close());
  assert.equal(dev.exportInfo.structuredReplies, true);
  await roundTrip(dev, file, 512, pattern(3 * MiB, 9));
});

test("TLS with a PSK file (nbdkit --tls=require --tls-psk): the right key connects, no TLS or a wrong key does not", { skip: skipUnless("nbdkit", "openssl") }, async (t) => {
  const dir = scratch(t);
  const file = imageFile(dir, "disk.img", 8 * MiB);
  const key = spawnSync("openssl", ["rand", "-hex", "32"], { encoding: "utf8" }).stdout.trim();
  const psk = path.join(dir, "keys.psk");
  fs.writeFileSync(psk, `alice:${key}\n`, { mode: 0o600 });
  const wrong = path.join(dir, "wrong.psk");
  fs.writeFileSync(wrong, `alice:${"00".repeat(32)}\n`, { mode: 0o600 });
  const { socket } = await nbdkitOnSocket(t, dir, file, ["--tls=require", `--tls-psk=${psk}`]);

  const dev = await NbdClientDevice.open(`nbds+unix://alice@/?socket=${socket}&tls-psk-file=${psk}`);
  defer(t, () => dev.close());
  await roundTrip(dev, file, 0, pattern(2 * MiB, 11));

  await assert.rejects(NbdClientDevice.open(`nbd+unix:///?socket=${socket}`), (e: unknown) => e instanceof IoError && /requires TLS/.test(e.message));
  await assert.rejects(NbdClientDevice.open(`nbds+unix://alice@/?socket=${socket}&tls-psk-file=${wrong}`), (e: unknown) => {
    assert.ok(e instanceof IoError);
    assert.match(e.message, /TLS handshake/);
    assert.doesNotMatch(e.message, new RegExp(key), "the key never appears in a message");
    return true;
  });
  await assert.rejects(NbdClientDevice.open(`nbds+unix://bob@/?socket=${socket}&tls-psk-file=${psk}`), /no key for "bob"/);
});

/** A CA, a server certificate for localhost and a client certificate, made with openssl. */
function makeCertificates(dir: string): { server: string; client: string } | string {
  const server = path.join(dir, "pki-server");
  const client = path.join(dir, "pki-client");
  fs.mkdirSync(server);
  fs.mkdirSync(client);
  const ssl = (...args: string[]): boolean => spawnSync("openssl", args, { cwd: dir, stdio: "ignore" }).status === 0;
  const ext = path.join(dir, "ext.cnf");
  fs.writeFileSync(ext, "[srv]\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n[cli]\nextendedKeyUsage=clientAuth\n");
  const ok =
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca-cert.pem", "-days", "2", "-subj", "/CN=ulvm test CA") &&
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", path.join(server, "server-key.pem"), "-out", "server.csr", "-subj", "/CN=localhost") &&
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", path.join(server, "server-cert.pem"), "-days", "2", "-extfile", ext, "-extensions", "srv") &&
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", path.join(client, "client-key.pem"), "-out", "client.csr", "-subj", "/CN=ulvm client") &&
    ssl("x509", "-req", "-in", "client.csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", path.join(client, "client-cert.pem"), "-days", "2", "-extfile", ext, "-extensions", "cli");
  if (!ok) return "openssl could not make test certificates";
  for (const d of [server, client]) fs.copyFileSync(path.join(dir, "ca-cert.pem"), path.join(d, "ca-cert.pem"));
  return { server, client };
}

test("TLS with X.509 and peer verification both ways (nbdkit --tls-certificates --tls-verify-peer)", { skip: skipUnless("nbdkit", "openssl") }, async (t) => {
  const dir = scratch(t);
  const certs = makeCertificates(dir);
  if (typeof certs === "string") return t.skip(certs);
  const file = imageFile(dir, "disk.img", 8 * MiB);
  const { socket } = await nbdkitOnSocket(t, dir, file, ["--tls=require", `--tls-certificates=${certs.server}`, "--tls-verify-peer"]);
  const dev = await NbdClientDevice.open(`nbds+unix:///?socket=${socket}&tls-certificates=${certs.client}`);
  defer(t, () => dev.close());
  await roundTrip(dev, file, 8192, pattern(MiB, 13));

  // Over TCP the server's name is checked against its certificate: localhost is in it, another tls-hostname is not.
  const port = await freePort();
  const pidFile = path.join(dir, "tcp.pid");
  startProcess(t, "nbdkit", ["-f", "--exit-with-parent", "-P", pidFile, "-i", "127.0.0.1", "-p", String(port), "--tls=require", `--tls-certificates=${certs.server}`, "file", file]);
  await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, "utf8").endsWith("\n"), "nbdkit on TCP");
  const tcp = await NbdClientDevice.open(`nbds://localhost:${port}/?tls-certificates=${certs.client}`);
  defer(t, () => tcp.close());
  await roundTrip(tcp, file, 0, pattern(4096, 14));
  await assert.rejects(NbdClientDevice.open(`nbds://localhost:${port}/?tls-certificates=${certs.client}&tls-hostname=other.example`), /TLS handshake/);

  // A client that trusts another CA refuses the server.
  const other = path.join(dir, "other");
  fs.mkdirSync(other);
  const made = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path.join(other, "k.pem"), "-out", path.join(other, "ca-cert.pem"), "-days", "2", "-subj", "/CN=other"], { stdio: "ignore" });
  assert.equal(made.status, 0);
  await assert.rejects(NbdClientDevice.open(`nbds+unix:///?socket=${socket}&tls-certificates=${other}`), /TLS handshake/);
});

test("reconnection: a read waits for the restarted server and succeeds; the device keeps its export", { skip: skipUnless("nbdkit") }, async (t) => {
  const dir = scratch(t);
  const file = imageFile(dir, "disk.img", 8 * MiB);
  const data = pattern(MiB, 17);
  fs.writeFileSync(file, data, { flag: "r+" });
  const first = await nbdkitOnSocket(t, dir, file);
  const dev = await NbdClientDevice.open(`nbd+unix:///?socket=${first.socket}`, { timeoutMs: 20_000, reconnectDelayMs: 20 });
  defer(t, () => dev.close());
  await stopProcess(first.child); // a crash, not a clean exit
  const back = Buffer.alloc(MiB);
  const reading = dev.read(0, back);
  // The same socket path, served again.
  fs.rmSync(first.socket, { force: true });
  startProcess(t, "nbdkit", ["-f", "--exit-with-parent", "-U", first.socket, "file", file]); // the client retries until it answers
  await reading;
  assert.ok(back.equals(data));
  assert.ok(dev.reconnects >= 1);
});

// ---------------------------------------------------------------- a hostile server

type Misbehaviour = "none" | "wrong-magic" | "unknown-handle" | "oversized" | "short-read" | "outside-range" | "stall" | "drop-after-request";

interface Hostile {
  readonly socket: string;
  /** Requests seen, by type. */
  readonly seen: number[];
}

/**
 * A correct handshake (fixed newstyle, structured replies, GO), then one
 * rule broken on the first request of each connection; later connections are
 * served honestly from a zero-filled 1 MiB export (so a retried read can succeed).
 */
async function hostileServer(t: TestContext, how: Misbehaviour, opts: { legacy?: boolean } = {}): Promise<Hostile> {
  const dir = scratch(t);
  const socketPath = path.join(dir, "hostile.sock");
  const seen: number[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    const honest = connections++ > 0 || how === "none";
    let buf = Buffer.alloc(0);
    let phase: "flags" | "options" | "transmission" = "flags";
    s.write(encodeGreeting(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES));
    s.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (phase === "flags") {
          if (buf.length < 4) return;
          buf = buf.subarray(4);
          phase = "options";
        } else if (phase === "options") {
          if (buf.length < 16) return;
          const len = buf.readUInt32BE(12);
          if (buf.length < 16 + len) return;
          const code = buf.readUInt32BE(8);
          buf = buf.subarray(16 + len);
          if (opts.legacy && code === NBD_OPT_EXPORT_NAME) {
            // An old server: no GO, no structured replies; the export is chosen by EXPORT_NAME.
            s.write(encodeExportNameReply(MiB, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH, true));
            phase = "transmission";
          } else if (opts.legacy) s.write(encodeOptionReply(code, NBD_REP_ERR_UNSUP));
          else if (code === NBD_OPT_STRUCTURED_REPLY) s.write(encodeOptionReply(code, NBD_REP_ACK));
          else if (code === NBD_OPT_GO) {
            s.write(encodeInfoExport(code, MiB, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH));
            s.write(encodeOptionReply(code, NBD_REP_ACK));
            phase = "transmission";
          } else s.write(encodeOptionReply(code, NBD_REP_ERR_UNSUP));
        } else {
          if (buf.length < 28) return;
          const type = buf.readUInt16BE(6);
          const cookie = buf.readBigUInt64BE(8);
          const offset = Number(buf.readBigUInt64BE(16));
          const length = buf.readUInt32BE(24);
          const payload = type === NBD_CMD_WRITE ? length : 0;
          if (buf.length < 28 + payload) return;
          buf = buf.subarray(28 + payload);
          seen.push(type);
          if (honest && opts.legacy) s.write(type === NBD_CMD_READ ? Buffer.concat([simple(cookie), Buffer.alloc(length, 0x5a)]) : simple(cookie));
          else if (honest) reply(s, type, cookie, offset, length, "honest");
          else reply(s, type, cookie, offset, length, how);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return { socket: socketPath, seen };
}

function chunkHeader(flags: number, type: number, cookie: bigint, length: number): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, 0);
  h.writeUInt16BE(flags, 4);
  h.writeUInt16BE(type, 6);
  h.writeBigUInt64BE(cookie, 8);
  h.writeUInt32BE(length, 16);
  return h;
}

function dataChunk(cookie: bigint, offset: number, data: Buffer, flags = NBD_REPLY_FLAG_DONE): Buffer {
  const off = Buffer.alloc(8);
  off.writeBigUInt64BE(BigInt(offset));
  return Buffer.concat([chunkHeader(flags, NBD_REPLY_TYPE_OFFSET_DATA, cookie, 8 + data.length), off, data]);
}

function simple(cookie: bigint, magic = NBD_SIMPLE_REPLY_MAGIC): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(magic >>> 0, 0);
  b.writeBigUInt64BE(cookie, 8);
  return b;
}

function reply(s: net.Socket, type: number, cookie: bigint, offset: number, length: number, how: Misbehaviour | "honest"): void {
  const isRead = type === NBD_CMD_READ;
  switch (how) {
    case "none":
    case "honest":
      s.write(isRead ? dataChunk(cookie, offset, Buffer.alloc(length, 0x5a)) : simple(cookie));
      return;
    case "wrong-magic":
      s.write(simple(cookie, 0xdeadbeef));
      return;
    case "unknown-handle":
      s.write(isRead ? dataChunk(cookie + 1000n, offset, Buffer.alloc(length)) : simple(cookie + 1000n));
      return;
    case "oversized":
      // Announces a 1 GiB chunk for a small read, and sends a little of it.
      s.write(Buffer.concat([chunkHeader(NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, cookie, 1024 * MiB), Buffer.alloc(4096)]));
      return;
    case "short-read":
      s.write(dataChunk(cookie, offset, Buffer.alloc(Math.floor(length / 2), 0x77)));
      return;
    case "outside-range":
      s.write(dataChunk(cookie, offset + length, Buffer.alloc(length, 0x77)));
      return;
    case "stall":
      return;
    case "drop-after-request":
      s.destroy();
      return;
  }
}

for (const how of ["wrong-magic", "unknown-handle", "oversized", "short-read", "outside-range"] as const) {
  test(`hostile server, ${how}: the read fails with IoError, no byte of the reply reaches the caller`, async (t) => {
    const h = await hostileServer(t, how);
    const dev = await NbdClientDevice.open(`nbd+unix:///?socket=${h.socket}`, { timeoutMs: 10_000, reconnectDelayMs: 10 });
    defer(t, () => dev.close());
    const into = Buffer.alloc(8192, 0xee);
    await assert.rejects(dev.read(4096, into), (e: unknown) => e instanceof IoError && e.errno === "EPROTO");
    // Rejected before any lying byte is copied (a short read's honest part may be: the caller got an error, not data).
    if (how !== "short-read") assert.ok(into.every((b) => b === 0xee), "the destination was not touched");
    // The device is still usable: the next connection is honest.
    const ok = Buffer.alloc(512);
    await dev.read(0, ok);
    assert.ok(ok.every((b) => b === 0x5a));
  });
}

test("hostile server, stall: the request fails with ETIMEDOUT within the deadline, and the device reconnects", async (t) => {
  const h = await hostileServer(t, "stall");
  const dev = await NbdClientDevice.open(`nbd+unix:///?socket=${h.socket}`, { timeoutMs: 300, reconnectDelayMs: 10 });
  defer(t, () => dev.close());
  await assert.rejects(dev.write(0, Buffer.alloc(4096)), (e: unknown) => e instanceof IoError && e.errno === "ETIMEDOUT");
  await dev.write(0, Buffer.alloc(4096));
  assert.equal(dev.reconnects, 1);
});

test("a dropped connection: a write in flight fails (its fate is unknown), a read in flight is retried on the next connection", async (t) => {
  const w = await hostileServer(t, "drop-after-request");
  const dev = await NbdClientDevice.open(`nbd+unix:///?socket=${w.socket}`, { timeoutMs: 10_000, reconnectDelayMs: 10 });
  defer(t, () => dev.close());
  await assert.rejects(dev.write(0, Buffer.alloc(4096, 1)), (e: unknown) => e instanceof IoError && e.errno === "EPIPE");

  const r = await hostileServer(t, "drop-after-request");
  const dev2 = await NbdClientDevice.open(`nbd+unix:///?socket=${r.socket}`, { timeoutMs: 10_000, reconnectDelayMs: 10 });
  defer(t, () => dev2.close());
  const into = Buffer.alloc(4096);
  await dev2.read(0, into);
  assert.ok(into.every((b) => b === 0x5a));
  assert.deepEqual(r.seen, [NBD_CMD_READ, NBD_CMD_READ]);
});

test("a server without NBD_OPT_GO or structured replies: EXPORT_NAME and simple replies", async (t) => {
  const h = await hostileServer(t, "none", { legacy: true });
  const dev = await NbdClientDevice.open(`nbd+unix:///?socket=${h.socket}`, { timeoutMs: 10_000 });
  defer(t, () => dev.close());
  assert.equal(dev.sizeBytes, MiB);
  assert.equal(dev.exportInfo.structuredReplies, false);
  const into = Buffer.alloc(8192);
  await dev.read(4096, into);
  assert.ok(into.every((b) => b === 0x5a));
  await dev.write(0, Buffer.alloc(512, 1));
  assert.deepEqual(h.seen, [NBD_CMD_READ, NBD_CMD_WRITE]);
});

test("a server that accepts STARTTLS and then says nothing: the handshake deadline ends it with ETIMEDOUT", async (t) => {
  const dir = scratch(t);
  const socketPath = path.join(dir, "tls-stall.sock");
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => undefined);
    s.write(encodeGreeting(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES));
    let buf = Buffer.alloc(0);
    s.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      // client flags (4) + the STARTTLS option header (16): acknowledge, then stall.
      if (buf.length >= 20 && buf.readUInt32BE(12) === NBD_OPT_STARTTLS) {
        buf = Buffer.alloc(0);
        s.write(encodeOptionReply(NBD_OPT_STARTTLS, NBD_REP_ACK));
      }
    });
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  defer(t, async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  const psk = path.join(dir, "k.psk");
  fs.writeFileSync(psk, `u:${"ab".repeat(16)}\n`);
  await assert.rejects(NbdClientDevice.open(`nbds+unix://u@/?socket=${socketPath}&tls-psk-file=${psk}`, { timeoutMs: 300 }), (e: unknown) => e instanceof IoError && e.errno === "ETIMEDOUT");
});
