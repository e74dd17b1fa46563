import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DIST_ROOT } from "../helpers/fixtures.js";
import { devicePathUnavailable, loopUnavailable, which } from "../helpers/lab.js";
import { listLoops, listMounts, loopKey, releaseUnder } from "../helpers/leftovers.js";
import { scratchBase } from "../helpers/scratch.js";

/**
 * The end-of-run check of scripts/test.sh and scripts/torture.sh
 * (test/leftovers-cli.ts) fails on a deliberate leak, names it, and takes
 * it away; on a clean folder it passes.
 */
const CLI = join(DIST_ROOT, "test", "leftovers-cli.js");

function check(...args: string[]): { code: number; out: string } {
  const r = spawnSync(process.execPath, [CLI, "check", ...args], { encoding: "utf8" });
  return { code: r.status ?? 128, out: (r.stdout ?? "") + (r.stderr ?? "") };
}

function withRoot(fn: (root: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const root = mkdtempSync(join(scratchBase(), "ulvm-leak-"));
    try {
      await fn(root);
    } finally {
      releaseUnder([root]);
      rmSync(root, { recursive: true, force: true });
    }
  };
}

function sparseFile(path: string, bytes: number): string {
  closeSync(openSync(path, "w"));
  truncateSync(path, bytes);
  return path;
}

const waitFor = async (ok: () => boolean, what: string): Promise<void> => {
  for (let i = 0; !ok(); i++) {
    if (i > 400) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

test("leftovers check: a clean scratch folder passes", withRoot((root) => {
  const r = check(root);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /leftovers: none/);
}));

test("leftovers check: a loop device left on a scratch file (also once the file is deleted) fails the run, is named and detached", { skip: loopUnavailable() }, withRoot((root) => {
  const file = sparseFile(join(root, "disk"), 8 << 20);
  const loop = spawnSync("losetup", ["-f", "--show", file], { encoding: "utf8" }).stdout.trim();
  assert.match(loop, /^\/dev\/loop\d+$/);
  rmSync(file); // as the torn-metadata slice did: the loop then shows "(deleted)"
  const r = check(root);
  assert.equal(r.code, 1, r.out);
  assert.ok(r.out.includes(`loop ${loop}: backed by ${file} (deleted)`), r.out);
  assert.ok(!listLoops().some((l) => l.name === loop && l.backingFile === file), "the check detaches what it names");
}));

test("leftovers check: a process of the run (ulvmd's ULVM_RUN_DIR under the folder) fails the run and is stopped", withRoot(async (root) => {
  mkdirSync(join(root, "run"));
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { env: { ...process.env, ULVM_RUN_DIR: join(root, "run") }, stdio: "ignore" });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  await waitFor(() => child.pid !== undefined && existsSync(`/proc/${child.pid}/environ`), "the process");
  const r = check(root);
  assert.equal(r.code, 1, r.out);
  assert.ok(r.out.includes(`process ${child.pid}:`), r.out);
  await exited;
}));

test("leftovers check: a FUSE mount with its nbdfuse, and a loop over a FUSE file whose mount was lost (shown as /dev), fail the run and are released", { skip: devicePathUnavailable() || (which("nbdkit") ? undefined : "nbdkit not installed") }, withRoot(async (root) => {
  // Before the run: the loops that exist now are not the run's.
  const before = join(root, "loops-before");
  writeFileSync(before, listLoops().map(loopKey).join("\n") + "\n");
  const mnt = join(root, "fuse");
  mkdirSync(mnt);
  const fuse = spawn("nbdfuse", [join(mnt, "dev"), "--command", "nbdkit", "-s", "memory", "16M"], { stdio: "ignore" });
  const fuseExited = new Promise((resolve) => fuse.once("exit", resolve));
  await waitFor(() => existsSync(join(mnt, "dev")), "the nbdfuse file");
  // A mounted FUSE file and its server: named by mount point and process.
  let r = check(root);
  assert.equal(r.code, 1, r.out);
  assert.ok(r.out.includes(`mount ${mnt}: fuse`), r.out);
  assert.ok(r.out.includes(`process ${fuse.pid}:`), r.out);
  await fuseExited;

  // A device path as the daemon builds it, whose FUSE mount then goes away under the loop.
  const fuse2 = spawn("nbdfuse", [join(mnt, "dev"), "--command", "nbdkit", "-s", "memory", "16M"], { stdio: "ignore" });
  const fuse2Exited = new Promise((resolve) => fuse2.once("exit", resolve));
  await waitFor(() => existsSync(join(mnt, "dev")), "the nbdfuse file");
  const loop = spawnSync("losetup", ["-f", "--show", join(mnt, "dev")], { encoding: "utf8" }).stdout.trim();
  assert.match(loop, /^\/dev\/loop\d+$/);
  spawnSync("fusermount3", ["-uz", mnt]);
  const orphan = listLoops().find((l) => l.name === loop);
  assert.equal(orphan?.backingFile, "/dev", "the kernel shows the lost mount's file as /dev");
  assert.ok(!listMounts().some((m) => m.point === mnt));
  // Outside the folder by its path: found because it appeared during the run and its file is unreachable.
  r = check("--before", before, root);
  assert.equal(r.code, 1, r.out);
  assert.ok(r.out.includes(`loop ${loop}: backed by /dev `) && r.out.includes("no longer reachable"), r.out);
  assert.ok(!listLoops().some((l) => loopKey(l) === loopKey(orphan)), "the orphaned loop is detached");
  await fuse2Exited; // its last user gone, nbdfuse ends
}));

test("leftovers check: another run's loop device (under its ulvm-test.* folder, file deleted) is not taken for this run's", { skip: loopUnavailable() }, withRoot((root) => {
  const before = join(root, "loops-before");
  writeFileSync(before, listLoops().map(loopKey).join("\n") + "\n");
  const other = mkdtempSync(join(scratchBase(), "ulvm-test."));
  try {
    const file = sparseFile(join(other, "disk"), 8 << 20);
    const loop = spawnSync("losetup", ["-f", "--show", file], { encoding: "utf8" }).stdout.trim();
    assert.match(loop, /^\/dev\/loop\d+$/);
    rmSync(file); // unreachable now, and new since the snapshot: but the other run's
    const r = check("--before", before, root);
    assert.equal(r.code, 0, r.out);
    assert.ok(listLoops().some((l) => l.name === loop), "the other run's loop is left to it");
  } finally {
    releaseUnder([other]);
    rmSync(other, { recursive: true, force: true });
  }
}));
