import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, ULVM_BIN } from "../../helpers/lab.js";
import { pread, pwrite } from "../../helpers/file-bytes.js";
import { RawNbdClient } from "../nbd/raw-client.js";
import { NBD_CMD_FLUSH, NBD_CMD_WRITE } from "../../../src/nbd/protocol.js";
import type { UlvmEvent } from "../../../src/daemon/events/event-types.js";

/**
 * The daemon's events end to end: events.log as a raid1 LV syncs, is
 * checked, loses a leg and is repaired; `ulvm events` and its filters;
 * hooks in events.d (environment, a hung hook); mail and its rate limit
 * across a daemon restart.
 */
const MIB = 1 << 20;

function events(l: Lab): UlvmEvent[] {
  const f = join(l.dir, "run", "events.log");
  if (!existsSync(f)) return [];
  return readFileSync(f, "utf8").trim().split("\n").filter((x) => x !== "").map((x) => JSON.parse(x) as UlvmEvent);
}

const daemonLog = (l: Lab): string => readFileSync(join(l.dir, "run", "ulvmd.log"), "utf8");

/** Wait (readiness, not a time limit on the product) until `pred` holds; fail with what was seen. */
async function until(what: string, pred: () => boolean, seen: () => string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`never: ${what}\n${seen()}`);
}

const names = (l: Lab): string => events(l).map((e) => `#${e.id} ${e.name}`).join(", ");

/** A 40 MiB raid1 syncing at 4 MiB/s (its first 8 MiB batch at once): long enough for the 100 ms poll to see its steps. */
function raidLab(prefix: string, conf: string): { l: Lab; d1: string; d2: string; d3: string } {
  const l = new Lab(prefix);
  const d1 = l.addDisk("d1", 64);
  const d2 = l.addDisk("d2", 64);
  const d3 = l.addDisk("d3", 64);
  l.writeConfig(`devices {\n\tscan = [ "${l.dir}/disks" ]\n}\nactivation {\n\tdevice_path = 0\n${conf}}\nevents {\n\tpoll_interval_ms = 100\n}\n`);
  return { l, d1, d2, d3 };
}

async function nbdWrite(l: Lab, exportName: string): Promise<void> {
  const { client } = await RawNbdClient.ready(join(l.dir, "run", "nbd.sock"), { exportName });
  try {
    const r = await client.request({ type: NBD_CMD_WRITE, offsetBytes: 0, lengthBytes: MIB }, Buffer.alloc(MIB, 0x5a));
    assert.equal(r.error, 0);
    assert.equal((await client.request({ type: NBD_CMD_FLUSH, offsetBytes: 0, lengthBytes: 0 })).error, 0);
  } finally {
    client.destroy();
  }
}

test("raid1: initial sync is resync-* (info, no lv-degraded), a clean check is info; a failed leg gives leg-failed, lv-degraded, then the repair and recovery; hooks get the event and a hung hook holds nothing up", { timeout: 300_000 }, async () => {
  const { l, d1, d2 } = raidLab("ulvm-ev-", '\traid_fault_policy = "allocate"\n');
  try {
    const hooks = join(l.dir, "etc", "events.d");
    mkdirSync(hooks);
    const envLog = join(l.dir, "hook-env.log");
    writeFileSync(join(hooks, "10-record"), `#!/bin/sh\necho "$ULVM_EVENT_ID|$ULVM_EVENT_NAME|$ULVM_EVENT_VG|$ULVM_EVENT_LV|$ULVM_EVENT_PV|$ULVM_EVENT_LEG|$ULVM_EVENT_TIME|$ULVM_EVENT_DETAILS" >> ${envLog}\necho recorded $ULVM_EVENT_ID\n`);
    // Hangs on the first event (daemon-started) until its time limit kills it.
    writeFileSync(join(hooks, "20-hang"), `#!/bin/sh\n[ "$ULVM_EVENT_NAME" = daemon-started ] && exec sleep 100000\nexit 3\n`);
    writeFileSync(join(hooks, ".hidden"), `#!/bin/sh\necho hidden >> ${envLog}\n`);
    for (const f of ["10-record", "20-hang", ".hidden"]) chmodSync(join(hooks, f), 0o755);
    l.writeConfig(readFileSync(join(l.dir, "etc", "ulvm.conf"), "utf8").replace("events {", "events {\n\thook_timeout_s = 15"));

    l.ok("pvcreate", "-q", d1, d2, join(l.dir, "disks", "d3"));
    l.ok("vgcreate", "-q", "vg", d1, d2, join(l.dir, "disks", "d3"));
    l.ok("lvcreate", "-q", "--type", "raid1", "-m1", "-L", "40m", "--maxrecoveryrate", "4096k", "-n", "r", "vg", d1, d2);
    await until("resync-finished", () => events(l).some((e) => e.name === "resync-finished"), () => names(l));
    // While 20-hang still hangs on daemon-started, I/O is served and later events' hooks run.
    await nbdWrite(l, "vg/r");
    await until("the record hook ran for resync-finished", () => existsSync(envLog) && readFileSync(envLog, "utf8").includes("|resync-finished|"), () => daemonLog(l));

    let ev = events(l);
    const started = ev.find((e) => e.name === "resync-started")!;
    const finished = ev.find((e) => e.name === "resync-finished")!;
    assert.equal(ev[0]!.name, "daemon-started");
    assert.ok(started && started.id < finished.id);
    assert.equal(started.severity, "info");
    assert.equal(finished.severity, "info");
    assert.equal(finished.vg, "vg");
    assert.equal(finished.lv, "r");
    assert.equal(typeof finished.details.durationS, "number");
    assert.ok((finished.details.bytes as number) > 0, JSON.stringify(finished));
    const progress = ev.filter((e) => e.name === "resync-progress").map((e) => e.details.percent as number);
    assert.ok(progress.length > 0, names(l));
    assert.ok(progress.every((p, i) => p % 10 === 0 && p > 0 && p < 100 && (i === 0 || p > progress[i - 1]!)), JSON.stringify(progress));
    assert.ok(!ev.some((e) => e.name === "lv-degraded" || e.severity !== "info"), `an initial sync is no alarm: ${names(l)}`);

    l.ok("lvchange", "--syncaction", "check", "vg/r");
    await until("scrub-finished", () => events(l).some((e) => e.name === "scrub-finished"), () => names(l));
    const scrub = events(l).find((e) => e.name === "scrub-finished")!;
    assert.equal(scrub.severity, "info", "a check with 0 mismatches is info");
    assert.equal(scrub.details.mismatchSectors, 0);
    assert.equal(scrub.details.action, "check");

    // The seed's dd over the start of the second leg's PV.
    pwrite(d2, 0, Buffer.alloc(2 * MIB));
    await until("recovery-finished", () => events(l).some((e) => e.name === "recovery-finished"), () => names(l));
    ev = events(l);
    const idx = (n: string): number => ev.findIndex((e) => e.name === n);
    for (const n of ["pv-missing", "leg-failed", "lv-degraded", "repair-started", "spare-allocated", "repair-finished", "recovery-started", "recovery-finished"]) assert.ok(idx(n) >= 0, `${n} in ${names(l)}`);
    assert.ok(idx("leg-failed") < idx("lv-degraded"), names(l));
    assert.ok(idx("lv-degraded") < idx("repair-started") && idx("repair-started") < idx("repair-finished"), names(l));
    const leg = ev[idx("leg-failed")]!;
    assert.equal(leg.severity, "error");
    assert.equal(leg.leg, "r_rimage_1");
    assert.equal(leg.pv, d2);
    assert.equal(ev[idx("lv-degraded")]!.severity, "error");
    assert.match(ev[idx("spare-allocated")]!.pv!, /d3$/);
    assert.equal(ev[idx("recovery-finished")]!.severity, "info");
    ev.forEach((e, i) => i > 0 && assert.ok(e.id > ev[i - 1]!.id, "ids increase"));

    // The hook saw the event's fields in its environment.
    await until("the record hook ran for leg-failed", () => readFileSync(envLog, "utf8").includes("|leg-failed|"), () => daemonLog(l));
    const line = readFileSync(envLog, "utf8").split("\n").find((x) => x.includes("|leg-failed|"))!.split("|");
    assert.deepEqual(line.slice(0, 6), [String(leg.id), "leg-failed", "vg", "r", d2, "r_rimage_1"]);
    assert.equal(line[6], leg.time);
    assert.deepEqual(JSON.parse(line.slice(7).join("|")), leg.details);
    assert.ok(!readFileSync(envLog, "utf8").includes("hidden"), "dotfiles are not hooks");
    // The hung hook was killed at its time limit, after later events' hooks had run.
    await until("the hung hook killed", () => /20-hang for event #1 \(daemon-started\): timed out after 15s, killed/.test(daemonLog(l)), () => daemonLog(l));
    const log = daemonLog(l);
    assert.ok(log.indexOf(`10-record for event #${finished.id} (resync-finished): exit 0: recorded ${finished.id}`) < log.indexOf("20-hang for event #1 (daemon-started): timed out"), "the next events did not wait for the hung hook");
    assert.match(log, /20-hang for event #2 \(\S+\): exit 3/);
  } finally {
    l.cleanup();
  }
});

test("mail through sendmail once per LV and event, not again after a restart within notify_interval_s; ulvm events --json --since and --follow", { timeout: 300_000 }, async () => {
  const { l, d1, d2 } = raidLab("ulvm-evm-", "");
  try {
    // A stand-in for sendmail: no MTA is installed on the test machine. It keeps each message it is given.
    const bin = join(l.dir, "bin");
    mkdirSync(bin);
    const mails = join(l.dir, "mails");
    writeFileSync(join(bin, "sendmail"), `#!/bin/sh\n[ "$1" = -t ] || exit 64\n{ cat; echo "=== end"; } >> ${mails}\n`);
    chmodSync(join(bin, "sendmail"), 0o755);
    l.env.PATH = `${bin}:${l.env.PATH ?? ""}`;
    l.writeConfig(readFileSync(join(l.dir, "etc", "ulvm.conf"), "utf8").replace("events {", 'events {\n\tmail_to = "root"\n\tnotify_interval_s = 3600'));

    l.ok("pvcreate", "-q", d1, d2);
    l.ok("vgcreate", "-q", "vg", d1, d2);
    l.ok("lvcreate", "-q", "--type", "raid1", "-m1", "-L", "40m", "--maxrecoveryrate", "4096k", "-n", "r", "vg", d1, d2);
    await until("resync-finished", () => events(l).some((e) => e.name === "resync-finished"), () => names(l));
    assert.ok(!existsSync(mails), "info events are not mailed");

    pwrite(d2, 0, Buffer.alloc(2 * MIB));
    await until("lv-degraded", () => events(l).some((e) => e.name === "lv-degraded"), () => names(l));
    const mailCount = (): number => (existsSync(mails) ? readFileSync(mails, "utf8").split("=== end").length - 1 : 0);
    await until("3 mails (pv-missing, leg-failed, lv-degraded)", () => mailCount() >= 3 && /mail to root for event #\d+ \(lv-degraded/.test(daemonLog(l)), () => daemonLog(l));
    const text = readFileSync(mails, "utf8");
    assert.match(text, /^To: root$/m);
    assert.match(text, /^Subject: ulvm lv-degraded event on vg\/r:/m);
    assert.equal((text.match(/^Subject: ulvm lv-degraded/gm) ?? []).length, 1);

    // Restart: the LV is still degraded when activated again (lv-degraded once more), but that is not mailed again.
    l.ok("lvchange", "-an", "vg/r");
    l.stopDaemon();
    const before = events(l).length;
    l.ok("lvchange", "-ay", "--activationmode", "degraded", "vg/r");
    await until("a second lv-degraded", () => events(l).filter((e) => e.name === "lv-degraded").length === 2, () => names(l));
    const second = events(l).filter((e) => e.name === "lv-degraded")[1]!;
    await until("the rate limit said", () => new RegExp(`event #${second.id} \\(lv-degraded vg/r\\) not mailed`).test(daemonLog(l)), () => daemonLog(l));
    assert.equal((readFileSync(mails, "utf8").match(/^Subject: ulvm lv-degraded/gm) ?? []).length, 1, "no second mail");
    assert.ok(events(l).slice(before).every((e) => e.id > events(l)[before - 1]!.id), "ids continue after the restart");

    // ulvm events: all, --since ID, --since TIME, bad --since.
    const all = events(l);
    const json = l.ok("events", "--json").trim().split("\n").map((x) => JSON.parse(x) as UlvmEvent);
    assert.deepEqual(json.map((e) => e.id), all.map((e) => e.id));
    const cut = all[Math.floor(all.length / 2)]!;
    const since = l.ok("events", "--json", "--since", String(cut.id)).trim().split("\n").map((x) => JSON.parse(x) as UlvmEvent);
    assert.deepEqual(since.map((e) => e.id), all.filter((e) => e.id > cut.id).map((e) => e.id));
    const sinceTime = l.ok("events", "--json", "--since", second.time).trim().split("\n").map((x) => JSON.parse(x) as UlvmEvent);
    assert.ok(sinceTime.length >= 1 && sinceTime.every((e) => e.time >= second.time) && sinceTime.some((e) => e.id === second.id));
    const human = l.ok("events", "--since", String(second.id - 1)).split("\n")[0]!;
    assert.match(human, new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d  #${second.id}  lv-degraded  vg/r  `));
    const bad = l.ulvm("events", "--since", "yesterday-ish");
    assert.equal(bad.code, 3);
    assert.match(bad.stderr, /Invalid argument for --since: yesterday-ish/);
    assert.doesNotMatch(bad.stderr, /at .*\.js/);

    // --follow prints a new event, then stops on SIGINT.
    const f = spawn(process.execPath, [ULVM_BIN, "events", "--follow", "--json", "--since", String(all[all.length - 1]!.id)], { env: l.env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    f.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => f.on("exit", (c) => r(c)));
    try {
      await new Promise((r) => setTimeout(r, 500)); // let it open the log; an event before that is still printed (it reads from --since)
      l.ok("lvchange", "--syncaction", "check", "vg/r");
      await until("--follow printed scrub-started", () => out.includes('"name":"scrub-started"'), () => out);
      const first = JSON.parse(out.split("\n")[0]!) as UlvmEvent;
      assert.equal(first.name, "scrub-started");
      assert.equal(first.id, all[all.length - 1]!.id + 1);
    } finally {
      f.kill("SIGINT");
    }
    assert.equal(await exited, 0);
  } finally {
    l.cleanup();
  }
});

test("metadata-repaired: a command's commit that rewrites an old metadata copy tells the running daemon, which records the event", { timeout: 120_000 }, async () => {
  const l = new Lab("ulvm-ev-mda-");
  try {
    const d0 = l.addDisk("d0", 16);
    const d1 = l.addDisk("d1", 16);
    l.writeConfig(`devices {\n\tscan = [ "${l.dir}/disks" ]\n}\nactivation {\n\tdevice_path = 0\n}\n`);
    l.ok("pvcreate", d0, d1);
    l.ok("vgcreate", "vg", d0, d1);
    l.ok("lvcreate", "-L", "4M", "-n", "lv", "vg"); // active: the daemon runs
    // d1's metadata area goes back one commit: an older copy, as after an interrupted write.
    const MDA = 4096;
    const old = pread(d1, MDA, MIB - MDA);
    l.ok("vgchange", "--addtag", "newer", "vg");
    pwrite(d1, MDA, old);
    const w = l.ulvm("vgchange", "--deltag", "newer", "vg");
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stderr, /WARNING: updating old metadata to \d+ on \S+d1 for VG vg\./);
    await until("a metadata-repaired event", () => events(l).some((e) => e.name === "metadata-repaired"), () => names(l));
    const e = events(l).find((x) => x.name === "metadata-repaired")!;
    assert.equal(e.vg, "vg");
    assert.equal(e.pv, d1);
    assert.equal(e.severity, "warning");
    assert.equal(e.details.by, "a command");
    assert.match(String(e.details.what), /^updating old metadata to \d+$/);
  } finally {
    l.cleanup();
  }
});
