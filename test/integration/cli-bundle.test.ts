import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Lab, ULVM_BIN } from "../helpers/lab.js";
import { REPO_ROOT } from "../helpers/fixtures.js";

/**
 * Users run ulvm through the esbuild bundle (dist/bundle/ulvm.js) that
 * bin/ulvm loads into a vm.Script with a V8 code cache. A vm.Script has no
 * loader for import(), so any import() left in the bundle fails at run time
 * ("A dynamic import callback was not specified") while the tsc build works:
 * CI once caught exactly that in the lock code. These tests run the bundle
 * itself, whichever build the rest of the suite uses.
 */
const bundle = join(REPO_ROOT, "dist", "bundle", "ulvm.js");
const plain = join(REPO_ROOT, "dist", "src", "cli", "main.js");
const why = !existsSync(bundle)
  ? "no dist/bundle/ulvm.js: run scripts/build.sh"
  : existsSync(plain) && statSync(plain).mtimeMs > statSync(bundle).mtimeMs
    ? "dist/bundle/ulvm.js is older than the tsc build, so bin/ulvm would not use it: run scripts/build.sh"
    : undefined;

test("the bundles keep no import(): a vm.Script could not load it", { skip: why }, () => {
  for (const file of ["ulvm.js", "ulvmd.js"]) {
    const text = readFileSync(join(REPO_ROOT, "dist", "bundle", file), "utf8");
    const left = text.split("\n").filter((line) => /\bimport\s*\(/.test(line));
    assert.deepEqual(left, [], `${file} still has import() calls`);
  }
});

test("commands that lock, scan, write and report run through the bundle, with and without its code cache", { skip: why }, () => {
  const lab = new Lab("ulvm-bundle-");
  try {
    // Through the bundle, whatever build the other tests run from.
    delete lab.env.ULVM_DIST;
    const run = (...args: string[]) => lab.run(process.execPath, [ULVM_BIN, ...args]);
    lab.addDisk("d1", 16);
    lab.addDisk("d2", 16);
    for (const args of [
      ["pvcreate", "-q", lab.disk("d1"), lab.disk("d2")],
      ["vgcreate", "-q", "vgb", lab.disk("d1"), lab.disk("d2")],
      ["lvcreate", "-q", "-an", "-L", "8m", "-n", "lv1", "vgb"],
    ]) {
      const r = run(...args);
      assert.equal(r.code, 0, `ulvm ${args.join(" ")}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /Internal error|ExperimentalWarning/);
    }
    // Twice: the first run may write the code cache, the second reads it.
    for (let i = 0; i < 2; i++) {
      const r = run("lvs", "--noheadings", "-o", "lv_name,lv_size", "vgb");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim().split(/\s+/).join(" "), "lv1 8.00m");
    }
  } finally {
    lab.cleanup();
  }
});

test("the daemon bundle's copy thread (dist/bundle/copy-worker.js) loads as a worker and copies", { skip: why }, async () => {
  const { Worker } = await import("node:worker_threads");
  const { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const dir = mkdtempSync(join(tmpdir(), "ulvm-bundle-worker-"));
  const worker = new Worker(join(REPO_ROOT, "dist", "bundle", "copy-worker.js"));
  try {
    writeFileSync(join(dir, "src"), Buffer.alloc(8192, 0x5a));
    writeFileSync(join(dir, "dst"), Buffer.alloc(8192));
    const src = openSync(join(dir, "src"), "r");
    const dst = openSync(join(dir, "dst"), "r+");
    try {
      const result = await new Promise((resolve, reject) => {
        worker.once("message", resolve);
        worker.once("error", reject);
        worker.postMessage({ id: 1, src: [{ fd: src, offsetBytes: 0, lengthBytes: 8192 }], dsts: [[{ fd: dst, offsetBytes: 0, lengthBytes: 8192 }]] });
      });
      assert.deepEqual(result, { id: 1, srcError: undefined, dstErrors: [null], copiedBytes: 8192 });
      assert.deepEqual(readFileSync(join(dir, "dst")), Buffer.alloc(8192, 0x5a));
    } finally {
      closeSync(src);
      closeSync(dst);
    }
  } finally {
    await worker.terminate();
    rmSync(dir, { recursive: true, force: true });
  }
});
