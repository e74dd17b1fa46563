import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fixtureFile } from "../../helpers/fixtures.js";
import { lvmUnavailable } from "../../helpers/lab.js";
import { Twin, without } from "./twin.js";

/**
 * vgreduce --removemissing --force on legacy mirrors, ulvm against the real
 * lvm2 in cases the fixtures do not cover: the primary leg lost, a leg and
 * the disk log lost together, and --mirrorsonly next to a partial linear LV.
 * The mirrors are made as lvm2 makes them without device-mapper: restored
 * from fixture b's hand-written file (edited per case) onto PVs with fixed
 * UUIDs. Compared: exit status, stdout, stderr (without lvm2's repeated
 * "Couldn't find device" lines and without the user story's mirror warnings,
 * which only ulvm prints) and the resulting metadata.
 */
const skip = lvmUnavailable();
const SEED = /WARNING: (Bad device removed from mirror volume|Mirror volume, .* due to device failure)/;
const COULDNT = /Couldn't find device with uuid/;

function setup(edit: (text: string) => string): Twin {
  const tw = new Twin([16, 16, 16]);
  for (let n = 1; n <= 3; n++) tw.lvmOk("pvcreate", "-q", "--uuid", `fxmirr-pv0${n}-0000-0000-0000-0000-00000${n}`, "--norestorefile", `%d${n - 1}`);
  const file = join(tw.l.dir, "in.vg");
  writeFileSync(file, edit(readFileSync(fixtureFile("b-mirror", "restore-input.vg"), "utf8")));
  tw.lvmOk("vgcfgrestore", "-q", "-f", file, "fxmirror");
  tw.sync("l");
  return tw;
}

function lose(tw: Twin, disk: string): void {
  for (const lab of [tw.l, tw.u]) {
    const fd = openSync(lab.disk(disk), "r+");
    writeSync(fd, Buffer.alloc(1048576), 0, 1048576, 0); // label and metadata area, as the user story's dd
    closeSync(fd);
  }
}

function sameRepair(tw: Twin, args: string[]): string {
  const { lvm, ulvm } = tw.both(args);
  const what = `${args.join(" ")}\n--- lvm2 (${lvm.code})\n${lvm.stdout}${lvm.stderr}--- ulvm (${ulvm.code})\n${ulvm.stdout}${ulvm.stderr}`;
  assert.equal(ulvm.code, lvm.code, what);
  assert.equal(ulvm.stdout, lvm.stdout, what);
  assert.equal(without(without(ulvm.stderr, COULDNT), SEED), without(lvm.stderr, COULDNT), what);
  assert.equal(tw.backup("u", "fxmirror"), tw.backup("l", "fxmirror"), `metadata after ${what}`);
  const seqno = (t: string): string => /seqno = (\d+)/.exec(t)?.[1] ?? "?";
  assert.equal(seqno(tw.backup("u", "fxmirror")), seqno(tw.backup("l", "fxmirror")), "same number of commits");
  return ulvm.stderr;
}

test("primary legs lost: both mirrors become linear on their second leg", { skip }, () => {
  const tw = setup((t) => t);
  try {
    lose(tw, "d0");
    const err = sameRepair(tw, ["vgreduce", "--removemissing", "--force", "fxmirror"]);
    assert.match(err, /WARNING: Mirror volume, fxmirror\/lv_mirror converted to linear due to device failure\./);
  } finally {
    tw.cleanup();
  }
});

test("a leg and the disk log on the same lost PV: linear, the log gone in the same repair", { skip }, () => {
  const tw = setup((t) => t.replace(/(lv_mirror_mlog \{[\s\S]*?stripes = \[\s*)"pv2", 0/, '$1"pv1", 10'));
  try {
    lose(tw, "d1");
    sameRepair(tw, ["vgreduce", "--removemissing", "--force", "fxmirror"]);
  } finally {
    tw.cleanup();
  }
});

test("--mirrorsonly repairs the mirror and refuses to remove the partial linear LV", { skip }, () => {
  const tw = setup((t) => t);
  try {
    lose(tw, "d2");
    const err = sameRepair(tw, ["vgreduce", "--removemissing", "--mirrorsonly", "--force", "fxmirror"]);
    assert.match(err, /Non-mirror-image LV lv_lin found: can't remove\./);
    assert.match(err, /WARNING: Mirror volume, fxmirror\/lv_mirror disk log removed due to device failure\./);
  } finally {
    tw.cleanup();
  }
});

test("every image lost: the mirror LV is removed", { skip }, () => {
  // lv_corelog's two legs both on pv2 (disk d1).
  const tw = setup((t) => t.replace(/(lv_corelog_mimage_0 \{[\s\S]*?stripes = \[\s*)"pv0", 8/, '$1"pv1", 12'));
  try {
    lose(tw, "d1");
    const err = sameRepair(tw, ["vgreduce", "--removemissing", "--force", "fxmirror"]);
    assert.match(err, /No usable images left in fxmirror\/lv_corelog\./);
  } finally {
    tw.cleanup();
  }
});
