import { test } from "node:test";
import assert from "node:assert/strict";
import { mirrorRig } from "./mirror-rig.js";
import { Table } from "../../table.js";
import { IoRecorder } from "../../../blockdev/fault-block-device.js";
import { decodeDiskLog } from "../../dirty-log/disk-log-format.js";
import { testBit } from "../../dirty-log/bitset.js";
import { IoError } from "../../../errors/errors.js";
import { equalBytes, tick } from "../../test-helpers.js";
import type { DiskDirtyLog } from "../../dirty-log/disk-log.js";
import type { MapperEvent } from "../../events.js";

const R = 64 * 512; // rig region size in bytes
const isIo = (errno: string) => (e: unknown) => e instanceof IoError && e.errno === errno;
const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
}

test("writes reach every leg; in-sync reads come from leg 0 only", async () => {
  const r = await mirrorRig();
  await r.dev.write(R + 512, fill(1024, 7));
  for (const m of r.legMems) assert.equal(m.bytes[R + 512], 7);
  const b = new Uint8Array(1024);
  await r.dev.read(R + 512, b);
  assert.ok(b.every((x) => x === 7));
  assert.equal(r.legs[1]!.stats.reads, 0);
  assert.equal(r.dev.status(), "0 2048 mirror 2 leg0 leg1 32/32 1 AA 3 disk log A\n");
  assert.equal(r.dev.table(), "0 2048 mirror disk 2 log 64 2 leg0 0 leg1 0\n");
});

test("the dirty mark is durable (FUA log write) before the first write to a clean region reaches a leg", async () => {
  const rec = new IoRecorder();
  const r = await mirrorRig({ recorder: rec });
  const logWritesBefore = rec.records.filter((x) => x.device === "log").length;
  await r.dev.write(3 * R, fill(512, 1));
  const recs = rec.records.slice();
  const logIdx = recs.findIndex((x, i) => i >= 0 && x.device === "log" && x.op === "write" && recs.indexOf(x) >= logWritesBefore);
  const legIdx = recs.findIndex((x) => x.device.startsWith("leg") && x.op === "write");
  assert.ok(logIdx >= 0 && legIdx > logIdx, "log write completed before any leg write started");
  assert.ok(recs[legIdx]!.startSeq > recs[logIdx]!.seq);
  assert.equal(recs[logIdx]!.fua, true);
  assert.equal(testBit(decodeDiskLog(recs[logIdx]!.data, 32).cleanBits, 3), false, "region 3 dirty in the log");

  // A second write to the now dirty region costs no log write.
  const writes = (r.target.log as DiskDirtyLog).writesIssued;
  await r.dev.write(3 * R + 1024, fill(512, 2));
  assert.equal((r.target.log as DiskDirtyLog).writesIssued, writes);
});

test("concurrent first writes to many clean regions coalesce into at most two log writes", async () => {
  const r = await mirrorRig();
  const log = r.target.log as DiskDirtyLog;
  const before = log.writesIssued;
  await Promise.all(Array.from({ length: 20 }, (_, i) => r.dev.write(i * R, fill(512, i + 1))));
  assert.ok(log.writesIssued - before <= 2, `${log.writesIssued - before} log writes`);
});

test("regions are cleaned only after the legs were flushed, and only idle ones", async () => {
  const rec = new IoRecorder();
  const r = await mirrorRig({ recorder: rec });
  await r.dev.write(2 * R, fill(512, 1));
  await r.dev.write(4 * R, fill(512, 1));
  // hold region 4 busy with a write stuck on leg 1
  r.legs[1]!.hold(["write"]);
  const stuck = r.dev.write(4 * R + 512, fill(512, 2));
  await tick();
  const seqBeforeFlush = rec.nextSeq;
  r.legs[1]!.hold(["write"]); // keep holding writes, flushes go through
  await r.dev.flush();
  await r.target.log.flush();
  const bits = decodeDiskLog(r.logMem.bytes, 32).cleanBits;
  assert.equal(testBit(bits, 2), true, "idle region 2 cleaned");
  assert.equal(testBit(bits, 4), false, "busy region 4 stays dirty");
  // The log write that cleaned region 2 came after both legs' flushes.
  const after = rec.records.filter((x) => x.seq >= seqBeforeFlush);
  const cleanWrite = after.find((x) => x.device === "log" && x.op === "write" && testBit(decodeDiskLog(x.data, 32).cleanBits, 2));
  assert.ok(cleanWrite);
  for (const leg of ["leg0", "leg1"]) {
    const f = after.find((x) => x.device === leg && x.op === "flush");
    assert.ok(f && f.seq < cleanWrite.startSeq, `${leg} flushed before region 2 was marked clean`);
  }
  r.legs[1]!.release();
  await stuck;
  assert.equal(await r.target.cleanNow(), 1);
  assert.equal(testBit(decodeDiskLog(r.logMem.bytes, 32).cleanBits, 4), true);
});

test("a clean suspend leaves every region clean in the log", async () => {
  const r = await mirrorRig();
  for (let i = 0; i < 10; i++) await r.dev.write(i * 3 * R, fill(512, i));
  await r.dev.suspend();
  const bits = decodeDiskLog(r.logMem.bytes, 32).cleanBits;
  for (let i = 0; i < 32; i++) assert.equal(testBit(bits, i), true, `region ${i}`);
});

test("overlapping writes in flight are applied in arrival order on every leg", async () => {
  const r = await mirrorRig();
  r.legs[1]!.hold(["write"]);
  const a = r.dev.write(R, fill(2048, 1));
  await tick();
  const b = r.dev.write(R + 1024, fill(2048, 2));
  await tick();
  // b must not have reached leg 0 while a is unfinished on leg 1
  assert.equal(r.legMems[0]!.bytes[R + 1024], 1);
  r.legs[1]!.release();
  await Promise.all([a, b]);
  for (const m of r.legMems) {
    assert.equal(m.bytes[R], 1);
    assert.equal(m.bytes[R + 1024], 2);
    assert.equal(m.bytes[R + 3000], 2);
  }
  assert.ok(equalBytes(r.legMems[0]!.bytes, r.legMems[1]!.bytes));
});

test("out-of-sync regions are read from the source only; with the source dead they fail (EIO)", async () => {
  const r = await mirrorRig({ log: "core", mirror: { resyncEnabled: false } });
  assert.equal(r.target.status().insyncRegions, 0);
  r.legMems[0]!.bytes.fill(0xaa);
  r.legMems[1]!.bytes.fill(0x55);
  const b = new Uint8Array(4 * R);
  await r.dev.read(0, b);
  assert.ok(b.every((x) => x === 0xaa));
  assert.equal(r.legs[1]!.stats.reads, 0);
  r.legs[0]!.vanish("EIO");
  await assert.rejects(r.dev.read(0, new Uint8Array(512)), isIo("EIO"));
  assert.equal(r.legs[1]!.stats.reads, 0, "never read from a leg that lacks the data");
  assert.equal(r.target.status().legs[0]!.health, "R");
  assert.equal(r.target.status().lostRegions, 32);
});

test("resync copies the source over the other legs, reports progress, raises in-sync", async () => {
  const r = await mirrorRig({ legs: 3, log: "core", noResume: true });
  r.legMems[0]!.bytes.forEach((_, i, a) => (a[i] = i & 0xff));
  await r.dev.resume();
  await r.target.whenInSync();
  assert.ok(equalBytes(r.legMems[0]!.bytes, r.legMems[1]!.bytes));
  assert.ok(equalBytes(r.legMems[0]!.bytes, r.legMems[2]!.bytes));
  const s = r.target.status();
  assert.equal(s.insyncRegions, 32);
  assert.equal(s.resync.copiedRegions, 32);
  assert.deepEqual(
    r.env.events.filter((e) => e.kind === "in-sync"),
    [{ kind: "in-sync", device: "vg-lv" }],
  );
  assert.equal(r.dev.status(), "0 2048 mirror 3 leg0 leg1 leg2 32/32 1 AAA 1 core\n");
});

test("client writes to a region being copied wait for the copy, so no leg misses them", async () => {
  const r = await mirrorRig({ log: "core", mirror: { resyncBatchBytes: R, resyncIoBytes: 512 }, noResume: true });
  // stall the copier's first write to leg 1 (region 0)
  r.legs[1]!.hold(["write"]);
  r.legMems[0]!.bytes.fill(9, 0, R);
  await r.dev.resume();
  await tick();
  await tick();
  assert.ok(r.target.regions.isRecovering(0));
  let done = false;
  const w = r.dev.write(512, fill(512, 3)).then(() => (done = true));
  await tick();
  assert.equal(done, false);
  assert.equal(r.legMems[0]!.bytes[512], 9, "write held while region 0 is copied");
  r.legs[1]!.release();
  await w;
  await r.target.whenInSync();
  assert.equal(r.legMems[1]!.bytes[512], 3);
  assert.ok(equalBytes(r.legMems[0]!.bytes, r.legMems[1]!.bytes));
});

test("the resync rate can throttle and be lifted while running", async () => {
  const r = await mirrorRig({ log: "core", mirror: { resyncRateBytesPerSec: 1 } });
  await tick();
  await tick();
  const s = r.target.status();
  assert.equal(s.resync.rateBytesPerSec, 1);
  assert.ok(s.insyncRegions < s.totalRegions, "throttled to a crawl");
  r.target.setResyncRate(0);
  await r.target.whenInSync();
  assert.equal(r.target.status().resync.rateBytesPerSec, 0);
  await r.dev.message(0, ["resync_rate", "1000000"]);
  assert.equal(r.target.status().resync.rateBytesPerSec, 1000000);
});

test("a stale leg is resynced to, never from; setResyncSource picks the source", async () => {
  const a = await mirrorRig({ noResume: true });
  a.legMems[0]!.bytes.fill(0x11);
  a.legMems[1]!.bytes.fill(0x22);
  a.target.markLegStale(0);
  assert.throws(() => a.target.markLegStale(1), /at least one leg/);
  await a.dev.resume();
  assert.equal(a.target.status().sourceLeg, 1);
  assert.equal(a.target.status().legs[0]!.stale, true);
  const b = new Uint8Array(512);
  await a.dev.read(0, b);
  assert.equal(b[0], 0x22);
  await a.target.whenInSync();
  assert.ok(a.legMems[0]!.bytes.every((x) => x === 0x22));
  assert.equal(a.target.status().legs[0]!.stale, false);
  assert.throws(() => a.target.setResyncSource(0), /before the table is resumed/);

  const c = await mirrorRig({ log: "core", noResume: true });
  c.legMems[1]!.bytes.fill(0x33);
  c.target.setResyncSource(1);
  await c.dev.resume();
  await c.target.whenInSync();
  assert.ok(c.legMems[0]!.bytes.every((x) => x === 0x33));
});

test("a read error fails the leg (R), raises leg-failed and is retried on another in-sync leg", async () => {
  const r = await mirrorRig();
  await r.dev.write(0, fill(4096, 5));
  r.legs[0]!.failRange(0, 512, ["read"]);
  const b = new Uint8Array(4096);
  await r.dev.read(0, b);
  assert.ok(b.every((x) => x === 5));
  assert.deepEqual(
    r.env.events.filter((e) => e.kind === "leg-failed"),
    [{ kind: "leg-failed", device: "vg-lv", leg: 0, legDevice: "leg0", op: "read", errno: "EIO" }],
  );
  assert.equal(r.dev.status(), "0 2048 mirror 2 leg0 leg1 32/32 1 RA 3 disk log A\n");
  // leg 0 is no longer read (nor written) at all
  const reads0 = r.legs[0]!.stats.reads;
  await r.dev.read(8192, b);
  await r.dev.write(8192, b);
  assert.equal(r.legs[0]!.stats.reads, reads0);
  assert.equal(r.target.status().primaryLeg, 1);
});

test("handle_errors: a write that missed a failed leg is acknowledged only after the policy handler resolves", async () => {
  const r = await mirrorRig({ handleErrors: true });
  const d = deferred();
  const seen: MapperEvent[] = [];
  r.env.handler = (e) => {
    seen.push(e);
    return d.promise;
  };
  r.legs[1]!.addRule({ ops: ["write"] });
  let acked = false;
  const w = r.dev.write(0, fill(512, 4)).then(() => (acked = true));
  await tick();
  await tick();
  assert.equal(acked, false, "held until the failure is recorded");
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0], { kind: "leg-failed", device: "vg-lv", leg: 1, legDevice: "leg1", op: "write", errno: "EIO" });
  // later writes skip the leg and are held too
  let acked2 = false;
  const w2 = r.dev.write(R, fill(512, 4)).then(() => (acked2 = true));
  await tick();
  assert.equal(acked2, false);
  d.resolve();
  await Promise.all([w, w2]);
  assert.equal(r.legMems[0]!.bytes[0], 4);
  assert.equal(r.target.status().legs[1]!.health, "D");
  // once recorded, writes are not held any more
  r.env.handler = () => new Promise(() => undefined);
  await r.dev.write(2 * R, fill(512, 1));
});

test("handle_errors: if the handler rejects, held writes fail and the next write raises the event again", async () => {
  const r = await mirrorRig({ handleErrors: true });
  const first = deferred();
  let calls = 0;
  r.env.handler = (e) => {
    if (e.kind !== "leg-failed") return;
    calls++;
    return calls === 1 ? first.promise : Promise.resolve();
  };
  r.legs[0]!.addRule({ ops: ["write"] });
  const w1 = r.dev.write(0, fill(512, 1));
  await tick();
  first.reject(new Error("metadata write failed"));
  await assert.rejects(w1, isIo("EIO"));
  await r.dev.write(0, fill(512, 2));
  assert.equal(calls, 2);
  assert.equal(r.legMems[1]!.bytes[0], 2);
});

test("without handle_errors a failed leg is marked and writes proceed at once", async () => {
  const r = await mirrorRig();
  r.env.handler = () => new Promise(() => undefined); // policy never answers
  r.legs[1]!.addRule({ ops: ["write"] });
  await r.dev.write(0, fill(512, 1));
  await r.dev.write(R, fill(512, 1));
  assert.equal(r.target.status().legs[1]!.health, "D");
  assert.equal(r.env.events.filter((e) => e.kind === "leg-failed").length, 1);
});

test("without handle_errors a source that failed a read keeps every write and serves its out-of-sync regions (dm: errors only counted; pvmove's source)", async () => {
  // In sync (clean log): a read error fails leg 0 (R); reads go to leg 1, writes still reach leg 0.
  const a = await mirrorRig();
  a.legs[0]!.addRule({ ops: ["read"], offsetBytes: 0, lengthBytes: R });
  const b = new Uint8Array(512);
  a.legMems[1]!.bytes.fill(6, 0, 512);
  await a.dev.read(0, b);
  assert.equal(b[0], 6, "served by leg 1");
  assert.equal(a.target.status().legs[0]!.health, "R");
  await a.dev.write(0, fill(512, 9));
  assert.equal(a.legMems[0]!.bytes[0], 9);
  assert.equal(a.legMems[1]!.bytes[0], 9);
  // A write error on it excludes it as before.
  a.legs[0]!.addRule({ ops: ["write"], offsetBytes: 0, lengthBytes: 512 });
  await a.dev.write(0, fill(512, 3));
  assert.equal(a.target.status().legs[0]!.health, "D");
  await a.dev.write(512, fill(512, 4));
  assert.equal(a.legMems[0]!.bytes[512], 0, "no more writes to a leg that failed one");
  assert.equal(a.legMems[1]!.bytes[512], 4);

  // Out of sync (a core log copying at a crawl from region 0, as pvmove0's running segment): the
  // source that failed a read in the last region still takes and serves the regions only it holds.
  const c = await mirrorRig({ log: "core", mirror: { resyncRateBytesPerSec: 1 } });
  await tick();
  const last = (2048 - 64) * 512;
  c.legs[0]!.addRule({ ops: ["read"], offsetBytes: last + 512, lengthBytes: 512 });
  await assert.rejects(c.dev.read(last + 512, new Uint8Array(512)), isIo("EIO"));
  assert.equal(c.target.status().legs[0]!.health, "R");
  await c.dev.write(last, fill(512, 5));
  assert.equal(c.legMems[0]!.bytes[last], 5);
  await c.dev.read(last, b);
  assert.equal(b[0], 5);
  // Its bad sector still fails, without looping on it.
  await assert.rejects(c.dev.read(last + 512, new Uint8Array(512)), isIo("EIO"));
  c.target.setResyncRate(0);
});

test("a flush error fails the leg (F); the flush still succeeds on the others", async () => {
  const r = await mirrorRig();
  r.legs[1]!.addRule({ ops: ["flush"] });
  await r.dev.flush();
  assert.equal(r.target.status().legs[1]!.health, "F");
  assert.ok(r.env.events.some((e) => e.kind === "leg-failed" && e.op === "flush"));
});

test("when every leg has failed, I/O fails with EIO", async () => {
  const r = await mirrorRig();
  r.legs[0]!.vanish("EIO");
  r.legs[1]!.vanish("EIO");
  await assert.rejects(r.dev.write(0, fill(512, 1)), isIo("EIO"));
  await assert.rejects(r.dev.read(0, new Uint8Array(512)), isIo("EIO"));
  await assert.rejects(r.dev.flush(), isIo("EIO"));
});

test("a failing log degrades gracefully: log-failed, status D, I/O continues", async () => {
  const r = await mirrorRig();
  r.log.vanish("EIO");
  await r.dev.write(5 * R, fill(512, 8));
  const b = new Uint8Array(512);
  await r.dev.read(5 * R, b);
  assert.equal(b[0], 8);
  assert.deepEqual(
    r.env.events.filter((e) => e.kind === "log-failed"),
    [{ kind: "log-failed", device: "vg-lv", logDevice: "log", errno: "EIO" }],
  );
  assert.equal(r.dev.status(), "0 2048 mirror 2 leg0 leg1 32/32 1 AA 3 disk log D\n");
  await r.dev.flush();
});

test("a leg dead while the mirror was out of sync is never a resync source; the survivors keep serving in-sync data", async () => {
  const r = await mirrorRig({ legs: 3, initLog: "fresh", mirror: { resyncEnabled: false } });
  r.legMems[0]!.bytes.fill(1);
  r.legs[2]!.vanish("EIO");
  await r.target.setResyncEnabled(true);
  await r.target.whenInSync();
  assert.ok(r.legMems[1]!.bytes.every((x) => x === 1));
  assert.ok(r.legMems[2]!.bytes.every((x) => x === 0), "the dead leg was never written");
  assert.equal(r.target.status().legs[2]!.health, "S");
});

test("mirror tables are validated like dm-raid1's constructor", async () => {
  const { Table } = await import("../../table.js");
  const r = await mirrorRig();
  const bad = async (args: string, re: RegExp) => assert.rejects(r.dev.load(Table.parse(`0 2048 mirror ${args}\n`)), re);
  await bad("core", /Insufficient mirror log arguments/);
  await bad("core x 64 2 leg0 0 leg1 0", /Invalid mirror log argument count/);
  await bad("core 3 64", /Insufficient mirror log arguments/);
  await bad("ram 1 64 2 leg0 0 leg1 0", /unknown log type/);
  await bad("core 3 64 sync x 2 leg0 0 leg1 0", /wrong number of arguments to dirty region log/);
  await bad("disk 1 64 2 leg0 0 leg1 0", /wrong number of arguments to disk dirty region log/);
  await bad("core 2 64 fast 2 leg0 0 leg1 0", /unrecognised sync argument/);
  await bad("core 1 48 2 leg0 0 leg1 0", /invalid region size 48/);
  await bad("core 1 1 2 leg0 0 leg1 0", /invalid region size 1/);
  await bad("core 1 4096 2 leg0 0 leg1 0", /invalid region size 4096/);
  await bad("core 1 64 1 leg0 0", /Invalid number of mirrors/);
  await bad("core 1 64 10 " + "leg0 0 ".repeat(10), /Invalid number of mirrors/);
  await bad("core 1 64 2 leg0 0", /Too few mirror arguments/);
  await bad("core 1 64 2 leg0 0 leg1 z", /Invalid offset/);
  await bad("core 1 64 2 leg0 0 leg1 0 x", /Invalid number of features/);
  await bad("core 1 64 2 leg0 0 leg1 0 2 handle_errors", /Not enough arguments to support feature count/);
  await bad("core 1 64 2 leg0 0 leg1 0 1 keep_log", /Unrecognised feature requested/);
  await bad("core 1 64 2 leg0 0 leg1 0 1 handle_errors extra", /Too many mirror arguments/);
  await bad("core 1 64 2 leg0 0 leg1 8", /leg1 too small/);
  await bad("disk 2 nolog 64 2 leg0 0 leg1 0", /Device lookup failed: nolog/);
  await r.dev.load(Table.parse("0 2048 mirror core 2 64 nosync 2 leg0 0 leg1 0 1 handle_errors\n"));
  assert.equal(r.dev.table({ inactive: true }), "0 2048 mirror core 2 64 nosync 2 leg0 0 leg1 0 1 handle_errors\n");
});

test("the periodic cleaner marks idle regions clean in the background", async () => {
  const r = await mirrorRig({ mirror: { cleanIntervalMs: 1 } });
  await r.dev.write(7 * R, fill(512, 1));
  assert.equal(testBit(decodeDiskLog(r.logMem.bytes, 32).cleanBits, 7), false);
  while (!testBit(decodeDiskLog(r.logMem.bytes, 32).cleanBits, 7)) await new Promise((res) => setTimeout(res, 1));
  assert.ok(r.legs[0]!.stats.flushes > 0 && r.legs[1]!.stats.flushes > 0, "legs were flushed before cleaning");
  await r.dev.remove();
});

test("with the periodic cleaner on, a flush leaves recently written regions dirty: no log write when they are written again", async () => {
  // The timer is armed but never fires during the test: only the age rule is exercised.
  const r = await mirrorRig({ mirror: { cleanIntervalMs: 3_600_000, cleanAfterIdlePeriods: 2 } });
  const log = r.target.log as DiskDirtyLog;
  await r.dev.write(6 * R, fill(512, 1));
  await r.dev.flush();
  await log.flush();
  assert.equal(testBit(decodeDiskLog(r.logMem.bytes, 32).cleanBits, 6), false, "region 6 still dirty after the flush");
  const before = log.writesIssued;
  await r.dev.write(6 * R + 512, fill(512, 2));
  assert.equal(log.writesIssued, before, "writing a dirty region again costs no log write");
  // cleanNow() (and suspend) still clean every idle region.
  assert.equal(await r.target.cleanNow(), 1);
  assert.equal(testBit(decodeDiskLog(r.logMem.bytes, 32).cleanBits, 6), true);
  await r.dev.remove();
});

test("after an unrecorded leg failure nothing is marked clean (the leg could come back stale)", async () => {
  const r = await mirrorRig();
  r.legs[1]!.addRule({ ops: ["write"] });
  await r.dev.write(3 * R, fill(512, 1));
  assert.equal(await r.target.cleanNow(), 0);
  await r.dev.suspend();
  assert.equal(testBit(decodeDiskLog(r.logMem.bytes, 32).cleanBits, 3), false);
});

test("a write spanning an in-sync and an out-of-sync region reaches every leg", async () => {
  const r = await mirrorRig({ noResume: true, mirror: { resyncEnabled: false } });
  // region 5 dirty in the log, all others clean
  r.logMem.bytes[1024] = 0xdf;
  await r.dev.resume();
  assert.equal(r.target.log.isInSync(5), false);
  await r.dev.write(5 * R - 1024, fill(2048, 6)); // last 2 sectors of region 4, first 2 of region 5
  for (const m of r.legMems) {
    assert.equal(m.bytes[5 * R - 1024], 6, `${m.name}: in-sync region 4 written`);
    assert.equal(m.bytes[5 * R + 1000], 6);
  }
  // wholly inside the out-of-sync region: source only, until the resync
  await r.dev.write(5 * R + 4096, fill(512, 9));
  assert.equal(r.legMems[0]!.bytes[5 * R + 4096], 9);
  assert.equal(r.legMems[1]!.bytes[5 * R + 4096], 0);
  await r.target.setResyncEnabled(true);
  await r.target.whenInSync();
  assert.ok(equalBytes(r.legMems[0]!.bytes, r.legMems[1]!.bytes));
});

test("handle_errors: suspend does not wait for a leg failure to be recorded (the command reloading may hold the lock the record needs); a client flush does", async () => {
  for (const who of ["suspend", "client flush"] as const) {
    const r = await mirrorRig({ handleErrors: true });
    await r.dev.write(0, fill(512, 1)); // a dirty region, so that cleaning flushes the legs
    // The policy's record does not complete meanwhile (its VG lock is held by the reloading command).
    const record = deferred();
    r.env.handler = (e) => (e.kind === "leg-failed" ? record.promise : undefined);
    r.legs[1]!.addRule({ ops: ["flush"] });
    await r.target.cleanNow(); // the background cleaner's flush fails the leg; nothing waits on it
    assert.equal(r.target.status().legs[1]!.health, "F");
    const done = who === "suspend" ? r.dev.suspend() : r.dev.flush();
    const finished = await Promise.race([done.then(() => true), new Promise<boolean>((res) => setTimeout(() => res(false), 300))]);
    if (who === "suspend") assert.equal(finished, true, "suspend finished while the record was still pending");
    else assert.equal(finished, false, "a client flush waits for the record");
    record.resolve();
    await done;
  }
});

test("handle_errors: a write or flush held for a failure's record is given back by a suspend (the reloading command may hold the lock the record needs) and finishes after resume", async () => {
  for (const next of ["reload as linear", "same table"] as const) {
    const r = await mirrorRig({ handleErrors: true });
    const record = deferred();
    r.env.handler = (e) => (e.kind === "leg-failed" ? record.promise : undefined);
    r.legs[1]!.addRule({ ops: ["write"] });
    let wrote = false;
    let flushed = false;
    const w = r.dev.write(0, fill(512, 7)).then(() => (wrote = true));
    await tick();
    await tick();
    const f = r.dev.flush().then(() => (flushed = true));
    await tick();
    assert.equal(wrote, false, "held until the failure is recorded");
    assert.equal(flushed, false, "held until the failure is recorded");
    const suspended = await Promise.race([r.dev.suspend().then(() => true), new Promise<boolean>((res) => setTimeout(() => res(false), 300))]);
    assert.equal(suspended, true, "suspend finished while the record was still pending: the held write and flush were given back");
    assert.equal(r.dev.info().inflight, 0);
    assert.equal(wrote, false, "a given-back write is not acknowledged");
    assert.equal(flushed, false);
    if (next === "reload as linear") {
      // What vgreduce --removemissing does with a 2-leg mirror: the survivor alone, as a linear LV.
      await r.dev.load(Table.parse(`0 ${r.sizeSectors} linear leg0 0\n`));
      await r.dev.resume();
      await Promise.all([w, f]);
      assert.equal(r.legMems[0]!.bytes[0], 7, "issued again through the new table");
    } else {
      await r.dev.resume();
      await tick();
      await tick();
      assert.equal(wrote, false, "issued again, and held again: the failure is still not recorded");
      record.resolve();
      await Promise.all([w, f]);
      assert.equal(r.legMems[0]!.bytes[0], 7);
    }
    record.resolve();
    await r.dev.remove();
  }
});
