import { existsSync, copyFileSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { join, dirname } from "node:path";
import { Lab, lvmUnavailable, type RunResult } from "../../helpers/lab.js";
import { REPO_ROOT } from "../../helpers/fixtures.js";
import { DeviceScan } from "../../../src/commands/scan.js";
import { listNamedDevices } from "../../../src/commands/device-list.js";
import { loadVg } from "../../../src/commands/vg-store.js";
import { isMirrorSeg, isRaidSeg, isStripedSeg, segAreas } from "../../../src/model/lv-info.js";
import type { VolumeGroup } from "../../../src/model/types.js";

/**
 * Differential harness for the LV commands: two worlds with identical disks
 * (same sizes, same order), lvm2 on loop devices and ulvm on image files.
 * Every command runs in both; the worlds are then compared by exit code,
 * by messages (device names mapped back to disk names, lvm2's activation-
 * disabled chatter removed) and by the VG layout each world wrote.
 *
 * Mirrors need the "mirror oracle" (build-lvm-oracle.sh), a build of the
 * same lvm2 2.03.16 that lays out mirrors without device-mapper.
 */

export const ORACLE = process.env.ULVM_LVM_ORACLE ?? "/var/tmp/ulvm-lvm-oracle/tools/lvm";

/**
 * ulvm.conf for a lab whose disks are files (no loops): scan the disks
 * directory, and with `activation` false set global/activation = 0, lvm2's
 * switch for "no device-mapper": the LV commands then activate nothing (no
 * daemon is started), as lvm2 behaves in these tests.
 */
export function writeUlvmConf(lab: Lab, activation: boolean, globalExtra = ""): void {
  const global = `${activation ? "" : "\tactivation = 0\n"}${globalExtra}`;
  lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}" ]\n}\n${global ? `global {\n${global}}\n` : ""}`);
}

export function oracleUnavailable(): string | undefined {
  const why = lvmUnavailable();
  if (why) return why;
  if (!existsSync(ORACLE)) return `no mirror oracle at ${ORACLE} (scripts/lvm-oracle.sh builds it; npm test runs that as root)`;
  return undefined;
}

/**
 * Why the oracle cannot lay out raid1 LVs, or undefined. Only an oracle built
 * by the current build-lvm-oracle.sh relaxes the raid1 guards: scripts/
 * lvm-oracle.sh records that script's SHA-256 beside the build (DEST/
 * ulvm-oracle.sha256, DEST = the oracle's tools/..) and rebuilds when it differs.
 */
export function raidOracleUnavailable(): string | undefined {
  const why = oracleUnavailable();
  if (why) return why;
  const want = createHash("sha256").update(readFileSync(join(REPO_ROOT, "test/integration/lv/build-lvm-oracle.sh"))).digest("hex");
  let have = "";
  try {
    have = readFileSync(join(dirname(dirname(ORACLE)), "ulvm-oracle.sha256"), "utf8").trim();
  } catch {
    /* an oracle from before the stamp */
  }
  if (have !== want) return `the mirror oracle at ${ORACLE} predates the raid1 guards (scripts/lvm-oracle.sh rebuilds it)`;
  return undefined;
}

/**
 * The raid conversion oracle (build-lvm-oracle-raidconv.sh): the mirror
 * oracle with lvm2's "must be active" and in-sync guards of raid conversions
 * relaxed, so that lvconvert on raid1 LVs can be compared without
 * device-mapper.
 */
export const RAIDCONV_ORACLE = process.env.ULVM_LVM_RAIDCONV_ORACLE ?? "/var/tmp/ulvm-lvm-oracle-raidconv/tools/lvm";

export function raidConvOracleUnavailable(): string | undefined {
  const why = raidOracleUnavailable();
  if (why) return why;
  if (!existsSync(RAIDCONV_ORACLE)) return `no raid conversion oracle at ${RAIDCONV_ORACLE} (test/integration/lv/build-lvm-oracle-raidconv.sh builds it from the mirror oracle)`;
  const want = readFileSync(join(dirname(dirname(ORACLE)), "ulvm-oracle.sha256"), "utf8").trim();
  let have = "";
  try {
    have = readFileSync(join(dirname(dirname(RAIDCONV_ORACLE)), "ulvm-oracle.sha256"), "utf8").trim();
  } catch {
    /* none */
  }
  if (have !== want) return `the raid conversion oracle at ${RAIDCONV_ORACLE} was built from another mirror oracle (rebuild it)`;
  return undefined;
}

/** Lines lvm2 prints only because activation is disabled here, or because backups are off. */
const LVM_NOISE = [
  /WARNING: Activation disabled\. No device-mapper interaction will be attempted\./,
  /WARNING: Skipping zeroing and wipping, compiled without activation support\./,
  /WARNING: This metadata update is NOT backed up\./,
  /File descriptor \d+ .* leaked on lvm invocation/,
];

export interface StepResult {
  args: string[];
  lvm: RunResult;
  ulvm: RunResult;
}

export class DiffLab {
  readonly l: Lab;
  readonly u: Lab;
  readonly names: string[];
  private loops = new Map<string, string>();
  readonly log: string[] = [];
  /** What both tools read on stdin (prompts): "n" unless a test says otherwise. */
  input = "n\n";

  constructor(
    sizesMiB: readonly number[],
    readonly opts: { oracle?: boolean; ulvmGlobal?: string; oraclePath?: string } = {},
  ) {
    this.l = new Lab("ulvm-lvdiff-l-");
    this.u = new Lab("ulvm-lvdiff-u-");
    this.names = sizesMiB.map((_, i) => `d${i}`);
    sizesMiB.forEach((s, i) => {
      this.l.addDisk(`d${i}`, s);
      this.u.addDisk(`d${i}`, s);
    });
    this.loops = this.l.attachLoops();
    writeUlvmConf(this.u, false, opts.ulvmGlobal);
  }

  /** The device path of disk `name` in a world. */
  dev(world: "l" | "u", name: string): string {
    return world === "l" ? this.loops.get(name)! : this.u.disk(name);
  }

  /** Replace "%d3" (and "%d3:1-5") by the world's device path. */
  private subst(world: "l" | "u", args: readonly string[]): string[] {
    return args.map((a) => a.replace(/%(d\d+)/g, (_, n: string) => this.dev(world, n)));
  }

  /** Map device paths in output back to "%dN", and drop lvm2's noise lines. */
  normalise(world: "l" | "u", text: string): string {
    let t = text;
    // Longest paths first: /dev/loop1 must not eat the front of /dev/loop10.
    const byLength = [...this.names].sort((a, b) => this.dev(world, b).length - this.dev(world, a).length);
    for (const n of byLength) t = t.split(this.dev(world, n)).join(`%${n}`);
    // A noise line can follow a prompt (which ends without a newline) on the same line: keep the prompt.
    return t
      .split("\n")
      .flatMap((line) => {
        if (!LVM_NOISE.some((re) => re.test(line))) return [line];
        let rest = line;
        for (const re of LVM_NOISE) rest = rest.replace(new RegExp(`(?:  )?${re.source}`), "");
        return rest.trim() === "" ? [] : [rest];
      })
      .join("\n");
  }

  runLvm(args: readonly string[]): RunResult {
    const a = this.subst("l", args);
    if (this.opts.oracle) {
      const env = { ...this.l.env, LVM_SYSTEM_DIR: this.l.lvmDir, LVM_SUPPRESS_FD_WARNINGS: "1", ULVM_ORACLE_MIRROR: "1" };
      const r = spawnSync(this.opts.oraclePath ?? ORACLE, a, { env, cwd: this.l.dir, encoding: "utf8", input: this.input });
      return { code: r.status ?? 128, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
    }
    return this.l.lvm(...a);
  }

  runUlvm(args: readonly string[]): RunResult {
    return this.u.ulvmInput(this.input, ...this.subst("u", args));
  }

  /** Run in both worlds; returns both results (normalised). */
  step(...args: string[]): StepResult {
    const lr = this.runLvm(args);
    const ur = this.runUlvm(args);
    const res: StepResult = {
      args,
      lvm: { code: lr.code, stdout: this.normalise("l", lr.stdout), stderr: this.normalise("l", lr.stderr) },
      ulvm: { code: ur.code, stdout: this.normalise("u", ur.stdout), stderr: this.normalise("u", ur.stderr) },
    };
    this.log.push(`$ ${args.join(" ")}  [lvm ${res.lvm.code} / ulvm ${res.ulvm.code}]`);
    return res;
  }

  /** Set up PVs and a VG the same way in both worlds, each with its own tool. */
  setupVg(vg: string, disks: readonly string[], extra: string[] = []): void {
    const pvs = disks.map((d) => `%${d}`);
    for (const [w, run] of [
      ["l", (a: string[]) => this.l.lvm(...this.subst("l", a))],
      ["u", (a: string[]) => this.u.ulvm(...this.subst("u", a))],
    ] as const) {
      const r1 = run(["pvcreate", "-y", ...this.names.map((n) => `%${n}`)]);
      if (r1.code !== 0) throw new Error(`${w}: pvcreate failed: ${r1.stderr}`);
      const r2 = run(["vgcreate", ...extra, vg, ...pvs]);
      if (r2.code !== 0) throw new Error(`${w}: vgcreate failed: ${r2.stderr}`);
    }
  }

  /** Copy ulvm's disk images over lvm2's (or back), so both worlds start from one state. */
  syncDisks(from: "l" | "u"): void {
    for (const n of this.names) {
      const src = from === "l" ? this.l.disk(n) : this.u.disk(n);
      const dst = from === "l" ? this.u.disk(n) : this.l.disk(n);
      copyFileSync(src, dst);
    }
  }

  async readVg(world: "l" | "u", vgName: string): Promise<VolumeGroup | undefined> {
    const devs = this.names.map((n) => this.dev(world, n));
    const scan = await DeviceScan.run(listNamedDevices(devs));
    return loadVg(scan, vgName)?.vg;
  }

  /** The layouts of both worlds as comparable text. */
  async layouts(vgName: string): Promise<{ lvm: string; ulvm: string }> {
    const [a, b] = await Promise.all([this.readVg("l", vgName), this.readVg("u", vgName)]);
    return { lvm: layoutText(a), ulvm: layoutText(b) };
  }

  cleanup(): void {
    this.l.cleanup();
    this.u.cleanup();
  }
}

/**
 * A VG as text that both tools must agree on: PVs by position, every LV in
 * metadata order with its status, flags, tags, policy, read ahead and
 * segments (areas as pvN:PE or LV:LE). Ids and times are left out.
 */
export function layoutText(vg: VolumeGroup | undefined): string {
  if (!vg) return "(no VG)";
  const pvIndex = new Map(vg.pvs.map((p, i) => [p.id, i]));
  const lines: string[] = [`vg ${vg.name} seqno=${vg.seqno} extent=${vg.extentSizeSectors} policy=${vg.allocationPolicy ?? "normal"}`];
  for (const pv of vg.pvs) lines.push(`  pv${pvIndex.get(pv.id)} pe_count=${pv.peCount} status=${pv.status.join(",")}`);
  // lvm2 writes visible LVs first, then hidden ones, each in creation order.
  for (const lv of vg.lvs) {
    const extra = [
      lv.allocationPolicy ? `alloc=${lv.allocationPolicy}` : "",
      lv.readAheadSectors !== undefined ? `ra=${lv.readAheadSectors}` : "",
      lv.tags.length ? `tags=${lv.tags.join(",")}` : "",
      lv.flags.length ? `flags=${lv.flags.join(",")}` : "",
      lv.status.includes("FIXED_MINOR") ? `minor=${lv.major}:${lv.minor}` : "",
    ]
      .filter((s) => s)
      .join(" ");
    lines.push(`  lv ${lv.name} [${lv.status.join(",")}]${extra ? " " + extra : ""}`);
    for (const s of lv.segments) {
      const areas = segAreas(s)
        .map((a) => (a.kind === "pv" ? `pv${pvIndex.get(a.pvId) ?? "?"}:${a.startPe}` : `${a.lvName}:${a.startLe}`))
        .join(" ");
      let kind = s.type;
      if (isStripedSeg(s)) kind = s.stripes.length > 1 ? `striped/${s.stripes.length}/${s.stripeSizeSectors}` : "linear";
      if (isMirrorSeg(s)) kind = `mirror/${s.mirrors.length} log=${s.mirrorLog ?? "core"} region=${s.regionSizeSectors}`;
      if (isRaidSeg(s)) {
        kind = `raid1/${s.raids.length} region=${s.regionSizeSectors} wb=${s.writeBehind} rate=${s.minRecoveryRate}-${s.maxRecoveryRate}`;
        lines.push(`    ${s.startExtent}+${s.extentCount} ${kind} ${s.raids.map((r) => `${r.meta ?? "-"}+${r.image}`).join(" ")}`);
        continue;
      }
      lines.push(`    ${s.startExtent}+${s.extentCount} ${kind} ${areas}`);
    }
  }
  return lines.join("\n");
}

/** A deterministic PRNG (mulberry32) for seeded random sequences. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
export const between = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));

export { join };
