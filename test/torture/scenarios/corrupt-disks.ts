import assert from "node:assert/strict";
import { closeSync, copyFileSync, openSync, readSync, truncateSync, writeSync } from "node:fs";
import type { Figures, IterationContext, Scenario } from "../lib/scenario.js";
import { sum } from "../lib/scenario.js";
import { World, crashTrace } from "../lib/world.js";
import { VG } from "../lib/setups.js";
import { nbdWriteAll, patternBytes } from "../lib/nbd-io.js";
import type { Rng } from "../lib/rng.js";
import { openBlockDevice } from "../../../src/blockdev/open-device.js";
import { readDevice } from "../../../src/format/pv-read.js";
import { parseVgText } from "../../../src/format/vg-import.js";
import { exportVgText } from "../../../src/format/vg-export.js";
import { commitHeaders, encodeText, planCommit, writeTexts, type MdaTarget } from "../../../src/format/pv-write.js";
import { findLv } from "../../../src/model/lv-info.js";
import type { StripedSegment, VolumeGroup } from "../../../src/model/types.js";

/**
 * 7. Corrupted disks. On an inactive VG (a mirror and a linear LV on three
 * PVs), seeded mutations of the PV files: bit flips in a label, PV header,
 * metadata area header or metadata text; bad checksums; a truncated disk; a
 * rolled-back seqno; a duplicate PV (a copied disk); and metadata forged with
 * valid checksums that is invalid (extents past the end of a PV, segments of
 * two LVs overlapping), on one PV or on all. After each:
 *   - pvs, vgs, lvs and vgck either succeed, reporting the VG as it was with
 *     a WARNING naming the damaged device, or fail with a clear error (no
 *     stack trace); when a good copy exists the report equals the original;
 *   - nothing at all is written to any disk by those commands;
 *   - invalid metadata (on every PV) is never activated: lvchange -ay fails
 *     and the daemon holds no export;
 *   - where the damage is to one copy, `vgck --updatemetadata` (the explicit
 *     repair) leaves every copy identical and the report unchanged.
 */
type Mutation =
  | "flip-label"
  | "flip-pv-header"
  | "flip-mda-header"
  | "flip-text"
  | "bad-text-checksum"
  | "truncate"
  | "seqno-rollback"
  | "duplicate-pv"
  | "past-end-one"
  | "past-end-all"
  | "overlap-one"
  | "overlap-all";
const MUTATIONS: readonly Mutation[] = [
  "flip-label",
  "flip-pv-header",
  "flip-mda-header",
  "flip-text",
  "bad-text-checksum",
  "truncate",
  "seqno-rollback",
  "duplicate-pv",
  "past-end-one",
  "past-end-all",
  "overlap-one",
  "overlap-all",
];
/** Damage confined to one PV's metadata copy: the others must be used, with a warning. */
const ONE_COPY: ReadonlySet<Mutation> = new Set(["flip-mda-header", "flip-text", "bad-text-checksum", "seqno-rollback"]);

export const corruptDisksScenario: Scenario = {
  name: "corrupt",
  title: "corrupted disks: seeded mutations of labels, headers, metadata",
  defaultIterations: 2,
  quickIterations: 1,
  unavailable: () => undefined,
  async iterate(ctx: IterationContext): Promise<Figures> {
    const w = new World({ prefix: "ulvm-tort-corrupt-", tmpfsDisks: true, disks: ["d1", "d2", "d3"].map((name) => ({ name, sizeMiB: 16 })) });
    let failed = true;
    try {
      w.ok("pvcreate", "-q", ...w.disks);
      w.ok("vgcreate", "-q", "-s", "1m", VG, ...w.disks);
      w.ok("lvcreate", "-q", "-m1", "-L", "4m", "-R", "64k", "-n", "m", VG, w.disk("d1"), w.disk("d2"), w.disk("d3"));
      w.ok("lvcreate", "-q", "-L", "4m", "-n", "lin", VG, w.disk("d3"));
      await w.waitInSync(VG, "m");
      await nbdWriteAll(w.nbdSocket, `${VG}/m`, patternBytes(4 << 20, ctx.seed));
      w.ok("vgchange", "-q", "-an", VG);
      await w.killDaemon("SIGTERM");
      const baseline = report(w);
      assert.equal(baseline.code, 0, baseline.stderr);
      const base = w.snapshot();
      const fig: Figures = { mutations: 0, warned: 0, failedClearly: 0, refusedActivation: 0, repaired: 0, leftAlone: 0 };
      const list = ctx.quick ? MUTATIONS.filter((_, i) => i % 2 === ctx.seed % 2) : MUTATIONS;
      for (const mutation of list) {
        w.restore(base);
        w.writeConfig();
        const rng = ctx.rng.fork(MUTATIONS.indexOf(mutation) + 1);
        ctx.state("mutation", mutation);
        const victim = await mutate(w, mutation, rng);
        ctx.state("victim", victim);
        const out = await judgeMutation(w, mutation, victim, baseline.stdout);
        fig.mutations!++;
        for (const k of ["warned", "failedClearly", "refusedActivation", "repaired", "leftAlone"] as const) fig[k]! += out[k];
        // Extra disks made by a mutation go away before the next one.
        w.restore(base);
      }
      ctx.log(`${fig.mutations} mutations: ${fig.warned} reported with a warning, ${fig.failedClearly} failed clearly, ${fig.refusedActivation} activations refused, ${fig.repaired} repaired`);
      failed = false;
      return fig;
    } finally {
      if (failed) ctx.state("daemon log", w.daemonLog().split("\n").slice(-15).join("\n"));
      if (failed && ctx.keep) ctx.state("kept", w.preserve(`corrupt-${ctx.seed}`));
      await w.killDaemon("SIGKILL");
      w.cleanup();
    }
  },
  figure(all) {
    return `${sum(all, "mutations")} mutations: ${sum(all, "warned")} reported from a good copy with a warning, ${sum(all, "failedClearly")} failed with a clear error, 0 wrote without a repair; invalid metadata activated 0 times (${sum(all, "refusedActivation")} refused); ${sum(all, "repaired")} single-copy damages repaired by vgck --updatemetadata (${sum(all, "leftAlone")} headers with a wrong magic or start left alone, as lvm2 does)`;
  },
};

function report(w: World): { code: number; stdout: string; stderr: string } {
  const r = w.ulvm("lvs", "-a", "--noheadings", "-o", "lv_name,lv_size,lv_attr,devices", VG);
  // Device paths are the same before and after; nothing to normalise.
  return r;
}

function flip(path: string, offsetBytes: number, rng: Rng): void {
  const fd = openSync(path, "r+");
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offsetBytes);
    b[0] = b[0]! ^ (1 << rng.int(8));
    writeSync(fd, b, 0, 1, offsetBytes);
  } finally {
    closeSync(fd);
  }
}

/** The first metadata area of a PV file: where it starts and where its committed text is. */
async function mdaOf(path: string): Promise<{ start: number; textOffset: number; textBytes: number; header: NonNullable<Awaited<ReturnType<typeof readDevice>>["mdas"][0]["header"]>; text: string }> {
  const dev = await openBlockDevice(path, { write: false });
  try {
    const r = await readDevice(dev, path);
    const m = r.mdas[0]!;
    if (!m.header || m.text === undefined) throw new Error(`${path}: no usable metadata area`);
    return { start: m.startBytes, textOffset: m.startBytes + m.header.committed.offsetBytes, textBytes: m.header.committed.sizeBytes, header: m.header, text: m.text };
  } finally {
    await dev.close();
  }
}

/** Commit `vg` as text (no validation: this is the forger) to the first mda of each of `paths`. */
async function forge(paths: readonly string[], vg: VolumeGroup): Promise<void> {
  const text = encodeText(exportVgText(vg, { style: "disk", description: "forged by the torture suite", nowSeconds: 1 }));
  for (const p of paths) {
    const { header } = await mdaOf(p);
    const dev = await openBlockDevice(p, { write: true });
    try {
      const t: MdaTarget = { dev, devName: p, header };
      const plans = planCommit([t], text, vg.name, vg.seqno);
      await writeTexts(plans, text);
      await commitHeaders(plans);
    } finally {
      await dev.close();
    }
  }
}

async function mutate(w: World, m: Mutation, rng: Rng): Promise<string> {
  const victim = rng.pick(w.disks);
  switch (m) {
    case "flip-label":
      flip(victim, 512 + rng.int(32), rng);
      return victim;
    case "flip-pv-header":
      flip(victim, 512 + 32 + rng.int(80), rng);
      return victim;
    case "flip-mda-header": {
      const { start } = await mdaOf(victim);
      flip(victim, start + rng.int(80), rng);
      return victim;
    }
    case "flip-text": {
      const { textOffset, textBytes } = await mdaOf(victim);
      flip(victim, textOffset + rng.int(textBytes - 1), rng);
      return victim;
    }
    case "bad-text-checksum": {
      // raw_locn[0].checksum: 40 (header fields) + 16 (offset, size) bytes into the mda header.
      const { start } = await mdaOf(victim);
      flip(victim, start + 56 + rng.int(4), rng);
      return victim;
    }
    case "truncate": {
      truncateSync(victim, rng.pick([600 * 1024, 2 << 20, 8 << 20]));
      return victim;
    }
    case "seqno-rollback": {
      const { text } = await mdaOf(victim);
      const vg = parseVgText(text).vg;
      vg.seqno -= 1 + rng.int(2);
      vg.tags.push("rolled-back");
      await forge([victim], vg);
      return victim;
    }
    case "duplicate-pv": {
      const dup = w.addDisk("dup", 16);
      copyFileSync(victim, dup);
      return dup;
    }
    case "past-end-one":
    case "past-end-all":
    case "overlap-one":
    case "overlap-all": {
      const { text } = await mdaOf(w.disk("d1"));
      const vg = parseVgText(text).vg;
      vg.seqno += 1;
      const lin = findLv(vg, "lin")!.segments[0] as StripedSegment;
      const a = lin.stripes[0]!;
      if (a.kind !== "pv") throw new Error("lin is not on a PV");
      if (m.startsWith("past-end")) {
        const pv = vg.pvs.find((p) => p.id === a.pvId)!;
        (a as { startPe: number }).startPe = pv.peCount - 1 - rng.int(2);
      } else {
        const log = findLv(vg, "m_mlog")!.segments[0] as StripedSegment;
        const la = log.stripes[0]!;
        if (la.kind !== "pv") throw new Error("m_mlog is not on a PV");
        Object.assign(a, { pvId: la.pvId, startPe: la.startPe });
      }
      const targets = m.endsWith("-all") ? w.disks : [victim];
      await forge(targets, vg);
      return targets.join(",");
    }
  }
}

async function judgeMutation(w: World, m: Mutation, victim: string, baseline: string): Promise<{ warned: number; failedClearly: number; refusedActivation: number; repaired: number; leftAlone: number }> {
  const before = w.diskHash();
  const out = { warned: 0, failedClearly: 0, refusedActivation: 0, repaired: 0, leftAlone: 0 };
  const runs = [
    w.ulvm("pvs"),
    w.ulvm("vgs", VG),
    report(w),
    w.ulvm("vgck", VG),
  ];
  for (const r of runs) {
    const t = crashTrace(r.stderr);
    assert.equal(t, undefined, `a report crashed on ${m}: ${t}`);
    if (r.code !== 0) assert.ok(r.stderr.trim().length > 0, `a report failed silently on ${m}`);
  }
  assert.equal(w.diskHash(), before, `a report wrote to a disk after ${m}`);
  const lvs = runs[2]!;
  if (lvs.code === 0) {
    if (lvs.stdout === baseline) {
      assert.ok(lvs.stderr.includes("WARNING") || m === "flip-pv-header" || m === "flip-label", `${m}: the report used a good copy without saying it ignored one:\n${lvs.stderr}`);
      out.warned++;
    } else {
      // Reported differently: only acceptable as a VG that lost a PV (the damaged one), said so.
      assert.match(lvs.stderr, /WARNING/, `${m}: the report changed without a warning:\n${lvs.stdout}`);
      assert.ok(!m.endsWith("-all"), `${m}: invalid metadata was reported as valid:\n${lvs.stdout}`);
      out.warned++;
    }
  } else out.failedClearly++;
  if (/^(past-end|overlap)/.test(m)) {
    // Invalid metadata is never reported as the VG: an older valid copy with a warning, or an error.
    assert.ok(lvs.code !== 0 || lvs.stdout === baseline, `${m}: invalid metadata was reported:\n${lvs.stdout}${lvs.stderr}`);
  }
  if (ONE_COPY.has(m)) {
    assert.equal(lvs.code, 0, `${m} on one PV: the others hold a good copy:\n${lvs.stderr}`);
    assert.equal(lvs.stdout, baseline, `${m} on one PV: the report is the VG as it was`);
    assert.ok(lvs.stderr.split("\n").some((l) => l.includes("WARNING") && l.includes(victim)), `${m}: the warning names ${victim}:\n${lvs.stderr}`);
  }
  // Activation: never from invalid metadata.
  const act = w.ulvm("lvchange", "-ay", `${VG}/lin`);
  const st = await w.status();
  if (m.endsWith("-all")) {
    assert.notEqual(act.code, 0, `${m}: lin was activated from invalid metadata`);
    assert.equal(st.length, 0, `${m}: the daemon holds ${st.map((s) => s.exportName).join(", ")}`);
    out.refusedActivation++;
  } else if (act.code === 0) {
    w.ulvm("lvchange", "-an", `${VG}/lin`);
  }
  await w.killDaemon("SIGTERM");
  // The explicit repair of a damaged copy.
  if (ONE_COPY.has(m)) {
    const fix = w.ulvm("vgck", "--updatemetadata", VG);
    assert.equal(fix.code, 0, `${m}: vgck --updatemetadata: ${fix.stderr}`);
    const again = report(w);
    assert.equal(again.stdout, baseline, `${m}: the report after the repair`);
    // As lvm2, an area whose header has a wrong magic or start is not rewritten (it may not be an
    // mda at all): it must be said so, and stay the only complaint.
    if (/not repairing bad metadata/.test(fix.stderr)) {
      assert.match(again.stderr, /wrong (magic number|start sector \d+) in mda header/, `${m}: what is left unrepaired:\n${fix.stderr}\n---\n${again.stderr}`);
      out.leftAlone++;
    } else {
      assert.doesNotMatch(again.stderr, /WARNING/, `${m}: warnings remain after the repair:\n${again.stderr}`);
      out.repaired++;
    }
  }
  return out;
}
