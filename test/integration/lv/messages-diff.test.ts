/**
 * Fixed command lists run in both worlds (lvm2 on loops, ulvm on files):
 * every step must give the same exit code, the same stdout and stderr (after
 * device names are mapped back and lvm2's activation-disabled chatter is
 * dropped) and the same layout. Most steps are mistakes on purpose: bad
 * values, bad names, impossible sizes, wrong LVs, options a form does not
 * take. "%d1" stands for the second disk of each world.
 */
import { test } from "node:test";
import { lvmUnavailable } from "../../helpers/lab.js";
import { DiffLab, oracleUnavailable } from "./lv-diff.js";
import { same } from "./diff-assert.js";

async function run(sizes: number[], steps: string[][], opts: { oracle?: boolean } = {}): Promise<void> {
  const lab = new DiffLab(sizes, opts);
  try {
    lab.setupVg("vg", lab.names);
    for (const s of steps) await same(lab, "vg", s);
  } finally {
    lab.cleanup();
  }
}

const LVCREATE: string[][] = [
  ["lvcreate", "-L", "0", "vg"],
  ["lvcreate", "-L", "abc", "vg"],
  ["lvcreate", "vg"],
  ["lvcreate", "-L", "1g", "-n", "snapshot1", "vg"],
  ["lvcreate", "-L", "8m", "-n", "x_mlog", "vg"],
  ["lvcreate", "-L", "8m", "-n", "a", "vg"],
  ["lvcreate", "-L", "8m", "-n", "a", "vg"],
  ["lvcreate", "-L", "100g", "vg"],
  ["lvcreate", "-l", "100000", "vg"],
  ["lvcreate", "-L", "8m", "-i", "5", "vg"],
  ["lvcreate", "-L", "8m", "vg", "/dev/nonexist"],
  ["lvcreate", "-L", "8m", "vg", "%d0:800-900"],
  ["lvcreate", "-L", "8m", "vg", "%d0:5-2"],
  ["lvcreate", "-L", "8m", "-n", "a/b", "vg"],
  ["lvcreate", "-L", "8m", "-n", "-x", "vg"],
  ["lvcreate", "-L", "8m", "vg/foo"],
  ["lvcreate", "-L", "-1g", "vg"],
  ["lvcreate", "-l", "0", "vg"],
  ["lvcreate", "-L", "8m", "-C", "y", "-i2", "vg"],
  ["lvcreate", "-L", "8m", "--alloc", "foo", "vg"],
  ["lvcreate", "-L", "8m", "-C", "y", "--alloc", "normal", "vg"],
  ["lvcreate", "-L", "8m", "nosuchvg"],
  ["lvcreate", "-L", "8m", "-R", "1m", "vg"],
  ["lvcreate", "-l", "10%LV", "vg"],
  ["lvcreate", "-L", "8m", "-I", "3", "-i2", "vg"],
  ["lvcreate", "-L", "8m", "--mirrorlog", "core", "vg"],
  ["lvcreate", "-L", "8m", "-m1", "--type", "striped", "vg"],
  ["lvcreate", "-L", "1.5k", "vg"],
  ["lvcreate", "-L", "8m", "-n", "pvmove0", "vg"],
  ["lvcreate", "-L", "8m", "-n", ".", "vg"],
  ["lvcreate", "-L", "8m", "-n", "q", "-l", "4", "vg"],
  ["lvcreate", "-l", "3", "-n", "ab", "vg", "%d0:0-10:20-30"],
  ["lvcreate", "-l", "3", "-n", "ab2", "vg", "%d0:0-10", "%d0:5-30"],
  ["lvcreate", "-l", "+3", "vg"],
  ["lvcreate", "-l", "-10", "vg"],
  ["lvcreate", "-l", "10%FREE", "-n", "p1", "vg"],
  ["lvcreate", "-l", "10%VG", "-n", "p2", "vg"],
  ["lvcreate", "-l", "5%PVS", "-n", "p3", "vg", "%d1", "%d2"],
  ["lvcreate", "-L", "8m", "--type", "foo", "vg"],
  ["lvcreate", "-L", "8m", "--type", "linear", "-i2", "vg"],
  ["lvcreate", "-L", "8m", "-i", "0", "vg"],
  ["lvcreate", "-L", "8m", "-i", "200", "vg"],
  ["lvcreate", "-L", "8m", "-I", "64", "vg"],
  ["lvcreate", "-L", "8m", "-r", "7", "-n", "ra1", "vg"],
  ["lvcreate", "-L", "8m", "-r", "auto", "-n", "ra2", "vg"],
  ["lvcreate", "-L", "8m", "-r", "none", "-n", "ra3", "vg"],
  ["lvcreate", "-L", "8m", "-p", "r", "-n", "ro1", "vg"],
  ["lvcreate", "-L", "8m", "-p", "x", "vg"],
  ["lvcreate", "-L", "8m", "-a", "x", "vg"],
  ["lvcreate", "-L", "8m", "-Z", "x", "vg"],
  ["lvcreate", "-L", "8m", "--addtag", "@@bad", "vg"],
  ["lvcreate", "-L", "8m", "--addtag", "good", "-n", "tg", "vg"],
  ["lvcreate", "-L", "8m", "-an", "-Zy", "vg"],
  ["lvcreate", "-L", "8m", "-an", "-n", "inact", "vg"],
  ["lvcreate", "-L", "8m", "--nosync", "vg"],
  ["lvcreate", "-L", "8m", "-i2", "-I", "64", "-n", "st", "vg"],
  ["lvcreate", "-L", "8m", "-i1", "-I", "64", "-n", "st1", "vg"],
  ["lvcreate", "-L", "8m", "-m0", "-n", "m0", "vg"],
  ["lvcreate", "-L", "8m", "--minor", "5", "-n", "mn", "vg"],
  ["lvcreate", "-L", "8m", "-My", "-n", "mn2", "vg"],
  ["lvcreate", "-L", "8m", "-Mn", "--minor", "3", "vg"],
  ["lvcreate", "-L", "8m", "-n", "wayyy", "--alloc", "anywhere", "vg"],
  ["lvcreate", "-L", "8m", "--setactivationskip", "y", "-n", "sk", "vg"]
];

const RESIZE_RENAME_REMOVE: string[][] = [
  ["lvcreate", "-l", "5", "-n", "a", "vg"],
  ["lvcreate", "-l", "5", "-n", "b", "vg"],
  ["lvcreate", "-i2", "-l", "6", "-n", "s", "vg"],
  ["lvextend", "-l", "+3", "vg/a"],
  ["lvextend", "-L", "+8m", "vg/b"],
  ["lvextend", "-l", "20", "vg/a"],
  ["lvextend", "-l", "+2", "vg/s"],
  ["lvextend", "-l", "+3", "vg/s"],
  ["lvextend", "-l", "-3", "vg/a"],
  ["lvreduce", "-l", "+3", "vg/a"],
  ["lvreduce", "-l", "-3", "vg/a"],
  ["lvreduce", "-l", "-3", "-f", "vg/a"],
  ["lvreduce", "-L", "-5m", "vg/b"],
  ["lvresize", "-l", "4", "vg/b"],
  ["lvresize", "-l", "4", "vg/b"],
  ["lvresize", "-L", "+1m", "vg/b"],
  ["lvextend", "vg/a"],
  ["lvextend", "-l", "+2", "vg/nosuch"],
  ["lvextend", "-l", "+2", "nosuch/a"],
  ["lvextend", "-l", "+2"],
  ["lvextend", "-l", "+2", "a"],
  ["lvextend", "-l", "+1", "vg/a", "%d3"],
  ["lvextend", "vg/a", "%d3:5-7"],
  ["lvextend", "-l", "+10%FREE", "vg/a"],
  ["lvextend", "-l", "50%VG", "vg/b"],
  ["lvreduce", "-l", "50%LV", "vg/b"],
  ["lvreduce", "-l", "-100%LV", "vg/b"],
  ["lvextend", "-l", "+0", "vg/a"],
  ["lvextend", "-L", "0", "vg/a"],
  ["lvextend", "-r", "-l", "+1", "vg/a"],
  ["lvextend", "-i", "3", "-l", "+3", "vg/a"],
  ["lvextend", "-i", "3", "-I", "8", "-l", "+3", "vg/a"],
  ["lvreduce", "-i", "2", "-l", "-1", "vg/a"],
  ["lvextend", "-m", "1", "-l", "+1", "vg/a"],
  ["lvextend", "--type", "mirror", "-l", "+1", "vg/a"],
  ["lvextend", "-l", "+1000", "vg/a"],
  ["lvextend", "-l", "+1", "-C", "y", "vg/a"],
  ["lvextend", "-l", "+1", "--alloc", "contiguous", "vg/a"],
  ["lvextend", "-l", "+1", "--alloc", "anywhere", "vg/a"],
  ["lvreduce", "-l", "-1", "vg/s"],
  ["lvresize", "-l", "-2", "vg/s"],
  ["lvrename", "vg", "a", "a2"],
  ["lvrename", "vg/a2", "vg/a3"],
  ["lvrename", "vg/a3", "a4"],
  ["lvrename", "vg", "a4"],
  ["lvrename", "vg", "a4", "b"],
  ["lvrename", "vg", "nosuch", "zz"],
  ["lvrename", "vg", "a4", "x_mimage"],
  ["lvrename", "vg/a4", "other/zz"],
  ["lvrename", "vg", "a4", "a4"],
  ["lvremove", "vg/nosuch"],
  ["lvremove"],
  ["lvremove", "vg/a4", "vg/nosuch"],
  ["lvremove", "-f", "vg/b"],
  ["lvremove", "vg"]
];

const TAGS_TESTMODE_STRIPES: string[][] = [
  ["lvcreate", "-l", "5", "-n", "a", "--addtag", "t1", "vg"],
  ["lvcreate", "-l", "5", "-n", "b", "--addtag", "t2", "vg"],
  ["lvcreate", "-l", "5", "-n", "c", "--addtag", "t1", "vg"],
  ["lvremove", "-f", "@t1"],
  ["lvcreate", "-t", "-l", "5", "-n", "tt", "vg"],
  ["lvextend", "-t", "-l", "+5", "vg/b"],
  ["lvremove", "-t", "-f", "vg/b"],
  ["lvrename", "-t", "vg", "b", "bb"],
  ["lvcreate", "-l", "2", "-n", "x", "vg", "%d3"],
  ["lvcreate", "-l", "2", "-n", "y", "vg", "@nosuchtag"],
  ["lvextend", "-l", "+2", "vg/x", "%d3:0-1"],
  ["lvcreate", "-l", "3", "-n", "z", "--type", "striped", "vg"],
  ["lvcreate", "-l", "4", "-i", "2", "--type", "striped", "-n", "zz", "vg"],
  ["lvextend", "-L", "+3m", "vg/zz"],
  ["lvreduce", "-L", "-3m", "vg/zz"],
  ["lvextend", "-l", "+1", "-i", "1", "vg/zz"],
  ["lvresize", "-l", "+100%FREE", "vg/zz"],
  ["lvresize", "-l", "-1", "vg/zz"],
  ["lvremove", "vg"]
];

const MIRRORS: string[][] = [
  ["lvcreate", "--type", "mirror", "-m1", "-l", "5", "-n", "m1", "vg"],
  ["lvcreate", "--type", "mirror", "-m2", "-l", "3", "-n", "m2", "vg"],
  ["lvcreate", "--type", "mirror", "-m1", "--mirrorlog", "core", "-l", "4", "-n", "mc", "vg"],
  ["lvcreate", "--type", "mirror", "-m1", "--corelog", "-l", "4", "-n", "mc2", "vg"],
  ["lvcreate", "--type", "mirror", "-m1", "-l", "4", "-n", "mn", "--nosync", "vg"],
  ["lvcreate", "--type", "mirror", "-m1", "-l", "4", "-n", "mr", "-R", "512k", "vg"],
  ["lvcreate", "--type", "mirror", "-m1", "-l", "1", "-n", "mtiny", "vg"],
  ["lvcreate", "--type", "mirror", "-m1", "-i", "2", "-l", "4", "-n", "mstr", "vg"],
  ["lvcreate", "--type", "mirror", "-m1", "-l", "4", "-n", "mpv", "vg", "%d4", "%d3", "%d0"],
  ["lvcreate", "--type", "mirror", "-m1", "-l", "4", "-n", "mpv2", "vg", "%d4", "%d3"],
  ["lvcreate", "--type", "mirror", "-m1", "-l", "4", "-n", "mpv1", "vg", "%d4"],
  ["lvcreate", "--type", "mirror", "-m4", "-l", "4", "-n", "m5", "vg"],
  ["lvcreate", "--type", "mirror", "-m5", "-l", "4", "-n", "m6", "vg"],
  ["lvextend", "-l", "+2", "vg/m1"],
  ["lvextend", "-L", "+8m", "vg/m2"],
  ["lvreduce", "-l", "-2", "vg/m1"],
  ["lvextend", "-l", "+2", "vg/mstr"],
  ["lvextend", "-l", "+1", "vg/mn"],
  ["lvrename", "vg", "m1", "mm1"],
  ["lvremove", "vg/mm1_mimage_0"],
  ["lvremove", "vg/mm1_mlog"],
  ["lvrename", "vg", "mm1_mlog", "zz"],
  ["lvextend", "-l", "+1", "vg/mm1_mimage_0"],
  ["lvremove", "-f", "vg/mm1"],
  ["lvcreate", "--type", "mirror", "-m1", "-l", "100%FREE", "-n", "mall", "vg"]
];

const MIRROR_LIMITS: string[][] = [
  ["lvcreate", "--type", "mirror", "-m2", "-l", "2", "-n", "three", "vg"],
  ["lvcreate", "--type", "mirror", "-m1", "--mirrorlog", "mirrored", "-l", "2", "-n", "mm", "vg"],
  ["lvcreate", "--type", "mirror", "-m1", "-l", "2", "-n", "ok", "vg"],
  ["lvextend", "--nosync", "-l", "+1", "vg/ok"],
  ["lvextend", "-l", "+1", "-m", "1", "vg/ok"],
  ["lvextend", "-l", "+1", "-m", "2", "vg/ok"],
  ["lvreduce", "-f", "-l", "-10%VG", "vg/ok"],
  ["lvresize", "-l", "+10%VG", "vg/ok"],
  ["lvresize", "-l", "50%FREE", "vg/ok"],
  ["lvcreate", "--type", "mirror", "-m1", "-l", "100%FREE", "-n", "all", "vg"],
  ["lvcreate", "--type", "mirror", "-m1", "-l", "1", "-n", "nolog", "vg"]
];

const SIZES_AT_THE_LIMITS: string[][] = [
  ["lvcreate", "-L", "16e", "vg"],
  ["lvcreate", "-L", "1e", "vg"],
  ["lvcreate", "-L", "20000t", "vg"],
  ["lvcreate", "-l", "4294967295", "vg"],
  ["lvcreate", "-l", "4294967296", "vg"],
  ["lvcreate", "-l", "99999999999999999999", "vg"],
  ["lvcreate", "-L", "0.001", "vg"],
  ["lvcreate", "-L", "1b", "vg"],
  ["lvcreate", "-L", "512b", "vg"],
  ["lvcreate", "-L", "1.5", "-n", "x", "vg"],
  ["lvcreate", "-L", "3s", "-n", "y", "vg"],
  ["lvcreate", "-l", "1", "-n", "z", "vg"],
  ["lvextend", "-L", "+16e", "vg/z"],
  ["lvextend", "-l", "+4294967290", "vg/z"],
  ["lvextend", "-L", "1e", "vg/z"],
  ["lvcreate", "-l", "200%FREE", "-n", "q", "vg"],
  ["lvcreate", "-l", "0%FREE", "-n", "q", "vg"],
  ["lvcreate", "-l", "1%FREE", "-n", "q", "vg"],
  ["lvcreate", "-L", "1g", "-l", "5", "vg"],
  ["lvcreate", "-l", "5", "-i", "2", "-I", "1m", "-n", "big", "vg"],
  ["lvcreate", "-l", "5", "-i", "2", "-I", "8m", "-n", "big2", "vg"],
  ["lvcreate", "-l", "5", "-i", "2", "-I", "4096m", "-n", "big3", "vg"],
  ["lvcreate", "-l", "5", "-i", "2", "-I", "3k", "-n", "big4", "vg"]
];

test("lvcreate: options, names, sizes, PV lists and their errors", { skip: lvmUnavailable() }, () => run([64, 96, 128, 64], LVCREATE));
test("lvextend, lvreduce, lvresize, lvrename, lvremove and their errors", { skip: lvmUnavailable() }, () => run([64, 96, 128, 64], RESIZE_RENAME_REMOVE));
test("tags, test mode, explicit striped type, resizing stripes", { skip: lvmUnavailable() }, () => run([64, 96, 128, 64], TAGS_TESTMODE_STRIPES));
test("mirrors: logs, core logs, --nosync, region sizes, PV lists, extend/reduce/rename/remove", { skip: oracleUnavailable() }, () =>
  run([64, 96, 128, 64, 80], MIRRORS, { oracle: true }));
test("mirrors at their limits: too few PVs, deprecated logs, prompts, 100% FREE", { skip: oracleUnavailable() }, () => run([81, 81], MIRROR_LIMITS, { oracle: true }));
test("absurd sizes, percentages and stripe sizes", { skip: lvmUnavailable() }, () => run([64, 64], SIZES_AT_THE_LIMITS));
