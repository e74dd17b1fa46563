/**
 * Real NBD clients against our server on a file: nbdinfo, nbdcopy (one and
 * four connections), qemu-img convert/compare, fio with verification, and
 * the serve-file CLI. Each test skips, naming the tool, when it is missing.
 */
import { test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { FileBlockDevice } from "../../../src/blockdev/file-block-device.js";
import { pattern, SERVE_FILE_JS, skipUnless, startServer, tempDir, waitFor } from "./nbd-fixture.js";
import type { ServerFixture } from "./nbd-fixture.js";

const run = promisify(execFile);
const SIZE = 32 << 20;

interface FileFixture extends ServerFixture {
  readonly file: string;
  readonly device: FileBlockDevice;
}

/** A server (in this process) exporting a 32 MiB file under `exportName`. */
async function serveFile(t: TestContext, exportName = "vg0/lv0", content: Buffer = Buffer.alloc(SIZE)): Promise<FileFixture> {
  const dir = tempDir(t);
  const file = path.join(dir, "disk.img");
  fs.writeFileSync(file, content);
  const device = await FileBlockDevice.open(file);
  t.after(() => device.close());
  const fx = await startServer(t, [{ name: exportName, device, description: "test volume" }]);
  return { ...fx, file, device };
}

test("nbdinfo: size, flags, --json and --list", { skip: skipUnless("nbdinfo") }, async (t) => {
  const fx = await serveFile(t);
  const { stdout: size } = await run("nbdinfo", ["--size", fx.uri("vg0/lv0")]);
  assert.equal(size.trim(), String(SIZE));
  const { stdout: json } = await run("nbdinfo", ["--json", fx.uri("vg0/lv0")]);
  const info = JSON.parse(json) as { exports: Array<Record<string, unknown>>; protocol: string };
  const e = info.exports[0];
  assert.ok(e !== undefined);
  assert.equal(e["export-size"], SIZE);
  for (const flag of ["can_flush", "can_fua", "can_multi_conn", "can_trim", "can_zero", "can_cache", "can_df", "can_fast_zero"]) assert.equal(e[flag], true, flag);
  assert.equal(e["is_read_only"], false);
  assert.equal(e["block_size_minimum"], 1);
  assert.equal(e["block_size_preferred"], 4096);
  assert.equal(e["block_size_maximum"], 32 << 20);
  assert.equal(e["description"], "test volume");
  fx.server.addExport({ name: "vg0/lv1", device: fx.device, readOnly: true });
  const { stdout: list } = await run("nbdinfo", ["--list", "--json", fx.uri("")]);
  const listed = (JSON.parse(list) as { exports: Array<Record<string, unknown>> }).exports;
  assert.deepEqual(listed.map((x) => x["export-name"]).sort(), ["vg0/lv0", "vg0/lv1"]);
  assert.equal(listed.find((x) => x["export-name"] === "vg0/lv1")?.["is_read_only"], true);
});

test("nbdcopy round trip: file → export → file, byte-identical", { skip: skipUnless("nbdcopy") }, async (t) => {
  const fx = await serveFile(t);
  const src = path.join(fx.dir, "src.img");
  const back = path.join(fx.dir, "back.img");
  const content = pattern(SIZE, 11);
  fs.writeFileSync(src, content);
  await run("nbdcopy", ["--flush", src, fx.uri("vg0/lv0")]);
  assert.ok(fs.readFileSync(fx.file).equals(content), "export content");
  await run("nbdcopy", [fx.uri("vg0/lv0"), back]);
  assert.ok(fs.readFileSync(back).equals(content), "copied back");
});

test("nbdcopy with 4 connections (multi-conn) and many requests in flight", { skip: skipUnless("nbdcopy") }, async (t) => {
  const fx = await serveFile(t);
  const src = path.join(fx.dir, "src.img");
  const content = pattern(SIZE, 12);
  fs.writeFileSync(src, content);
  let peakOpen = 0;
  const sampler = setInterval(() => (peakOpen = Math.max(peakOpen, fx.server.openCount("vg0/lv0"))), 1);
  t.after(() => clearInterval(sampler));
  await run("nbdcopy", ["--connections=4", "--requests=32", "--request-size=262144", "--flush", src, fx.uri("vg0/lv0")]);
  clearInterval(sampler);
  assert.ok(fs.readFileSync(fx.file).equals(content));
  assert.ok(peakOpen >= 2, `nbdcopy used ${peakOpen} connection(s); CAN_MULTI_CONN should let it use several`);
  const back = path.join(fx.dir, "back.img");
  await run("nbdcopy", ["--connections=4", fx.uri("vg0/lv0"), back]);
  assert.ok(fs.readFileSync(back).equals(content));
});

test("qemu-img convert into the export, then qemu-img compare", { skip: skipUnless("qemu-img") }, async (t) => {
  const fx = await serveFile(t);
  const src = path.join(fx.dir, "src.img");
  const content = pattern(SIZE, 13);
  content.fill(0, 4 << 20, 12 << 20); // a zero run: qemu-img may use WRITE_ZEROES for it
  fs.writeFileSync(src, content);
  fs.writeFileSync(fx.file, pattern(SIZE, 99)); // the target starts with other data
  await run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", src, fx.uri("vg0/lv0")]);
  const { stdout } = await run("qemu-img", ["compare", "-f", "raw", "-F", "raw", src, fx.uri("vg0/lv0")]);
  assert.match(stdout, /Images are identical/);
  assert.ok(fs.readFileSync(fx.file).equals(content));
});

test("fio --ioengine=nbd random writes with crc32c verification at iodepth 32", { skip: skipUnless("fio") }, async (t) => {
  const { stdout: engines } = await run("fio", ["--enghelp"]).catch(() => ({ stdout: "" }));
  if (!/\bnbd\b/.test(engines)) {
    t.skip("fio has no nbd ioengine");
    return;
  }
  const fx = await serveFile(t);
  const { stdout } = await run("fio", [
    "--name=verify",
    "--ioengine=nbd",
    `--uri=${fx.uri("vg0/lv0")}`,
    "--rw=randwrite",
    "--bs=4k",
    "--bssplit=4k/70:64k/25:1m/5",
    "--iodepth=32",
    `--size=${SIZE}`,
    "--verify=crc32c",
    "--verify_fatal=1",
    "--do_verify=1",
    "--output-format=json",
  ]);
  const json = JSON.parse(stdout.slice(stdout.indexOf("{"))) as { jobs: Array<{ error: number; write: { io_bytes: number }; read: { io_bytes: number } }> };
  const job = json.jobs[0];
  assert.ok(job !== undefined);
  assert.equal(job.error, 0);
  assert.ok(job.write.io_bytes > 0 && job.read.io_bytes > 0, "fio wrote and read back for verification");
});

test("serve-file CLI: serves a file, exits 0 on SIGTERM after flushing, leaves no socket", { skip: skipUnless("nbdinfo", "nbdcopy") }, async (t) => {
  if (!fs.existsSync(SERVE_FILE_JS)) {
    t.skip(`${SERVE_FILE_JS} not built`);
    return;
  }
  const dir = tempDir(t);
  const file = path.join(dir, "disk.img");
  const sock = path.join(dir, "s.sock");
  fs.writeFileSync(file, Buffer.alloc(4 << 20));
  const child = spawn(process.execPath, [SERVE_FILE_JS, "--unix", sock, "--export", "vg/lv", file], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  t.after(() => child.kill("SIGKILL"));
  await waitFor(() => fs.existsSync(sock), "the socket to appear");
  const uri = `nbd+unix:///vg/lv?socket=${sock}`;
  const { stdout } = await run("nbdinfo", ["--size", uri]);
  assert.equal(stdout.trim(), String(4 << 20));
  const src = path.join(dir, "src.img");
  fs.writeFileSync(src, pattern(4 << 20, 14));
  await run("nbdcopy", [src, uri]);
  child.kill("SIGTERM");
  assert.equal(await exited, 0, stderr);
  assert.ok(fs.readFileSync(file).equals(pattern(4 << 20, 14)));
  assert.equal(fs.existsSync(sock), false);
});

test("nbdfuse: write with fsync through the FUSE file, read back, data on the backing file", { skip: skipUnless("nbdfuse", "fusermount") || (fs.existsSync("/dev/fuse") ? false : "/dev/fuse not available") }, async (t) => {
  // The server runs as a child (serve-file) so that nothing in this process can block it.
  const dir = tempDir(t);
  const file = path.join(dir, "disk.img");
  const sock = path.join(dir, "s.sock");
  const mnt = path.join(dir, "mnt");
  fs.mkdirSync(mnt);
  fs.writeFileSync(file, Buffer.alloc(8 << 20));
  const server = spawn(process.execPath, [SERVE_FILE_JS, "--unix", sock, file], { stdio: "ignore" });
  t.after(() => server.kill("SIGKILL"));
  await waitFor(() => fs.existsSync(sock), "the socket to appear");
  const fuse = spawn("nbdfuse", [mnt, `nbd+unix:///?socket=${sock}`], { stdio: "ignore" });
  const fuseExited = new Promise<void>((resolve) => fuse.on("exit", () => resolve()));
  t.after(async () => {
    await run("fusermount", ["-u", mnt]).catch(() => {});
    fuse.kill("SIGKILL");
  });
  try {
    await waitFor(() => fs.existsSync(path.join(mnt, "nbd")), "the FUSE mount", 5000);
  } catch {
    t.skip("nbdfuse could not mount here (no FUSE permission?)");
    return;
  }
  const data = pattern(1 << 20, 21);
  const fh = await fs.promises.open(path.join(mnt, "nbd"), "r+");
  await fh.write(data, 0, data.length, 3 << 20);
  await fh.sync(); // → NBD_CMD_FLUSH
  const back = Buffer.alloc(data.length);
  await fh.read(back, 0, back.length, 3 << 20);
  await fh.close();
  assert.ok(back.equals(data));
  await run("fusermount", ["-u", mnt]);
  await fuseExited;
  assert.ok((await fs.promises.readFile(file)).subarray(3 << 20, 4 << 20).equals(data));
});
