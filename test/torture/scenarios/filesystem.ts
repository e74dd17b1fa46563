import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, openSync, closeSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Figures, IterationContext, Scenario } from "../lib/scenario.js";
import { sum } from "../lib/scenario.js";
import { World, sleep } from "../lib/world.js";
import { VG } from "../lib/setups.js";
import { FsExerciser } from "../lib/fs-exerciser.js";
import { metadataNow } from "../lib/vg-checks.js";
import { devicePathUnavailable, which } from "../../helpers/lab.js";
import type { Rng } from "../lib/rng.js";

/**
 * 9. The file system on top. ext4 on a mirror through the device path
 * (nbdfuse + loop), an fsx-like exerciser (writes, truncates, reads checked
 * against a model, fsync of file and directory) and a tar/untar loop
 * (diff -r against the source) run while, in a seeded order, a leg fails
 * (its PV's label wiped, as in the seed's `dd`) and the daemon is killed
 * with SIGKILL once. After the kill: the LV is activated again, the file
 * system mounted (journal replay), and every file unchanged since its fsync
 * reads back exactly. At the end: no data mismatch, `e2fsck -fn` clean, and
 * after `vgreduce --removemissing --force`, `vgextend` and `lvconvert -m1`
 * onto a spare disk (the seed's repair) the files are intact and both legs
 * identical.
 */
const LV_MIB = 96;

export const filesystemScenario: Scenario = {
  name: "filesystem",
  title: "ext4 on a mirror: exerciser and tar loop, a leg fails, the daemon is killed",
  defaultIterations: 3,
  quickIterations: 1,
  unavailable: () => devicePathUnavailable() ?? (which("mkfs.ext4") && which("e2fsck") ? undefined : "e2fsprogs not installed"),
  async iterate(ctx: IterationContext): Promise<Figures> {
    const rng = ctx.rng;
    const w = new World({
      prefix: "ulvm-tort-fs-",
      devicePath: true,
      disks: [
        { name: "d1", sizeMiB: LV_MIB + 8 },
        { name: "d2", sizeMiB: LV_MIB + 8 },
        { name: "d3", sizeMiB: 16 },
        { name: "d4", sizeMiB: LV_MIB + 8 },
      ],
    });
    const mnt = join(w.dir, "mnt");
    mkdirSync(mnt);
    let failed = true;
    let ex: FsExerciser | undefined;
    let tar: TarLoop | undefined;
    try {
      const [d1, d2, d3, d4] = ["d1", "d2", "d3", "d4"].map((n) => w.disk(n)) as [string, string, string, string];
      w.ok("pvcreate", "-q", d1, d2, d3, d4);
      w.ok("vgcreate", "-q", VG, d1, d2, d3);
      w.ok("lvcreate", "-q", "-m1", "-L", `${LV_MIB}m`, "-R", "512k", "-n", "fs", VG, d1, d2, d3);
      await w.waitInSync(VG, "fs");
      const dev = join(w.dir, "dev", VG, "fs");
      must(w.run("mkfs.ext4", ["-q", "-F", dev]), "mkfs.ext4");
      must(w.run("mount", [dev, mnt]), "mount");
      const src = makeTree(join(w.dir, "tree"), rng.fork(3), ctx.quick ? 30 : 80);
      ex = new FsExerciser(join(mnt, "fsx"), rng.fork(1));
      tar = new TarLoop(w, src, mnt);
      let exRun = ex.run();
      let tarRun = tar.run();
      const events = rng.chance(0.5) ? (["leg", "kill"] as const) : (["kill", "leg"] as const);
      ctx.state("events", events);
      const fig = { fsOps: 0, fsyncs: 0, tarRounds: 0, crashChecks: 0, fsck: 0, legsIdentical: 0 };
      let legFailed = false;
      for (const e of events) {
        await sleep(ctx.quick ? rng.range(1500, 2500) : rng.range(2500, 5000));
        if (e === "leg") {
          // The seed's dd over the start of the disk: the label goes, the daemon fails the PV.
          wipeLabel(d2);
          const pvId = (await w.loadVg(VG, [d1, d3])).vg.pvs.find((p) => p.deviceHint === d2)?.id;
          await waitFor(async () => (await metadataNow([d1, d3], VG))?.pvs.find((p) => p.id === pvId)?.flags.includes("MISSING") ?? false, "the leg failure to be recorded");
          legFailed = true;
          ctx.log("leg on d2 failed and recorded");
        } else {
          // No new operation starts; those in flight meet the kill.
          ex.stop();
          tar.stop();
          await w.killDaemon("SIGKILL");
          await exRun;
          await tarRun;
          fig.tarRounds += tar.rounds;
          assert.deepEqual(tar.mismatches, [], "tar round trips before the kill");
          spawnSync("umount", ["-l", mnt]);
          const on = w.ulvm("lvchange", "-ay", ...(legFailed ? ["--activationmode", "degraded"] : []), `${VG}/fs`);
          assert.equal(on.code, 0, `activation after the kill: ${on.stderr}`);
          await waitFor(async () => existsSync(dev), "the device path");
          must(w.run("mount", [dev, mnt]), "mount after the kill");
          const problems = await ex.checkAfterCrash();
          assert.deepEqual(problems, [], "fsync'ed files after the daemon was killed");
          fig.crashChecks++;
          ctx.log(`daemon killed; remounted; ${ex.files.size} files checked`);
          tar = new TarLoop(w, src, mnt);
          exRun = ex.run();
          tarRun = tar.run();
        }
      }
      await sleep(ctx.quick ? 1500 : 3000);
      ex.stop();
      tar.stop();
      const exErr = await exRun;
      assert.equal(exErr, undefined, `the exerciser hit an error: ${exErr?.message}`);
      await tarRun;
      fig.tarRounds += tar.rounds;
      assert.deepEqual(tar.mismatches, [], "tar round trips");
      assert.deepEqual(await ex.checkAll(), [], "every file reads back as written");
      fig.fsOps = ex.ops;
      fig.fsyncs = ex.fsyncs;
      must(w.run("umount", [mnt]), "umount");
      const fsck = w.run("e2fsck", ["-fn", dev]);
      assert.equal(fsck.code, 0, `e2fsck -fn: ${fsck.stdout}${fsck.stderr}`);
      fig.fsck++;
      // The seed's repair: drop the lost leg, add the spare, mirror again.
      const red = w.ulvm("vgreduce", "--removemissing", "--force", VG);
      assert.equal(red.code, 0, `vgreduce --removemissing --force: ${red.stderr}`);
      w.ok("vgextend", "-q", VG, d4);
      const conv = w.ulvm("lvconvert", "-m1", "-i", "1", `${VG}/fs`, d1, d4, d3);
      assert.equal(conv.code, 0, `lvconvert -m1: ${conv.stderr}`);
      must(w.run("mount", [dev, mnt]), "mount after the repair");
      assert.deepEqual(await ex.checkAll(), [], "files after the repair");
      must(w.run("umount", [mnt]), "umount");
      assert.equal(w.run("e2fsck", ["-fn", dev]).code, 0, "e2fsck after the repair");
      assert.equal(w.ulvm("lvchange", "-an", `${VG}/fs`).code, 0);
      const layout = w.mirrorLayout(await w.loadVg(VG), "fs");
      const d = w.legDiff(layout);
      assert.equal(d, -1, `legs differ at ${d} after the repair`);
      fig.legsIdentical++;
      ctx.log(`${ex.ops} fs ops, ${ex.fsyncs} fsyncs, ${fig.tarRounds} tar rounds`);
      failed = false;
      return fig;
    } finally {
      ex?.stop();
      tar?.stop();
      if (failed) ctx.state("daemon log", w.daemonLog().split("\n").slice(-30).join("\n"));
      if (failed && ctx.keep) ctx.state("kept", w.preserve(`fs-${ctx.seed}`));
      spawnSync("umount", ["-l", mnt]);
      await w.killDaemon("SIGTERM");
      await w.killDaemon("SIGKILL");
      w.cleanup();
    }
  },
  figure(all) {
    return `${sum(all, "fsOps")} file operations (${sum(all, "fsyncs")} fsyncs) and ${sum(all, "tarRounds")} tar/untar rounds through a leg failure and a daemon kill: 0 mismatches; fsync'ed files intact after ${sum(all, "crashChecks")} kills; e2fsck -fn clean ${sum(all, "fsck")}/${all.length}; legs identical after the repair ${sum(all, "legsIdentical")}/${all.length}`;
  },
};

export function must(r: { code: number; stdout: string; stderr: string }, what: string): void {
  assert.equal(r.code, 0, `${what}: ${r.stderr}${r.stdout}`);
}

function wipeLabel(path: string): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, Buffer.alloc(1 << 20), 0, 1 << 20, 0);
  } finally {
    closeSync(fd);
  }
}

export async function waitFor(cond: () => Promise<boolean>, what: string, limitMs = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > limitMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A tree of files with seeded contents, to tar into the file system and back. */
function makeTree(dir: string, rng: Rng, files: number): string {
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `d${i % 7}`);
    mkdirSync(sub, { recursive: true });
    const fd = openSync(join(sub, `f${i}`), "w");
    try {
      writeSync(fd, rng.bytes(rng.range(0, 96 << 10)));
    } finally {
      closeSync(fd);
    }
  }
  return dir;
}

/**
 * tar the tree into the file system (synced, and dropped from the page cache
 * so that untar reads it from the LV), untar it elsewhere there, diff -r
 * against the source; again and again.
 */
class TarLoop {
  rounds = 0;
  mismatches: string[] = [];
  private stopped = false;
  constructor(
    private readonly w: World,
    private readonly src: string,
    private readonly mnt: string,
  ) {}
  stop(): void {
    this.stopped = true;
  }
  async run(): Promise<void> {
    while (!this.stopped) {
      const n = this.rounds;
      const out = join(this.mnt, `x${n % 2}`);
      const steps: Array<[string, string[]]> = [
        ["rm", ["-rf", out]],
        ["mkdir", ["-p", out]],
        ["tar", ["cf", join(this.mnt, "t.tar"), "-C", this.src, "."]],
        // To the LV and back: written out, dropped from the page cache, read from the device.
        ["sync", ["-f", join(this.mnt, "t.tar")]],
        ["dd", [`if=${join(this.mnt, "t.tar")}`, "iflag=nocache", "count=0", "status=none"]],
        ["tar", ["xf", join(this.mnt, "t.tar"), "-C", out]],
        ["sync", ["-f", out]],
        ["diff", ["-r", this.src, out]],
      ];
      for (const [cmd, args] of steps) {
        const r = await this.w.runAsync(cmd, args).done;
        if (this.stopped) return; // a kill may interrupt a round: only whole rounds count
        if (r.code !== 0) {
          this.mismatches.push(`${cmd} ${args.join(" ")}: exit ${r.code}: ${(r.stdout + r.stderr).slice(0, 300)}`);
          return;
        }
      }
      this.rounds++;
    }
  }
}
