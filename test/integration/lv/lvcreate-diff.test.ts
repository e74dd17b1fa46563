/**
 * lvcreate, differentially: each case runs the same commands with lvm2 (on
 * loop devices) and ulvm (on image files of the same sizes) and requires the
 * same exit code, the same messages and the same extents.
 */
import { test } from "node:test";
import { lvmUnavailable } from "../../helpers/lab.js";
import { DiffLab } from "./lv-diff.js";
import { same } from "./diff-assert.js";

const skip = lvmUnavailable();

async function withLab(sizes: number[], fn: (lab: DiffLab) => Promise<void>, opts: { oracle?: boolean } = {}): Promise<void> {
  const lab = new DiffLab(sizes, opts);
  try {
    await fn(lab);
  } finally {
    lab.cleanup();
  }
}

test("lvcreate linear and striped LVs land where lvm2 puts them", { skip }, async () => {
  await withLab([64, 96, 128, 64], async (lab) => {
    lab.setupVg("vg", ["d0", "d1", "d2", "d3"]);
    await same(lab, "vg", ["lvcreate", "-L", "20m", "vg"]);
    await same(lab, "vg", ["lvcreate", "-l", "5", "-n", "b", "vg"]);
    await same(lab, "vg", ["lvcreate", "-L", "30m", "-n", "c", "vg"]);
    await same(lab, "vg", ["lvcreate", "-i", "2", "-l", "10", "-n", "s2", "vg"]);
    await same(lab, "vg", ["lvcreate", "-i", "3", "-I", "8k", "-l", "7", "-n", "s3", "vg"]);
    await same(lab, "vg", ["lvcreate", "-l", "3", "-n", "onlast", "vg", "%d3"]);
    await same(lab, "vg", ["lvcreate", "-l", "4", "-n", "ranged", "vg", "%d2:10-12", "%d1:3-"]);
    await same(lab, "vg", ["lvcreate", "-l", "50%FREE", "-n", "half", "vg"]);
    await same(lab, "vg", ["lvcreate", "-l", "100%FREE", "-n", "rest", "vg"]);
  });
});
