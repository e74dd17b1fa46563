import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync, existsSync, readlinkSync, mkdirSync, appendFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Lab, devicePathUnavailable, which } from "../../helpers/lab.js";
import { FIXTURES_DIR } from "../../helpers/fixtures.js";

/**
 * Activation and the data path with real parts: the daemon maps LVs read from
 * lvm2-made disks, serves them over NBD to real clients (nbdcopy, qemu-img,
 * fio), and builds device paths that mkfs.ext3 and mount take.
 */
interface Pattern {
  lv: string;
  lv_offset: number;
  length: number;
  sha256: string;
}

function fixtureLab(fixture: string, opts: { devicePath: boolean }): Lab {
  const lab = new Lab("ulvm-act-");
  for (const f of ["disk1", "disk2", "disk3"]) {
    const gz = join(FIXTURES_DIR, fixture, `${f}.img.gz`);
    if (!existsSync(gz)) continue;
    writeFileSync(join(lab.dir, "disks", `${f}.img`), gunzipSync(readFileSync(gz)));
  }
  lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = ${opts.devicePath ? 1 : 0}\n}\n`);
  return lab;
}

const uri = (lab: Lab, exp: string): string => `nbd+unix:///${exp}?socket=${join(lab.dir, "run", "nbd.sock")}`;

const nbdcopyMissing = which("nbdcopy") ? undefined : "nbdcopy not installed (apt-get install libnbd-bin)";

test("every lvm2 fixture pattern reads back through NBD from tables derived from the metadata", { skip: nbdcopyMissing }, () => {
  const lab = fixtureLab("a-linear", { devicePath: false });
  try {
    const patterns = JSON.parse(readFileSync(join(FIXTURES_DIR, "a-linear", "patterns.json"), "utf8")) as Pattern[];
    const lvs = [...new Set(patterns.map((p) => p.lv))];
    for (const lv of lvs) {
      const r = lab.ulvm("lvchange", "-ay", `fxlinear/${lv}`);
      assert.equal(r.code, 0, r.stderr);
      const out = join(lab.dir, `${lv}.img`);
      const c = lab.run("nbdcopy", [uri(lab, `fxlinear/${lv}`), out]);
      assert.equal(c.code, 0, c.stderr);
      const data = readFileSync(out);
      for (const p of patterns.filter((x) => x.lv === lv)) {
        const h = createHash("sha256").update(data.subarray(p.lv_offset, p.lv_offset + p.length)).digest("hex");
        assert.equal(h, p.sha256, `${lv} at ${p.lv_offset}`);
      }
    }
    const list = lab.run("nbdinfo", ["--list", `nbd+unix://?socket=${join(lab.dir, "run", "nbd.sock")}`]);
    for (const lv of lvs) assert.match(list.stdout, new RegExp(`export="fxlinear/${lv}"`));
    for (const lv of lvs) assert.equal(lab.ulvm("lvchange", "-an", `fxlinear/${lv}`).code, 0);
  } finally {
    lab.cleanup();
  }
});

test("qemu-img convert and compare round trip through an LV export", { skip: which("qemu-img") ? undefined : "qemu-img not installed (apt-get install qemu-utils)" }, () => {
  const lab = fixtureLab("a-linear", { devicePath: false });
  try {
    assert.equal(lab.ulvm("lvchange", "-ay", "fxlinear/lv_span").code, 0);
    const src = join(lab.dir, "src.raw");
    const buf = Buffer.alloc(16 << 20);
    for (let i = 0; i < buf.length; i += 4096) buf.writeUInt32LE(i ^ 0x5a5a5a5a, i);
    writeFileSync(src, buf);
    const conv = lab.run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", src, uri(lab, "fxlinear/lv_span")]);
    assert.equal(conv.code, 0, conv.stderr);
    const cmp = lab.run("qemu-img", ["compare", "-f", "raw", "-F", "raw", src, uri(lab, "fxlinear/lv_span")]);
    assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
    // The bytes landed where the metadata says: the first 11 MiB on disk1 from PE 4, the rest on disk2 from PE 0.
    const d1 = readFileSync(join(lab.dir, "disks", "disk1.img"));
    const d2 = readFileSync(join(lab.dir, "disks", "disk2.img"));
    assert.ok(d1.subarray(1048576 + 4 * 1048576, 1048576 + 15 * 1048576).equals(buf.subarray(0, 11 << 20)));
    assert.ok(d2.subarray(1048576, 1048576 + 5 * 1048576).equals(buf.subarray(11 << 20)));
  } finally {
    lab.cleanup();
  }
});

test("fio with verify=crc32c at iodepth 32 over an LV export", { skip: which("fio") ? undefined : "fio not installed" }, () => {
  const lab = fixtureLab("a-linear", { devicePath: false });
  try {
    assert.equal(lab.ulvm("lvchange", "-ay", "fxlinear/lv_span").code, 0);
    const r = lab.run("fio", [
      "--name=v", "--ioengine=nbd", `--uri=${uri(lab, "fxlinear/lv_span")}`, "--rw=randwrite", "--bs=4k", "--iodepth=32",
      "--size=16m", "--verify=crc32c", "--verify_fatal=1", "--do_verify=1", "--output-format=json",
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(0, 2000));
    const j = JSON.parse(r.stdout.slice(r.stdout.indexOf("{"))) as { jobs: Array<{ error: number; write: { io_bytes: number } }> };
    assert.equal(j.jobs[0]!.error, 0);
    assert.equal(j.jobs[0]!.write.io_bytes, 16 << 20);
  } finally {
    lab.cleanup();
  }
});

test("the seed's steps 4 and 5 on a linear LV: mkfs.ext3, mount, write, remount, read, e2fsck clean; busy LVs stay active", { skip: devicePathUnavailable() }, () => {
  const lab = fixtureLab("a-linear", { devicePath: true });
  try {
    assert.equal(lab.ulvm("lvchange", "-ay", "fxlinear/lv_span").code, 0);
    const dev = join(lab.dir, "dev", "fxlinear", "lv_span");
    assert.ok(existsSync(dev), "device path exists");
    assert.match(readlinkSync(dev), /^\/dev\/loop\d+$/);
    assert.equal(lab.run("mkfs.ext3", ["-q", dev]).code, 0);
    const mnt = join(lab.dir, "mnt");
    mkdirSync(mnt);
    assert.equal(lab.run("mount", [dev, mnt]).code, 0);
    for (let x = 1; x <= 100; x++) appendFileSync(join(mnt, "test.txt"), `${x} test test test \n`);
    const busy = lab.ulvm("lvchange", "-an", "fxlinear/lv_span");
    assert.equal(busy.code, 5);
    assert.match(busy.stderr, /Logical volume fxlinear\/lv_span contains a filesystem in use\./);
    assert.equal(lab.run("umount", [mnt]).code, 0);
    assert.equal(lab.run("mount", [dev, mnt]).code, 0);
    const lines = readFileSync(join(mnt, "test.txt"), "utf8").split("\n");
    assert.equal(lines.length, 101);
    assert.equal(lines[99], "100 test test test ");
    assert.equal(lab.run("umount", [mnt]).code, 0);
    const fsck = lab.run("e2fsck", ["-fn", dev]);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    assert.equal(lab.ulvm("lvchange", "-an", "fxlinear/lv_span").code, 0);
    assert.ok(!existsSync(dev), "device path removed on deactivation");
  } finally {
    lab.cleanup();
  }
});

test("a daemon killed with SIGKILL leaves nothing that blocks the next activation", { skip: devicePathUnavailable() }, () => {
  const lab = fixtureLab("a-linear", { devicePath: true });
  try {
    assert.equal(lab.ulvm("lvchange", "-ay", "fxlinear/lv_one").code, 0);
    const dev = join(lab.dir, "dev", "fxlinear", "lv_one");
    const before = readFileSync(dev).subarray(0, 64).toString("latin1");
    assert.match(before, /^LVMFX fxlinear\/lv_one lv_offset=0 rec=0/);
    lab.stopDaemon("SIGKILL");
    // The pid file, sockets, FUSE mount and loop device of the dead daemon are all still there.
    assert.ok(existsSync(join(lab.dir, "run", "ulvmd.pid")));
    const again = lab.ulvm("lvchange", "-ay", "fxlinear/lv_one");
    assert.equal(again.code, 0, again.stderr);
    assert.equal(readFileSync(dev).subarray(0, 64).toString("latin1"), before);
    assert.equal(lab.ulvm("lvchange", "-an", "fxlinear/lv_one").code, 0);
  } finally {
    lab.cleanup();
  }
});

test("the seed's failure drill on an lvm2-made mirror: dd over a leg while mounted, data stays readable, the PV is recorded MISSING", { skip: devicePathUnavailable() }, () => {
  const lab = fixtureLab("b-mirror", { devicePath: true });
  try {
    assert.equal(lab.ulvm("lvchange", "-ay", "fxmirror/lv_mirror").code, 0);
    const dev = join(lab.dir, "dev", "fxmirror", "lv_mirror");
    const mnt = join(lab.dir, "mnt");
    mkdirSync(mnt);
    assert.equal(lab.run("mkfs.ext3", ["-q", dev]).code, 0);
    assert.equal(lab.run("mount", [dev, mnt]).code, 0);
    for (let x = 1; x <= 100; x++) appendFileSync(join(mnt, "test.txt"), `${x} test test test \n`);
    lab.run("sync", []);
    // dd if=/dev/zero of=/dev/sdb2 count=10 bs=1M (our disk is 16 MiB: wipe 3 MiB, label and leg start)
    assert.equal(lab.run("dd", ["if=/dev/zero", `of=${join(lab.dir, "disks", "disk2.img")}`, "bs=1M", "count=3", "conv=notrunc"]).code, 0);
    // Keep writing until the daemon has noticed (its label check runs twice a second).
    const backup = join(lab.dir, "etc", "backup", "fxmirror");
    for (let i = 0; i < 100 && !(existsSync(backup) && readFileSync(backup, "utf8").includes('flags = ["MISSING"]')); i++) {
      appendFileSync(join(mnt, "more.txt"), `${i}\n`);
      lab.run("sync", []);
      lab.run("sleep", ["0.1"]);
    }
    assert.match(readFileSync(backup, "utf8"), /id = "fxmirr-pv02-0000-0000-0000-0000-000002"\n\t\t\tdevice = "\[unknown\]"[^}]*flags = \["MISSING"\]/);
    assert.equal(lab.run("umount", [mnt]).code, 0);
    assert.equal(lab.run("mount", [dev, mnt]).code, 0);
    const lines = readFileSync(join(mnt, "test.txt"), "utf8").trim().split("\n");
    assert.equal(lines.length, 100);
    assert.equal(lab.run("umount", [mnt]).code, 0);
    assert.equal(lab.run("e2fsck", ["-fn", dev]).code, 0);
    const log = readFileSync(join(lab.dir, "run", "ulvmd.log"), "utf8");
    assert.match(log, /recorded PV fxmirr-pv02-0000-0000-0000-0000-000002 as MISSING/);
  } finally {
    lab.cleanup();
  }
});

test("vgchange -ay / -an activate every LV of a VG and lvs, lvscan report it as lvm2 does", () => {
  const lab = fixtureLab("a-linear", { devicePath: false });
  try {
    const on = lab.ulvm("vgchange", "-ay", "fxlinear");
    assert.equal(on.code, 0, on.stderr);
    assert.equal(on.stdout, `  4 logical volume(s) in volume group "fxlinear" now active\n`);
    const lvs = lab.ok("lvs", "--noheadings", "-o", "lv_name,lv_attr");
    assert.match(lvs, /lv_one\s+-wi-a-----/);
    assert.match(lvs, /lv_stripe\s+-wi-a-----/);
    assert.match(lab.ok("lvscan"), /ACTIVE {12}'.*\/fxlinear\/lv_span' \[16\.00 MiB\] inherit/);
    const off = lab.ulvm("vgchange", "-an", "fxlinear");
    assert.equal(off.code, 0, off.stderr);
    assert.equal(off.stdout, `  0 logical volume(s) in volume group "fxlinear" now active\n`);
    assert.match(lab.ok("lvs", "--noheadings", "-o", "lv_name,lv_attr"), /lv_one\s+-wi-------/);
  } finally {
    lab.cleanup();
  }
});

test("lvrename of an active, mounted LV moves its export and device path; the filesystem stays mounted", { skip: devicePathUnavailable() }, () => {
  const lab = fixtureLab("a-linear", { devicePath: true });
  try {
    assert.equal(lab.ulvm("lvchange", "-ay", "fxlinear/lv_span").code, 0);
    const dev = join(lab.dir, "dev", "fxlinear", "lv_span");
    const mnt = join(lab.dir, "mnt");
    mkdirSync(mnt);
    assert.equal(lab.run("mkfs.ext3", ["-q", dev]).code, 0);
    assert.equal(lab.run("mount", [dev, mnt]).code, 0);
    writeFileSync(join(mnt, "f.txt"), "before rename\n");
    const r = lab.ulvm("lvrename", "fxlinear", "lv_span", "lv_moved");
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(dev), "old device path gone");
    assert.ok(existsSync(join(lab.dir, "dev", "fxlinear", "lv_moved")), "new device path");
    appendFileSync(join(mnt, "f.txt"), "after rename\n");
    assert.equal(lab.run("umount", [mnt]).code, 0);
    const list = lab.run("nbdinfo", ["--list", `nbd+unix://?socket=${join(lab.dir, "run", "nbd.sock")}`]).stdout;
    assert.match(list, /export="fxlinear\/lv_moved"/);
    assert.doesNotMatch(list, /export="fxlinear\/lv_span"/);
    assert.match(lab.ok("lvs", "--noheadings", "-o", "lv_name,lv_attr", "fxlinear/lv_moved"), /lv_moved\s+-wi-a-----/);
    const dev2 = join(lab.dir, "dev", "fxlinear", "lv_moved");
    assert.equal(lab.run("mount", [dev2, mnt]).code, 0);
    assert.equal(readFileSync(join(mnt, "f.txt"), "utf8"), "before rename\nafter rename\n");
    assert.equal(lab.run("umount", [mnt]).code, 0);
    assert.equal(lab.ulvm("lvchange", "-an", "fxlinear/lv_moved").code, 0);
  } finally {
    lab.cleanup();
  }
});
