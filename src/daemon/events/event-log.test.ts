import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EventLog, eventsLogFile, readEvents, rotatedFile } from "./event-log.js";
import { formatEventLine, type UlvmEvent } from "./event-types.js";
import { syncSample, SyncWatcher, type WatchedLv } from "./sync-watcher.js";
import type { EventInput } from "./event-types.js";
import type { TargetStatusLine } from "../../mapper/mapped-device.js";

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-events-"));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("EventLog: ids increase by one and continue after a reopen (a daemon restart)", () => {
  withDir((dir) => {
    const a = new EventLog(dir);
    assert.equal(a.append({ name: "daemon-started" }).id, 1);
    assert.equal(a.append({ name: "leg-failed", vg: "vg", lv: "lv", leg: "lv_rimage_1" }).id, 2);
    a.close();
    const b = new EventLog(dir);
    assert.equal(b.lastId, 2);
    const e = b.append({ name: "daemon-stopped" });
    assert.equal(e.id, 3);
    b.close();
    const lines = readFileSync(eventsLogFile(dir), "utf8").trim().split("\n").map((l) => JSON.parse(l) as UlvmEvent);
    assert.deepEqual(lines.map((l) => l.id), [1, 2, 3]);
    assert.equal(lines[1]!.severity, "error", "leg-failed is failure class");
    assert.equal(lines[2]!.severity, "info");
    assert.equal(lines[1]!.leg, "lv_rimage_1");
    assert.equal("pv" in lines[1]!, false, "fields that do not apply are omitted");
  });
});

test("EventLog: past maxBytes events.log becomes events.log.1, both stay bounded, and ids survive the rotation and a restart", () => {
  withDir((dir) => {
    const log = new EventLog(dir, { maxBytes: 2048 });
    for (let i = 0; i < 100; i++) log.append({ name: "resync-progress", vg: "vg", lv: "lv", details: { percent: i % 10 } });
    log.close();
    assert.ok(existsSync(rotatedFile(eventsLogFile(dir))));
    assert.ok(statSync(eventsLogFile(dir)).size <= 2048);
    assert.ok(statSync(rotatedFile(eventsLogFile(dir))).size <= 2048);
    const kept = readEvents(dir);
    assert.ok(kept.length < 100 && kept.length > 10);
    assert.equal(kept[kept.length - 1]!.id, 100);
    kept.forEach((e, i) => i > 0 && assert.equal(e.id, kept[i - 1]!.id + 1, "no gap between events.log.1 and events.log"));
    // The older file may go (an admin clearing space): the id continues from events.log.
    rmSync(rotatedFile(eventsLogFile(dir)));
    const again = new EventLog(dir, { maxBytes: 2048 });
    assert.equal(again.append({ name: "daemon-started" }).id, 101);
    again.close();
  });
});

test("EventLog: a torn last line is skipped; with both files gone the id starts above usedId", () => {
  withDir((dir) => {
    const a = new EventLog(dir);
    a.append({ name: "daemon-started" });
    a.close();
    appendFileSync(eventsLogFile(dir), '{"id":2,"time":"2026-');
    const b = new EventLog(dir);
    assert.equal(b.append({ name: "daemon-started" }).id, 2);
    b.close();
    rmSync(eventsLogFile(dir));
    const c = new EventLog(dir, { usedId: 57 });
    assert.equal(c.append({ name: "daemon-started" }).id, 58);
    c.close();
  });
});

test("EventLog: recent(n) gives the last n in order, also after a reopen; subscribe/unsubscribe; a throwing listener stops nobody", () => {
  withDir((dir) => {
    const a = new EventLog(dir, { recentCount: 3 });
    for (let i = 0; i < 5; i++) a.append({ name: "test" });
    assert.deepEqual(a.recent(2).map((e) => e.id), [4, 5]);
    assert.deepEqual(a.recent().map((e) => e.id), [3, 4, 5]);
    a.close();
    const b = new EventLog(dir, { recentCount: 3 });
    assert.deepEqual(b.recent().map((e) => e.id), [3, 4, 5]);
    const seen: number[] = [];
    const errors: unknown[] = [];
    b.onListenerError = (e) => errors.push(e);
    b.subscribe(() => {
      throw new Error("boom");
    });
    const off = b.subscribe((e) => seen.push(e.id));
    b.append({ name: "test" });
    off();
    b.append({ name: "test" });
    assert.deepEqual(seen, [6]);
    assert.equal(errors.length, 2);
    b.close();
  });
});

test("formatEventLine: one human line with time, id, name, object and message", () => {
  const e: UlvmEvent = { id: 42, time: "2026-12-07T12:00:00.123Z", name: "leg-failed", severity: "error", vg: "vg0", lv: "lv0", pv: "/dev/loop3", leg: "lv0_rimage_1", details: { message: "leg lv0_rimage_1 on /dev/loop3 failed (write EIO)" } };
  assert.equal(formatEventLine(e), "2026-12-07 12:00:00  #42  leg-failed  vg0/lv0  leg lv0_rimage_1 on /dev/loop3 failed (write EIO)");
});

/** A raid1 top device's status line, as the raid target reports it. */
function raidLine(
  insync: number,
  total: number,
  action: "resync" | "recover" | "idle" | "check",
  copiedBytes: number,
  health: ReadonlyArray<"A" | "a" | "D" | "-"> = insync < total ? ["A", "a"] : ["A", "A"],
): TargetStatusLine {
  return {
    startSector: 0,
    lengthSectors: total * 1024,
    targetType: "raid",
    status: {
      type: "raid",
      raidType: "raid1",
      devices: health.map((h, k) => ({ meta: `m${k}`, data: `d${k}`, health: h, recovery: "none" as const })),
      syncedSectors: insync * 1024,
      totalSectors: total * 1024,
      syncAction: action,
      mismatchCount: 0,
      dataOffsetSectors: 0,
      insyncRegions: insync,
      totalRegions: total,
      regionSectors: 1024,
      eventCount: "0",
      resync: { running: action !== "idle", rateBytesPerSec: 0, copiedBytes, copiedRegions: 0 },
    },
  };
}

test("SyncWatcher: an initial sync is resync-started, one resync-progress per 10% crossed, resync-finished with duration and bytes, all info; never lv-degraded", () => {
  let line = raidLine(0, 100, "resync", 0);
  const lv: WatchedLv = { vg: "vg", lv: "r", exportName: "vg/r", statusLines: () => [line] };
  const got: EventInput[] = [];
  let now = 1000;
  const w = new SyncWatcher((e) => got.push(e), () => [lv], () => now);
  w.check(lv);
  for (const [insync, copied] of [[5, 5], [12, 12], [35, 35], [36, 36], [99, 99]] as const) {
    line = raidLine(insync, 100, "resync", copied * 512 * 1024);
    w.poll();
  }
  now = 3500;
  line = raidLine(100, 100, "idle", 100 * 512 * 1024);
  w.poll();
  w.poll();
  assert.deepEqual(got.map((e) => e.name), ["resync-started", "resync-progress", "resync-progress", "resync-progress", "resync-finished"]);
  assert.deepEqual(got.filter((e) => e.name === "resync-progress").map((e) => e.details!.percent), [10, 30, 90]);
  assert.deepEqual({ d: got[4]!.details!.durationS, b: got[4]!.details!.bytes }, { d: 2.5, b: 100 * 512 * 1024 });
  assert.ok(got.every((e) => e.severity === undefined), "default severity of resync-*: info");
});

test("SyncWatcher: a rebuild after a repair is a recovery; a scrub is not a resync", () => {
  let line = raidLine(50, 100, "check", 0);
  const lv: WatchedLv = { vg: "vg", lv: "r", exportName: "vg/r", statusLines: () => [line] };
  const got: EventInput[] = [];
  const w = new SyncWatcher((e) => got.push(e), () => [lv]);
  w.poll();
  assert.deepEqual(got, [], "check running: nothing");
  assert.equal(syncSample([line])!.kind, undefined);
  w.expectRecovery("vg/r");
  line = raidLine(0, 100, "resync", 0);
  w.poll();
  line = raidLine(100, 100, "idle", 4096);
  w.poll();
  assert.deepEqual((got as EventInput[]).map((e) => e.name), ["recovery-started", "recovery-finished"]);
});

test("SyncWatcher: a raid1 left with one live leg after a failure keeps out-of-sync regions, but that is no resync", () => {
  let line = raidLine(83, 100, "resync", 0, ["a", "D"]);
  const lv: WatchedLv = { vg: "vg", lv: "r", exportName: "vg/r", statusLines: () => [line] };
  const got: EventInput[] = [];
  const w = new SyncWatcher((e) => got.push(e), () => [lv]);
  w.poll();
  line = raidLine(83, 100, "idle", 0, ["a", "-"]);
  w.poll();
  assert.deepEqual(got, [], "nothing to copy to: no resync-started/finished");
  line = raidLine(83, 100, "recover", 0, ["A", "a"]);
  w.expectRecovery("vg/r");
  w.poll();
  assert.deepEqual((got as EventInput[]).map((e) => e.name), ["recovery-started"], "the leg back (or its replacement) is");
});
