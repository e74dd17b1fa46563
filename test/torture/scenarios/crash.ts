import assert from "node:assert/strict";
import type { Figures, IterationContext, Scenario } from "../lib/scenario.js";
import { sum, max } from "../lib/scenario.js";
import { ModelClient, describeViolations } from "../lib/nbd-model.js";
import { VG, createMirror, createRaid1, fioMissing, fioVerifyErrors, reap, sleep, startFio, threeDiskWorld } from "../lib/setups.js";
import type { World } from "../lib/world.js";
import { MAX_SECTOR } from "../../../src/mapper/raid/dm-raid-superblock.js";

/**
 * 1. Process crash under load. A 2-leg mirror served over NBD takes fio
 * random writes (verify=crc32c, a flush every 16 writes) on its first half
 * and the model client's writes, flushes and checked reads on its second
 * half; the daemon gets SIGKILL at a seeded moment. Three moments in turn:
 * a synced mirror, the initial sync, and `lvconvert -m1` of a linear LV.
 *
 * Before the restart the PV files (the page cache survives a killed
 * process) must satisfy the log's promise: every region the on-disk log
 * calls clean is identical on both legs, and a synced mirror has no dirty
 * region in the half nothing wrote to. After `lvchange -ay`: exactly the
 * regions the on-disk log marks dirty are resynced (never a full resync), every write acknowledged before the kill reads back, and
 * the legs end byte-identical.
 *
 * The raid1 variants (`lvcreate --type raid1 -m1`, synced or in its initial
 * sync) check the same on the write-intent bitmap in the rmetas: every
 * region whose bit is clear in the freshest bitmap (highest events, as the
 * target loads it) is identical on both images; after `lvchange -ay` the
 * regions recovered are exactly the set bits, plus (while the initial sync
 * had not finished) every region from the freshest superblock's
 * array_resync_offset on; a synced raid1 never has a bit set in the half
 * nothing wrote to, nor a reason for a full resync.
 */
const MODES = ["synced", "initial-sync", "raid1-synced", "lvconvert", "raid1-initial-sync"] as const;
type Mode = (typeof MODES)[number];

export const crashScenario: Scenario = {
  name: "crash",
  title: "process crash under load (kill -9 of the daemon)",
  // 12 on mirrors (as before the raid1 variants), 8 on raid1.
  defaultIterations: 20,
  variants: MODES.length,
  quickIterations: 3,
  unavailable: fioMissing,
  async iterate(ctx: IterationContext): Promise<Figures> {
    const mode = MODES[ctx.variant]!;
    const lvMiB = ctx.quick ? 32 : 64;
    const regionKiB = 256;
    const w = threeDiskWorld("ulvm-tort-crash-", lvMiB);
    ctx.state("mode", mode);
    let failed = true;
    try {
      const fig = await oneCrash(ctx, w, mode, lvMiB, regionKiB);
      failed = false;
      return fig;
    } finally {
      if (failed) ctx.state("daemon log", w.daemonLog().split("\n").slice(-25).join("\n"));
      if (failed && ctx.keep) ctx.state("kept", w.preserve(`crash-${ctx.seed}`));
      w.cleanup();
    }
  },
  figure(all) {
    const mirror = all.filter((f) => f["raid1"] !== 1);
    const synced = mirror.filter((f) => f["synced"] === 1);
    const raid = all.filter((f) => f["raid1"] === 1);
    const raidSynced = raid.filter((f) => f["synced"] === 1);
    return (
      `kills: ${synced.length} on a synced mirror, ${sum(mirror, "midSync")} in the middle of a sync, ${sum(mirror, "converting")} around lvconvert -m1 (the command killed too in ${sum(mirror, "cliKilled")}; a mirror on disk afterwards in ${sum(mirror, "convertedAtKill")}); ` +
      `regions resynced after a kill = regions dirty on disk in ${sum(mirror, "exactDirty")}/${mirror.length}; ` +
      `synced mirrors resynced ${sum(synced, "copied")} of ${sum(synced, "total")} regions (max ${max(synced, "copied")} in one); ` +
      `acked writes lost ${sum(mirror, "lost")} of ${sum(mirror, "acked")}; clean-but-different regions ${sum(mirror, "cleanDiffer")}; ` +
      `raid1: ${raidSynced.length} kills synced, ${raid.length - raidSynced.length} in the initial sync; recovered = set bits of the freshest bitmap (∪ regions past array_resync_offset) in ${sum(raid, "exactDirty")}/${raid.length}; ` +
      `synced raid1 recovered ${sum(raidSynced, "copied")} of ${sum(raidSynced, "total")} regions (max ${max(raidSynced, "copied")} in one); initial syncs recovered ${sum(raid, "copied") - sum(raidSynced, "copied")} of ${sum(raid, "total") - sum(raidSynced, "total")}; ` +
      `acked writes lost ${sum(raid, "lost")} of ${sum(raid, "acked")}; clean-but-different regions ${sum(raid, "cleanDiffer")} of ${sum(raid, "cleanChecked")} compared`
    );
  },
};

async function oneCrash(ctx: IterationContext, w: World, mode: Mode, lvMiB: number, regionKiB: number): Promise<Figures> {
  if (mode === "raid1-synced" || mode === "raid1-initial-sync") return oneRaidCrash(ctx, w, mode, lvMiB, regionKiB);
  const rng = ctx.rng;
  const lvBytes = lvMiB << 20;
  const exp = `${VG}/m`;
  let convert: ReturnType<World["ulvmAsync"]> | undefined;
  if (mode === "lvconvert") {
    w.ok("lvcreate", "-q", "-L", `${lvMiB}m`, "-n", "m", VG, w.disk("d1"));
  } else {
    createMirror(w, "m", lvMiB, regionKiB);
    if (mode === "synced") {
      await w.waitInSync(VG, "m");
      await w.waitLogClean(VG, "m");
    }
  }
  // fio on the first quarter, the model on the second; the second half is never written, so a
  // synced mirror must never need to resync it.
  const area = { startBytes: lvBytes / 4, lengthBytes: lvBytes / 4 };
  const model = await ModelClient.open(w.nbdSocket, exp, area, ctx.seed);
  const fio = startFio(w, exp, { offsetBytes: 0, sizeBytes: lvBytes / 4, runtimeS: 60, seed: ctx.seed });
  let stop = false;
  const load = model.load(rng.fork(1), { depth: 4, maxSectors: 128, flushEvery: 12, stop: () => stop });
  if (mode === "lvconvert") {
    await sleep(rng.range(50, 300));
    convert = w.ulvmAsync(["lvconvert", "-m1", "-R", `${regionKiB}k`, "-i", "1", `${VG}/m`, w.disk("d2"), w.disk("d3")]);
  }
  // lvconvert: from right after it starts (before its commit) to well into the new leg's sync.
  const killAfter = mode === "synced" ? rng.range(300, 1500) : mode === "lvconvert" ? rng.range(0, 1200) : rng.range(30, 900);
  ctx.state("kill after ms", killAfter);
  await sleep(killAfter);
  const pidBefore = w.daemonPid();
  // Half the time the conversion dies with the daemon (the whole host went down), often before its commit.
  const killCli = convert !== undefined && rng.chance(0.5);
  if (killCli) convert!.child.kill("SIGKILL");
  await w.killDaemon("SIGKILL");
  stop = true;
  await load;
  model.close();
  const fioResult = await reap(fio);
  const fioBad = fioVerifyErrors(fioResult);
  assert.equal(fioBad, undefined, `fio found corrupt data before the kill: ${fioBad}`);
  const conv = convert ? await reap(convert, 30_000) : undefined;
  ctx.state("lvconvert", conv ? `exit ${conv.code}: ${conv.stderr.trim().slice(0, 400)}` : "-");
  ctx.log(`killed daemon ${pidBefore} after ${killAfter} ms; model acked ${model.writesAcked} writes, ${model.flushesDone} flushes`);

  // The on-disk state the killed daemon left behind.
  let loaded = await w.loadVg(VG);
  const isMirror = loaded.vg.lvs.find((l) => l.name === "m")!.segments.some((s) => s.type === "mirror");
  let dirtyOnDisk = 0;
  let total = 0;
  let cleanDiffer = 0;
  let midSync = 0;
  if (isMirror) {
    const layout = w.mirrorLayout(loaded, "m");
    const log = w.diskLog(layout);
    total = layout.regionCount;
    const dirty = log ? log.dirty : Array.from({ length: layout.regionCount }, (_, r) => r);
    dirtyOnDisk = dirty.length;
    const dirtySet = new Set(dirty);
    const clean = Array.from({ length: layout.regionCount }, (_, r) => r).filter((r) => !dirtySet.has(r));
    for (const r of clean) if (w.legDiff(layout, 0, 1, [r]) !== -1) cleanDiffer++;
    ctx.state("dirty regions on disk", dirty.slice(0, 64));
    assert.equal(cleanDiffer, 0, `${cleanDiffer} regions are clean in the on-disk log but differ between the legs`);
    const untouched = dirty.filter((r) => r * layout.regionBytes >= lvBytes / 2);
    if (mode === "synced") assert.deepEqual(untouched, [], `a synced mirror has dirty regions nothing wrote to`);
    // Regions nothing wrote to are dirty only while the initial sync (or the new leg's) is under way.
    midSync = untouched.length > 0 ? 1 : 0;
  }

  // Restart: the next activation starts a new daemon.
  const act = w.ulvm("lvchange", "-ay", `${VG}/m`);
  assert.equal(act.code, 0, `activation after the kill: ${act.stderr}`);
  let copied = 0;
  if (isMirror) {
    const s = await w.waitInSync(VG, "m");
    copied = s.copied;
    assert.equal(copied, dirtyOnDisk, `resynced ${copied} regions, the on-disk log marked ${dirtyOnDisk} dirty`);
  }
  const check = await ModelClient.open(w.nbdSocket, exp, area, ctx.seed);
  const violations = await model.verifyAll("acked", async (off, len) => {
    const r = await check.client.request({ type: 0, offsetBytes: off, lengthBytes: len });
    if (r.error !== 0 || !r.data) throw new Error(`read after restart failed: NBD error ${r.error}`);
    return r.data;
  });
  check.close();
  assert.deepEqual(model.errors, [], "the client saw no I/O error before the kill");
  assert.equal(violations.length, 0, `acknowledged writes lost: ${describeViolations(violations)}`);

  // A conversion the kill interrupted must have a way forward: finish it.
  if (!isMirror) {
    const again = w.ulvm("lvconvert", "-m1", "-R", `${regionKiB}k`, "-i", "1", `${VG}/m`, w.disk("d2"), w.disk("d3"));
    assert.equal(again.code, 0, `lvconvert -m1 after the interrupted one: ${again.stderr}`);
  }
  const off = w.ulvm("lvchange", "-an", `${VG}/m`);
  assert.equal(off.code, 0, `deactivation: ${off.stderr}`);
  loaded = await w.loadVg(VG);
  const layout = w.mirrorLayout(loaded, "m");
  const d = w.legDiff(layout);
  assert.equal(d, -1, `legs differ at LV byte ${d} after resync`);
  const vgck = w.ulvm("vgck", VG);
  assert.equal(vgck.code, 0, `vgck: ${vgck.stderr}`);
  return {
    synced: mode === "synced" ? 1 : 0,
    exactDirty: isMirror ? 1 : 0,
    copied,
    total,
    acked: model.writesAcked,
    lost: violations.length,
    cleanDiffer,
    midSync,
    converting: mode === "lvconvert" ? 1 : 0,
    cliKilled: killCli ? 1 : 0,
    convertedAtKill: mode === "lvconvert" && isMirror ? 1 : 0,
  };
}

/**
 * The raid1 kill: as oneCrash, with the rmetas' bitmap in place of the
 * mirror's disk log (see the file comment).
 */
async function oneRaidCrash(ctx: IterationContext, w: World, mode: "raid1-synced" | "raid1-initial-sync", lvMiB: number, regionKiB: number): Promise<Figures> {
  const rng = ctx.rng;
  const lvBytes = lvMiB << 20;
  const exp = `${VG}/m`;
  // The initial sync of an idle 32 MiB raid1 takes a few ms: a recovery rate of 16 MiB/s keeps it
  // going for seconds, so that the kill lands in it (array_resync_offset not yet MaxSector) or after it.
  createRaid1(w, "m", lvMiB, regionKiB, mode === "raid1-initial-sync" ? { maxRecoveryRate: "16m" } : {});
  if (mode === "raid1-synced") {
    await w.waitInSync(VG, "m");
    await w.waitRaidBitmapClean(VG, "m");
  }
  const area = { startBytes: lvBytes / 4, lengthBytes: lvBytes / 4 };
  const model = await ModelClient.open(w.nbdSocket, exp, area, ctx.seed);
  const fio = startFio(w, exp, { offsetBytes: 0, sizeBytes: lvBytes / 4, runtimeS: 60, seed: ctx.seed });
  let stop = false;
  const load = model.load(rng.fork(1), { depth: 4, maxSectors: 128, flushEvery: 12, stop: () => stop });
  // The initial sync: from its start to past its end (the superblock then says done while set bits still wait for the cleaner).
  const killAfter = mode === "raid1-synced" ? rng.range(300, 1500) : rng.range(30, 4000);
  ctx.state("kill after ms", killAfter);
  await sleep(killAfter);
  const pidBefore = w.daemonPid();
  await w.killDaemon("SIGKILL");
  stop = true;
  await load;
  model.close();
  const fioResult = await reap(fio);
  const fioBad = fioVerifyErrors(fioResult);
  assert.equal(fioBad, undefined, `fio found corrupt data before the kill: ${fioBad}`);
  ctx.log(`killed daemon ${pidBefore} after ${killAfter} ms; model acked ${model.writesAcked} writes, ${model.flushesDone} flushes`);

  // What the killed daemon left in the rmetas and on the images.
  const layout = w.raid1Layout(await w.loadVg(VG), "m");
  const meta = w.raidMeta(layout);
  ctx.state("rmetas", {
    freshest: meta.freshest,
    events: meta.slots.map((s) => (s.kind === "valid" ? String(s.sb.eventCount) : s.kind)),
    bitmapEvents: meta.slots.map((s) => (s.kind === "valid" ? String(s.bitmap?.eventCount ?? s.bitmapProblem) : s.kind)),
    arrayResyncOffset: meta.sb ? String(meta.sb.arrayResyncOffsetSectors) : "-",
    full: meta.full ?? "-",
    dirty: meta.dirty.slice(0, 64),
    toRecover: meta.toRecover.length,
  });
  ctx.log(`on disk: freshest slot ${meta.freshest}, ${meta.dirty.length} of ${layout.regionCount} bits set, ${meta.pastResyncOffset.length} regions past array_resync_offset${meta.full ? `, full: ${meta.full}` : ""}`);
  assert.ok(meta.sb, "a killed raid1 leaves a dm-raid superblock in its rmetas");
  assert.deepEqual(meta.failedSlots, [], "no image failed: no failed bit in the freshest superblock");
  const dirtySet = new Set(meta.dirty);
  let cleanDiffer = 0;
  let cleanChecked = 0;
  const differing: number[] = [];
  if (!meta.full) {
    cleanChecked = layout.regionCount - dirtySet.size;
    for (let r = 0; r < layout.regionCount; r++)
      if (!dirtySet.has(r) && w.legDiff(layout, 0, 1, [r]) !== -1) {
        cleanDiffer++;
        differing.push(r);
      }
  }
  ctx.state("clean in the bitmap but different", differing.slice(0, 32));
  assert.equal(cleanDiffer, 0, `${cleanDiffer} regions are clean in the on-disk bitmap but differ between the images`);
  const untouched = meta.toRecover.filter((r) => r * layout.regionBytes >= lvBytes / 2);
  if (mode === "raid1-synced") {
    assert.equal(meta.full, undefined, "a synced raid1 needs no full resync after a kill");
    assert.deepEqual(untouched, [], "a synced raid1 has dirty regions nothing wrote to");
  }
  const midSync = untouched.length > 0 ? 1 : 0;

  const act = w.ulvm("lvchange", "-ay", `${VG}/m`);
  assert.equal(act.code, 0, `activation after the kill: ${act.stderr}`);
  const tSync = Date.now();
  const s = await w.waitInSync(VG, "m");
  ctx.log(`in sync after ${Date.now() - tSync} ms: ${JSON.stringify(s)}; raid status ${JSON.stringify(await w.raidStatus(VG, "m"))}`);
  const copied = s.copied;
  assert.equal(copied, meta.toRecover.length, `recovered ${copied} regions; the on-disk bitmap marked ${meta.dirty.length} (${meta.pastResyncOffset.length} past array_resync_offset${meta.full ? `, full: ${meta.full}` : ""}): ${meta.toRecover.length} to recover`);
  const health = await w.raidStatus(VG, "m");
  assert.equal(health?.health, "AA", `both images in sync after the recovery: ${JSON.stringify(health)}`);
  const check = await ModelClient.open(w.nbdSocket, exp, area, ctx.seed);
  const violations = await model.verifyAll("acked", async (off, len) => {
    const r = await check.client.request({ type: 0, offsetBytes: off, lengthBytes: len });
    if (r.error !== 0 || !r.data) throw new Error(`read after restart failed: NBD error ${r.error}`);
    return r.data;
  });
  check.close();
  assert.deepEqual(model.errors, [], "the client saw no I/O error before the kill");
  assert.equal(violations.length, 0, `acknowledged writes lost: ${describeViolations(violations)}`);
  const off = w.ulvm("lvchange", "-an", `${VG}/m`);
  assert.equal(off.code, 0, `deactivation: ${off.stderr}`);
  const after = w.raid1Layout(await w.loadVg(VG), "m");
  const d = w.legDiff(after);
  assert.equal(d, -1, `images differ at LV byte ${d} after the recovery`);
  const end = w.raidMeta(after);
  assert.equal(end.sb?.arrayResyncOffsetSectors, MAX_SECTOR, "the superblock records the sync as finished");
  assert.deepEqual(end.failedSlots, [], "no failed bit after the recovery");
  const vgck = w.ulvm("vgck", VG);
  assert.equal(vgck.code, 0, `vgck: ${vgck.stderr}`);
  return {
    raid1: 1,
    synced: mode === "raid1-synced" ? 1 : 0,
    exactDirty: 1,
    copied,
    total: layout.regionCount,
    acked: model.writesAcked,
    lost: violations.length,
    cleanDiffer,
    cleanChecked,
    midSync,
  };
}
