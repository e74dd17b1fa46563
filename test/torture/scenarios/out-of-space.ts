import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Figures, IterationContext, Scenario } from "../lib/scenario.js";
import { sum } from "../lib/scenario.js";
import { World, crashTrace, preadFile, sleep } from "../lib/world.js";
import { VG } from "../lib/setups.js";
import { ModelClient, describeViolations } from "../lib/nbd-model.js";
import { metadataNow } from "../lib/vg-checks.js";
import { Twin } from "../../integration/vg/twin.js";
import { isRoot, lvmUnavailable, type RunResult } from "../../helpers/lab.js";
import { ORACLE } from "../../integration/lv/lv-diff.js";

/**
 * 8. Out of space and bad input.
 *   - space that runs out in the VG: lvcreate/lvextend beyond the free
 *     extents fail with lvm2's message and change nothing;
 *   - a backing file system that fills up (a leg's PV file on a small tmpfs,
 *     sparse, with the rest of the space taken): ENOSPC on a mirror leg is a
 *     leg failure (the PV recorded MISSING, the client sees no error, every
 *     acknowledged write reads back), and on a linear LV an error to the
 *     client, never an acknowledgement of data that was not stored;
 *   - a table of bad command lines (names, sizes, units, -m and -R values,
 *     conflicting options) run by ulvm and by Debian's lvm2 on the same
 *     disks: the same exit codes and messages, and after every failed
 *     command ulvm's metadata is byte-identical.
 */
type Variant = "bad-input" | "enospc-mirror" | "enospc-linear";
const VARIANTS: readonly Variant[] = ["bad-input", "enospc-mirror", "enospc-linear"];

export const outOfSpaceScenario: Scenario = {
  name: "no-space",
  title: "out of space (VG and backing file system) and bad command lines",
  defaultIterations: 6,
  quickIterations: 3,
  variants: VARIANTS.length,
  unavailable: () => undefined,
  async iterate(ctx: IterationContext): Promise<Figures> {
    const v = VARIANTS[ctx.variant]!;
    ctx.state("variant", v);
    if (v === "bad-input") return badInput(ctx);
    if (!isRoot) return { skipped: 1 };
    return enospc(ctx, v === "enospc-mirror");
  },
  figure(all) {
    return (
      `bad command lines ${sum(all, "rows")} (exit code as lvm2 ${sum(all, "sameExit")}/${sum(all, "compared")}, message as lvm2 ${sum(all, "sameMessage")}/${sum(all, "compared")}, the rest the one known difference, metadata unchanged after ${sum(all, "unchanged")}/${sum(all, "failedRows")} failures); ` +
      `ENOSPC on a mirror leg: ${sum(all, "legFailures")} leg failures, client errors ${sum(all, "mirrorClientErrors")}; ENOSPC on a linear LV: ${sum(all, "linearErrors")} errors returned, acknowledged writes lost ${sum(all, "lost")}`
    );
  },
};

// ---------------------------------------------------------------- ENOSPC

async function enospc(ctx: IterationContext, mirror: boolean): Promise<Figures> {
  const rng = ctx.rng;
  const w = new World({ prefix: "ulvm-tort-nospc-", disks: [{ name: "d1", sizeMiB: 40 }, { name: "d3", sizeMiB: 8 }] });
  const small = join(w.dir, "small");
  mkdirSync(small);
  let failed = true;
  try {
    // A 12 MiB tmpfs holds a 40 MiB sparse PV file: its metadata is written, then a filler takes
    // what is left but a few MiB, so writes to the LV on it run out of space part of the way.
    const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=12m", "tmpfs", small]);
    if (m.status !== 0) throw new Error(`mount tmpfs: ${m.stderr}`);
    const d2 = join(small, "d2");
    spawnSync("truncate", ["-s", "40M", d2]);
    w.writeConfig([w.diskDir, d2]);
    const all = [w.disk("d1"), d2, w.disk("d3")];
    w.ok("pvcreate", "-q", ...all);
    w.ok("vgcreate", "-q", "-s", "1m", VG, ...all);
    const lvMiB = 24;
    if (mirror) w.ok("lvcreate", "-q", "-m1", "--nosync", "-L", `${lvMiB}m`, "-R", "256k", "-n", "lv", VG, w.disk("d1"), d2, w.disk("d3"));
    else w.ok("lvcreate", "-q", "-L", `${lvMiB}m`, "-n", "lv", VG, d2);
    const free = Number(spawnSync("df", ["--output=avail", "-k", small], { encoding: "utf8" }).stdout.split("\n")[1]!.trim());
    const leaveKiB = rng.range(1024, 4096);
    writeFileSync(join(small, "filler"), Buffer.alloc(Math.max(0, free - leaveKiB) * 1024));
    ctx.state("tmpfs KiB left", leaveKiB);
    const model = await ModelClient.open(w.nbdSocket, `${VG}/lv`, undefined, ctx.seed);
    const pvId = (await w.loadVg(VG, all)).vg.pvs.find((p) => p.deviceHint === d2)?.id;
    // Sequential big writes cover the LV: ENOSPC is certain; then random ones.
    for (let s = 0; s < model.sectors && !model.dead; s += 256) await model.write(s, Math.min(256, model.sectors - s));
    await model.load(rng.fork(1), { depth: 4, maxSectors: 128, flushEvery: 10, ops: 600 });
    await model.flush();
    let figs: Figures;
    if (mirror) {
      assert.deepEqual(model.errors, [], "ENOSPC on a leg is a leg failure, not a client error");
      await waitFor(async () => (await metadataNow(all, VG))?.pvs.find((p) => p.id === pvId)?.flags.includes("MISSING") ?? false, "the leg failure to be recorded");
      figs = { legFailures: 1, mirrorClientErrors: model.errors.length };
    } else {
      assert.ok(model.errors.length > 0, "the linear LV on the full file system returned ENOSPC");
      assert.ok(model.errors.every((e) => e.error === 28 || e.error === 5), `errors are ENOSPC (or EIO): ${JSON.stringify(model.errors.slice(0, 3))}`);
      figs = { linearErrors: model.errors.length };
    }
    // Whatever was acknowledged is there (a write answered with an error may or may not be).
    const v = await model.verifyAll("acked");
    model.close();
    assert.equal(v.length, 0, `acknowledged writes lost: ${describeViolations(v)}`);
    ctx.log(`${mirror ? "mirror" : "linear"}: ${model.writesAcked} writes acknowledged, ${model.errors.length} errors to the client`);
    failed = false;
    return { ...figs, lost: v.length };
  } finally {
    if (failed) ctx.state("daemon log", w.daemonLog().split("\n").slice(-20).join("\n"));
    await w.killDaemon("SIGTERM");
    await w.killDaemon("SIGKILL");
    w.cleanup(); // unmounts the tmpfs
  }
}

async function waitFor(cond: () => Promise<boolean>, what: string, limitMs = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > limitMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------- bad input

/** Command lines lvm2 refuses (rows it accepts are still compared, but not counted as failures). */
const BAD: readonly string[][] = [
  ["lvcreate", "-L", "4m", "-n", "bad name", VG],
  ["lvcreate", "-L", "4m", "-n", "-lv", VG],
  ["lvcreate", "-L", "4m", "-n", "snapshot", VG],
  ["lvcreate", "-L", "4m", "-n", "lv_mimage_0", VG],
  ["lvcreate", "-L", "4m", "-n", "pvmove0", VG],
  ["lvcreate", "-L", "4m", "-n", ".", VG],
  ["lvcreate", "-L", "4m", "-n", "..", VG],
  ["lvcreate", "-L", "4m", "-n", "a/b", VG],
  ["lvcreate", "-L", "4m", "-n", "x".repeat(130), VG],
  ["lvcreate", "-L", "4m", "-n", "lin", VG],
  ["lvcreate", "-L", "4m", "-n", "x", "nosuchvg"],
  ["lvcreate", "-L", "0", "-n", "x", VG],
  ["lvcreate", "-L", "-4m", "-n", "x", VG],
  ["lvcreate", "-L", "4q", "-n", "x", VG],
  ["lvcreate", "-L", "abc", "-n", "x", VG],
  ["lvcreate", "-L", "16E", "-n", "x", VG],
  ["lvcreate", "-L", "4.5.6m", "-n", "x", VG],
  ["lvcreate", "-l", "0", "-n", "x", VG],
  ["lvcreate", "-l", "101%FREE", "-n", "x", VG],
  ["lvcreate", "-l", "50%XYZ", "-n", "x", VG],
  ["lvcreate", "-L", "4m", "-l", "4", "-n", "x", VG],
  ["lvcreate", "-L", "1g", "-n", "x", VG],
  ["lvcreate", "--type", "mirror", "-m", "-1", "-L", "4m", "-n", "x", VG],
  ["lvcreate", "--type", "mirror", "-m", "100", "-L", "4m", "-n", "x", VG],
  ["lvcreate", "--type", "mirror", "-m", "abc", "-L", "4m", "-n", "x", VG],
  ["lvcreate", "--type", "mirror", "-m", "1.5", "-L", "4m", "-n", "x", VG],
  ["lvcreate", "--type", "mirror", "-m1", "-R", "3k", "-L", "4m", "-n", "x", VG],
  ["lvcreate", "--type", "mirror", "-m1", "-R", "0", "-L", "4m", "-n", "x", VG],
  ["lvcreate", "--type", "mirror", "-m1", "-R", "xyz", "-L", "4m", "-n", "x", VG],
  ["lvcreate", "--type", "mirror", "-m1", "-R", "-64k", "-L", "4m", "-n", "x", VG],
  ["lvcreate", "-R", "64k", "-L", "4m", "-n", "x", VG],
  ["lvcreate", "--type", "striped", "-m1", "-L", "4m", "-n", "x", VG],
  ["lvcreate", "--type", "nosuchtype", "-L", "4m", "-n", "x", VG],
  ["lvcreate", "-L", "4m", "-n", "x", VG, "/dev/nosuchdisk"],
  ["lvcreate", "-L", "4m"],
  ["lvextend", "-L", "2m", `${VG}/lin`],
  ["lvextend", "-L", "+1g", `${VG}/lin`],
  ["lvextend", "-l", "+0", `${VG}/lin`],
  ["lvreduce", "-L", "64m", `${VG}/lin`],
  ["lvresize", "-L", "4x", `${VG}/lin`],
  ["lvremove", `${VG}/nosuchlv`],
  ["lvrename", VG, "lin", "lin"],
  ["lvrename", VG, "lin", "mir"],
  ["lvrename", VG, "nosuchlv", "x"],
  ["lvrename", VG, "lin", "bad/name"],
  ["lvconvert", "--type", "mirror", "-m", "+x", `${VG}/lin`],
  ["lvconvert", "--type", "mirror", "-m", "5", `${VG}/lin`],
  ["lvconvert", "--type", "mirror", "-m1", "-R", "3k", `${VG}/lin`],
  ["lvconvert", "--repair", `${VG}/lin`],
  ["lvconvert", "-m0", `${VG}/nosuchlv`],
  ["vgcreate", "bad vg", "%d3"],
  ["vgcreate", "..", "%d3"],
  ["vgcreate", "v".repeat(130), "%d3"],
  ["vgcreate", VG, "%d3"],
  ["vgreduce", VG, "%d0"],
  ["vgextend", VG, "%d0"],
  ["vgrename", VG, "bad/vg"],
  ["vgchange", "-l", "-1", VG],
  ["pvcreate", "--metadatasize", "1t", "%d3"],
];

async function badInput(ctx: IterationContext): Promise<Figures> {
  const why = lvmUnavailable();
  if (why) {
    ctx.log(`bad-input compares with lvm2, which is unavailable: ${why}`);
    return { skipped: 1 };
  }
  const tw = new Twin([24, 24, 24, 24]);
  let failed = true;
  try {
    tw.u.writeConfig(`devices {\n\tscan = [ "${join(tw.u.dir, "disks")}" ]\n}\nglobal {\n\tactivation = 0\n}\n`);
    // lvm2 itself refuses to create mirrors without device-mapper; the "mirror oracle" build
    // (scripts/lvm-oracle.sh, npm test builds it) lays them out like lvm2 does, when it is there.
    const oracle = existsSync(ORACLE);
    const both = (args: readonly string[]): { lvm: RunResult; ulvm: RunResult } => {
      if (!oracle) return tw.both(args);
      const env = { ...tw.l.env, LVM_SYSTEM_DIR: tw.l.lvmDir, LVM_SUPPRESS_FD_WARNINGS: "1", ULVM_ORACLE_MIRROR: "1" };
      const r = spawnSync(ORACLE, tw.subst("l", args), { env, cwd: tw.l.dir, encoding: "utf8" });
      return { lvm: { code: r.status ?? 128, stdout: tw.norm("l", r.stdout ?? ""), stderr: tw.norm("l", r.stderr ?? "") }, ulvm: tw.ulvm(args) };
    };
    ctx.state("lvm2", oracle ? `mirror oracle ${ORACLE}` : "Debian's lvm2 on a copy of ulvm's set-up (rows creating mirrors are not compared)");
    for (const args of [
      ["pvcreate", "-q", "%d0", "%d1", "%d2", "%d3"],
      ["vgcreate", "-q", "-s", "1m", VG, "%d0", "%d1", "%d2"],
      ["lvcreate", "-q", "-an", "-Zn", "-L", "8m", "-n", "lin", VG, "%d0"],
      ["lvcreate", "-q", "-an", "-Zn", "--type", "mirror", "-m1", "-L", "4m", "-n", "mir", VG, "%d0", "%d1", "%d2"],
    ]) {
      if (!oracle) {
        const ulvm = tw.ulvm(args);
        assert.equal(ulvm.code, 0, `ulvm set-up ${args.join(" ")}: ${ulvm.stderr}`);
        continue;
      }
      const { lvm, ulvm } = both(args);
      assert.equal(lvm.code, 0, `lvm2 set-up ${args.join(" ")}: ${lvm.stderr}`);
      assert.equal(ulvm.code, 0, `ulvm set-up ${args.join(" ")}: ${ulvm.stderr}`);
    }
    // Without the oracle, lvm2 starts from ulvm's disks, copied byte for byte (its own
    // lvcreate --type mirror needs device-mapper); the rows below still run in each world.
    if (!oracle) tw.sync("u");
    const rows = ctx.quick ? BAD.filter((_, i) => i % 3 === ctx.seed % 3) : BAD;
    const fig = { rows: 0, compared: 0, sameExit: 0, sameMessage: 0, failedRows: 0, unchanged: 0 };
    const mismatches: string[] = [];
    for (const args of rows) {
      const before = metadataHash(tw);
      const { lvm, ulvm } = both(args);
      const after = metadataHash(tw);
      fig.rows++;
      const t = crashTrace(ulvm.stderr);
      assert.equal(t, undefined, `ulvm ${args.join(" ")} crashed: ${t}`);
      if (ulvm.code !== 0) {
        fig.failedRows++;
        assert.equal(after, before, `metadata changed by the failed command ulvm ${args.join(" ")}`);
        fig.unchanged++;
      }
      if (/without using device-mapper kernel driver/.test(lvm.stderr)) continue; // no mirror oracle here
      fig.compared++;
      if (ulvm.code === lvm.code) fig.sameExit++;
      else mismatches.push(`exit ${ulvm.code} (lvm2 ${lvm.code}): ${args.join(" ")}\n    lvm2: ${lvm.stderr.trim().split("\n").join(" | ")}\n    ulvm: ${ulvm.stderr.trim().split("\n").join(" | ")}`);
      if (errorLines(ulvm.stderr) === errorLines(lvm.stderr)) fig.sameMessage++;
      else if (!KNOWN_MESSAGE_DIFFERENCES.has(args.join(" "))) mismatches.push(`message: ${args.join(" ")}\n    lvm2: ${errorLines(lvm.stderr)}\n    ulvm: ${errorLines(ulvm.stderr)}`);
    }
    ctx.state("mismatches with lvm2", mismatches.join("\n"));
    ctx.log(`${fig.rows} bad command lines: ${fig.sameExit} exit codes and ${fig.sameMessage} messages as lvm2\n  ${mismatches.join("\n  ")}`);
    assert.deepEqual(mismatches, [], "ulvm answers bad command lines as lvm2 does");
    failed = false;
    return fig;
  } finally {
    if (failed) ctx.state("twin", tw.u.dir);
    tw.cleanup();
  }
}

/** Rows whose message differs from lvm2's for a reason given here (the exit code still must not). */
const KNOWN_MESSAGE_DIFFERENCES = new Map<string, string>([
  ["lvcreate -L 4m", "lvm2 prints the nearest syntax from its generated command table, which ulvm does not have"],
]);

/** stderr without warnings, lvm2's lab noise and blank lines: the error itself. */
function errorLines(stderr: string): string {
  return stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("WARNING:"))
    .join(" | ");
}

/** Every disk's label and metadata area (first MiB) in ulvm's world, and its backup. */
function metadataHash(tw: Twin): string {
  const h = createHash("sha256");
  for (const n of tw.names) h.update(preadFile(tw.u.disk(n), 0, 1 << 20));
  const b = join(tw.u.dir, "etc", "backup", VG);
  if (existsSync(b)) h.update(readFileSync(b));
  return h.digest("hex");
}
