/**
 * lvconvert --splitmirrors (--name | --trackchanges) and --mergemirrors /
 * --merge on raid1 LVs, differentially against the raid conversion oracle
 * (see raid1-convert-diff.test.ts): same exit codes, messages (prompts
 * answered "n" unless -y), layouts and seqnos; Debian's lvm vgck accepts
 * ulvm's final VG.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { raidConvOracleUnavailable } from "./lv-diff.js";
import { sameWithRaidConvOracle } from "./diff-assert.js";

const run = sameWithRaidConvOracle;

const skip = raidConvOracleUnavailable();

test("lvconvert --splitmirrors 1 --name on raid1: one image per call, PV lists, the last split leaves linear LVs", { skip }, () =>
  run(
    [64, 64, 64, 64],
    [
      ["lvcreate", "--type", "raid1", "-m3", "-l", "3", "-n", "r", "vg"],
      ["lvconvert", "--splitmirrors", "1", "vg/r"],
      ["lvconvert", "--splitmirrors", "2", "--name", "s", "vg/r"],
      ["lvconvert", "--splitmirrors", "4", "--name", "s", "vg/r"],
      ["lvconvert", "--splitmirrors", "1", "--name", "r", "vg/r"],
      ["lvconvert", "--splitmirrors", "1", "--name", "s", "vg/r"],
      ["lvconvert", "--splitmirrors", "1", "-n", "t", "vg/r", "%d0"],
      ["lvconvert", "--splitmirrors", "1", "--name", "u", "vg/r", "%d1"],
      ["lvconvert", "-y", "--splitmirrors", "1", "--name", "u", "vg/r", "%d1"],
    ],
  ));

test("lvconvert --splitmirrors 1 --trackchanges, then --mergemirrors / --merge, and what is refused meanwhile", { skip }, () =>
  run(
    [64, 64, 64, 64],
    [
      ["lvcreate", "--type", "raid1", "-m2", "-l", "3", "-n", "r", "vg"],
      ["lvcreate", "-l", "1", "-n", "lin", "vg"],
      ["lvconvert", "--splitmirrors", "2", "--trackchanges", "vg/r"],
      ["lvconvert", "--mergemirrors", "vg/lin"],
      ["lvconvert", "--mergemirrors", "vg/r"],
      ["lvconvert", "--mergemirrors", "vg/r_rimage_1"],
      ["lvconvert", "--splitmirrors", "1", "--trackchanges", "vg/r"],
      ["lvconvert", "--splitmirrors", "1", "--trackchanges", "vg/r"],
      ["lvconvert", "-y", "-m+1", "vg/r"],
      ["lvconvert", "-y", "--type", "mirror", "vg/r"],
      ["lvconvert", "-y", "-m1", "vg/r_rimage_2"],
      ["lvconvert", "--mergemirrors", "vg/r_rimage_2"],
      ["lvconvert", "--splitmirrors", "1", "--trackchanges", "vg/r", "%d0"],
      ["lvconvert", "--merge", "vg/r_rimage_0"],
      ["lvconvert", "--splitmirrors", "1", "--trackchanges", "vg/r", "%d1"],
      ["lvconvert", "--splitmirrors", "1", "--name", "x", "vg/r", "%d2"],
      ["lvconvert", "--splitmirrors", "1", "--name", "x", "vg/r", "%d1"],
      ["lvconvert", "--splitmirrors", "1", "--trackchanges", "vg/r"],
      ["lvconvert", "-y", "--splitmirrors", "1", "--trackchanges", "vg/r"],
      ["lvconvert", "--merge", "vg/r_rimage_1"],
    ],
  ));
