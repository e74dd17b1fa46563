import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { Lab, devicePathUnavailable, which } from "../../helpers/lab.js";
import { listLoops } from "../../helpers/leftovers.js";
import { devicePathRecord } from "../../helpers/device-path-record.js";

/**
 * Device paths served by the daemon's own FUSE server (activation {
 * device_path_server = "fuse" }): the loop device over a FUSE file whose
 * requests the daemon answers from the LV's mapped device, no nbdfuse, no NBD.
 * Malformed FUSE requests cannot be sent from userspace (only the kernel
 * writes requests): src/fuse/file-session.test.ts covers them.
 */
function fuseLab(): Lab {
  const lab = new Lab("ulvm-fuse-");
  lab.addDisk("d1", 64);
  lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 1\n\tdevice_path_server = "fuse"\n}\n`);
  lab.ok("pvcreate", lab.disk("d1"));
  lab.ok("vgcreate", "vg", lab.disk("d1"));
  lab.ok("lvcreate", "-an", "-L", "32m", "-n", "lv", "vg");
  return lab;
}

const record = devicePathRecord;

function fuseMounts(under: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.includes(" - fuse") && l.split(" ")[4]?.startsWith(under))
    .map((l) => l.split(" ")[4]!);
}

/** The LV's bytes as its NBD export serves them. */
function nbdRead(lab: Lab, exportName: string, out: string): void {
  const uri = `nbd+unix:///${exportName}?socket=${join(lab.dir, "run", "nbd.sock")}`;
  const r = lab.run("nbdcopy", [uri, out]);
  assert.equal(r.code, 0, r.stderr);
}

const skip = devicePathUnavailable() ?? (which("mkfs.ext4") && which("nbdcopy") ? undefined : "mkfs.ext4 or nbdcopy missing");

test("fuse server: mkfs.ext4, mount, write, lvchange -an refused while mounted, umount, e2fsck clean, same bytes as the NBD export; no FUSE mount after -an", { skip }, () => {
  const lab = fuseLab();
  try {
    lab.ok("lvchange", "-ay", "vg/lv");
    const dev = join(lab.dir, "dev", "vg", "lv");
    assert.match(readlinkSync(dev), /^\/dev\/loop\d+$/);
    assert.ok(statSync(dev).isBlockDevice());
    const rec = record(lab);
    assert.equal(rec.server, "fuse");
    assert.equal(rec.fusePid, undefined, "no helper process");
    assert.deepEqual(fuseMounts(lab.dir), [rec.mountDir]);
    assert.equal(lab.run("pgrep", ["-f", `nbdfuse.*${lab.dir}`]).code, 1, "no nbdfuse");
    assert.equal(lab.run("losetup", ["-n", "-O", "DIO", rec.loop!]).stdout.trim(), "0", "the loop does buffered I/O: the kernel caches the FUSE file");
    const strictLimit = `/sys/class/bdi/${rec.fuseDev}/strict_limit`;
    if (existsSync(strictLimit)) assert.equal(readFileSync(strictLimit, "utf8").trim(), "0", "the FUSE mount's strict dirty limit is lifted");

    assert.equal(lab.run("mkfs.ext4", ["-q", dev]).code, 0);
    const mnt = join(lab.dir, "mnt");
    mkdirSync(mnt);
    assert.equal(lab.run("mount", [dev, mnt]).code, 0);
    const data = Buffer.alloc(3 << 20);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i * 2654435761 >>> 0, i);
    writeFileSync(join(mnt, "big"), data);
    for (let x = 0; x < 50; x++) writeFileSync(join(mnt, `f${x}`), `file ${x}\n`);
    const busy = lab.ulvm("lvchange", "-an", "vg/lv");
    assert.equal(busy.code, 5);
    assert.match(busy.stderr, /Logical volume vg\/lv contains a filesystem in use\./);
    assert.equal(lab.run("umount", [mnt]).code, 0);
    assert.equal(lab.run("mount", [dev, mnt]).code, 0);
    assert.ok(readFileSync(join(mnt, "big")).equals(data));
    assert.equal(readFileSync(join(mnt, "f49"), "utf8"), "file 49\n");
    assert.equal(lab.run("umount", [mnt]).code, 0);
    const fsck = lab.run("e2fsck", ["-fn", dev]);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);

    // What the block device shows is what the NBD export serves.
    const viaNbd = join(lab.dir, "nbd.img");
    nbdRead(lab, "vg/lv", viaNbd);
    const viaDev = join(lab.dir, "dev.img");
    assert.equal(lab.run("dd", [`if=${dev}`, `of=${viaDev}`, "bs=1M", "iflag=direct", "status=none"]).code, 0);
    assert.ok(readFileSync(viaNbd).equals(readFileSync(viaDev)));

    lab.ok("lvchange", "-an", "vg/lv");
    assert.ok(!existsSync(dev));
    assert.deepEqual(fuseMounts(lab.dir), [], "no FUSE mount left");
    assert.equal(listLoops().filter((l) => l.backingDev === rec.fuseDev && l.backingInode === rec.fuseIno).length, 0, "no loop left");
  } finally {
    lab.cleanup();
  }
});

test("fuse server: a write and a sync on the device path reach the PV file", { skip }, () => {
  const lab = fuseLab();
  try {
    lab.ok("lvchange", "-ay", "vg/lv");
    const dev = join(lab.dir, "dev", "vg", "lv");
    // The LV's first extent on the PV: pe_start, as pvs reports it in bytes.
    const peStart = Number(lab.ok("pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pe_start", lab.disk("d1")).trim());
    const marker = Buffer.from("ulvm fuse flush marker ".repeat(200).slice(0, 4096));
    writeFileSync(join(lab.dir, "marker"), marker);
    // Buffered (the loop's page cache), then sync: the loop's REQ_FLUSH is FUSE's FSYNC, the daemon's flush.
    assert.equal(lab.run("dd", [`if=${join(lab.dir, "marker")}`, `of=${dev}`, "bs=4096", "seek=1", "conv=notrunc,fsync", "status=none"]).code, 0);
    const fd = openSync(lab.disk("d1"), "r");
    const got = Buffer.alloc(4096);
    readSync(fd, got, 0, 4096, peStart + 4096);
    closeSync(fd);
    assert.ok(got.equals(marker), "the PV file holds the data after the sync");
    lab.ok("lvchange", "-an", "vg/lv");
  } finally {
    lab.cleanup();
  }
});

test("fuse server: after kill -9 of the daemon, the next one detaches the loop and unmounts the dead FUSE mount", { skip }, () => {
  const lab = fuseLab();
  try {
    lab.ok("lvchange", "-ay", "vg/lv");
    const rec = record(lab);
    lab.stopDaemon("SIGKILL");
    assert.deepEqual(fuseMounts(lab.dir), [rec.mountDir], "the dead daemon's mount is still there");
    lab.ok("lvchange", "-ay", "vg/lv");
    const again = record(lab);
    assert.equal(again.server, "fuse");
    // The old loop is gone: one loop over the (new) FUSE file, the one the record names (an anonymous device number may be reused).
    // Only loops named by the records or over this lab's FUSE file: other tests run alongside.
    const mine = listLoops().filter((l) => l.name === rec.loop || l.name === again.loop || l.backingFile.startsWith(rec.mountDir + "/"));
    assert.deepEqual(mine.map((l) => [l.name, l.backingFile]), [[again.loop, again.fuseFile]]);
    assert.deepEqual(fuseMounts(lab.dir), [again.mountDir]);
    lab.ok("lvchange", "-an", "vg/lv");
    assert.deepEqual(fuseMounts(lab.dir), []);
  } finally {
    lab.cleanup();
  }
});

test("fuse server: a write through the LV's NBD export drops the device path's cached bytes (no stale read)", { skip }, () => {
  const lab = fuseLab();
  try {
    lab.ok("lvchange", "-ay", "vg/lv");
    const dev = join(lab.dir, "dev", "vg", "lv");
    const block = (fill: number) => Buffer.alloc(1 << 20, fill);
    const readDev = (): Buffer => {
      const out = join(lab.dir, "read.img");
      // O_DIRECT on the loop: past the loop's own cache, into the FUSE file's (which the loop reads buffered).
      assert.equal(lab.run("dd", [`if=${dev}`, `of=${out}`, "bs=1M", "count=1", "iflag=direct", "status=none"]).code, 0);
      return readFileSync(out);
    };
    const first = join(lab.dir, "a.img");
    writeFileSync(first, block(0xa1));
    assert.equal(lab.run("dd", [`if=${first}`, `of=${dev}`, "bs=1M", "oflag=direct", "conv=fsync", "status=none"]).code, 0);
    assert.ok(readDev().equals(block(0xa1)), "cached now");
    const second = join(lab.dir, "b.img");
    writeFileSync(second, block(0xb2));
    const uri = `nbd+unix:///vg/lv?socket=${join(lab.dir, "run", "nbd.sock")}`;
    const w = lab.run("nbdcopy", [second, uri]);
    assert.equal(w.code, 0, w.stderr);
    assert.ok(readDev().equals(block(0xb2)), "the device path shows what the NBD export wrote");
    lab.ok("lvchange", "-an", "vg/lv");
  } finally {
    lab.cleanup();
  }
});

test("fuse server: table reloads (lvconvert -m1, lvchange --refresh, lvconvert -m0) under a mounted ext4 while a writer runs; every file intact, e2fsck clean", { skip }, async () => {
  const lab = fuseLab();
  try {
    lab.addDisk("d2", 64);
    lab.ok("vgextend", "vg", lab.disk("d2"));
    lab.ok("lvchange", "-ay", "vg/lv");
    const dev = join(lab.dir, "dev", "vg", "lv");
    assert.equal(lab.run("mkfs.ext4", ["-q", dev]).code, 0);
    const mnt = join(lab.dir, "mnt");
    mkdirSync(mnt);
    assert.equal(lab.run("mount", [dev, mnt]).code, 0);
    try {
      // The writer: 40 files of 128 KiB, each written and fsynced, their checksums kept.
      const script = `for i in $(seq 1 40); do head -c 131072 /dev/urandom > f$i.tmp && sync f$i.tmp && mv f$i.tmp f$i && md5sum f$i >> sums; done`;
      const writer = spawn("sh", ["-c", script], { cwd: mnt, stdio: "ignore" });
      const done = new Promise<number>((resolve) => writer.on("exit", (code) => resolve(code ?? 1)));
      // Each step suspends the LV, loads a new table and resumes it, with the writer's I/O in flight.
      lab.ok("lvconvert", "-y", "-m1", "vg/lv", lab.disk("d2"));
      lab.ok("lvchange", "--refresh", "vg/lv");
      lab.ok("lvconvert", "-y", "-m0", "vg/lv", lab.disk("d2"));
      lab.ok("lvchange", "--refresh", "vg/lv");
      assert.equal(await done, 0, "the writer finished without an error");
      const sums = spawnSync("md5sum", ["-c", "--quiet", "sums"], { cwd: mnt, encoding: "utf8" });
      assert.equal(sums.status, 0, sums.stdout + sums.stderr);
      assert.equal(readFileSync(join(mnt, "sums"), "utf8").trim().split("\n").length, 40);
    } finally {
      lab.run("umount", [mnt]);
    }
    const fsck = lab.run("e2fsck", ["-fn", dev]);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    lab.ok("lvchange", "-an", "vg/lv");
  } finally {
    lab.cleanup();
  }
});
