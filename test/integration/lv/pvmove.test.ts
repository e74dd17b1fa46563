import { test } from "node:test";
import assert from "node:assert/strict";
import { openSync, readSync, writeSync, closeSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { Lab, ULVM_BIN, lvmUnavailable, which, type RunResult } from "../../helpers/lab.js";
import { ulvmAsync } from "../../helpers/run-async.js";
import { readLvFromPvs, writeLvToPvs } from "../../helpers/lv-bytes.js";
import { lv0SplitByLv1 } from "../../helpers/pvmove-layout.js";

/**
 * pvmove of inactive LVs (the copy runs in the command, through an
 * in-process mapper): data identical after, checkpoints, --abort, lvm2's
 * messages for bad input; Debian's lvm reads the metadata ulvm writes while
 * a move runs and after it (when loop devices are available).
 */
const MiB = 1024 * 1024;

function peStartBytes(lab: Lab, disk: string): number {
  return Number(lab.ok("pvs", "--noheadings", "--nosuffix", "--units", "b", "-o", "pe_start", disk).trim());
}

/** The LV's devices as lvs prints them: [[path, pe], ...]. */
function devices(lab: Lab, lv: string): Array<[string, number]> {
  const s = lab.ok("lvs", "--noheadings", "-a", "-o", "devices", lv).trim();
  return s.split(",").map((d) => {
    const m = /^(.*)\((\d+)\)$/.exec(d.trim())!;
    return [m[1]!, Number(m[2])];
  });
}

function pwrite(path: string, off: number, data: Buffer): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, data, 0, data.length, off);
  } finally {
    closeSync(fd);
  }
}

function pread(path: string, off: number, len: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(len);
    readSync(fd, b, 0, len, off);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** A VG of 3 disks with an inactive linear LV of `extents` 4 MiB extents on d0, filled with random data. */
function setup(lab: Lab, extents: number): { d0: string; d1: string; d2: string; data: Buffer } {
  const d0 = lab.addDisk("d0", 32);
  const d1 = lab.addDisk("d1", 32);
  const d2 = lab.addDisk("d2", 32);
  lab.ok("vgcreate", "-q", "vg", d0, d1, d2);
  lab.ok("lvcreate", "-q", "-an", "-Zn", "-n", "lv0", "-l", String(extents), "vg", d0);
  const data = randomBytes(extents * 4 * MiB);
  pwrite(d0, peStartBytes(lab, d0), data);
  return { d0, d1, d2, data };
}

function lvData(lab: Lab, lv: string, len: number): Buffer {
  const [[path, pe]] = devices(lab, lv) as [[string, number]];
  return pread(path, peStartBytes(lab, path) + pe * 4 * MiB, len);
}

test("pvmove of an inactive linear LV: the data moves intact, lvm2's progress lines, nothing left on the source", async () => {
  const lab = new Lab("ulvm-pvmove-");
  try {
    const { d0, d1, data } = setup(lab, 3);
    const r = lab.ulvm("pvmove", "-i", "1", d0, d1);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^  ${d0.replace(/[/.]/g, "\\$&")}: Moved: 100\\.00%$`, "m"));
    assert.deepEqual(devices(lab, "vg/lv0"), [[d1, 0]]);
    assert.ok(!lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name", "vg").includes("pvmove"), "pvmove0 is gone");
    assert.ok(lvData(lab, "vg/lv0", data.length).equals(data), "the LV's data is on d1, byte for byte");
    lab.ok("vgck", "vg");
    const why = lvmUnavailable();
    if (why) return;
    const loops = lab.attachLoops({ readOnlyView: true });
    const out = lab.lvmOk("lvs", "-a", "--noheadings", "-o", "lv_name,devices", "vg");
    assert.match(out, new RegExp(`lv0\\s+${loops.get("d1")}\\(0\\)`), out);
    lab.lvmOk("vgck", "vg");
  } finally {
    lab.cleanup();
  }
});

test("pvmove refuses bad input with lvm2's messages and changes nothing", () => {
  const lab = new Lab("ulvm-pvmove-");
  try {
    const { d0, d1, d2 } = setup(lab, 3);
    const before = lab.ok("vgs", "--noheadings", "-o", "vg_seqno", "vg");
    const cases: Array<[string[], string]> = [
      [["pvmove", d2], "No data to move for vg."],
      [["pvmove", `${lab.dir}/disks/nope`], `Failed to find physical volume "${lab.dir}/disks/nope".`],
      [["pvmove", `${d0}:100-200`], "PE range error: start extent 100 to end extent 200."],
      [["pvmove", d0, `${lab.dir}/disks/nope`], `Physical Volume "${lab.dir}/disks/nope" not found in Volume Group "vg".`],
      [["pvmove", "-n", "bogus", d0], "Logical volume bogus not found."],
      [["pvmove", d0, d0], "No extents available for allocation."],
    ];
    for (const [args, msg] of cases) {
      const r = lab.ulvm(...args);
      assert.equal(r.code, 5, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`  ${msg}`), `${args.join(" ")}: ${r.stderr}`);
      assert.ok(!r.stderr.includes("    at "), "no stack trace");
    }
    // lvm2 takes an --abort with nothing to abort as a notice, not a failure.
    const abort = lab.ulvm("pvmove", "--abort", d0);
    assert.equal(abort.code, 0, abort.stderr);
    assert.equal(abort.stdout, `  ${d0}: No pvmove in progress - already finished or aborted.\n`);
    assert.equal(lab.ok("vgs", "--noheadings", "-o", "vg_seqno", "vg"), before, "no metadata change");
    void d1;
  } finally {
    lab.cleanup();
  }
});

/** `lvs -a` rows as token lists, with each disk's path (file or loop) replaced by its name. */
function rows(out: string, paths: Map<string, string>): string[][] {
  let s = out;
  for (const [name, p] of paths) s = s.split(p).join(name);
  return s
    .trim()
    .split("\n")
    .map((r) => r.trim().split(/\s+/))
    .sort((a, b) => a.join(" ").localeCompare(b.join(" ")));
}

test("pvmove throttled by mirror_resync_rate: lvs -a mid-move as lvm2's, --abort keeps each segment wholly on one side, data intact", async () => {
  const lab = new Lab("ulvm-pvmove-");
  try {
    // 2 MiB/s: each 16 MiB segment copies in 8 MiB batches with a 4 s pause between them.
    lab.writeConfig(`devices {\n\tscan = [ "${lab.dir}/disks" ]\n}\nactivation {\n\tmirror_resync_rate = 2048\n}\n`);
    const d0 = lab.addDisk("d0", 64);
    const d1 = lab.addDisk("d1", 64);
    lab.ok("vgcreate", "-q", "vg", d0, d1);
    // pvmove0 gets 3 segments (lv0 0-3, lv0 4-7, lv1 0-1).
    lv0SplitByLv1(lab, d0);
    const want = { lv0: randomBytes(32 * MiB), lv1: randomBytes(8 * MiB) };
    writeLvToPvs(lab, "vg/lv0", want.lv0);
    writeLvToPvs(lab, "vg/lv1", want.lv1);

    // Debian's lvm reads the same metadata mid-move through read-only loops.
    const loops = lvmUnavailable() ? undefined : lab.attachLoops({ readOnlyView: true });
    let midLvs = "";
    let midLvm = "";
    let aborted: Promise<RunResult> | undefined;
    const move = ulvmAsync(lab, ["pvmove", "-i", "1", d0, d1], (out) => {
      // Past 40%: the first segment (4 of 10 extents) is checkpointed and the second is copying.
      const last = [...out.matchAll(/Moved: (\d+\.\d\d)%/g)].pop();
      if (aborted || !last || Number(last[1]) <= 40 || Number(last[1]) >= 100) return;
      midLvs = lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name,lv_attr,move_pv,devices", "vg");
      if (loops) midLvm = lab.lvmOk("lvs", "-a", "--noheadings", "-o", "lv_name,lv_attr,move_pv,devices", "vg");
      aborted = ulvmAsync(lab, ["pvmove", "--abort", d0]);
    });
    const r = await move;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(aborted, `the move was seen past 40%: ${r.stdout}`);
    const a = await aborted;
    assert.equal(a.code, 0, a.stderr);

    // Mid-move, as lvm2 shows an inactive move (ulvm's copy runs in the pvmove command, not in the daemon).
    const mid = rows(midLvs, new Map([["d0", d0], ["d1", d1]]));
    assert.deepEqual(
      mid,
      [
        ["[pvmove0]", "p-C---m---", "d0", "d0(0),d1(0)"],
        ["[pvmove0]", "p-C---m---", "d0", "d0(4),d1(8)"],
        ["[pvmove0]", "p-C---m---", "d0", "d0(6),d1(4)"],
        ["lv0", "-wI-------", "pvmove0(0)"],
        // Debian's lvm2 prints extent 0 for every area over pvmove0.
        ["lv0", "-wI-------", "pvmove0(0)"],
        ["lv1", "-wI-------", "pvmove0(0)"],
      ].sort((x, y) => x.join(" ").localeCompare(y.join(" "))),
      midLvs,
    );
    // lvm2 with activation disabled shows X for the states it cannot know.
    if (loops) assert.deepEqual(rows(midLvm.replace(/X/g, "-"), new Map([["d0", loops.get("d0")!], ["d1", loops.get("d1")!]])), mid, midLvm);

    // After the abort: lv0's first segment moved, the rest back on (still on) d0.
    assert.ok(!lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name", "vg").includes("pvmove"), "pvmove0 is gone");
    const segs = lab.ok("lvs", "--noheadings", "--segments", "-o", "lv_name,seg_pe_ranges", "vg");
    assert.deepEqual(rows(segs, new Map([["d0", d0], ["d1", d1]])), [["lv0", "d0:6-9"], ["lv0", "d1:0-3"], ["lv1", "d0:4-5"]].sort((x, y) => x.join(" ").localeCompare(y.join(" "))), segs);
    assert.ok(readLvFromPvs(lab, "vg/lv0").equals(want.lv0), "lv0 intact");
    assert.ok(readLvFromPvs(lab, "vg/lv1").equals(want.lv1), "lv1 intact");
    lab.ok("vgck", "vg");
    if (loops) lab.lvmOk("vgck", "vg");
  } finally {
    lab.cleanup();
  }
});

test("pvmove -b: two moves from different PVs run at once in the background and both finish, data intact", async () => {
  const lab = new Lab("ulvm-pvmove-");
  try {
    // Throttled so that both moves are still running when the second one starts.
    lab.writeConfig(`devices {\n\tscan = [ "${lab.dir}/disks" ]\n}\nactivation {\n\tmirror_resync_rate = 4096\n}\n`);
    const d = ["d0", "d1", "d2", "d3"].map((n) => lab.addDisk(n, 32));
    lab.ok("vgcreate", "-q", "vg", ...d);
    lab.ok("lvcreate", "-q", "-an", "-Zn", "-n", "lvA", "-l", "4", "vg", d[0]!);
    lab.ok("lvcreate", "-q", "-an", "-Zn", "-n", "lvB", "-l", "4", "vg", d[1]!);
    const want = { lvA: randomBytes(16 * MiB), lvB: randomBytes(16 * MiB) };
    writeLvToPvs(lab, "vg/lvA", want.lvA);
    writeLvToPvs(lab, "vg/lvB", want.lvB);
    const a = lab.ulvm("pvmove", "-b", d[0]!, d[2]!);
    assert.equal(a.code, 0, a.stderr);
    const b = lab.ulvm("pvmove", "-b", d[1]!, d[3]!);
    assert.equal(b.code, 0, b.stderr);
    const moving = lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name,move_pv", "vg");
    assert.match(moving, new RegExp(`\\[pvmove0\\]\\s+${d[0]!.replace(/[/.]/g, "\\$&")}\\s`), moving);
    assert.match(moving, new RegExp(`\\[pvmove1\\]\\s+${d[1]!.replace(/[/.]/g, "\\$&")}\\s`), moving);
    // A third move of a PV already moving: lvm2's message, nothing started.
    const again = lab.ulvm("pvmove", "-b", d[0]!, d[3]!);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Detected pvmove in progress for .*d0\./);
    assert.match(again.stderr, /WARNING: Ignoring remaining command line arguments\./);
    let left = "pvmove";
    for (let i = 0; i < 600 && left.includes("pvmove"); i++) {
      await new Promise((res) => setTimeout(res, 100));
      left = lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name", "vg");
    }
    assert.ok(!left.includes("pvmove"), `both background moves finished: ${left}`);
    const segs = lab.ok("lvs", "--noheadings", "--segments", "-o", "lv_name,seg_pe_ranges", "vg");
    assert.deepEqual(rows(segs, new Map(["d0", "d1", "d2", "d3"].map((n, i) => [n, d[i]!]))), [["lvA", "d2:0-3"], ["lvB", "d3:0-3"]], segs);
    assert.ok(readLvFromPvs(lab, "vg/lvA").equals(want.lvA), "lvA intact");
    assert.ok(readLvFromPvs(lab, "vg/lvB").equals(want.lvB), "lvB intact");
    lab.ok("vgck", "vg");
  } finally {
    lab.cleanup();
  }
});

test("pvmove on a terminal: a progress bar with the rate and the ETA, then lvm2's last line", { skip: which("script") ? undefined : "script (util-linux) not installed" }, () => {
  const lab = new Lab("ulvm-pvmove-");
  try {
    lab.writeConfig(`devices {\n\tscan = [ "${lab.dir}/disks" ]\n}\nactivation {\n\tmirror_resync_rate = 4096\n}\n`);
    const { d0, d1, data } = setup(lab, 4);
    // script(1) gives the command a pseudo-terminal as its stdout.
    const r = lab.run("script", ["-qec", `${process.execPath} ${ULVM_BIN} pvmove -i 1 ${d0} ${d1}`, "/dev/null"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /\r {2}\S+d0: \[[=>.]{20}\] +\d+\.\d\d% +(-|[\d.]+ [KMG]iB\/s) +ETA (\d+:\d\d|--:--)/, JSON.stringify(r.stdout));
    assert.match(r.stdout, /\[={20}\] 100\.00%/);
    assert.match(r.stdout, /\n {2}\S+d0: Moved: 100\.00%\r?\n$/);
    assert.ok(!/Moved: [0-9.]+%\r?\n.*Moved: /s.test(r.stdout), "no periodic lines on a terminal");
    assert.ok(lvData(lab, "vg/lv0", data.length).equals(data));
  } finally {
    lab.cleanup();
  }
});

/**
 * The rest of issue 16's bad input, with the lines and exit codes Debian's
 * lvm 2.03.16 prints for the same VGs on loop devices (checked by hand:
 * lvm2 gets that far with activation disabled): no room anywhere, a named
 * destination that is full, a VG with a PV missing (lvm2 does not find the
 * PV to move then: exit 3), a second move of a PV already moving. The
 * metadata is the same afterwards (seqno).
 */
test("pvmove refuses no free space, a VG with a missing PV and a second move of a moving PV; nothing changes", () => {
  const lab = new Lab("ulvm-pvmove-");
  try {
    lab.writeConfig(`devices {\n\tscan = [ "${lab.dir}/disks" ]\n}\nactivation {\n\tmirror_resync_rate = 4096\n}\n`);
    const d = ["d0", "d1", "d2"].map((n) => lab.addDisk(n, 32));
    lab.ok("vgcreate", "-q", "vg", d[0]!, d[1]!);
    lab.ok("lvcreate", "-q", "-an", "-Zn", "-n", "a", "-l", "5", "vg", d[0]!);
    lab.ok("lvcreate", "-q", "-an", "-Zn", "-n", "b", "-l", "6", "vg", d[1]!);
    const seqno = (): string => lab.ok("vgs", "--noheadings", "-o", "vg_seqno", "vg").trim();
    const refused = (args: string[], code: number, stderr: string): void => {
      const before = seqno();
      const r = lab.ulvm(...args);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr, stderr, args.join(" "));
      assert.equal(seqno(), before, `${args.join(" ")}: no metadata change`);
    };
    // d1 has 1 free extent, a needs 5.
    const noRoom = "  Insufficient free space: 5 extents needed, but only 1 available\n  Unable to allocate mirror extents for vg/pvmove0.\n  Failed to convert pvmove LV to mirrored.\n";
    refused(["pvmove", d[0]!], 5, noRoom);
    refused(["pvmove", d[0]!, d[1]!], 5, noRoom);
    // d1 full: as a named destination, and as the only other PV.
    lab.ok("lvcreate", "-q", "-an", "-Zn", "-n", "c", "-l", "1", "vg", d[1]!);
    refused(["pvmove", d[0]!, d[1]!], 5, `  WARNING: No free extents on physical volume "${d[1]}".\n  No specified PVs have space available.\n`);
    refused(["pvmove", d[0]!], 5, "  No extents available for allocation.\n");

    // A second move of a PV already moving: lvm2 polls the first one, starts nothing.
    lab.ok("vgextend", "vg", d[2]!);
    const first = lab.ulvm("pvmove", "-b", d[0]!, d[2]!);
    assert.equal(first.code, 0, first.stderr);
    const second = lab.ulvm("pvmove", "-b", "-n", "a", d[0]!, d[2]!);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, `  Detected pvmove in progress for ${d[0]}.\n`);
    assert.equal(second.stderr, "  WARNING: Ignoring remaining command line arguments.\n");
    assert.equal(lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name", "vg").match(/pvmove/g)?.length, 1, "one move");
    // Let it finish (the finish is the background poller's) before a PV goes missing.
    lab.ulvm("pvmove", "-i", "0");
    assert.ok(!lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name", "vg").includes("pvmove"));

    // d1 goes missing: the VG cannot change, so lvm2 does not find the PV to move.
    rmSync(d[1]!);
    const missing = lab.ulvm("pvmove", d[2]!);
    assert.equal(missing.code, 3, missing.stderr);
    assert.match(missing.stderr, /^ {2}WARNING: Couldn't find device with uuid [\w-]{38}\.\n/);
    assert.ok(
      missing.stderr.endsWith(
        `  Cannot change VG vg while PVs are missing.\n  See vgreduce --removemissing and vgextend --restoremissing.\n  Cannot process volume group vg\n  Failed to find physical volume "${d[2]}".\n  Run \`pvmove --help' for more information.\n`,
      ),
      missing.stderr,
    );
  } finally {
    lab.cleanup();
  }
});

test("an activation while a pvmove process copies offline is refused (never two writers of the destination); the move finishes, data intact", async () => {
  const lab = new Lab("ulvm-pvmove-");
  try {
    lab.writeConfig(`devices {\n\tscan = [ "${lab.dir}/disks" ]\n}\nactivation {\n\tdevice_path = 0\n\tmirror_resync_rate = 2048\n}\n`);
    const d = ["d0", "d1"].map((n) => lab.addDisk(n, 32));
    lab.ok("vgcreate", "-q", "vg", ...d);
    lab.ok("lvcreate", "-q", "-an", "-Zn", "-n", "lv0", "-l", "4", "vg", d[0]!);
    const want = randomBytes(16 * MiB);
    writeLvToPvs(lab, "vg/lv0", want);
    let act: RunResult | undefined;
    const move = await ulvmAsync(lab, ["pvmove", "-i", "1", d[0]!, d[1]!], (out) => {
      if (!act && /Moved: (?!100\.00)/.test(out)) act = lab.ulvm("lvchange", "-ay", "vg/lv0");
    });
    assert.equal(move.code, 0, move.stderr);
    assert.ok(act, move.stdout);
    assert.equal(act.code, 5, act.stderr);
    assert.match(act.stderr, /^ {2}Cannot activate vg\/lv0 while a pvmove process copies pvmove0 without the daemon\. Try again when the move is done, or after pvmove --abort\.\n$/);
    assert.match(lab.ok("lvs", "--noheadings", "-o", "lv_attr", "vg/lv0"), /-wi-------/, "not active");
    assert.ok(readLvFromPvs(lab, "vg/lv0").equals(want), "lv0 on d1, intact");
    assert.match(lab.ok("lvs", "--noheadings", "-o", "devices", "vg/lv0"), /d1\(0\)/);
  } finally {
    lab.cleanup();
  }
});
