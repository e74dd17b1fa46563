import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync, existsSync, unlinkSync, truncateSync, closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Lab, which } from "../../helpers/lab.js";
import { FIXTURES_DIR } from "../../helpers/fixtures.js";

/**
 * Mirrors under the daemon: activation modes with a missing leg, the
 * "allocate" fault policy replacing a failed leg by itself, table reloads
 * while an NBD client is writing, and the TCP listener.
 */
function lab(fixture: string, config = ""): Lab {
  const l = new Lab("ulvm-mir-");
  for (const f of ["disk1", "disk2", "disk3"]) {
    const gz = join(FIXTURES_DIR, fixture, `${f}.img.gz`);
    if (existsSync(gz)) writeFileSync(join(l.dir, "disks", `${f}.img`), gunzipSync(readFileSync(gz)));
  }
  l.writeConfig(`devices {\n\tscan = [ "${join(l.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 0\n${config}}\n`);
  return l;
}

const sock = (l: Lab): string => join(l.dir, "run", "nbd.sock");
const uri = (l: Lab, exp: string): string => `nbd+unix:///${exp}?socket=${sock(l)}`;
const nbdTools = which("nbdcopy") && which("nbdinfo") ? undefined : "nbdcopy/nbdinfo not installed (libnbd-bin)";

interface Pattern {
  lv: string;
  lv_offset: number;
  length: number;
  sha256: string;
}

function checkPatterns(l: Lab, vg: string, lv: string, fixture: string): void {
  const out = join(l.dir, `${lv}.read`);
  const r = l.run("nbdcopy", [uri(l, `${vg}/${lv}`), out]);
  assert.equal(r.code, 0, r.stderr);
  const data = readFileSync(out);
  const pats = (JSON.parse(readFileSync(join(FIXTURES_DIR, fixture, "patterns.json"), "utf8")) as Pattern[]).filter((p) => p.lv === lv);
  assert.ok(pats.length > 0);
  for (const p of pats) assert.equal(createHash("sha256").update(data.subarray(p.lv_offset, p.lv_offset + p.length)).digest("hex"), p.sha256, `${lv}@${p.lv_offset}`);
}

test("a mirror with a missing leg needs --activationmode degraded, then serves its data from the other leg", { skip: nbdTools }, () => {
  const l = lab("b-mirror");
  try {
    unlinkSync(join(l.dir, "disks", "disk2.img"));
    const refused = l.ulvm("lvchange", "-ay", "fxmirror/lv_mirror");
    assert.equal(refused.code, 5);
    assert.match(refused.stderr, /Refusing activation of partial LV fxmirror\/lv_mirror\.  Use '--activationmode partial' to override\./);
    const ok = l.ulvm("lvchange", "-ay", "--activationmode", "degraded", "fxmirror/lv_mirror");
    assert.equal(ok.code, 0, ok.stderr);
    // Leg 0 (disk1) holds every pattern, region 5's interrupted write included.
    checkPatterns(l, "fxmirror", "lv_mirror", "b-mirror");
    // A core-log mirror runs degraded too.
    const plain = l.ulvm("lvchange", "-ay", "--activationmode", "degraded", "fxmirror/lv_corelog");
    assert.equal(plain.code, 0, plain.stderr);
  } finally {
    l.cleanup();
  }
});

test('mirror_image_fault_policy = "allocate": the daemon replaces a failed leg from free space and resyncs', { skip: nbdTools }, () => {
  const l = lab("b-mirror", '\tmirror_image_fault_policy = "allocate"\n');
  try {
    const d4 = join(l.dir, "disks", "disk4.img");
    closeSync(openSync(d4, "w"));
    truncateSync(d4, 16 << 20);
    assert.equal(l.ulvm("vgextend", "fxmirror", d4).code, 0);
    assert.equal(l.ulvm("lvchange", "-ay", "fxmirror/lv_mirror").code, 0);
    // The seed's dd over the start of the second leg's PV.
    const d2 = readFileSync(join(l.dir, "disks", "disk2.img"));
    d2.fill(0, 0, 2 << 20);
    writeFileSync(join(l.dir, "disks", "disk2.img"), d2);
    let lvs = "";
    for (let i = 0; i < 100; i++) {
      lvs = l.ulvm("lvs", "-a", "--noheadings", "-o", "lv_name,copy_percent,devices", "fxmirror").stdout;
      if (/\[lv_mirror_mimage_1\]\s+\S*disk[34]\.img\(\d+\)/.test(lvs) && /lv_mirror\s+100\.00/.test(lvs)) break;
      l.run("sleep", ["0.1"]);
    }
    assert.match(lvs, /\[lv_mirror_mimage_1\]\s+\S*disk[34]\.img\(\d+\)/, lvs);
    assert.match(lvs, /lv_mirror\s+100\.00/, lvs);
    assert.match(readFileSync(join(l.dir, "run", "ulvmd.log"), "utf8"), /lvconvert --repair --use-policies fxmirror\/lv_mirror: exit 0/);
    checkPatterns(l, "fxmirror", "lv_mirror", "b-mirror");
  } finally {
    l.cleanup();
  }
});

test("lvextend reloads an active LV while an NBD client is writing and verifying: no client error", { skip: which("fio") ? nbdTools : "fio not installed" }, async () => {
  const l = lab("a-linear");
  try {
    assert.equal(l.ulvm("lvchange", "-ay", "fxlinear/lv_one").code, 0);
    const fio = spawn("fio", ["--name=v", "--ioengine=nbd", `--uri=${uri(l, "fxlinear/lv_one")}`, "--rw=randwrite", "--bs=4k", "--iodepth=16", "--size=4m", "--loops=20", "--verify=crc32c", "--verify_fatal=1", "--output-format=json"], { env: l.env, cwd: l.dir, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    fio.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number>((r) => fio.on("exit", (c) => r(c ?? 1)));
    await new Promise((r) => setTimeout(r, 300));
    const ext = l.ulvm("lvextend", "-L", "+2m", "fxlinear/lv_one");
    assert.equal(ext.code, 0, ext.stderr);
    const ext2 = l.ulvm("lvextend", "-L", "+1m", "fxlinear/lv_one");
    assert.equal(ext2.code, 0, ext2.stderr);
    assert.equal(await exited, 0, out.slice(0, 2000));
    const j = JSON.parse(out.slice(out.indexOf("{"))) as { jobs: Array<{ error: number }> };
    assert.equal(j.jobs[0]!.error, 0);
    const info = l.run("nbdinfo", ["--size", uri(l, "fxlinear/lv_one")]);
    assert.equal(info.stdout.trim(), String(7 << 20), "a new connection sees the new size");
    assert.match(readFileSync(join(l.dir, "run", "ulvmd.log"), "utf8"), /reloaded fxlinear\/lv_one/);
  } finally {
    l.cleanup();
  }
});

test("the NBD listener on TCP, when configured, serves the same exports on loopback", { skip: nbdTools }, () => {
  const port = 20000 + (process.pid % 20000);
  const l = lab("a-linear");
  try {
    l.writeConfig(`devices {\n\tscan = [ "${join(l.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 0\n}\nnbd {\n\ttcp = 1\n\tport = ${port}\n}\n`);
    assert.equal(l.ulvm("lvchange", "-ay", "fxlinear/lv_span").code, 0);
    const r = l.run("nbdinfo", ["--size", `nbd://127.0.0.1:${port}/fxlinear/lv_span`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), String(16 << 20));
  } finally {
    l.cleanup();
  }
});
