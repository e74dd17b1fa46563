import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SyslogSink } from "./syslog-sink.js";
import type { UlvmEvent } from "./event-types.js";

const missing = !existsSync("/usr/bin/logger") && !existsSync("/bin/logger") ? "util-linux logger not installed" : spawnSync("python3", ["-c", "1"]).status !== 0 ? "python3 not installed" : undefined;

/**
 * This machine has no /dev/log, so the test makes its own: a unix datagram
 * socket (python3, as Node has none) that receives what the real `logger`
 * sends, as syslogd or journald would.
 */
test("SyslogSink: an event reaches a syslog socket through logger, with the daemon facility, its severity's priority and tag ulvm", { skip: missing }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-syslog-"));
  const sock = join(dir, "log");
  const rx = spawn("python3", [
    "-c",
    "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint('ready',flush=True)\ns.settimeout(30)\nprint(s.recv(65536).decode(),flush=True)",
    sock,
  ]);
  try {
    let out = "";
    rx.stdout.on("data", (b: Buffer) => (out += b.toString()));
    const exited = new Promise<void>((r) => rx.on("exit", () => r()));
    for (let i = 0; i < 200 && !out.includes("ready"); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(out.includes("ready"), "the receiving socket is bound");
    const logLines: string[] = [];
    const sink = new SyslogSink((l) => logLines.push(l), sock);
    assert.equal(sink.enabled, true);
    const e: UlvmEvent = { id: 9, time: new Date().toISOString(), name: "leg-failed", severity: "error", vg: "vg0", lv: "lv0", leg: "lv0_rimage_1", pv: "/dev/sdb2", details: { message: "leg lv0_rimage_1 on /dev/sdb2 failed (write EIO)" } };
    sink.dispatch(e);
    await exited;
    const msg = out.split("\n")[1] ?? "";
    // <PRI>: facility daemon (3) * 8 + crit (2) = 26.
    assert.match(msg, /^<26>/, msg);
    assert.match(msg, / ulvm(\[\d+\])?: #9 leg-failed vg0\/lv0/, msg);
    assert.match(msg, /failed \(write EIO\)/, msg);
    assert.deepEqual(logLines, [], "logger succeeded");
  } finally {
    rx.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("SyslogSink: without the socket it is off and sends nothing", () => {
  const sink = new SyslogSink(() => undefined, "/nonexistent/ulvm-test/log");
  assert.equal(sink.enabled, false);
  sink.dispatch({ id: 1, time: new Date().toISOString(), name: "daemon-started", severity: "info", details: {} });
});
