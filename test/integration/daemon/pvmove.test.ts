import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, lvmUnavailable, which } from "../../helpers/lab.js";
import { ulvmAsync } from "../../helpers/run-async.js";
import { readLvFromPvs } from "../../helpers/lv-bytes.js";

/**
 * pvmove of LVs active in the daemon: the daemon's mirror copies each
 * pvmove segment under NBD clients that keep writing and verifying (fio),
 * through every segment switch and the finish; afterwards the data on the
 * destination PV is what the clients see, byte for byte, and Debian's lvm
 * reads the result.
 */
const MiB = 1024 * 1024;
const nbdTools = which("nbdcopy") && which("nbdinfo") ? undefined : "nbdcopy/nbdinfo not installed (libnbd-bin)";
const skip = which("fio") ? nbdTools : "fio not installed";

const uri = (l: Lab, exp: string): string => `nbd+unix:///${exp}?socket=${join(l.dir, "run", "nbd.sock")}`;

/** fio's written-and-verified ranges of lv0 (one job each): [offset, length] in bytes. */
const FIO_RANGES: Array<[number, number]> = [
  [0, 4 * MiB], // in pvmove0's first segment
  [20 * MiB, 4 * MiB], // in its second (lv0's second segment)
];

/** One round of fio on lv0: random writes over FIO_RANGES, then every block read back and checked. */
function fioRound(l: Lab): Promise<{ code: number; out: string }> {
  const jobs = FIO_RANGES.flatMap(([off, len], i) => [`--name=r${i}`, `--offset=${off}`, `--size=${len}`]);
  const fio = spawn("fio", ["--ioengine=nbd", `--uri=${uri(l, "vg/lv0")}`, "--rw=randwrite", "--bs=4k", "--iodepth=8", "--verify=crc32c", "--verify_fatal=1", "--output-format=json", ...jobs], { env: l.env, cwd: l.dir, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  fio.stdout.on("data", (d: Buffer) => (out += d.toString()));
  fio.stderr.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((r) => fio.on("exit", (c) => r({ code: c ?? 1, out })));
}

test("pvmove of active LVs: fio writes and verifies throughout, the data is on the destination byte for byte, lvm2 agrees", { skip }, async () => {
  const l = new Lab("ulvm-pvmove-online-");
  try {
    // The throttle stretches the copy over several polls so that clients write while each segment copies.
    l.writeConfig(`devices {\n\tscan = [ "${join(l.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 0\n\tmirror_resync_rate = 4096\n}\n`);
    const d0 = l.addDisk("d0", 64);
    const d1 = l.addDisk("d1", 64);
    l.addDisk("d2", 64);
    l.ok("vgcreate", "-q", "vg", d0, d1, l.disk("d2"));
    // lv0 in two segments with lv1 between them: pvmove0 gets 3 segments, 2 LVs.
    l.ok("lvcreate", "-q", "-an", "-Zn", "-n", "lv0", "-l", "4", "vg", d0);
    l.ok("lvcreate", "-q", "-an", "-Zn", "-n", "lv1", "-l", "2", "vg", d0);
    l.ok("lvextend", "-q", "-l", "+4", "vg/lv0", d0);
    l.ok("vgchange", "-ay", "vg");
    const want = { lv0: randomBytes(32 * MiB), lv1: randomBytes(8 * MiB) };
    for (const [lv, data] of Object.entries(want)) {
      writeFileSync(join(l.dir, `${lv}.src`), data);
      const r = l.run("nbdcopy", [join(l.dir, `${lv}.src`), uri(l, `vg/${lv}`)]);
      assert.equal(r.code, 0, r.stderr);
    }

    let moving = true;
    let midLvs = "";
    const move = ulvmAsync(l, ["pvmove", "-i", "1", d0, d1], (out) => {
      // The first progress line: pvmove0 is active in the daemon.
      if (!midLvs && /Moved: /.test(out) && !/Moved: 100\.00%/.test(out)) midLvs = l.ok("lvs", "-a", "--noheadings", "-o", "lv_name,lv_attr,move_pv,devices", "vg");
    });
    void move.then(() => (moving = false));
    let roundsDuringMove = 0;
    while (moving) {
      const f = await fioRound(l);
      assert.equal(f.code, 0, f.out.slice(0, 3000));
      roundsDuringMove++;
    }
    const r = await move;
    assert.equal(r.code, 0, r.stderr);
    // A round after the finish (lv0 now linear on d1): the last writes, verified.
    const after = await fioRound(l);
    assert.equal(after.code, 0, after.out.slice(0, 3000));
    assert.ok(roundsDuringMove >= 1);

    assert.match(r.stdout, /Moved: 100\.00%\n$/);
    assert.match(r.stdout, /^ {2}\S+: Moved: \d+\.\d\d%$/m);
    assert.match(midLvs, /\[pvmove0\]\s+p-C-aom---\s+\S+d0\s/, midLvs);
    assert.match(midLvs, /lv0\s+-wI-a[o-]----\s+pvmove0\(0\)/, midLvs);
    assert.match(midLvs, /lv1\s+-wI-a-----\s+pvmove0\(0\)/, midLvs);

    // What the clients see: fio's ranges are its own (verified above), the rest is the data written before.
    const seen: Record<string, Buffer> = {};
    for (const lv of ["lv0", "lv1"]) {
      const out = join(l.dir, `${lv}.read`);
      const c = l.run("nbdcopy", [uri(l, `vg/${lv}`), out]);
      assert.equal(c.code, 0, c.stderr);
      seen[lv] = readFileSync(out);
    }
    assert.ok(seen.lv1!.equals(want.lv1), "lv1 unchanged");
    const mask = (b: Buffer): Buffer => {
      const m = Buffer.from(b);
      for (const [off, len] of FIO_RANGES) m.fill(0, off, off + len);
      return m;
    };
    assert.ok(mask(seen.lv0!).equals(mask(want.lv0)), "lv0 outside fio's ranges unchanged");

    l.ok("vgchange", "-an", "vg");
    assert.ok(!l.ok("lvs", "-a", "--noheadings", "-o", "lv_name", "vg").includes("pvmove"), "pvmove0 is gone");
    for (const lv of ["lv0", "lv1"]) {
      const ranges = l.ok("lvs", "--noheadings", "--segments", "-o", "seg_pe_ranges", `vg/${lv}`);
      assert.ok(!ranges.includes(d0) && ranges.includes(d1), `${lv} is on d1: ${ranges}`);
      assert.ok(readLvFromPvs(l, `vg/${lv}`).equals(seen[lv]!), `${lv} on d1 is what the clients saw, byte for byte`);
    }
    l.ok("vgck", "vg");
    if (lvmUnavailable()) return;
    const loops = l.attachLoops({ readOnlyView: true });
    const out = l.lvmOk("lvs", "-a", "--noheadings", "-o", "lv_name,devices", "vg");
    assert.match(out, new RegExp(`lv0\\s+${loops.get("d1")}\\(0\\)`), out);
    assert.match(out, new RegExp(`lv1\\s+${loops.get("d1")}\\(\\d+\\)`), out);
    assert.ok(!out.includes("pvmove") && !out.includes(loops.get("d0")!), out);
    l.lvmOk("vgck", "vg");
  } finally {
    l.cleanup();
  }
});
