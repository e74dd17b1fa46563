/**
 * lvconvert on raid1 LVs, differentially: the raid conversion oracle (lvm2
 * 2.03.16 with the mirror oracle's guards and the "must be active" / in-sync
 * guards of raid conversions relaxed: build-lvm-oracle-raidconv.sh) and ulvm
 * on disks of the same sizes; every step must give the same exit code, the
 * same messages (prompts answered "n" unless -y) and the same layout, seqno
 * included. Debian's real lvm then checks the final VG (vgck).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { DiffLab, RAIDCONV_ORACLE, raidConvOracleUnavailable } from "./lv-diff.js";
import { same, sameWithRaidConvOracle } from "./diff-assert.js";

const RAID1_DEFAULT = '\tmirror_segtype_default = "raid1"\n';

const run = sameWithRaidConvOracle;

const skip = raidConvOracleUnavailable();

test("lvconvert -m on raid1: add and remove images, prompts, PV lists, back to linear", { skip }, () =>
  run(
    [64, 64, 64, 64, 64],
    [
      ["lvcreate", "--type", "raid1", "-m1", "-l", "3", "-n", "r", "vg"],
      ["lvconvert", "-m2", "vg/r"],
      ["lvconvert", "-y", "-m2", "vg/r"],
      ["lvconvert", "-y", "-m+1", "vg/r", "%d4"],
      ["lvconvert", "-y", "-m3", "vg/r"],
      ["lvconvert", "-m-1", "vg/r"],
      ["lvconvert", "-y", "-m-2", "vg/r", "%d1", "%d0"],
      ["lvconvert", "-y", "-m0", "vg/r", "%d2", "%d3"],
      ["lvconvert", "-y", "-m-1", "vg/r", "%d2"],
      ["lvconvert", "-m0", "vg/r"],
      ["lvconvert", "-y", "-m0", "vg/r"],
      ["lvcreate", "--type", "raid1", "-m2", "-l", "2", "-n", "s", "vg"],
      ["lvconvert", "-y", "--type", "linear", "vg/s"],
      ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "--nosync", "-n", "ns", "vg"],
      ["lvconvert", "-y", "-m2", "vg/ns"],
      ["lvconvert", "-y", "-m0", "vg/ns"],
    ],
    { ulvmGlobal: RAID1_DEFAULT },
  ));

test("lvconvert -m1 --type raid1 on a linear LV, and -m1 with mirror_segtype_default raid1", { skip }, () =>
  run(
    [64, 64, 64, 48],
    [
      ["lvcreate", "-l", "3", "-n", "lin", "vg"],
      ["lvconvert", "--type", "raid1", "-m1", "vg/lin"],
      ["lvconvert", "-y", "--type", "raid1", "-m1", "vg/lin"],
      ["lvcreate", "-l", "2", "-n", "two", "vg", "%d1"],
      ["lvextend", "-l", "+2", "vg/two", "%d2"],
      ["lvconvert", "-y", "-m2", "vg/two", "%d0", "%d3"],
      ["lvcreate", "-l", "5", "-n", "big", "vg", "%d3"],
      ["lvconvert", "-y", "-m1", "vg/big"],
      ["lvconvert", "-y", "-m0", "vg/big"],
    ],
    { ulvmGlobal: RAID1_DEFAULT },
  ));

test("lvconvert --type raid1 on mirrors (core and disk log) and --type mirror on raid1", { skip }, async () => {
  const lab = new DiffLab([64, 64, 64, 64], { oracle: true, oraclePath: RAIDCONV_ORACLE, ulvmGlobal: RAID1_DEFAULT });
  try {
    lab.setupVg("vg", lab.names);
    const steps: Array<[string, string[]]> = [
      ["n", ["lvcreate", "--type", "mirror", "-m2", "--mirrorlog", "core", "-l", "2", "-n", "c", "vg"]],
      ["n", ["lvconvert", "--type", "raid1", "vg/c"]],
      ["n", ["lvconvert", "-y", "--type", "raid1", "vg/c"]],
      ["n", ["lvcreate", "--type", "mirror", "-m1", "-l", "3", "-n", "m", "vg"]],
      ["y", ["lvconvert", "-y", "--type", "raid1", "vg/m"]],
      ["n", ["lvcreate", "--type", "raid1", "-m1", "-l", "2", "-n", "r", "vg"]],
      ["n", ["lvconvert", "--type", "mirror", "vg/r"]],
      ["n", ["lvconvert", "-y", "--type", "mirror", "vg/r"]],
      ["n", ["lvconvert", "-y", "--type", "mirror", "-m1", "vg/c"]],
      ["n", ["lvconvert", "-y", "--type", "mirror", "vg/m"]],
      ["n", ["lvconvert", "--type", "mirror", "vg/r"]],
    ];
    for (const [input, s] of steps) {
      lab.input = `${input}\n`;
      await same(lab, "vg", s);
    }
    lab.syncDisks("u");
    const r = lab.l.lvm("vgck", "vg");
    assert.equal(r.code, 0, `vgck: ${r.stdout}${r.stderr}`);
  } finally {
    lab.cleanup();
  }
});

test("lvchange on raid1: --writemostly PV[:y|n|t], --writebehind, --minrecoveryrate/--maxrecoveryrate, and their refusals", { skip }, () =>
  run(
    [64, 64, 64, 64],
    [
      ["lvcreate", "--type", "raid1", "-m2", "-l", "3", "-n", "r", "vg", "%d0", "%d1", "%d2"],
      ["lvcreate", "-l", "2", "-n", "lin", "vg", "%d3"],
      ["lvchange", "--writemostly", "%d1", "vg/r"],
      ["lvchange", "--writemostly", "%d2:y", "--writemostly", "%d1:t", "vg/r"],
      ["lvchange", "--writemostly", "%d2:n", "vg/r"],
      ["lvchange", "--writemostly", "%d0", "--writemostly", "%d1", "--writemostly", "%d2", "vg/r"],
      ["lvchange", "--writebehind", "512", "vg/r"],
      ["lvchange", "--maxrecoveryrate", "4m", "vg/r"],
      ["lvchange", "--minrecoveryrate", "100", "--maxrecoveryrate", "2m", "vg/r"],
      ["lvchange", "--minrecoveryrate", "8m", "vg/r"],
      ["lvchange", "--writemostly", "%d3", "vg/r"],
      ["lvchange", "--writebehind", "100", "vg/lin"],
      ["lvchange", "--maxrecoveryrate", "1m", "vg/lin"],
    ],
  ));
