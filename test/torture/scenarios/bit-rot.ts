import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Figures, IterationContext, Scenario } from "../lib/scenario.js";
import { sum } from "../lib/scenario.js";
import { World, sleep } from "../lib/world.js";
import { VG } from "../lib/setups.js";
import { FsExerciser } from "../lib/fs-exerciser.js";
import { devicePathUnavailable, which } from "../../helpers/lab.js";
import { must, waitFor } from "./filesystem.js";

/**
 * Issue 17's bit-rot proof. ext4 on raid1 --raidintegrity y (bitmap mode,
 * 512-byte integrity blocks) through the device path, with fio verifying a
 * file it wrote (direct reads, crc32c per 4 KiB) and the fsx-like exerciser
 * running, while random bits are flipped in random 512-byte blocks of ONE
 * leg's backing file, inside the data extents (the _iorig) of that leg and
 * inside fio's file: its blocks are never written again, so every flip stays
 * until a read or a check meets it (a flip under a block the file system
 * rewrites would vanish, and could not be counted exactly). Each block is
 * flipped at most once (a second flip of the same bit would undo the first).
 *
 * Asserted: no wrong byte served (fio verify passes, the exerciser's model
 * matches); after the load stops and `lvchange --syncaction check` visits
 * every block, the blocks healed, as sectors in the daemon's
 * integrity-mismatch-healed events of leg 1 (reads) plus the check's
 * raid_mismatch_count (the check reports its own), equal the distinct blocks
 * flipped, exactly; leg 1's data equals leg 0's; e2fsck -fn clean; a second
 * check finds nothing. dm-integrity's own counter (integritymismatches)
 * counts failed reads, not blocks (one read may meet several flipped
 * blocks): it is at least 1 and at most the flips.
 *
 * The same block rotten on both legs (EIO for that block only, counted,
 * the rest served) is test/integration/daemon/raid1-integrity-heal.test.ts's
 * "a block bad on both legs" test.
 */
const LV_MIB = 64;

export const bitRotScenario: Scenario = {
  name: "bit-rot",
  title: "ext4 on raid1 + integrity: bits flipped on one leg under fio verify and the exerciser; all healed, counted exactly",
  defaultIterations: 3,
  quickIterations: 1,
  unavailable: () =>
    devicePathUnavailable() ?? (which("mkfs.ext4") && which("e2fsck") ? undefined : "e2fsprogs not installed") ?? (which("fio") ? undefined : "fio not installed") ?? (which("filefrag") ? undefined : "filefrag not installed"),
  async iterate(ctx: IterationContext): Promise<Figures> {
    const rng = ctx.rng;
    const w = new World({ prefix: "ulvm-tort-rot-", devicePath: true, disks: [{ name: "d1", sizeMiB: 2 * LV_MIB + 16 }, { name: "d2", sizeMiB: 2 * LV_MIB + 16 }] });
    const mnt = join(w.dir, "mnt");
    mkdirSync(mnt);
    let failed = true;
    let ex: FsExerciser | undefined;
    let fio: FioVerifyLoop | undefined;
    try {
      const [d1, d2] = ["d1", "d2"].map((n) => w.disk(n)) as [string, string];
      w.ok("pvcreate", "-q", d1, d2);
      w.ok("vgcreate", "-q", VG, d1, d2);
      w.ok("lvcreate", "-q", "--type", "raid1", "-m1", "--raidintegrity", "y", "--raidintegritymode", "bitmap", "-L", `${LV_MIB}m`, "-n", "fs", VG, d1, d2);
      await w.waitInSync(VG, "fs");
      // The first activation computes every tag in the background: a flip before its tag exists would be taken as data.
      await waitFor(async () => {
        const devs = (await w.status()).find((s) => s.vg === VG && s.lv === "fs")?.devices ?? [];
        const images = devs.filter((d) => /^fs_rimage_\d$/.test(d.lvName));
        return images.length === 2 && images.every((d) => / integrity \d+ \d+ -\s*$/.test(d.status));
      }, "the tags to be initialised");
      const dev = join(w.dir, "dev", VG, "fs");
      must(w.run("mkfs.ext4", ["-q", "-F", dev]), "mkfs.ext4");
      must(w.run("mount", [dev, mnt]), "mount");
      const fioMiB = ctx.quick ? 8 : 24;
      fio = new FioVerifyLoop(w, join(mnt, "fio.dat"), fioMiB);
      must(await fio.once(false), "fio write + verify");
      must(w.run("sync", []), "sync");
      // Where fio's file is on leg 1's backing file: file system blocks -> LV bytes -> _iorig extents on d2.
      const iorig = w.extentLocs(await w.loadVg(VG), "fs_rimage_1_iorig");
      const extentBytes = (await w.loadVg(VG)).vg.extentSizeSectors * 512;
      const lvRanges = fileRanges(w, join(mnt, "fio.dat"));
      const blocks = lvRanges.flatMap(([start, len]) => Array.from({ length: len / 512 }, (_, i) => start / 512 + i));
      ctx.state("fio file LV ranges", lvRanges);
      ex = new FsExerciser(join(mnt, "fsx"), rng.fork(1));
      const exRun = ex.run();
      const fioRun = fio.run();
      const flips = ctx.quick ? 24 : 120;
      const flipped = new Set<number>();
      while (flipped.size < flips) {
        await sleep(rng.range(20, ctx.quick ? 120 : 80));
        const b = blocks[rng.int(blocks.length)]!;
        if (flipped.has(b)) continue;
        flipped.add(b);
        const lvByte = b * 512 + rng.int(512);
        const loc = iorig[Math.floor(lvByte / extentBytes)];
        assert.ok(loc && loc.path === d2, `LV byte ${lvByte} is on leg 1's PV`);
        flipBit(loc.path, loc.offsetBytes + (lvByte % extentBytes), rng.int(8));
      }
      ctx.log(`${flipped.size} blocks flipped on leg 1 under load`);
      await sleep(ctx.quick ? 1000 : 3000);
      ex.stop();
      fio.stop();
      const exErr = await exRun;
      assert.equal(exErr, undefined, `the exerciser hit an error: ${exErr?.message}`);
      await fioRun;
      assert.deepEqual(fio.failures, [], "fio verify: no wrong byte, no error");
      assert.deepEqual(await ex.checkAll(), [], "every exerciser file reads back as written");
      must(w.run("umount", [mnt]), "umount");
      // The check visits every block of both legs: the flips no read met are found there.
      const check = await syncCheck(w);
      const healedByRead = await settledHealedSectors(w);
      ctx.state("healed", { byRead: healedByRead, byCheck: check, flipped: flipped.size });
      assert.equal(healedByRead + check, flipped.size, "every flipped block healed and counted once");
      const counter = Number(w.ok("lvs", "--noheadings", "-o", "integritymismatches", `${VG}/fs_rimage_1`).trim());
      assert.ok(counter >= 1 && counter <= flipped.size, `integritymismatches of leg 1: ${counter}`);
      assert.equal(Number(w.ok("lvs", "--noheadings", "-o", "integritymismatches", `${VG}/fs_rimage_0`).trim()), 0, "leg 0 had no rot");
      assert.equal(await syncCheck(w), 0, "a second check finds nothing");
      const fsck = w.run("e2fsck", ["-fn", dev]);
      assert.equal(fsck.code, 0, `e2fsck -fn: ${fsck.stdout}${fsck.stderr}`);
      assert.equal(w.ulvm("lvchange", "-an", `${VG}/fs`).code, 0);
      const leg0 = w.extentLocs(await w.loadVg(VG), "fs_rimage_0_iorig");
      for (let i = 0; i < leg0.length; i++) assert.ok(readAt(leg0[i]!.path, leg0[i]!.offsetBytes, extentBytes).equals(readAt(iorig[i]!.path, iorig[i]!.offsetBytes, extentBytes)), `legs differ in extent ${i}`);
      ctx.log(`${flipped.size} flipped: ${healedByRead} healed by reads, ${check} by the check; ${fio.passes} fio verify passes, ${ex.ops} fs ops`);
      failed = false;
      return { flipped: flipped.size, healedByRead, healedByCheck: check, fioPasses: fio.passes, fsOps: ex.ops, fsck: 1 };
    } finally {
      ex?.stop();
      fio?.stop();
      if (failed) ctx.state("daemon log", w.daemonLog().split("\n").slice(-30).join("\n"));
      if (failed && ctx.keep) ctx.state("kept", w.preserve(`rot-${ctx.seed}`));
      spawnSync("umount", ["-l", mnt]);
      await w.killDaemon("SIGTERM");
      await w.killDaemon("SIGKILL");
      w.cleanup();
    }
  },
  figure(all) {
    return `${sum(all, "flipped")} blocks flipped on one leg under ext4 + fio verify + ${sum(all, "fsOps")} exerciser ops: 0 wrong bytes served (${sum(all, "fioPasses")} fio verify passes), healed ${sum(all, "healedByRead")} by reads + ${sum(all, "healedByCheck")} by check = all flipped; e2fsck -fn clean ${sum(all, "fsck")}/${all.length}`;
  },
};

function flipBit(path: string, at: number, bit: number): void {
  const fd = openSync(path, "r+");
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ (1 << bit);
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

function readAt(path: string, at: number, n: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(n);
    readSync(fd, b, 0, n, at);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** A file's extents as LV byte ranges [start, length] (filefrag -e: physical offsets in file system blocks). */
function fileRanges(w: World, file: string): Array<[number, number]> {
  const r = w.run("filefrag", ["-e", "-v", file]);
  must(r, "filefrag");
  const bs = Number(/blocks of (\d+) bytes/.exec(r.stdout)?.[1] ?? /blocksize of (\d+)/.exec(r.stdout)?.[1]);
  assert.ok(bs > 0, `filefrag block size: ${r.stdout}`);
  const out: Array<[number, number]> = [];
  for (const m of r.stdout.matchAll(/^\s*\d+:\s*\d+\.\.\s*\d+:\s*(\d+)\.\.\s*(\d+):/gm)) out.push([Number(m[1]) * bs, (Number(m[2]) - Number(m[1]) + 1) * bs]);
  assert.ok(out.length > 0, `filefrag extents: ${r.stdout}`);
  return out;
}

/** lvchange --syncaction check, then wait for it to end: its mismatch count (per bad block). */
async function syncCheck(w: World): Promise<number> {
  w.ok("lvchange", "--syncaction", "check", `${VG}/fs`);
  const lvs = (f: string): string => w.ok("lvs", "--noheadings", "-o", f, `${VG}/fs`).trim();
  await waitFor(async () => lvs("raid_sync_action") === "idle", "the check to end", 300_000);
  return Number(lvs("raid_mismatch_count"));
}

/** Leg 1's healed sectors in the daemon's events (reported a moment after the reads): read until two looks agree. */
async function settledHealedSectors(w: World): Promise<number> {
  const count = (): number => {
    let n = 0;
    for (const l of w.ok("events", "--json").split("\n")) {
      if (!l.trim()) continue;
      const e = JSON.parse(l) as { name: string; details: { legIndex?: number; healed?: boolean; sectors?: number; omittedSectors?: number } };
      if (e.name !== "integrity-mismatch-healed" || e.details.legIndex !== 1) continue;
      assert.equal(e.details.healed, true, "every mismatch healed from leg 0");
      n += (e.details.sectors ?? 0) + (e.details.omittedSectors ?? 0);
    }
    return n;
  };
  let last = -1;
  let now = count();
  while (now !== last) {
    await sleep(1000);
    last = now;
    now = count();
  }
  return now;
}

/**
 * fio writing a file with crc32c verify headers, then, again and again,
 * verify-only passes (direct reads: from the LV, not the page cache). A pass
 * that finds a wrong byte or an error exits non-zero: recorded.
 */
class FioVerifyLoop {
  passes = 0;
  failures: string[] = [];
  private stopped = false;
  constructor(
    private readonly w: World,
    private readonly file: string,
    private readonly sizeMiB: number,
  ) {}
  stop(): void {
    this.stopped = true;
  }
  async once(verifyOnly: boolean): Promise<{ code: number; stdout: string; stderr: string }> {
    const args = [
      "--name=rot",
      `--filename=${this.file}`,
      `--size=${this.sizeMiB}m`,
      "--bs=4k",
      "--rw=write",
      "--ioengine=psync",
      "--direct=1",
      "--verify=crc32c",
      "--verify_fatal=1",
      "--do_verify=1",
      ...(verifyOnly ? ["--verify_only"] : []),
    ];
    return this.w.runAsync("fio", args).done;
  }
  async run(): Promise<void> {
    while (!this.stopped) {
      const r = await this.once(true);
      if (r.code !== 0 || /verify: bad|bad magic|crc32c: verify failed|err=\s*[1-9]/.test(r.stdout + r.stderr)) {
        this.failures.push(`fio verify: exit ${r.code}: ${(r.stdout + r.stderr).slice(0, 600)}`);
        return;
      }
      this.passes++;
    }
  }
}
