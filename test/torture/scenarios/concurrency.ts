import assert from "node:assert/strict";
import type { Figures, IterationContext, Scenario } from "../lib/scenario.js";
import { sum } from "../lib/scenario.js";
import { World, crashTrace, sleep } from "../lib/world.js";
import { VG, fioMissing, fioVerifyErrors, reap, startFio } from "../lib/setups.js";
import { metadataNow, vgProblems } from "../lib/vg-checks.js";
import { findLv, isMirrorSeg, lvExtents } from "../../../src/model/lv-info.js";
import type { RunResult } from "../../helpers/lab.js";
import type { Rng } from "../lib/rng.js";

/**
 * 5. Concurrency. Eight workers make random lvcreate, lvremove, lvextend,
 * lvrename, lvconvert -m1/-m0 and lvs calls on one VG, each on LVs of its
 * own (so their effects commute), while a mirror in the same VG serves fio
 * with verify=crc32c. Asserted:
 *   - every command succeeds or fails cleanly (lvm2's exit codes, no stack
 *     trace), and none hangs;
 *   - the seqno on disk only grows, and every version sampled meanwhile is
 *     valid (no extent shared by two LVs, none past its PV);
 *   - the final metadata equals the successful commands applied in order
 *     (each worker's own model), fio saw no error or corrupt data;
 *   - ulvm's vgck and Debian's `lvm vgck` accept the result.
 */
const WORKERS = 8;

interface LvModel {
  extents: number;
  legs: number;
}

export const concurrencyScenario: Scenario = {
  name: "concurrency",
  title: "8 workers on one VG while a mirror serves fio",
  defaultIterations: 4,
  quickIterations: 1,
  unavailable: fioMissing,
  async iterate(ctx: IterationContext): Promise<Figures> {
    const w = new World({
      prefix: "ulvm-tort-conc-",
      disks: ["d1", "d2", "d3", "d4"].map((name) => ({ name, sizeMiB: 40 })),
    });
    let failed = true;
    let fio: ReturnType<typeof startFio> | undefined;
    try {
      w.ok("pvcreate", "-q", ...w.disks);
      w.ok("vgcreate", "-q", "-s", "1m", VG, ...w.disks);
      w.ok("lvcreate", "-q", "-m1", "-L", "24m", "-R", "256k", "-n", "served", VG, w.disk("d1"), w.disk("d2"), w.disk("d3"));
      await w.waitInSync(VG, "served");
      fio = startFio(w, `${VG}/served`, { offsetBytes: 0, sizeBytes: 24 << 20, runtimeS: 600, iodepth: 4, fsync: 8, seed: ctx.seed });
      const ops = ctx.quick ? 4 : 8;
      // The sampler: the seqno on disk never goes back, every version is valid.
      let sampling = true;
      let samples = 0;
      let lastSeqno = 0;
      let samplerError: unknown;
      const sampler = (async () => {
        while (sampling) {
          const vg = await metadataNow(w.disks, VG);
          if (vg) {
            assert.ok(vg.seqno >= lastSeqno, `seqno went back from ${lastSeqno} to ${vg.seqno}`);
            lastSeqno = vg.seqno;
            const p = vgProblems(vg);
            assert.deepEqual(p, [], `metadata seqno ${vg.seqno} on disk is invalid`);
            samples++;
          }
          await sleep(40);
        }
      })().catch((e: unknown) => {
        samplerError = e;
      });
      const startSeqno = (await w.loadVg(VG)).vg.seqno;
      const results = await Promise.all(Array.from({ length: WORKERS }, (_, i) => worker(ctx, w, i, ops, ctx.rng.fork(100 + i))));
      sampling = false;
      await sampler;
      if (samplerError !== undefined) throw samplerError;
      const fioRun = fio;
      fio = undefined;
      fioRun.child.kill("SIGTERM");
      const fioResult = await reap(fioRun, 30_000);
      assert.equal(fioVerifyErrors(fioResult), undefined, `fio found corrupt data: ${fioVerifyErrors(fioResult)}`);
      assert.ok(!/io_u error|error=/.test(fioResult.stderr), `fio saw I/O errors: ${fioResult.stderr.slice(0, 800)}`);
      // terse v3: the write section starts at field 47 (KiB written).
      const fioKiB = Number(fioResult.stdout.split(";")[46] ?? 0);
      ctx.state("fio", `${fioResult.code} ${fioResult.stdout.slice(0, 200)}`);
      // The final metadata is every worker's successful commands applied in order.
      const loaded = await w.loadVg(VG);
      assert.deepEqual(vgProblems(loaded.vg), [], "the final metadata is valid");
      const expected = new Map<string, LvModel>([["served", { extents: 24, legs: 2 }]]);
      for (const r of results) for (const [n, m] of r.model) expected.set(n, m);
      const actual = new Map<string, LvModel>();
      for (const lv of loaded.vg.lvs) {
        if (!lv.status.includes("VISIBLE")) continue;
        const seg = lv.segments.find(isMirrorSeg);
        actual.set(lv.name, { extents: lvExtents(lv), legs: seg ? seg.mirrors.length : 1 });
      }
      assert.deepEqual(Object.fromEntries([...actual].sort()), Object.fromEntries([...expected].sort()), "the LVs are those the successful commands made");
      const commits = loaded.vg.seqno - startSeqno;
      const ok = results.reduce((n, r) => n + r.ok, 0);
      const changed = results.reduce((n, r) => n + r.changes, 0);
      assert.ok(commits >= changed, `${changed} successful changes but the seqno only grew by ${commits}`);
      const vgck = await w.ulvmA("vgck", VG);
      assert.equal(vgck.code, 0, `vgck: ${vgck.stderr}`);
      const l = w.lvm2("vgck", VG);
      if (l) assert.equal(l.code, 0, `lvm vgck: ${l.stderr}`);
      ctx.log(`fio wrote ${fioKiB} KiB; ${ok} commands succeeded, ${results.reduce((n, r) => n + r.failedCleanly, 0)} failed cleanly; seqno +${commits}; ${samples} samples; ${findLv(loaded.vg, "served") ? "served" : "?"}`);
      failed = false;
      return {
        commands: results.reduce((n, r) => n + r.ok + r.failedCleanly, 0),
        ok,
        failedCleanly: results.reduce((n, r) => n + r.failedCleanly, 0),
        samples,
        commits,
        lvm2: l ? 1 : 0,
      };
    } finally {
      if (fio) fio.child.kill("SIGKILL");
      if (failed) ctx.state("daemon log", w.daemonLog().split("\n").slice(-30).join("\n"));
      if (failed && ctx.keep) ctx.state("kept", w.preserve(`conc-${ctx.seed}`));
      await w.killDaemon("SIGTERM");
      await w.killDaemon("SIGKILL");
      w.cleanup();
    }
  },
  figure(all) {
    return `${sum(all, "commands")} commands by 8 workers (${sum(all, "ok")} ok, ${sum(all, "failedCleanly")} failed cleanly, 0 crashed or hung); ${sum(all, "samples")} on-disk samples, seqno never went back, no shared extent; final metadata = the successful commands; lvm vgck accepted ${sum(all, "lvm2")}/${all.length}`;
  },
};

interface WorkerResult {
  model: Map<string, LvModel>;
  ok: number;
  failedCleanly: number;
  changes: number;
}

async function worker(ctx: IterationContext, w: World, id: number, ops: number, rng: Rng): Promise<WorkerResult> {
  const model = new Map<string, LvModel>();
  let n = 0;
  let ok = 0;
  let failedCleanly = 0;
  let changes = 0;
  const run = async (args: string[]): Promise<RunResult> => {
    const p = w.ulvmAsync(args);
    const r = await reap(p, 180_000);
    ctx.state(`worker ${id} last`, `${args.join(" ")} -> ${r.code}`);
    assert.notEqual(r.code, 137, `ulvm ${args.join(" ")} hung (killed after 180 s)`);
    const trace = crashTrace(r.stderr);
    assert.equal(trace, undefined, `ulvm ${args.join(" ")} crashed: ${trace}`);
    assert.ok(r.code === 0 || r.code === 5 || r.code === 3, `ulvm ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    if (r.code === 0) ok++;
    else failedCleanly++;
    return r;
  };
  for (let k = 0; k < ops; k++) {
    const names = [...model.keys()];
    const linear = names.filter((x) => model.get(x)!.legs === 1);
    const mirrors = names.filter((x) => model.get(x)!.legs === 2);
    const choice = names.length === 0 ? "create" : rng.pick(["create", "create", "remove", "extend", "rename", "up", "down", "lvs"] as const);
    switch (choice) {
      case "create": {
        const name = `w${id}_${n++}`;
        // Now and then more than the VG has left: that must fail cleanly.
        const mib = rng.chance(0.15) ? rng.range(40, 120) : rng.range(2, 6);
        const r = await run(["lvcreate", "-q", "-L", `${mib}m`, "-n", name, VG]);
        if (r.code === 0) {
          model.set(name, { extents: mib, legs: 1 });
          changes++;
        }
        break;
      }
      case "remove": {
        const name = rng.pick(names);
        const r = await run(["lvremove", "-f", `${VG}/${name}`]);
        if (r.code === 0) {
          model.delete(name);
          changes++;
        }
        break;
      }
      case "extend": {
        const name = rng.pick(names);
        const add = rng.chance(0.1) ? rng.range(60, 120) : rng.range(1, 4);
        const r = await run(["lvextend", "-L", `+${add}m`, `${VG}/${name}`]);
        if (r.code === 0) {
          model.get(name)!.extents += add;
          changes++;
        }
        break;
      }
      case "rename": {
        const name = rng.pick(names);
        const to = `w${id}_${n++}`;
        const r = await run(["lvrename", VG, name, to]);
        if (r.code === 0) {
          model.set(to, model.get(name)!);
          model.delete(name);
          changes++;
        }
        break;
      }
      case "up": {
        if (!linear.length) break;
        const name = rng.pick(linear);
        const r = await run(["lvconvert", "-y", "-m1", "-R", "256k", "-i", "1", `${VG}/${name}`]);
        if (r.code === 0) {
          model.get(name)!.legs = 2;
          changes++;
        }
        break;
      }
      case "down": {
        if (!mirrors.length) break;
        const name = rng.pick(mirrors);
        const r = await run(["lvconvert", "-y", "-m0", `${VG}/${name}`]);
        if (r.code === 0) {
          model.get(name)!.legs = 1;
          changes++;
        }
        break;
      }
      case "lvs": {
        const r = await run(["lvs", "-a", "-o", "lv_name,lv_size,devices", VG]);
        assert.equal(r.code, 0, `lvs: ${r.stderr}`);
        break;
      }
    }
  }
  return { model, ok, failedCleanly, changes };
}
