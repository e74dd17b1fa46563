import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import path from "node:path";
import { NbdClientDevice } from "../../../src/nbd/client.js";
import { MultiConnNbdDevice, openNbdDevice } from "../../../src/nbd/multi-conn.js";
import { NBD_FLAG_CAN_MULTI_CONN } from "../../../src/nbd/protocol.js";
import { pattern, skipUnless, tempDir } from "./nbd-fixture.js";

/**
 * Multi-conn (issue 18): nbdkit's file plugin advertises
 * NBD_FLAG_CAN_MULTI_CONN, so ulvm's client may spread requests over N
 * connections (`devices { nbd_connections }`). nbdkit's log filter writes
 * one line per request with the connection it came on: the test counts the
 * connections that carried writes, and that every one got a flush.
 */
const MiB = 1 << 20;

async function nbdkit(t: TestContext, filters: string[], params: string[]): Promise<{ uri: string; log: () => string[] }> {
  const dir = tempDir(t);
  const image = path.join(dir, "disk.img");
  writeFileSync(image, "");
  truncateSync(image, 16 * MiB);
  const sock = path.join(dir, "nbdkit.sock");
  const pidFile = path.join(dir, "nbdkit.pid");
  const logFile = path.join(dir, "requests.log");
  const child = spawn("nbdkit", ["-f", "--exit-with-parent", "-P", pidFile, "-U", sock, "--filter=log", ...filters, "file", image, `logfile=${logFile}`, ...params], { stdio: "ignore" });
  t.after(() => {
    child.kill("SIGKILL");
  });
  for (let i = 0; i < 500 && !(existsSync(pidFile) && readFileSync(pidFile, "utf8").endsWith("\n")); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(existsSync(pidFile), "nbdkit is listening");
  return { uri: `nbd+unix:///?socket=${sock}`, log: () => (existsSync(logFile) ? readFileSync(logFile, "utf8").split("\n") : []) };
}

/** Connection ids of the log lines of requests of `kind` (nbdkit-log-filter: "connection=N Kind id=..."). */
function connectionsOf(lines: string[], kind: string): Set<string> {
  const out = new Set<string>();
  for (const l of lines) {
    const m = new RegExp(`connection=(\\d+) ${kind} `).exec(l);
    if (m) out.add(m[1]!);
  }
  return out;
}

const skip = skipUnless("nbdkit");

test("multi-conn: against nbdkit (which advertises it), 4 connections carry the writes round-robin, a flush goes to each, the data reads back", { skip }, async (t) => {
  const s = await nbdkit(t, [], []);
  const dev = await openNbdDevice(s.uri, { connections: 4, timeoutMs: 10_000 });
  t.after(() => dev.close());
  assert.ok(dev instanceof MultiConnNbdDevice, "a multi-conn device");
  assert.equal(dev.lanes.length, 4);
  assert.ok((dev.lanes[0]!.exportInfo.transmissionFlags & NBD_FLAG_CAN_MULTI_CONN) !== 0, "nbdkit advertises multi-conn");
  const data = pattern(8 * MiB, 7);
  await Promise.all(Array.from({ length: 32 }, (_, i) => dev.write(i * 256 * 1024, data.subarray(i * 256 * 1024, (i + 1) * 256 * 1024))));
  await dev.flush();
  const lines = s.log();
  const writers = connectionsOf(lines, "Write");
  assert.equal(writers.size, 4, `writes came on 4 connections: ${[...writers].join(",")}`);
  const flushed = connectionsOf(lines, "Flush");
  for (const c of writers) assert.ok(flushed.has(c), `connection ${c} got a flush`);
  // Read back on one connection of its own.
  const check = await NbdClientDevice.open(s.uri, { timeoutMs: 10_000 });
  t.after(() => check.close());
  const back = Buffer.alloc(8 * MiB);
  await check.read(0, back);
  assert.ok(back.equals(data), "every byte written over the 4 connections reads back");
  // And reads through the multi-conn device spread too.
  const back2 = Buffer.alloc(8 * MiB);
  await Promise.all(Array.from({ length: 8 }, (_, i) => dev.read(i * MiB, back2.subarray(i * MiB, (i + 1) * MiB))));
  assert.ok(back2.equals(data));
  const readers = connectionsOf(s.log(), "Read");
  assert.equal([...writers].filter((c) => readers.has(c)).length, 4, "reads came on the same 4 connections");
});

test("multi-conn: a server that does not advertise it gets one connection, whatever is asked", { skip }, async (t) => {
  const s = await nbdkit(t, ["--filter=multi-conn"], ["multi-conn-mode=disable"]);
  const dev = await openNbdDevice(s.uri, { connections: 4, timeoutMs: 10_000 });
  t.after(() => dev.close());
  assert.ok(dev instanceof NbdClientDevice, "a single-connection device");
  assert.equal((dev.exportInfo.transmissionFlags & NBD_FLAG_CAN_MULTI_CONN) === 0, true, "the filter took the flag away");
  await Promise.all(Array.from({ length: 8 }, (_, i) => dev.write(i * MiB, pattern(MiB, i))));
  await dev.flush();
  assert.equal(connectionsOf(s.log(), "Write").size, 1, "writes came on one connection");
});

test("multi-conn: connections = 1 (the default) is one connection even where the server offers more", { skip }, async (t) => {
  const s = await nbdkit(t, [], []);
  const dev = await openNbdDevice(s.uri, { timeoutMs: 10_000 });
  t.after(() => dev.close());
  assert.ok(dev instanceof NbdClientDevice);
});
