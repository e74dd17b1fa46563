import assert from "node:assert/strict";
import type { Figures, IterationContext, Scenario } from "../lib/scenario.js";
import { sum } from "../lib/scenario.js";
import { World } from "../lib/world.js";
import type { RunResult } from "../../helpers/lab.js";
import { VG } from "../lib/setups.js";
import { nbdReadAll, nbdWriteAll, patternBytes, sha } from "../lib/nbd-io.js";
import { copyStates, laggingDevices, vgProblems } from "../lib/vg-checks.js";
import { findLv, isMirrorSeg, isRaidSeg, lvExtents } from "../../../src/model/lv-info.js";
import type { LoadedVg } from "../../../src/commands/vg-store.js";

/**
 * 3. Torn metadata. Each command of the list runs again and again on the
 * same starting disks, killed (SIGKILL) just before its 1st, 2nd, ... write
 * to a device, and once more with that write torn (half of it on disk),
 * through the test-only crash point ULVM_TEST_CRASH_AFTER_WRITES /
 * ULVM_TEST_CRASH_TEAR (src/blockdev/open-device.ts), until it runs to the
 * end. After each crash:
 *   - the next command (vgs) succeeds, reports the newest valid copy, and
 *     names on stderr every device whose copy it ignored (stale or torn);
 *   - that copy is valid (no extent shared, nothing past a PV, no hidden LV
 *     left without its mirror);
 *   - there is a way forward: running the command again (or what finishes
 *     it) reaches the command's end state, `vgck --updatemetadata` leaves
 *     every copy identical, and (on sampled boundaries) the LV activates,
 *     resyncs, holds the data written before, with identical legs.
 * Once per iteration Debian's `lvm vgck` reads the converged result.
 */
interface Case {
  readonly name: string;
  /** Build the starting state (daemon stopped and disks quiet when it returns). */
  prepare(w: World): Promise<{ pattern: Buffer | undefined }>;
  readonly args: (w: World) => string[];
  /** Reach the command's end state from wherever the crash left it (commands to run). */
  finish(w: World, loaded: LoadedVg): string[][];
  /** The end state. */
  done(loaded: LoadedVg): string | undefined;
  /** A PV that stays away during the command (lvconvert --repair, vgreduce --removemissing). */
  readonly away?: string;
}

const LV_MIB = 4;

function mirrorOf(loaded: LoadedVg, name: string): { legs: number; extents: number } | undefined {
  const lv = findLv(loaded.vg, name);
  if (!lv) return undefined;
  const seg = lv.segments.find(isMirrorSeg);
  return { legs: seg ? seg.mirrors.length : 1, extents: lvExtents(lv) };
}

/** A raid1 LV's images, and what is left of lvcreate's first commit (rmetas visible, activation skipped). */
function raidOf(loaded: LoadedVg, name: string): { images: number; extents: number; halfCreated: boolean } | undefined {
  const lv = findLv(loaded.vg, name);
  const seg = lv?.segments.find(isRaidSeg);
  if (!lv || !seg) return undefined;
  const metasVisible = seg.raids.some((r) => r.meta !== undefined && findLv(loaded.vg, r.meta)?.status.includes("VISIBLE"));
  return { images: seg.raids.length, extents: lvExtents(lv), halfCreated: metasVisible || lv.flags.includes("ACTIVATION_SKIP") };
}

const RAID1_CREATE = (w: World): string[] => ["lvcreate", "--type", "raid1", "-m1", "-an", "-Zn", "-L", `${LV_MIB}m`, "-R", "64k", "-n", "m", VG, w.disk("d1"), w.disk("d2")];

async function prepareMirror(w: World, sync = true): Promise<{ pattern: Buffer }> {
  w.ok("lvcreate", "-q", "-m1", "-L", `${LV_MIB}m`, "-R", "64k", "-n", "m", VG, w.disk("d1"), w.disk("d2"), w.disk("d3"));
  if (sync) await w.waitInSync(VG, "m");
  const pattern = patternBytes(LV_MIB << 20, 77);
  await nbdWriteAll(w.nbdSocket, `${VG}/m`, pattern);
  w.ok("lvchange", "-an", `${VG}/m`);
  await w.killDaemon("SIGTERM");
  return { pattern };
}

/**
 * pvmove's commits: the setup (pvmove0 and the LOCKED LVs), one checkpoint
 * per segment, the finish; and --abort's. m (4 MiB) sits on d1 in two
 * pieces with "keep" between them, so a move of d1 has 3 segments, each
 * checkpointed. The copy runs in the pvmove command (the LVs inactive).
 */
async function preparePvmove(w: World): Promise<{ pattern: Buffer }> {
  w.ok("lvcreate", "-q", "-L", `${LV_MIB / 2}m`, "-n", "m", VG, w.disk("d1"));
  w.ok("lvcreate", "-q", "-an", "-Zn", "-L", "1m", "-n", "keep", VG, w.disk("d1"));
  w.ok("lvextend", "-q", "-L", `${LV_MIB}m`, `${VG}/m`, w.disk("d1"));
  const pattern = patternBytes(LV_MIB << 20, 79);
  await nbdWriteAll(w.nbdSocket, `${VG}/m`, pattern);
  w.ok("lvchange", "-an", `${VG}/m`);
  await w.killDaemon("SIGTERM");
  return { pattern };
}

/** pvmove0's segments: how many, how many wholly moved. */
function pvmoveOf(l: LoadedVg): { segs: number; moved: number } | undefined {
  const pm = l.vg.lvs.find((lv) => lv.status.includes("PVMOVE"));
  if (!pm) return undefined;
  const segs = pm.segments.filter(isMirrorSeg);
  return { segs: segs.length, moved: segs.filter((s) => s.extentsMoved !== undefined && s.extentsMoved >= s.extentCount).length };
}

/** The PVs (d1...) that m and keep use, or why the VG is not at a pvmove end state. */
function pvmoveEnd(l: LoadedVg, allowed: ReadonlyArray<readonly string[]>): string | undefined {
  if (pvmoveOf(l) || l.vg.lvs.some((lv) => lv.name.startsWith("pvmove"))) return "a pvmove LV is left";
  if (l.vg.lvs.some((lv) => lv.status.includes("LOCKED"))) return "an LV is still LOCKED";
  const used = new Set<string>();
  for (const lv of l.vg.lvs) for (const s of lv.segments) for (const a of "stripes" in s ? s.stripes : []) if (a.kind === "pv") used.add(l.pvName(a.pvId).replace(/.*\//, ""));
  const u = [...used].sort();
  return allowed.some((a) => a.join() === u.join()) ? undefined : `m and keep are on ${u.join(",")}`;
}

const PVMOVE = (w: World, ...extra: string[]): string[] => ["pvmove", "-i", "0", ...extra, w.disk("d1"), w.disk("d2")];

/** Appended after the others, so a recorded seed still picks the same case. */
const PVMOVE_CASES: readonly Case[] = [
  {
    name: "pvmove, resumed",
    prepare: preparePvmove,
    args: (w) => PVMOVE(w),
    finish: (_w, l) => (pvmoveOf(l) ? [["pvmove"]] : []),
    // Resumed: everything lands on d2, or stays on d1 when the crash came before the setup's commit.
    done: (l) => pvmoveEnd(l, [["d2"], ["d1"]]),
  },
  {
    name: "pvmove, aborted",
    prepare: preparePvmove,
    args: (w) => PVMOVE(w),
    finish: (_w, l) => (pvmoveOf(l) ? [["pvmove", "--abort"]] : []),
    // Each segment wholly on one side: the first pieces moved, the rest where they were.
    done: (l) => pvmoveEnd(l, [["d1"], ["d1", "d2"], ["d2"]]),
  },
  {
    name: "pvmove --abort",
    // A move stopped after its first checkpoint (a kill before the next commit's first write).
    async prepare(w) {
      const out = await preparePvmove(w);
      const base = w.snapshot();
      for (let n = 1; ; n++) {
        if (n > 200) throw new Error("pvmove: no state with one checkpoint within 200 writes");
        w.restore(base);
        const r = await runCrashing(w, PVMOVE(w), n, false);
        assert.equal(r.code, 137, `pvmove ran to its end before a checkpoint state was seen: ${r.stderr}`);
        const p = pvmoveOf(await w.loadVg(VG));
        if (p && p.moved === 1 && laggingDevices(await copyStates(w.disks)).length === 0) return out;
      }
    },
    args: () => ["pvmove", "--abort"],
    finish: (_w, l) => (pvmoveOf(l) ? [["pvmove", "--abort"]] : []),
    done: (l) => pvmoveEnd(l, [["d1", "d2"]]),
  },
  {
    name: "pvmove --atomic, aborted",
    prepare: preparePvmove,
    args: (w) => PVMOVE(w, "--atomic"),
    finish: (_w, l) => (pvmoveOf(l) ? [["pvmove", "--abort"]] : []),
    // All or nothing: never some extents on each side.
    done: (l) => pvmoveEnd(l, [["d1"], ["d2"]]),
  },
];

const CASES: readonly Case[] = [
  {
    name: "lvcreate -m1",
    async prepare(w) {
      w.ok("lvcreate", "-q", "-an", "-Zn", "-L", "1m", "-n", "keep", VG, w.disk("d4"));
      return { pattern: undefined };
    },
    args: (w) => ["lvcreate", "-m1", "-an", "-Zn", "-L", `${LV_MIB}m`, "-R", "64k", "-n", "m", VG, w.disk("d1"), w.disk("d2"), w.disk("d3")],
    finish: (w, l) => (findLv(l.vg, "m") ? [] : [["lvcreate", "-m1", "-an", "-Zn", "-L", `${LV_MIB}m`, "-R", "64k", "-n", "m", VG, w.disk("d1"), w.disk("d2"), w.disk("d3")]]),
    done: (l) => (mirrorOf(l, "m")?.legs === 2 ? undefined : `m is ${JSON.stringify(mirrorOf(l, "m"))}`),
  },
  {
    name: "lvconvert -m1",
    async prepare(w) {
      w.ok("lvcreate", "-q", "-L", `${LV_MIB}m`, "-n", "m", VG, w.disk("d1"));
      const pattern = patternBytes(LV_MIB << 20, 78);
      await nbdWriteAll(w.nbdSocket, `${VG}/m`, pattern);
      w.ok("lvchange", "-an", `${VG}/m`);
      await w.killDaemon("SIGTERM");
      return { pattern };
    },
    args: (w) => ["lvconvert", "-y", "-m1", "-R", "64k", `${VG}/m`, w.disk("d2"), w.disk("d3")],
    finish: (w, l) => (mirrorOf(l, "m")?.legs === 2 ? [] : [["lvconvert", "-y", "-m1", "-R", "64k", `${VG}/m`, w.disk("d2"), w.disk("d3")]]),
    done: (l) => (mirrorOf(l, "m")?.legs === 2 ? undefined : `m is ${JSON.stringify(mirrorOf(l, "m"))}`),
  },
  {
    name: "lvconvert -m0",
    prepare: (w) => prepareMirror(w),
    args: () => ["lvconvert", "-y", "-m0", `${VG}/m`],
    finish: (_w, l) => (mirrorOf(l, "m")?.legs === 1 ? [] : [["lvconvert", "-y", "-m0", `${VG}/m`]]),
    done: (l) => (mirrorOf(l, "m")?.legs === 1 ? undefined : `m is ${JSON.stringify(mirrorOf(l, "m"))}`),
  },
  {
    name: "lvcreate --type raid1 -m1",
    async prepare(w) {
      w.ok("lvcreate", "-q", "-an", "-Zn", "-L", "1m", "-n", "keep", VG, w.disk("d4"));
      return { pattern: undefined };
    },
    args: (w) => RAID1_CREATE(w),
    // Killed between lvm2's two commits (rmetas visible and the LV skipped from activation while
    // they are wiped), the half-made LV is removed and created again, as a user would.
    finish: (w, l) => {
      const r = raidOf(l, "m");
      if (r && !r.halfCreated) return [];
      return [...(r || findLv(l.vg, "m") ? [["lvremove", "-f", `${VG}/m`]] : []), RAID1_CREATE(w)];
    },
    done: (l) => (raidOf(l, "m")?.images === 2 && !raidOf(l, "m")?.halfCreated ? undefined : `m is ${JSON.stringify(raidOf(l, "m"))}`),
  },
  {
    name: "vgreduce --removemissing --force",
    away: "d2",
    prepare: (w) => prepareMirror(w),
    args: () => ["vgreduce", "--removemissing", "--force", VG],
    finish: (_w, l) => (l.missingPvIds().length ? [["vgreduce", "--removemissing", "--force", VG]] : []),
    done: (l) => (l.missingPvIds().length === 0 && mirrorOf(l, "m")?.legs === 1 ? undefined : `m is ${JSON.stringify(mirrorOf(l, "m"))}, missing PVs ${l.missingPvIds().length}`),
  },
  {
    name: "lvextend",
    prepare: (w) => prepareMirror(w),
    args: () => ["lvextend", "-L", `${2 * LV_MIB}m`, `${VG}/m`],
    finish: (_w, l) => ((mirrorOf(l, "m")?.extents ?? 0) < 2 * LV_MIB ? [["lvextend", "-L", `${2 * LV_MIB}m`, `${VG}/m`]] : []),
    done: (l) => (mirrorOf(l, "m")?.extents === 2 * LV_MIB && mirrorOf(l, "m")?.legs === 2 ? undefined : `m is ${JSON.stringify(mirrorOf(l, "m"))}`),
  },
  {
    name: "lvconvert --repair",
    away: "d2",
    prepare: (w) => prepareMirror(w),
    args: () => ["lvconvert", "-y", "--repair", `${VG}/m`],
    finish: (_w, l) => {
      const missing = new Set(l.missingPvIds());
      const onMissing = l.vg.lvs.some((lv) => lv.segments.some((s) => s.type === "striped" && "stripes" in s && s.stripes.some((a) => a.kind === "pv" && missing.has(a.pvId))));
      // A crash between the repair's two commits (as in lvm2: detach the failed images, then delete
      // them) leaves a linear LV and the detached images and log as visible LVs: remove those, drop
      // the missing PV, add a leg back.
      const legs = mirrorOf(l, "m")?.legs ?? 0;
      const leftovers = l.vg.lvs.filter((lv) => /_(mimage_\d+|mlog)$/.test(lv.name) && lv.status.includes("VISIBLE")).map((lv) => `${VG}/${lv.name}`);
      if (legs === 1) return [...(leftovers.length ? [["lvremove", "-f", ...leftovers]] : []), ["vgreduce", "--removemissing", VG], ["lvconvert", "-y", "-m1", `${VG}/m`]];
      const cmds = onMissing || legs !== 2 ? [["lvconvert", "-y", "--repair", `${VG}/m`]] : [];
      return [...cmds, ["vgreduce", "--removemissing", VG]];
    },
    done: (l) => (mirrorOf(l, "m")?.legs === 2 && l.missingPvIds().length === 0 ? undefined : `m is ${JSON.stringify(mirrorOf(l, "m"))}, missing PVs ${l.missingPvIds().length}`),
  },
  ...PVMOVE_CASES,
];

export const tornMetadataScenario: Scenario = {
  name: "torn-meta",
  title: "torn metadata: kill or tear at every write boundary",
  defaultIterations: CASES.length,
  variants: CASES.length,
  quickIterations: 1,
  unavailable: () => undefined,
  async iterate(ctx: IterationContext): Promise<Figures> {
    const c = CASES[ctx.variant]!;
    ctx.state("command", c.name);
    // Four passes side by side, each in its own world: kills and tears, at even and odd boundaries.
    // The quick slice kills at even boundaries and tears at odd ones only.
    const plan = ctx.quick ? [[false, 0], [true, 1]] as const : ([false, true] as const).flatMap((tear) => [[tear, 0], [tear, 1]] as const);
    const passes = await Promise.all(plan.map(([tear, parity]) => pass(ctx, c, tear, parity)));
    const total = (k: "boundaries" | "ignoredCopies" | "dataChecks", torn?: boolean): number =>
      passes.filter((_, i) => torn === undefined || plan[i]![0] === torn).reduce((n, p) => n + p[k], 0);
    ctx.log(`${c.name}: ${total("boundaries", false)} kills, ${total("boundaries", true)} tears, ${total("dataChecks")} with data checks`);
    const raid = c.name.includes("raid1") ? 1 : 0;
    return {
      boundaries: total("boundaries"),
      torn: total("boundaries", true),
      ignoredCopies: total("ignoredCopies"),
      dataChecks: total("dataChecks"),
      raidBoundaries: raid * total("boundaries"),
      raidTorn: raid * total("boundaries", true),
      raidDataChecks: raid * total("dataChecks"),
    };
  },
  figure(all) {
    return `${sum(all, "boundaries")} crashes at write boundaries (${sum(all, "torn")} torn) across ${all.length} commands: every next command read a valid copy, named ${sum(all, "ignoredCopies")} ignored copies, and converged; ${sum(all, "dataChecks")} reactivated with data and legs checked` +
      (sum(all, "raidBoundaries") ? `; of these on lvcreate --type raid1 -m1: ${sum(all, "raidBoundaries")} crashes (${sum(all, "raidTorn")} torn), ${sum(all, "raidDataChecks")} activated, synced, images identical and the rmetas saying so` : "");
  },
};

async function pass(ctx: IterationContext, c: Case, tear: boolean, parity: number): Promise<{ boundaries: number; ignoredCopies: number; dataChecks: number }> {
  const rng = ctx.rng.fork((tear ? 2 : 0) + parity + 1);
  // Disks on tmpfs: every metadata commit flushes, and the disks are restored before each crash.
  const w = new World({ prefix: "ulvm-tort-torn-", tmpfsDisks: true, disks: ["d1", "d2", "d3", "d4"].map((name) => ({ name, sizeMiB: 12 })) });
  const where = `${tear ? "tear" : "kill"}${parity ? " odd" : " even"}`;
  let failed = true;
  try {
    w.ok("pvcreate", "-q", ...w.disks);
    w.ok("vgcreate", "-q", "-s", "1m", VG, ...w.disks);
    const { pattern } = await c.prepare(w);
    if (c.away) w.hide(c.away);
    const base = w.snapshot();
    const fig = { boundaries: 0, ignoredCopies: 0, dataChecks: 0 };
    for (let n = parity; ; n += 2) {
      if (n > 200) throw new Error(`${c.name}: more than 200 writes?`);
      w.restore(base);
      ctx.state(`${where} boundary`, n);
      const r = await runCrashing(w, c.args(w), n, tear);
      if (r.code !== 137) {
        assert.equal(r.code, 0, `${c.name} without a crash exited ${r.code}: ${r.stderr}`);
        break;
      }
      fig.boundaries++;
      const checkData = n === 0 || rng.chance(0.1);
      const out = await afterCrash(ctx, w, c, pattern, checkData, where);
      fig.ignoredCopies += out.ignored;
      fig.dataChecks += checkData ? 1 : 0;
    }
    // The command ran to its end: finish as after a crash, then Debian's lvm2 reads the result.
    for (const cmd of c.finish(w, await w.loadVg(VG))) {
      const r = await w.ulvmA(...cmd);
      assert.equal(r.code, 0, `ulvm ${cmd.join(" ")} after the uninterrupted command exited ${r.code}: ${r.stderr}`);
    }
    const l = w.lvm2("vgck", VG);
    if (l) assert.equal(l.code, 0, `lvm vgck: ${l.stderr}`);
    failed = false;
    return fig;
  } finally {
    if (failed) ctx.state(`${where} daemon log`, w.daemonLog().split("\n").slice(-15).join("\n"));
    if (failed && ctx.keep) ctx.state(`${where} kept`, w.preserve(`torn-${where.replace(" ", "-")}-${ctx.seed}`));
    await w.killDaemon("SIGKILL");
    w.cleanup();
  }
}

function runCrashing(w: World, args: string[], n: number, tear: boolean): Promise<RunResult> {
  return w.ulvmAsync(args, { ULVM_TEST_CRASH_AFTER_WRITES: String(n), ...(tear ? { ULVM_TEST_CRASH_TEAR: "1" } : {}) }).done;
}

async function afterCrash(ctx: IterationContext, w: World, c: Case, pattern: Buffer | undefined, checkData: boolean, where: string): Promise<{ ignored: number }> {
  // What is on the disks, read without ulvm's commands.
  const states = await copyStates(w.disks);
  const lagging = laggingDevices(states);
  const best = Math.max(...states.map((s) => s.seqno ?? -1));
  ctx.state(`${where} copies`, states);
  // The next command.
  const vgs = await w.ulvmA("vgs", "--noheadings", "-o", "vg_name,seq_no", VG);
  assert.equal(vgs.code, 0, `vgs after the crash exited ${vgs.code}: ${vgs.stderr}`);
  assert.match(vgs.stdout, new RegExp(`^\\s*${VG}\\s+${best}\\s*$`), `vgs reports the newest valid copy (seqno ${best})`);
  for (const d of lagging) {
    assert.ok(
      vgs.stderr.split("\n").some((l) => l.includes("WARNING") && l.includes(d)),
      `vgs must say it ignored the copy on ${d}; stderr:\n${vgs.stderr}`,
    );
  }
  let loaded = await w.loadVg(VG);
  assert.deepEqual(vgProblems(loaded.vg), [], "the copy read after the crash is valid");
  // The way forward.
  for (const cmd of c.finish(w, loaded)) {
    const r = await w.ulvmA(...cmd);
    assert.equal(r.code, 0, `way forward: ulvm ${cmd.join(" ")} exited ${r.code}: ${r.stderr}`);
  }
  const upd = await w.ulvmA("vgck", "--updatemetadata", VG);
  assert.equal(upd.code, 0, `vgck --updatemetadata: ${upd.stderr}`);
  loaded = await w.loadVg(VG);
  assert.deepEqual(vgProblems(loaded.vg), [], "the converged metadata is valid");
  const why = c.done(loaded);
  assert.equal(why, undefined, `not at the end state of ${c.name}: ${why}`);
  const after = laggingDevices(await copyStates(w.disks));
  assert.deepEqual(after, [], "every copy identical after vgck --updatemetadata");
  if (checkData) {
    const a = await w.ulvmA("lvchange", "-ay", `${VG}/m`);
    assert.equal(a.code, 0, `activation: ${a.stderr}`);
    const isRaid = raidOf(loaded, "m") !== undefined;
    const isMirror = (mirrorOf(loaded, "m")?.legs ?? 1) > 1;
    if (isMirror || isRaid) await w.waitInSync(VG, "m");
    if (pattern) {
      const data = await nbdReadAll(w.nbdSocket, `${VG}/m`, pattern.length);
      assert.equal(sha(data), sha(pattern), "the LV holds what was written before the command");
    }
    const d = await w.ulvmA("lvchange", "-an", `${VG}/m`);
    assert.equal(d.code, 0, `deactivation: ${d.stderr}`);
    await w.killDaemon("SIGTERM");
    if (isMirror) {
      const layout = w.mirrorLayout(await w.loadVg(VG), "m");
      const diff = w.legDiff(layout);
      assert.equal(diff, -1, `legs differ at LV byte ${diff} after resync`);
    }
    if (isRaid) {
      const layout = w.raid1Layout(await w.loadVg(VG), "m");
      const diff = w.legDiff(layout);
      assert.equal(diff, -1, `raid1 images differ at LV byte ${diff} after the initial sync`);
      const meta = w.raidMeta(layout);
      assert.deepEqual(meta.toRecover, [], `the rmetas record the sync as done: ${JSON.stringify({ full: meta.full, dirty: meta.dirty.length, past: meta.pastResyncOffset.length })}`);
    }
  }
  return { ignored: lagging.length };
}
