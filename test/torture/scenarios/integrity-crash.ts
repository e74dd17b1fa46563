import assert from "node:assert/strict";
import type { Figures, IterationContext, Scenario } from "../lib/scenario.js";
import { sum } from "../lib/scenario.js";
import { ModelClient, SECTOR, describeViolations } from "../lib/nbd-model.js";
import { VG, fioMissing, fioVerifyErrors, reap, sleep, startFio, threeDiskWorld } from "../lib/setups.js";
import { preadFile, type World } from "../lib/world.js";
import { checkIntegrityLeg, integrityLegPlaces, type LegVerdict } from "../lib/integrity-oracle.js";
import { SB_FLAG_RECALCULATING, SB_SECTORS, SECTOR_BYTES, decodeSuperblock } from "../../../src/mapper/integrity/integrity-format.js";

/**
 * Issue 17: kill -9 of the daemon under load on raid1 + integrity, in bitmap
 * mode (B) and journal mode (J), in turn. A synced `lvcreate --type raid1
 * -m1 --raidintegrity y --raidintegritymode bitmap|journal` takes fio random
 * writes (verify=crc32c) on its first quarter and the model client's
 * writes, flushes and checked reads on its second; the daemon gets SIGKILL
 * at a seeded moment. The PV files it left (the page cache survives a
 * killed process) are checked by dm-integrity's on-disk rules, leg by leg
 * (test/torture/lib/integrity-oracle.ts):
 *   - no block with a valid tag over data the client never wrote: in the
 *     model's quarter every such block holds zeroes or one of its writes, in
 *     the half nothing wrote to, zeroes (fio's quarter is checked by fio);
 *   - no false mismatch: every block whose tag does not match is covered by
 *     a set bit of the dirty bitmap (B) or a committed journal entry (J);
 *   - every region clean in the raid1 bitmap is identical on both legs as
 *     the activation will serve them (journal replayed).
 * Then `lvchange -ay`: every byte of the LV reads (a block bad on both legs
 * would be an EIO), every write the model had acknowledged reads back,
 * `lvchange --syncaction check` counts no mismatch (raid_mismatch_count and
 * integritymismatches 0), and after deactivation the legs are identical.
 */
const MODES = ["bitmap", "journal"] as const;

export const integrityCrashScenario: Scenario = {
  name: "integrity-crash",
  title: "process crash under load on raid1 + integrity (kill -9 of the daemon; bitmap and journal mode)",
  defaultIterations: 6,
  // Not in the slice inside `npm test`: test/integration/daemon/raid1-integrity-crash.test.ts kills the daemon in each mode there.
  quickIterations: 0,
  variants: MODES.length,
  unavailable: fioMissing,
  async iterate(ctx: IterationContext): Promise<Figures> {
    const mode = MODES[ctx.variant]!;
    const lvMiB = ctx.quick ? 16 : 32;
    // Each leg holds its image and its `_imeta` too.
    const w = threeDiskWorld("ulvm-tort-icrash-", 2 * lvMiB + 16);
    ctx.state("mode", mode);
    let failed = true;
    try {
      const fig = await oneKill(ctx, w, mode, lvMiB);
      failed = false;
      return fig;
    } finally {
      if (failed) ctx.state("daemon log", w.daemonLog().split("\n").slice(-25).join("\n"));
      if (failed && ctx.keep) ctx.state("kept", w.preserve(`integrity-crash-${ctx.seed}`));
      w.cleanup();
    }
  },
  figure(all) {
    const part = (mode: string, f: readonly Figures[]): string =>
      `${mode}: ${f.length} kills, ${sum(f, "blocks")} tags checked on disk: valid tags over data never written 0, false mismatches 0, ${sum(f, "repairable")} stale tags all covered, ${sum(f, "replayed")} blocks in journal replays; ` +
      `clean raid1 regions identical ${sum(f, "cleanChecked")}/${sum(f, "cleanChecked")}; acked writes lost ${sum(f, "lost")} of ${sum(f, "acked")}; mismatches after activation and check ${sum(f, "mismatches")}`;
    return `${part("bitmap", all.filter((f) => f["journal"] !== 1))}; ${part("journal", all.filter((f) => f["journal"] === 1))}`;
  },
};

async function oneKill(ctx: IterationContext, w: World, mode: (typeof MODES)[number], lvMiB: number): Promise<Figures> {
  const rng = ctx.rng;
  const lvBytes = lvMiB << 20;
  const exp = `${VG}/m`;
  w.ok("lvcreate", "-q", "--type", "raid1", "-m1", "--raidintegrity", "y", "--raidintegritymode", mode, "-L", `${lvMiB}m`, "-R", "256k", "-n", "m", VG, w.disk("d1"), w.disk("d2"));
  await w.waitInSync(VG, "m");
  await w.waitRaidBitmapClean(VG, "m");
  let places = integrityLegPlaces(w, await w.loadVg(VG), "m");
  // Every tag written: the first activation's recalculation has ended on both legs.
  for (let t0 = Date.now(); ; await sleep(100)) {
    const recalculating = places.filter((p) => {
      const sb = decodeSuperblock(preadFile(p.meta[0]!.path, p.meta[0]!.offsetBytes, SB_SECTORS * SECTOR_BYTES));
      return sb.kind !== "superblock" || (sb.superblock.flags & SB_FLAG_RECALCULATING) !== 0;
    });
    if (recalculating.length === 0) break;
    if (Date.now() - t0 > 60_000) throw new Error("the integrity tags were never all written");
  }
  const area = { startBytes: lvBytes / 4, lengthBytes: lvBytes / 4 };
  const model = await ModelClient.open(w.nbdSocket, exp, area, ctx.seed);
  const fio = startFio(w, exp, { offsetBytes: 0, sizeBytes: lvBytes / 4, runtimeS: 60, seed: ctx.seed });
  let stop = false;
  const load = model.load(rng.fork(1), { depth: 4, maxSectors: 128, flushEvery: 12, stop: () => stop });
  const killAfter = rng.range(300, 1500);
  ctx.state("kill after ms", killAfter);
  await sleep(killAfter);
  await w.killDaemon("SIGKILL");
  stop = true;
  await load;
  model.close();
  const fioBad = fioVerifyErrors(await reap(fio));
  assert.equal(fioBad, undefined, `fio found corrupt data before the kill: ${fioBad}`);
  assert.deepEqual(model.errors, [], "the client saw no I/O error before the kill");
  ctx.log(`killed after ${killAfter} ms; model acked ${model.writesAcked} writes, ${model.flushesDone} flushes`);

  // The PV files the killed daemon left, leg by leg.
  const loaded = await w.loadVg(VG);
  places = integrityLegPlaces(w, loaded, "m");
  const areaFirst = area.startBytes / SECTOR;
  const areaEnd = areaFirst + area.lengthBytes / SECTOR;
  const judge = (s: number, bytes: Uint8Array): string | undefined => {
    if (s < areaFirst) return undefined; // fio's quarter: fio verifies it
    if (s >= areaEnd) return bytes.every((b) => b === 0) ? undefined : "bytes where nothing was ever written";
    const tok = model.decode(bytes, s);
    if (!model.judgeWith(s - areaFirst, tok, 0)) return undefined;
    return tok === "garbage" ? `garbage ${Buffer.from(bytes.subarray(0, 16)).toString("hex")}` : `token ${tok}, never written there`;
  };
  const verdicts: LegVerdict[] = places.map((p) => checkIntegrityLeg(p, preadFile, lvBytes, judge));
  verdicts.forEach((v, leg) => {
    ctx.state(`leg ${leg}`, { blocks: v.blocks, repairable: v.repairable, replayed: v.replayed, dirtyBits: v.dirtyBits });
    assert.deepEqual(v.problems.slice(0, 8), [], `integrity leg ${leg} after the kill (${v.problems.length} problems)`);
  });
  const layout = w.raid1Layout(loaded, "m");
  const meta = w.raidMeta(layout);
  let cleanChecked = 0;
  if (!meta.full) {
    const dirty = new Set([...meta.dirty, ...meta.pastResyncOffset]);
    const R = layout.regionBytes;
    const differ: number[] = [];
    for (let r = 0; r < layout.regionCount; r++) {
      if (dirty.has(r)) continue;
      cleanChecked++;
      const a = verdicts[0]!.effective.subarray(r * R, (r + 1) * R);
      const b = verdicts[1]!.effective.subarray(r * R, (r + 1) * R);
      if (!Buffer.from(a).equals(Buffer.from(b))) differ.push(r);
    }
    assert.deepEqual(differ, [], "regions clean in the raid1 bitmap are identical on both legs (journal replayed)");
  }

  const act = w.ulvm("lvchange", "-ay", exp);
  assert.equal(act.code, 0, `activation after the kill: ${act.stderr}`);
  await w.waitInSync(VG, "m");
  const check = await ModelClient.open(w.nbdSocket, exp, undefined, ctx.seed);
  for (let off = 0; off < lvBytes; off += 1 << 20) {
    const r = await check.client.request({ type: 0, offsetBytes: off, lengthBytes: 1 << 20 });
    assert.equal(r.error, 0, `read of LV bytes ${off}+1MiB after the kill: NBD error ${r.error}`);
  }
  check.close();
  const reader = await ModelClient.open(w.nbdSocket, exp, area, ctx.seed);
  const violations = await model.verifyAll("acked", async (off, len) => {
    const r = await reader.client.request({ type: 0, offsetBytes: off, lengthBytes: len });
    if (r.error !== 0 || !r.data) throw new Error(`read after restart failed: NBD error ${r.error}`);
    return r.data;
  });
  reader.close();
  assert.equal(violations.length, 0, `acknowledged writes lost: ${describeViolations(violations)}`);
  const chk = w.ulvm("lvchange", "--syncaction", "check", exp);
  assert.equal(chk.code, 0, `lvchange --syncaction check: ${chk.stderr}`);
  for (let t0 = Date.now(); ; await sleep(50)) {
    const st = await w.raidStatus(VG, "m");
    if (st?.syncAction === "idle" && st.scrub?.action === "check" && !st.scrub.running) break;
    if (Date.now() - t0 > 120_000) throw new Error("the check never ended");
  }
  const counts = w.ok("lvs", "-a", "--noheadings", "--separator", ";", "-o", "lv_name,raid_mismatch_count,integritymismatches", VG).trim().split("\n").map((l) => l.trim());
  let mismatches = 0;
  for (const line of counts) {
    const [name, raidCount, integCount] = line.split(";");
    if (name === "m") mismatches += Number(raidCount);
    if (/^(m|\[m_rimage_\d\])$/.test(name!)) mismatches += Number(integCount);
  }
  assert.equal(mismatches, 0, `no mismatch after the kill, the activation and a check: ${counts.join(" | ")}`);
  const off = w.ulvm("lvchange", "-an", exp);
  assert.equal(off.code, 0, `deactivation: ${off.stderr}`);
  const d = w.legDiff(w.raid1Layout(await w.loadVg(VG), "m"));
  assert.equal(d, -1, `legs differ at LV byte ${d} after the recovery`);
  return {
    journal: mode === "journal" ? 1 : 0,
    blocks: verdicts.reduce((n, v) => n + v.blocks, 0),
    repairable: verdicts.reduce((n, v) => n + v.repairable, 0),
    replayed: verdicts.reduce((n, v) => n + v.replayed, 0),
    cleanChecked,
    acked: model.writesAcked,
    lost: violations.length,
    mismatches,
  };
}
