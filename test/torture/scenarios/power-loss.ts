import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import type { Figures, IterationContext, Scenario } from "../lib/scenario.js";
import { sum } from "../lib/scenario.js";
import { World, raidMetaOf, sleep, type MirrorLayout, type Raid1Layout } from "../lib/world.js";
import { RecordingPvs } from "../lib/recording-pvs.js";
import { CrashImages, type CrashPoint, type CrashState } from "../lib/crash-images.js";
import { ModelClient, SECTOR, describeViolations, type Violation } from "../lib/nbd-model.js";
import { VG } from "../lib/setups.js";
import { devicePathUnavailable, which } from "../../helpers/lab.js";
import { crc32cTag } from "../../../src/mapper/integrity/integrity-format.js";
import { MemoryBlockDevice } from "../../../src/blockdev/memory-block-device.js";
import { readDevice } from "../../../src/format/pv-read.js";
import { parseVgText } from "../../../src/format/vg-import.js";
import { decodeDiskLog, diskLogTransferBytes } from "../../../src/mapper/dirty-log/disk-log-format.js";
import { testBit } from "../../../src/mapper/dirty-log/bitset.js";
import type { IoRecord } from "../../../src/blockdev/fault-block-device.js";
import type { Rng } from "../lib/rng.js";
import { blockPlaces, checkIntegrityLeg, integrityLegPlaces, type IntegrityLegPlace, type LegVerdict } from "../lib/integrity-oracle.js";

/**
 * 2. Power loss, not just a crash. The PVs are memory devices in this
 * process behind a recording block device, served to ulvm through NBD and
 * nbdfuse, so every write, flush and FUA that reaches them, from the daemon
 * and from the CLI, is logged in order. A synced 2-leg mirror takes the
 * model client's writes, flushes and FUA writes while `vgchange --addtag`
 * commits new metadata. Then power-cut states are rebuilt from the trace:
 * prefixes cut right after flushes, and random subsets of the writes that
 * were not yet durable (in flight included) with one torn sector. For each:
 *   - metadata: every copy is exactly the old or the new version;
 *   - the log: every region it calls clean is identical on both legs;
 *   - data: every write acknowledged before the last completed flush (or
 *     acknowledged with FUA) is on the source leg (what recovery serves);
 * and for a few of them, written to files, `lvchange -ay` succeeds, the
 * mirror resyncs, the data reads back over NBD, the legs end identical.
 * The oracle is also run on states built with a deliberately wrong order (a
 * leg write made durable while its region's dirty mark is not) and must
 * reject every one of them.
 *
 * The raid1 variant (`lvcreate --type raid1 -m1`, images and rmetas on d1
 * and d2) checks the same with the write-intent bitmap in the rmetas in
 * place of the log: a region is clean when its bit is clear in the
 * freshest bitmap (and the initial sync had passed it); a bitmap the
 * target would not trust (STALE, events behind) promises nothing. The
 * crash states that are activated must recover exactly the regions their
 * bitmap marks. The wrong orderings are a data write on image 1 made
 * durable while neither rmeta holds the bitmap page that marked its region.
 */
/** The raid1 + integrity kinds are the integrity-power-loss scenario's (integrity-power-loss.ts). */
export type Kind = "raid1" | "mirror" | "raid1-integrity-bitmap" | "raid1-integrity-journal";
const KINDS: readonly Kind[] = ["raid1", "mirror"];
const integrityMode = (k: Kind): "bitmap" | "journal" | undefined => (k === "raid1-integrity-bitmap" ? "bitmap" : k === "raid1-integrity-journal" ? "journal" : undefined);
const LV_MIB = 8;
const DISKS = [
  { name: "d1", sizeMiB: 12 },
  { name: "d2", sizeMiB: 12 },
  { name: "d3", sizeMiB: 6 },
];
/** With integrity each leg also holds its `_imeta` (8 MiB here, as lvm2 sizes it). */
const INTEGRITY_DISKS = [
  { name: "d1", sizeMiB: 20 },
  { name: "d2", sizeMiB: 20 },
  { name: "d3", sizeMiB: 6 },
];
const disksFor = (k: Kind): typeof DISKS => (integrityMode(k) ? INTEGRITY_DISKS : DISKS);

export const powerLossScenario: Scenario = {
  name: "power-loss",
  title: "power loss: recorded writes replayed as crash states",
  // 6 on a mirror (as before the raid1 variant), 6 on raid1.
  defaultIterations: 12,
  quickIterations: 1,
  variants: KINDS.length,
  unavailable: () => (which("nbdfuse") ? devicePathUnavailable() : "nbdfuse not installed (apt-get install libnbd-bin)"),
  iterate: (ctx: IterationContext): Promise<Figures> => powerLossIteration(ctx, KINDS[ctx.variant]!),
  figure(all) {
    return (
      `${sum(all, "states")} crash states (${sum(all, "prefixes")} prefixes cut at flushes and metadata writes, ${sum(all, "subsets")} random subsets with a torn sector) from ${sum(all, "records")} recorded writes/flushes: ` +
      `metadata old-or-new ${sum(all, "metaOk")}/${sum(all, "states")}, clean regions identical, flushed data present; ${sum(all, "activated")} activated and resynced; ` +
      `wrong orderings caught ${sum(all, "mutantsCaught")}/${sum(all, "mutants")}; ` +
      `raid1: ${sum(all, "raid1")} iterations, ${sum(all, "raidStates")} states (${sum(all, "raidCleanChecked")} clean regions compared), ${sum(all, "raidActivated")} activated recovered exactly the regions their bitmap marked, wrong orderings caught ${sum(all, "raidMutantsCaught")}/${sum(all, "raidMutants")}`
    );
  },
};

/** One iteration: record a workload on `kind`, then replay its crash states. */
export async function powerLossIteration(ctx: IterationContext, kind: Kind): Promise<Figures> {
  const w = new World({ prefix: "ulvm-tort-power-", disks: [] });
  let pvs: RecordingPvs | undefined;
  let failed = true;
  try {
    pvs = await RecordingPvs.start(w, disksFor(kind));
    ctx.state("kind", kind);
    const t0 = Date.now();
    const trace = await recordWorkload(ctx, w, pvs, kind);
    ctx.log(`recorded in ${Date.now() - t0} ms`);
    await w.killDaemon("SIGKILL");
    await pvs.stop();
    pvs = undefined;
    const t1 = Date.now();
    const fig = await replay(ctx, w, trace);
    ctx.log(`replayed in ${Date.now() - t1} ms`);
    failed = false;
    return fig;
  } finally {
    if (failed) ctx.state("daemon log", w.daemonLog().split("\n").slice(-20).join("\n"));
    await w.killDaemon("SIGKILL");
    await pvs?.stop();
    w.cleanup();
  }
}

interface Trace {
  records: IoRecord[];
  base: Map<string, Uint8Array>;
  final: Map<string, Uint8Array>;
  /** recorder position at each point durable data grew, with the model's durable tokens then. */
  marks: Array<{ mark: number; durable: Uint32Array }>;
  model: ModelClient;
  geometry: Geometry;
  known: Map<number, string>;
  disks: typeof DISKS;
  /** Each integrity leg's verdict on the state before the recording: later states reuse it where they equal it. */
  integrityBase?: LegVerdict[];
  /** raid1 + integrity in journal mode. */
  journal: boolean;
}

/** Byte positions in the PV images (device names d1..d3). */
interface Geometry {
  layout: MirrorLayout;
  /** The raid1's layout (rmetas), for the raid1 variant. */
  raid?: Raid1Layout;
  /** Each leg's integrity layer (data and metadata LVs), for the raid1 + integrity kinds. */
  integrity?: IntegrityLegPlace[];
  nameOf: Map<string, string>;
}

async function recordWorkload(ctx: IterationContext, w: World, pvs: RecordingPvs, kind: Kind): Promise<Trace> {
  const DISKS = disksFor(kind);
  const files = DISKS.map((d) => pvs.files.get(d.name)!);
  w.writeConfig(files);
  // Every command runs in the background: this process serves the PVs they read.
  const ok = async (...args: string[]): Promise<void> => {
    const r = await w.ulvmA(...args);
    if (r.code !== 0) throw new Error(`ulvm ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  };
  await ok("pvcreate", "-q", ...files);
  await ok("vgcreate", "-q", "-s", "1m", VG, ...files);
  const imode = integrityMode(kind);
  if (kind !== "mirror")
    await ok("lvcreate", "-q", "--type", "raid1", "-m1", ...(imode ? ["--raidintegrity", "y", "--raidintegritymode", imode] : []), "-L", `${LV_MIB}m`, "-R", "64k", "-n", "m", VG, files[0]!, files[1]!);
  else await ok("lvcreate", "-q", "-m1", "-L", `${LV_MIB}m`, "-R", "64k", "-n", "m", VG, ...files);
  await w.waitInSync(VG, "m");
  const loaded = await w.loadVg(VG, files);
  const raid = kind !== "mirror" ? w.raid1Layout(loaded, "m") : undefined;
  const integrity = imode ? integrityLegPlaces(w, loaded, "m") : undefined;
  const layout = raid ?? w.mirrorLayout(loaded, "m");
  const nameOf = new Map(DISKS.map((d) => [pvs.files.get(d.name)!, d.name]));
  // Start from a mirror whose log calls every region clean (read from the memory devices: the
  // FUSE files must not be read synchronously here).
  const g0: Geometry = { layout, nameOf, ...(raid ? { raid } : {}), ...(integrity ? { integrity } : {}) };
  const mems = new Map([...pvs.mems].map(([n, m]) => [n, m.bytes]));
  for (let t0 = Date.now(); ; await sleep(100)) {
    const log = logState(g0, mems);
    // With integrity, also every tag written (the first activation's recalculation has ended).
    const tagged = !integrity || integrityVerdicts(g0, mems, () => undefined).every((v) => v.notYetTagged === 0 && v.problems.length === 0);
    if (tagged && log && Array.from({ length: layout.regionCount }, (_, r) => r).every((r) => log.clean(r))) break;
    if (Date.now() - t0 > 60_000) throw new Error(`the mirror log never became clean${tagged ? "" : " (or the integrity tags never all written)"}`);
  }
  const { recorder, base } = pvs.startRecording();
  const model = await ModelClient.open(w.nbdSocket, `${VG}/m`, undefined, ctx.seed);
  const marks: Trace["marks"] = [];
  model.onDurable = () => marks.push({ mark: recorder.nextSeq, durable: model.durable.slice() });
  let stop = false;
  let loadError: unknown;
  const load = model
    .load(ctx.rng.fork(1), { depth: 4, maxSectors: 64, flushEvery: 8, fuaChance: 0.08, readChance: 0.1, stop: () => stop })
    .catch((e: unknown) => (loadError = e));
  await sleep(ctx.quick ? 300 : 600);
  await ok("vgchange", "--addtag", `t${ctx.seed}`, VG);
  await sleep(ctx.quick ? 300 : 600);
  stop = true;
  await load;
  if (loadError !== undefined) throw loadError;
  assert.deepEqual(model.errors, [], "no I/O error during the recorded run");
  pvs.stopRecording();
  model.close();
  const final = new Map([...pvs.mems].map(([n, m]) => [n, m.bytes.slice()]));
  const known = new Map<number, string>();
  const integrityBase = integrity ? integrityVerdicts(g0, base, clientWrote({ model } as Trace)) : undefined;
  for (const v of integrityBase ?? []) assert.deepEqual(v.problems, [], "the integrity legs before the recording");
  for (const imgs of [base, final]) for (const [n, img] of imgs) for (const c of await copies(n, img)) if (c.text) known.set(c.seqno!, c.text);
  ctx.log(`recorded ${recorder.records.length} writes/flushes, ${model.writesAcked} client writes, ${model.flushesDone} flushes, metadata seqnos ${[...known.keys()].join(", ")}`);
  assert.equal(known.size, 2, "the recorded run committed exactly one new metadata version");
  return { records: recorder.records, base, final, marks, model, geometry: g0, known, disks: DISKS, ...(integrityBase ? { integrityBase } : {}), journal: imode === "journal" };
}

/** The metadata copies in a PV image (first MiB). */
async function copies(name: string, img: Uint8Array): Promise<Array<{ seqno: number | undefined; text: string | undefined; problem: string | undefined }>> {
  const read = await readDevice(new MemoryBlockDevice(name, img.subarray(0, 1 << 20)), name);
  return read.mdas.map((m) => {
    if (m.text === undefined) return { seqno: undefined, text: undefined, problem: m.problem ?? "no text" };
    try {
      return { seqno: parseVgText(m.text, name).vg.seqno, text: m.text, problem: undefined };
    } catch (e) {
      return { seqno: undefined, text: undefined, problem: (e as Error).message };
    }
  });
}

/** Where LV byte `off` of leg `leg` is: device name and byte offset. */
function legPos(g: Geometry, leg: number, off: number): { dev: string; offsetBytes: number } {
  const L = g.layout;
  const e = Math.floor(off / L.extentBytes);
  const loc = L.legs[leg]![e]!;
  return { dev: g.nameOf.get(loc.path)!, offsetBytes: loc.offsetBytes + (off - e * L.extentBytes) };
}

function legBytes(g: Geometry, images: Map<string, Uint8Array>, leg: number, off: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let done = 0; done < len; ) {
    const p = legPos(g, leg, off + done);
    const n = Math.min(len - done, g.layout.extentBytes - ((off + done) % g.layout.extentBytes));
    out.set(images.get(p.dev)!.subarray(p.offsetBytes, p.offsetBytes + n), done);
    done += n;
  }
  return out;
}

function logState(g: Geometry, images: Map<string, Uint8Array>): { clean: (r: number) => boolean } | undefined {
  if (g.raid) {
    const m = raidMetaOf(g.raid, (path, off, len) => Buffer.from(images.get(g.nameOf.get(path)!)!.subarray(off, off + len)));
    if (m.full) return undefined; // the target recovers every region: no promise to check
    const notClean = new Set([...m.dirty, ...m.pastResyncOffset]);
    return { clean: (r) => !notClean.has(r) };
  }
  const L = g.layout;
  const dev = g.nameOf.get(L.log!.path)!;
  const buf = images.get(dev)!.subarray(L.log!.offsetBytes, L.log!.offsetBytes + diskLogTransferBytes(L.regionCount));
  try {
    const { cleanBits } = decodeDiskLog(buf, L.regionCount);
    return { clean: (r) => testBit(cleanBits, r) };
  } catch {
    return undefined; // not a log: recovery treats it as new, every region resyncs
  }
}

/** Each integrity leg's verdict on a set of images (see integrity-oracle.ts). */
function integrityVerdicts(g: Geometry, images: Map<string, Uint8Array>, judge: (lvSector: number, bytes: Uint8Array) => string | undefined, baseline?: LegVerdict[]): LegVerdict[] {
  const read = (path: string, off: number, len: number): Uint8Array => images.get(g.nameOf.get(path)!)!.subarray(off, off + len);
  return (g.integrity ?? []).map((place, leg) => checkIntegrityLeg(place, read, g.layout.extentCount * g.layout.extentBytes, judge, baseline?.[leg]));
}

/** The model's word on a sector's bytes: undefined when the client wrote them there (or they are the LV's first zeroes). */
function clientWrote(t: Trace): (lvSector: number, bytes: Uint8Array) => string | undefined {
  return (s, bytes) => {
    if (s >= t.model.sectors) return undefined; // past the model's area: nothing written there
    const tok = t.model.decode(bytes, s);
    if (!t.model.judgeWith(s, tok, 0)) return undefined;
    return tok === "garbage" ? `garbage ${Buffer.from(bytes.subarray(0, 16)).toString("hex")}` : `token ${tok}, never written there`;
  };
}

/** The checks of one crash state; returns what failed (empty = fine). */
async function oracle(t: Trace, st: CrashState): Promise<{ problems: string[]; cleanDiffer: number[]; cleanChecked: number; integrity: LegVerdict[] }> {
  const problems: string[] = [];
  const g = t.geometry;
  // Integrity: per leg, every tag that matches covers client data, every one that does not is repaired by the activation.
  const integrity = integrityVerdicts(g, st.images, clientWrote(t), t.integrityBase);
  integrity.forEach((v, leg) => {
    if (v.problems.length) problems.push(`integrity leg ${leg}: ${v.problems.slice(0, 4).join("; ")}${v.problems.length > 4 ? ` (${v.problems.length} problems)` : ""}`);
  });
  // What each leg serves after the activation: with integrity, its data with the journal replayed.
  const leg = (i: number, off: number, len: number): Uint8Array => (integrity[i] ? integrity[i]!.effective.subarray(off, off + len) : legBytes(g, st.images, i, off, len));
  // Metadata: each copy is the old or the new version, exactly.
  let best = -1;
  for (const [n, img] of st.images) {
    for (const c of await copies(n, img)) {
      if (c.seqno === undefined) continue; // a torn or unfinished copy is ignored by readers, as it must be
      if (t.known.get(c.seqno) !== c.text) problems.push(`${n}: metadata seqno ${c.seqno} is neither the old nor the new version`);
      best = Math.max(best, c.seqno);
    }
  }
  if (!t.known.has(best)) problems.push(`no valid metadata copy (best seqno ${best})`);
  // The log's promise: clean means identical legs.
  const log = logState(g, st.images);
  const cleanDiffer: number[] = [];
  const R = g.layout.regionBytes;
  let cleanChecked = 0;
  if (log) {
    for (let r = 0; r < g.layout.regionCount; r++) {
      if (!log.clean(r)) continue;
      cleanChecked++;
      const a = leg(0, r * R, R);
      const b = leg(1, r * R, R);
      if (!Buffer.from(a).equals(Buffer.from(b))) cleanDiffer.push(r);
    }
  }
  if (cleanDiffer.length) problems.push(`regions ${cleanDiffer.slice(0, 8).join(",")} are clean in the log but differ between the legs`);
  // Data: recovery serves the source leg (leg 0) for dirty regions and identical legs elsewhere.
  const v = dataViolations(t, st, (off, len) => leg(0, off, len));
  if (v.length) problems.push(`flushed data missing on the source leg: ${describeViolations(v)}`);
  return { problems, cleanDiffer, cleanChecked, integrity };
}

function requiredAt(t: Trace, seq: number): Uint32Array | undefined {
  let req: Uint32Array | undefined;
  for (const m of t.marks) {
    if (m.mark > seq) break;
    req = m.durable;
  }
  return req;
}

function dataViolations(t: Trace, st: CrashState, read: (off: number, len: number) => Uint8Array): Violation[] {
  const req = requiredAt(t, st.seq);
  const out: Violation[] = [];
  const lvBytes = t.model.sectors * SECTOR;
  const tornLv = st.torn ? tornLvSector(t.geometry, st.torn) : undefined;
  const chunk = 1 << 20;
  for (let off = 0; off < lvBytes; off += chunk) {
    const buf = read(off, Math.min(chunk, lvBytes - off));
    for (let i = 0; i < buf.length; i += SECTOR) {
      const s = (off + i) / SECTOR;
      const tok = t.model.decode(buf.subarray(i, i + SECTOR), s);
      // The torn sector of a write that was not durable; in journal mode the data area only takes writes the replay can redo: never.
      if (tok === "garbage" && s === tornLv && !t.journal) continue;
      const v = t.model.judgeWith(s, tok, req?.[s] ?? 0);
      if (v) out.push(out.length === 0 && tok === "garbage" ? { ...v, found: `garbage ${Buffer.from(buf.subarray(i, i + 32)).toString("hex")}` as "garbage" } : v);
    }
  }
  return out;
}

/**
 * In journal mode, the integrity metadata LVs' sectors: the dm-integrity
 * journal (the kernel's format, which ulvm keeps) trusts a sector whose
 * commit id is current, so it relies on 512-byte writes landing whole, as
 * disks promise. A power cut there leaves sectors old or new, never cut.
 */
function journalMetaSectors(g: Geometry): (device: string, offsetBytes: number) => boolean {
  const extents = (g.integrity ?? []).flatMap((place) => place.meta.flatMap((l) => (l ? [{ dev: g.nameOf.get(l.path), from: l.offsetBytes, to: l.offsetBytes + place.extentBytes }] : [])));
  return (device, off) => extents.some((e) => e.dev === device && off >= e.from && off < e.to);
}

/** The LV sector of leg 0 a torn write hit, if it hit leg 0's data. */
function tornLvSector(g: Geometry, torn: { device: string; offsetBytes: number }): number | undefined {
  const L = g.layout;
  for (let e = 0; e < L.extentCount; e++) {
    const loc = L.legs[0]![e];
    if (!loc || g.nameOf.get(loc.path) !== torn.device) continue;
    if (torn.offsetBytes >= loc.offsetBytes && torn.offsetBytes < loc.offsetBytes + L.extentBytes) return (e * L.extentBytes + torn.offsetBytes - loc.offsetBytes) / SECTOR;
  }
  return undefined;
}

function crashPoints(t: Trace, rng: Rng, n: number, metadataBoundaries = true): CrashPoint[] {
  const flushes = t.records.filter((r) => r.op === "flush").map((r) => r.seq + 1);
  const chosen = new Set<number>();
  while (chosen.size < Math.min(n, flushes.length)) chosen.add(flushes[rng.int(flushes.length)]!);
  const pts: CrashPoint[] = [];
  // Every boundary of the metadata commit (writes before the data area): before and after each.
  for (const r of t.records) {
    if (!metadataBoundaries || r.op !== "write" || r.offsetBytes >= 1 << 20) continue;
    pts.push({ seq: r.seq, prefix: true }, { seq: r.seq + 1, prefix: true }, { seq: r.seq + 1, prefix: false });
  }
  const sorted = [...chosen].sort((a, b) => a - b);
  for (const c of sorted) {
    pts.push({ seq: c, prefix: true });
    const next = flushes.find((f) => f > c) ?? t.records.length;
    pts.push({ seq: c + 1 + rng.int(Math.max(1, next - c + 8)), prefix: false });
  }
  return pts.sort((a, b) => a.seq - b.seq || Number(b.prefix) - Number(a.prefix));
}

async function replay(ctx: IterationContext, w: World, t: Trace): Promise<Figures> {
  const rng = ctx.rng.fork(7);
  // The slice inside `npm test` leaves the metadata commit's boundaries to the plain power-loss scenario when integrity is on.
  const points = crashPoints(t, rng, ctx.quick ? (t.geometry.integrity ? 8 : 12) : 40, !(ctx.quick && t.geometry.integrity));
  const builder = new CrashImages(t.base, t.records, t.journal ? journalMetaSectors(t.geometry) : undefined);
  const fig = { states: 0, prefixes: 0, subsets: 0, metaOk: 0, activated: 0, mutants: 0, mutantsCaught: 0, records: t.records.length };
  let cleanRegions = 0;
  const integ = { integBlocks: 0, integRepairable: 0, integReplayed: 0, checkMismatches: 0 };
  const activateAt = new Set([points.find((p) => p.prefix)?.seq, points.filter((p) => !p.prefix).at(-1)?.seq].filter((x) => x !== undefined));
  for (const p of points) {
    const st = builder.state(p, rng);
    ctx.state("crash point", { seq: p.seq, prefix: p.prefix, kept: st.kept, dropped: st.dropped, torn: st.torn });
    const { problems, cleanChecked, integrity } = await oracle(t, st);
    cleanRegions += cleanChecked;
    for (const v of integrity) {
      integ.integBlocks += v.blocks;
      integ.integRepairable += v.repairable;
      integ.integReplayed += v.replayed;
    }
    if (problems.length && process.env.TORTURE_DEBUG) debugState(t, st);
    assert.deepEqual(problems, [], `crash state at record ${p.seq} (${p.prefix ? "prefix" : "random subset"})`);
    fig.states++;
    fig.metaOk++;
    if (p.prefix) fig.prefixes++;
    else fig.subsets++;
    if (activateAt.has(p.seq) && (p.prefix || !ctx.quick)) {
      activateAt.delete(p.seq);
      const ta = Date.now();
      integ.checkMismatches += await activateState(ctx, t, st);
      ctx.log(`activated a state in ${Date.now() - ta} ms`);
      fig.activated++;
    }
  }
  const m = await mutants(t, rng, ctx.quick ? 1 : 3);
  fig.mutants = m.tried;
  fig.mutantsCaught = m.caught;
  assert.equal(m.caught, m.tried, "the oracle rejects every state with data durable before its region's dirty mark");
  ctx.log(`${fig.states} states, ${fig.activated} activated, ${m.caught}/${m.tried} wrong orderings caught`);
  if (t.geometry.integrity) {
    const im = await integrityMutants(t, rng);
    Object.assign(integ, { integMutants: im.tried, integMutantsCaught: im.caught });
    assert.equal(im.caught, im.tried, "the integrity oracle rejects a stale tag nothing covers and a valid tag over garbage");
  }
  void w;
  const raid = t.geometry.raid ? 1 : 0;
  const integrity = t.geometry.integrity ? 1 : 0;
  return { ...fig, ...(integrity ? integ : {}), integrity, journal: t.geometry.integrity && t.journal ? 1 : 0, raid1: raid, raidStates: raid ? fig.states : 0, raidActivated: raid ? fig.activated : 0, raidCleanChecked: raid ? cleanRegions : 0, raidMutants: raid ? m.tried : 0, raidMutantsCaught: raid ? m.caught : 0 };
}

/**
 * Write a crash state to files, activate it with ulvm, let it resync, check
 * data and legs. With integrity, every block must also read (a block bad on
 * both legs would be an EIO), and `lvchange --syncaction check` afterwards
 * must find no mismatch (returned: mismatches counted, 0 or it failed).
 */
async function activateState(ctx: IterationContext, t: Trace, st: CrashState): Promise<number> {
  const w = new World({ prefix: "ulvm-tort-power-act-", disks: [] });
  try {
    for (const d of t.disks) {
      const p = w.addDisk(d.name, d.sizeMiB);
      writeFileSync(p, st.images.get(d.name)!);
    }
    w.writeConfig();
    const vgs = await w.ulvmA("vgs", "--noheadings", "-o", "seq_no", VG);
    assert.equal(vgs.code, 0, `vgs on the crash state: ${vgs.stderr}`);
    assert.ok(t.known.has(Number(vgs.stdout.trim())), `vgs reports seqno ${vgs.stdout.trim()}, not the old or the new one`);
    // raid1: what the rmetas of the crash state say must be recovered.
    const toRecover = t.geometry.raid ? w.raidMeta(w.raid1Layout(await w.loadVg(VG), "m")) : undefined;
    const on = await w.ulvmA("lvchange", "-ay", `${VG}/m`);
    assert.equal(on.code, 0, `activation of the crash state: ${on.stderr}`);
    const synced = await w.waitInSync(VG, "m");
    if (toRecover)
      assert.equal(synced.copied, toRecover.toRecover.length, `recovered ${synced.copied} regions; the crash state's bitmap marks ${toRecover.dirty.length}${toRecover.full ? ` (full: ${toRecover.full})` : ""}`);
    const check = await ModelClient.open(w.nbdSocket, `${VG}/m`, undefined, ctx.seed);
    const reads = new Map<number, Buffer>();
    const lvBytes = t.model.sectors * SECTOR;
    for (let off = 0; off < lvBytes; off += 1 << 20) {
      const r = await check.client.request({ type: 0, offsetBytes: off, lengthBytes: Math.min(1 << 20, lvBytes - off) });
      if (r.error !== 0 || !r.data) throw new Error(`read at ${off}: NBD error ${r.error}`);
      reads.set(off, r.data);
    }
    check.close();
    const v = dataViolations(t, st, (off) => reads.get(off)!);
    assert.equal(v.length, 0, `after activation: ${describeViolations(v)}`);
    let mismatches = 0;
    if (t.geometry.integrity) {
      const lvs = async (fields: string): Promise<string[]> => {
        const r = await w.ulvmA("lvs", "-a", "--noheadings", "--separator", ";", "-o", fields, VG);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.trim().split("\n").map((l) => l.trim());
      };
      const chk = await w.ulvmA("lvchange", "--syncaction", "check", `${VG}/m`);
      assert.equal(chk.code, 0, `lvchange --syncaction check: ${chk.stderr}`);
      // The daemon's status (as `lvs -o raid_sync_action` reads it) until the check has ended.
      const ended = async (): Promise<boolean> => {
        const st = await w.raidStatus(VG, "m");
        return st?.syncAction === "idle" && st.scrub?.action === "check" && !st.scrub.running;
      };
      for (let t0 = Date.now(); !(await ended()); await sleep(50))
        if (Date.now() - t0 > 120_000) throw new Error("the check never ended");
      const counts = await lvs("lv_name,raid_mismatch_count,integritymismatches");
      ctx.state("mismatch counts after check", counts);
      for (const line of counts) {
        const [name, raidCount, integCount] = line.split(";");
        if (name === "m") mismatches += Number(raidCount);
        if (/^(m|\[m_rimage_\d\])$/.test(name!)) mismatches += Number(integCount);
      }
      assert.equal(mismatches, 0, `no mismatch after the crash state was activated and checked: ${counts.join(" | ")}`);
    }
    const off = await w.ulvmA("lvchange", "-an", `${VG}/m`);
    assert.equal(off.code, 0, off.stderr);
    const d = w.legDiff(t.geometry.raid ? w.raid1Layout(await w.loadVg(VG), "m") : w.mirrorLayout(await w.loadVg(VG), "m"));
    assert.equal(d, -1, `legs differ at ${d} after the crash state resynced`);
    return mismatches;
  } finally {
    await w.killDaemon("SIGKILL");
    w.cleanup();
  }
}

/**
 * States with a deliberately wrong ordering: a leg-1 write durable while the
 * log write that marked its region dirty is not (the log as it was before
 * that mark, leg 0 without the write's twin). The oracle must reject them.
 */
async function mutants(t: Trace, rng: Rng, want: number): Promise<{ tried: number; caught: number }> {
  if (t.geometry.raid) return raidMutants(t, rng, want);
  const g = t.geometry;
  const L = g.layout;
  const logDev = g.nameOf.get(L.log!.path)!;
  const logOff = L.log!.offsetBytes;
  const logLen = diskLogTransferBytes(L.regionCount);
  const leg1Dev = legPos(g, 1, 0).dev;
  let prev: Uint8Array = t.base.get(logDev)!.slice(logOff, logOff + logLen);
  const pairs: Array<{ l: IoRecord; w: IoRecord; region: number }> = [];
  const logWrites = t.records.filter((r) => r.op === "write" && r.device === logDev && r.offsetBytes === logOff);
  for (const l of logWrites) {
    let before: Uint8Array | undefined;
    let after: Uint8Array | undefined;
    try {
      before = decodeDiskLog(prev, L.regionCount).cleanBits;
      after = decodeDiskLog(l.data, L.regionCount).cleanBits;
    } catch {
      prev = l.data;
      continue;
    }
    for (let r = 0; r < L.regionCount; r++) {
      if (!testBit(before, r) || testBit(after, r)) continue;
      const start = legPos(g, 1, r * L.regionBytes).offsetBytes;
      const wr = t.records.find((x) => x.op === "write" && x.device === leg1Dev && x.startSeq >= l.seq && x.offsetBytes < start + L.regionBytes && start < x.offsetBytes + x.data.length);
      if (wr) pairs.push({ l, w: wr, region: r });
      break;
    }
    prev = l.data;
  }
  let tried = 0;
  let caught = 0;
  for (let k = 0; k < want && pairs.length; k++) {
    const { l, w: wr, region } = pairs.splice(rng.int(pairs.length), 1)[0]!;
    // Everything completed before the dirty mark, then only the leg-1 write on top.
    const early = new CrashImages(t.base, t.records).state({ seq: l.seq, prefix: true }, rng);
    const images = early.images;
    images.get(wr.device)!.set(wr.data as Uint8Array, wr.offsetBytes);
    const st: CrashState = { seq: wr.seq + 1, images, torn: undefined, kept: 0, dropped: 0 };
    const { cleanDiffer } = await oracle(t, st);
    tried++;
    if (cleanDiffer.includes(region)) caught++;
  }
  return { tried, caught };
}

/**
 * The raid1 wrong orderings: a bitmap page write on rmeta 0 that set a
 * region's bit, and its twin on rmeta 1; the state before the earlier of
 * the two, plus an image-1 data write to that region issued after both.
 */
async function raidMutants(t: Trace, rng: Rng, want: number): Promise<{ tried: number; caught: number }> {
  const g = t.geometry;
  const R = g.raid!;
  const at = (slot: number): { dev: string; off: number } => ({ dev: g.nameOf.get(R.rmetas[slot]!.path)!, off: R.rmetas[slot]!.offsetBytes + 4096 });
  const m0 = at(0);
  const m1 = at(1);
  const bit = (page: Uint8Array, r: number): boolean => ((page[256 + (r >>> 3)] ?? 0) & (1 << (r & 7))) !== 0;
  const leg1Dev = legPos(g, 1, 0).dev;
  let prev: Uint8Array = t.base.get(m0.dev)!.slice(m0.off, m0.off + 4096);
  const pairs: Array<{ first: number; last: number; w: IoRecord; region: number }> = [];
  for (const l of t.records) {
    if (l.op !== "write" || l.device !== m0.dev || l.offsetBytes !== m0.off) continue;
    const twin = t.records.find((x) => x.op === "write" && x.device === m1.dev && x.offsetBytes === m1.off && Math.abs(x.seq - l.seq) < 64 && Buffer.from(x.data).equals(Buffer.from(l.data)));
    for (let r = 0; r < R.regionCount && twin; r++) {
      if (bit(prev, r) || !bit(l.data, r)) continue;
      const last = Math.max(l.seq, twin.seq);
      const start = legPos(g, 1, r * R.regionBytes).offsetBytes;
      const wr = t.records.find((x) => x.op === "write" && x.device === leg1Dev && x.startSeq >= last && x.offsetBytes < start + R.regionBytes && start < x.offsetBytes + x.data.length);
      if (wr) pairs.push({ first: Math.min(l.seq, twin.seq), last, w: wr, region: r });
      break;
    }
    prev = l.data;
  }
  let tried = 0;
  let caught = 0;
  for (let k = 0; k < want && pairs.length; k++) {
    const { first, w: wr, region } = pairs.splice(rng.int(pairs.length), 1)[0]!;
    const early = new CrashImages(t.base, t.records).state({ seq: first, prefix: true }, rng);
    const images = early.images;
    images.get(wr.device)!.set(wr.data as Uint8Array, wr.offsetBytes);
    const st: CrashState = { seq: wr.seq + 1, images, torn: undefined, kept: 0, dropped: 0 };
    const { cleanDiffer } = await oracle(t, st);
    tried++;
    if (cleanDiffer.includes(region)) caught++;
  }
  return { tried, caught };
}

/**
 * The integrity oracle's self-test, on the state before the recording (all
 * tags written, journal empty), leg 0: (1) a block of client data from the
 * final state written without its tag, with the dirty bitmap (bitmap mode)
 * cleared (a data write made durable before its dirty bit or its journal
 * commit) must be a false mismatch; (2) garbage under a freshly computed valid tag must be a valid
 * tag over data the client never wrote.
 */
async function integrityMutants(t: Trace, rng: Rng): Promise<{ tried: number; caught: number }> {
  const g = t.geometry;
  const place = g.integrity![0]!;
  const fresh = (): Map<string, Uint8Array> => new Map([...t.base].map(([n, b]) => [n, b.slice()]));
  const reader = (images: Map<string, Uint8Array>) => (path: string, off: number, len: number): Uint8Array => images.get(g.nameOf.get(path)!)!.subarray(off, off + len);
  const img = (images: Map<string, Uint8Array>, loc: { path: string }): Uint8Array => images.get(g.nameOf.get(loc.path)!)!;
  let tried = 0;
  let caught = 0;
  const caughtBy = (images: Map<string, Uint8Array>, what: RegExp): boolean => {
    const st: CrashState = { seq: 0, images, torn: undefined, kept: 0, dropped: 0 };
    const v = integrityVerdicts(g, st.images, clientWrote(t), t.integrityBase)[0]!;
    return v.problems.some((p) => what.test(p));
  };
  // (1) a block the workload changed, its new data over the old tag.
  const lvBlocks = (g.layout.extentCount * g.layout.extentBytes) / 512;
  const changed: number[] = [];
  for (let b = 0; b < lvBlocks && changed.length < 64; b++) {
    const p = blockPlaces(place, reader(t.base), b);
    if (b * p.blockBytes >= g.layout.extentCount * g.layout.extentBytes) break;
    const was = img(t.base, p.data).subarray(p.data.offsetBytes, p.data.offsetBytes + p.blockBytes);
    const now = img(t.final, p.data).subarray(p.data.offsetBytes, p.data.offsetBytes + p.blockBytes);
    if (!Buffer.from(was).equals(Buffer.from(now)) && clientWrote(t)(b * p.sectorsPerBlock, now) === undefined) changed.push(b);
  }
  if (changed.length) {
    const b = changed[rng.int(changed.length)]!;
    const images = fresh();
    const p = blockPlaces(place, reader(images), b);
    img(images, p.data).set(img(t.final, p.data).subarray(p.data.offsetBytes, p.data.offsetBytes + p.blockBytes), p.data.offsetBytes);
    // Bitmap mode: no bit set (one bit covers this whole small LV). Journal mode: the area is left as it is (empty).
    if (!t.journal) img(images, p.journal).fill(0, p.journal.offsetBytes, p.journal.offsetBytes + 4096);
    tried++;
    if (caughtBy(images, /tag does not match and neither/)) caught++;
  }
  // (2) garbage under a valid tag.
  {
    const images = fresh();
    const b = rng.int(Math.floor(t.model.sectors / 8)) * 8;
    const p = blockPlaces(place, reader(images), b);
    const junk = new Uint8Array(p.blockBytes).map(() => 1 + rng.int(255));
    img(images, p.data).set(junk, p.data.offsetBytes);
    img(images, p.tag).set(crc32cTag(b * p.sectorsPerBlock, junk, p.tagSize), p.tag.offsetBytes);
    tried++;
    if (caughtBy(images, /a valid tag over data the client never wrote/)) caught++;
  }
  return { tried, caught };
}

function debugState(t: Trace, st: CrashState): void {
  const g = t.geometry;
  console.log("layout legs", JSON.stringify(g.layout.legs.map((l) => l.map((x) => x && [g.nameOf.get(x.path), x.offsetBytes]))), "log", g.layout.log);
  const v = dataViolations(t, st, (off, len) => legBytes(g, st.images, 0, off, len));
  const first = v[0];
  if (!first) return;
  const pos = legPos(g, 0, first.sector * SECTOR);
  const sec = st.images.get(pos.dev)!.subarray(pos.offsetBytes, pos.offsetBytes + 16);
  console.log("first violation", first, "at", pos, Buffer.from(sec).toString("hex"));
  const baseSec = t.base.get(pos.dev)!.subarray(pos.offsetBytes, pos.offsetBytes + 16);
  console.log("base there", Buffer.from(baseSec).toString("hex"));
  for (const r of t.records) {
    if (r.op !== "write") continue;
    const i = Buffer.from(r.data).indexOf(Buffer.from(sec));
    if (i >= 0) console.log("record", r.seq, r.startSeq, r.device, r.offsetBytes, r.data.length, "at", i);
  }
}
