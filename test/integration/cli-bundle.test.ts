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

test("the daemon bundle's write thread (dist/bundle/write-worker.js) loads as a worker and writes the ring's slots", { skip: why }, async () => {
  const { Worker } = await import("node:worker_threads");
  const { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const ringModule: typeof import("../../src/mapper/write-thread/write-ring.js") = await import(join(REPO_ROOT, "dist", "src", "mapper", "write-thread", "write-ring.js"));
  const { newRing, slotWord, FD, LENGTH, RESULT, SUBMITTED, DONE, SLOT_BYTES } = ringModule;
  const dir = mkdtempSync(join(tmpdir(), "ulvm-bundle-worker-"));
  const ring = newRing();
  const worker = new Worker(join(REPO_ROOT, "dist", "bundle", "write-worker.js"), { workerData: { sab: ring.sab } });
  try {
    writeFileSync(join(dir, "f"), Buffer.alloc(16384));
    const fd = openSync(join(dir, "f"), "r+");
    try {
      // Slot 0: 4 KiB of 0x5a at 8 KiB; slot 1: the same at 0 on a descriptor it cannot write (EBADF).
      ring.data.fill(0x5a, 0, 4096);
      ring.data.fill(0x5a, SLOT_BYTES, SLOT_BYTES + 4096);
      for (const [slot, f, at] of [[0, fd, 8192], [1, 987654, 0]] as const) {
        ring.slotWords[slotWord(slot, FD)] = f;
        ring.slotWords[slotWord(slot, LENGTH)] = 4096;
        ring.positions[slot] = at;
      }
      Atomics.store(ring.control, SUBMITTED, 2);
      Atomics.notify(ring.control, SUBMITTED);
      for (let i = 0; i < 500 && Atomics.load(ring.control, DONE) !== 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(Atomics.load(ring.control, DONE), 2, "the thread finished both slots");
      assert.equal(ring.slotWords[slotWord(0, RESULT)], 0);
      assert.equal(ring.slotWords[slotWord(1, RESULT)], 9, "EBADF");
      const back = readFileSync(join(dir, "f"));
      assert.ok(back.subarray(8192, 12288).equals(Buffer.alloc(4096, 0x5a)));
      assert.ok(back.subarray(0, 8192).equals(Buffer.alloc(8192)));
    } finally {
      closeSync(fd);
    }
  } finally {
    await worker.terminate();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the daemon bundle's tag thread (dist/bundle/tag-worker.js) loads as a worker, with the native crc32c, and writes a run's tags", { skip: why }, async () => {
  const { Worker } = await import("node:worker_threads");
  const { randomFillSync } = await import("node:crypto");
  const format: typeof import("../../src/mapper/integrity/integrity-format.js") = await import(join(REPO_ROOT, "dist", "src", "mapper", "integrity", "integrity-format.js"));
  const worker = new Worker(join(REPO_ROOT, "dist", "bundle", "tag-worker.js"));
  try {
    // The job's layout (tag-worker.ts): 128 KiB of data at 0, the tags from 1 MiB on.
    const sab = new SharedArrayBuffer((1 << 20) + 4096);
    const data = new Uint8Array(sab, 0, 128 * 1024);
    randomFillSync(data);
    const answer = new Promise<{ id: number }>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    worker.postMessage({ id: 7, sab, length: data.length, firstSector: 2048, blockSize: 512, tagSize: 4 });
    assert.deepEqual(await answer, { id: 7 });
    const want = format.crc32cTags(2048, Uint8Array.from(data), 512, 4, new Uint8Array(256 * 4));
    assert.deepEqual(new Uint8Array(sab, 1 << 20, 256 * 4), want);
  } finally {
    await worker.terminate();
  }
});
