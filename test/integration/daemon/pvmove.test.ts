import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, lvmUnavailable, which } from "../../helpers/lab.js";
import { ulvmAsync } from "../../helpers/run-async.js";
import { readLvFromPvs } from "../../helpers/lv-bytes.js";
import { lv0SplitByLv1 } from "../../helpers/pvmove-layout.js";

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

// --atomic: the daemon's one mirror over pvmove0_mimage_0 and _1 copies everything, then the finish.
for (const atomic of [[], ["--atomic"]]) {
test(`pvmove ${atomic.join(" ")}${atomic.length ? " " : ""}of active LVs: fio writes and verifies throughout, the data is on the destination byte for byte, lvm2 agrees`, { skip }, async () => {
  const l = new Lab("ulvm-pvmove-online-");
  try {
    // The throttle stretches the copy over several polls so that clients write while each segment copies.
    l.writeConfig(`devices {\n\tscan = [ "${join(l.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 0\n\tmirror_resync_rate = 4096\n}\n`);
    const d0 = l.addDisk("d0", 64);
    const d1 = l.addDisk("d1", 64);
    l.addDisk("d2", 64);
    l.ok("vgcreate", "-q", "vg", d0, d1, l.disk("d2"));
    lv0SplitByLv1(l, d0);
    l.ok("vgchange", "-ay", "vg");
    const want = { lv0: randomBytes(32 * MiB), lv1: randomBytes(8 * MiB) };
    for (const [lv, data] of Object.entries(want)) {
      writeFileSync(join(l.dir, `${lv}.src`), data);
      const r = l.run("nbdcopy", [join(l.dir, `${lv}.src`), uri(l, `vg/${lv}`)]);
      assert.equal(r.code, 0, r.stderr);
    }

    let moving = true;
    let midLvs = "";
    const move = ulvmAsync(l, ["pvmove", "-i", "1", ...atomic, d0, d1], (out) => {
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
}

/** pvmove0's segments as the metadata holds them: [extent_count, extents_moved] each. */
function moveCheckpoints(l: Lab): Array<[number, number]> {
  const f = join(l.dir, "vg.backup");
  l.ok("vgcfgbackup", "-f", f, "vg");
  const text = readFileSync(f, "utf8");
  const pm = text.slice(text.indexOf("pvmove0 {"));
  return [...pm.matchAll(/extent_count = (\d+)[^}]*?extents_moved = (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

/** Two active LVs of 4 extents on d0 filled through NBD; the move copies at 2 MiB/s (8 MiB batches, 4 s apart). */
function twoLvs(l: Lab): { d0: string; d1: string; want: Record<string, Buffer> } {
  l.writeConfig(`devices {\n\tscan = [ "${join(l.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 0\n\tmirror_resync_rate = 2048\n}\n`);
  const d0 = l.addDisk("d0", 64);
  const d1 = l.addDisk("d1", 64);
  l.ok("vgcreate", "-q", "vg", d0, d1);
  l.ok("lvcreate", "-q", "-an", "-Zn", "-n", "lv0", "-l", "4", "vg", d0);
  l.ok("lvcreate", "-q", "-an", "-Zn", "-n", "lv1", "-l", "4", "vg", d0);
  const want = { lv0: randomBytes(16 * MiB), lv1: randomBytes(16 * MiB) };
  l.ok("vgchange", "-ay", "vg");
  for (const [lv, data] of Object.entries(want)) {
    writeFileSync(join(l.dir, `${lv}.src`), data);
    const r = l.run("nbdcopy", [join(l.dir, `${lv}.src`), uri(l, `vg/${lv}`)]);
    assert.equal(r.code, 0, r.stderr);
  }
  return { d0, d1, want };
}

/** Start `pvmove -i 1 d0 d1` and run `then` once, when a progress line past 50% shows the first of the 2 segments checkpointed. */
function moveUntilSecondSegment(l: Lab, d0: string, d1: string, then: () => void): Promise<{ code: number; stdout: string; stderr: string; fired: boolean }> {
  let fired = false;
  return ulvmAsync(l, ["pvmove", "-i", "1", d0, d1], (out) => {
    const last = [...out.matchAll(/Moved: (\d+\.\d\d)%/g)].pop();
    if (fired || !last || Number(last[1]) <= 50 || Number(last[1]) >= 100) return;
    fired = true;
    then();
  }).then((r) => ({ ...r, fired }));
}

async function checkMovedIntact(l: Lab, d0: string, d1: string, want: Record<string, Buffer>): Promise<void> {
  for (const [lv, data] of Object.entries(want)) {
    const out = join(l.dir, `${lv}.read`);
    const c = l.run("nbdcopy", [uri(l, `vg/${lv}`), out]);
    assert.equal(c.code, 0, c.stderr);
    assert.ok(readFileSync(out).equals(data), `${lv} as clients read it`);
  }
  l.ok("vgchange", "-an", "vg");
  for (const [lv, data] of Object.entries(want)) {
    const ranges = l.ok("lvs", "--noheadings", "--segments", "-o", "seg_pe_ranges", `vg/${lv}`);
    assert.ok(!ranges.includes(d0) && ranges.includes(d1), `${lv} is on d1: ${ranges}`);
    assert.ok(readLvFromPvs(l, `vg/${lv}`).equals(data), `${lv} on d1, byte for byte`);
  }
  l.ok("vgck", "vg");
}

test("kill -9 of the daemon mid-move: the checkpoint survives, vgchange --poll n does not poll, pvmove without a PV resumes from it", { skip: nbdTools }, async () => {
  const l = new Lab("ulvm-pvmove-crash-");
  try {
    const { d0, d1, want } = twoLvs(l);
    const r = await moveUntilSecondSegment(l, d0, d1, () => l.stopDaemon("SIGKILL"));
    assert.ok(r.fired, r.stdout);
    // The poller loses the mirror it watched, as lvm2's does when the devices go.
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /Skipping inactive LV\. Try lvchange or vgchange\./);
    assert.deepEqual(moveCheckpoints(l), [[4, 4], [4, 0]], "the first segment's checkpoint is committed, the second's is not");

    const act = l.ok("vgchange", "-ay", "--poll", "n", "vg");
    assert.ok(!act.includes("Background polling"), act);
    assert.match(l.ok("lvs", "-a", "--noheadings", "-o", "lv_name,lv_attr", "vg"), /\[pvmove0\]\s+p-C-aom---/);

    const resumed = l.ulvm("pvmove", "-i", "1");
    assert.equal(resumed.code, 0, resumed.stderr);
    const pct = [...resumed.stdout.matchAll(/Moved: (\d+\.\d\d)%/g)].map((m) => Number(m[1]));
    assert.ok(pct[0]! >= 50, `resumed from the checkpoint: ${resumed.stdout}`);
    assert.equal(pct[pct.length - 1], 100);
    assert.ok(!l.ok("lvs", "-a", "--noheadings", "-o", "lv_name", "vg").includes("pvmove"), "pvmove0 is gone");
    await checkMovedIntact(l, d0, d1, want);
  } finally {
    l.cleanup();
  }
});

for (const how of ["vgchange -ay vg", "lvchange -ay vg/lv1"]) {
  test(`a move whose poller died: ${how} starts background polling, which finishes it`, { skip: nbdTools }, async () => {
    const l = new Lab("ulvm-pvmove-resume-");
    try {
      const { d0, d1, want } = twoLvs(l);
      // The LVs inactive: the pvmove command copies itself, and is killed (kill -9) in the second segment.
      l.ok("vgchange", "-an", "vg");
      let pid = 0;
      const r = await moveUntilSecondSegment(l, d0, d1, () => {
        const ps = l.run("pgrep", ["-f", `pvmove -i 1 ${d0} ${d1}`]).stdout.trim().split("\n").map(Number).filter((p) => p && p !== process.pid);
        pid = ps[0] ?? 0;
        if (pid) process.kill(pid, "SIGKILL");
      });
      assert.ok(r.fired && pid, r.stdout);
      assert.deepEqual(moveCheckpoints(l), [[4, 4], [4, 0]]);

      const act = l.ok(...how.split(" "));
      // lvm2's vgchange says so; lvchange only with -v.
      if (how.startsWith("vgchange")) assert.match(act, /^ {2}Background polling started for 1 logical volume\(s\) in volume group "vg"$/m);
      else l.ok("lvchange", "-ay", "--poll", "n", "vg/lv0");
      let left = "pvmove0";
      for (let i = 0; i < 600 && left.includes("pvmove0"); i++) {
        await new Promise((res) => setTimeout(res, 100));
        left = l.ok("lvs", "-a", "--noheadings", "-o", "lv_name", "vg");
      }
      assert.ok(!left.includes("pvmove0"), "the background poller finished the move");
      await checkMovedIntact(l, d0, d1, want);
    } finally {
      l.cleanup();
    }
  });
}
