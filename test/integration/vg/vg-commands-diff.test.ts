import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { lvmUnavailable } from "../../helpers/lab.js";
import { Twin } from "./twin.js";

/**
 * The VG and PV management commands against the real lvm2 2.03.16, step by
 * step on twin worlds that start byte-identical: same exit status, same
 * stdout and stderr (device names mapped to %dN), and the same metadata as
 * each tool's own vgcfgbackup prints it. Ends with the real `lvm vgck` on
 * the disks ulvm wrote.
 */
const skip = lvmUnavailable();
let tw: Twin;

before(() => {
  if (skip) return;
  tw = new Twin([16, 16, 16, 16, 16]);
  tw.lvmOk("pvcreate", "-q", "%d0", "%d1", "%d2", "%d3");
  tw.lvmOk("vgcreate", "-q", "vg", "%d0", "%d1");
  tw.lvmOk("lvcreate", "-q", "-an", "-Zn", "-L", "4m", "-n", "lv1", "vg", "%d0");
  tw.sync("l");
});

after(() => {
  if (!skip) tw.cleanup();
});

/** Same exit status and messages; returns nothing so steps read as a list. */
function same(args: string[], opts: { input?: string; ids?: boolean } = {}): void {
  const { lvm, ulvm } = tw.both(args, opts.input ?? "");
  const what = `${args.join(" ")}\n--- lvm2 (${lvm.code})\n${lvm.stdout}${lvm.stderr}--- ulvm (${ulvm.code})\n${ulvm.stdout}${ulvm.stderr}`;
  assert.equal(ulvm.stdout, lvm.stdout, `stdout: ${what}`);
  assert.equal(ulvm.stderr, lvm.stderr, `stderr: ${what}`);
  assert.equal(ulvm.code, lvm.code, `exit status: ${what}`);
}

/** Same metadata (UUIDs dropped when a step makes random ones). */
function sameVg(vg: string, opts: { ids?: boolean } = { ids: true }): void {
  const strip = (t: string): string => (opts.ids === false ? t.replace(/^\s*id = ".*"$/gm, "") : t);
  assert.equal(strip(tw.backup("u", vg)), strip(tw.backup("l", vg)), `metadata of ${vg}`);
}

/** Same on-disk headers of a device (label, PV header, mda headers), as pvck prints them. */
function sameHeaders(disk: string): void {
  same(["pvck", "--dump", "headers", disk]);
}

test("vgextend: add, refuse PVs of a VG, create PVs first, then fail on an unknown VG", { skip }, () => {
  same(["vgextend", "vg", "%d2"]);
  sameVg("vg");
  same(["vgextend", "vg", "%d2"]);
  same(["vgextend", "vg", "%d3", "%d2"]);
  same(["vgextend", "vg", "/dev/ulvm-no-such-device"]);
  same(["vgextend", "vg"]);
  same(["vgextend"]);
  // The PV is created before the VG is looked up (random UUIDs: realign the worlds afterwards).
  const { lvm, ulvm } = tw.both(["vgextend", "nosuch", "%d4"]);
  assert.equal(ulvm.code, lvm.code);
  assert.equal(ulvm.stdout, lvm.stdout);
  assert.equal(ulvm.stderr, lvm.stderr);
  tw.sync("l");
  same(["vgextend", "vg", "%d4"]);
  sameVg("vg");
});

test("vgreduce: PVs in use, removal (the PV becomes an orphan on disk), unknown PVs, -a, bad syntax", { skip }, () => {
  same(["vgreduce", "vg", "%d0"]);
  same(["vgreduce", "vg", "%d4"]);
  sameVg("vg");
  sameHeaders("%d4");
  same(["vgreduce", "vg", "%d4"]);
  same(["vgreduce", "vg", "%d3"]);
  same(["vgreduce", "vg", "/dev/ulvm-no-such-device"]);
  same(["vgreduce", "nosuch", "%d1"]);
  same(["vgreduce", "vg"]);
  same(["vgreduce"]);
  same(["vgreduce", "-a", "vg", "%d1"]);
  same(["vgreduce", "--mirrorsonly", "vg", "%d1"]);
  same(["vgreduce", "-a", "vg"]);
  sameVg("vg");
  for (const d of ["%d1", "%d2"]) sameHeaders(d);
  same(["vgreduce", "--removemissing", "vg"]);
  same(["vgextend", "vg", "%d1", "%d2"]);
  sameVg("vg");
});

test("vgrename: by name and back, same name, invalid and existing names, unknown VG", { skip }, () => {
  same(["vgrename", "vg", "vg2"]);
  sameVg("vg2");
  same(["vgrename", "vg2", "vg"]);
  same(["vgrename", "vg", "vg"]);
  same(["vgrename", "vg", "a b"]);
  same(["vgrename", "vg", "-x"]);
  same(["vgrename", "nosuch", "x"]);
  same(["vgrename", "vg"]);
  same(["vgcreate", "-q", "other", "%d3"]);
  same(["vgrename", "vg", "other"]);
  same(["vgremove", "-q", "other"]);
  sameVg("vg");
  // By VG UUID (both worlds share it).
  const uuid = tw.lvm(["vgs", "--noheadings", "-o", "vg_uuid", "vg"]).stdout.trim();
  assert.match(uuid, /^\w{6}-/);
  same(["vgrename", uuid, "vg3"]);
  sameVg("vg3");
  same(["vgrename", "vg3", uuid]);
  same(["vgrename", "vg3", "vg"]);
});

test("vgchange: resizeable, max LVs/PVs, allocation policy, tags, autoactivation, errors", { skip }, () => {
  const steps: string[][] = [
    ["-x", "n", "vg"],
    ["-x", "n", "vg"],
    ["-l", "5", "vg"],
    ["-p", "5", "vg"],
    ["-x", "y", "-l", "0", "vg"],
    ["-x", "y", "vg"],
    ["-l", "1", "vg"],
    ["-l", "0", "vg"],
    ["-p", "2", "vg"],
    ["-p", "-1", "vg"],
    ["-p", "0", "vg"],
    ["--alloc", "normal", "vg"],
    ["--alloc", "contiguous", "vg"],
    ["--alloc", "inherit", "vg"],
    ["--alloc", "foo", "vg"],
    ["--addtag", "a", "--addtag", "b", "vg"],
    ["--deltag", "a", "--addtag", "c", "vg"],
    ["--addtag", "bad tag", "vg"],
    ["--deltag", "nope", "vg"],
    ["--setautoactivation", "n", "vg"],
    ["--setautoactivation", "n", "vg"],
    ["--setautoactivation", "y", "vg"],
    ["--alloc", "normal", "vg"],
    ["vg"],
    ["--addtag", "x", "nosuch"],
  ];
  for (const s of steps) {
    same(["vgchange", ...s]);
    sameVg("vg");
  }
  same(["vgchange", "-u", "vg"]);
  sameVg("vg", { ids: false });
  tw.sync("l");
});

test("pvchange: allocatable, tags, orphans, already-set values, bad syntax", { skip }, () => {
  tw.lvmOk("pvcreate", "-q", "%d4");
  tw.sync("l");
  for (const s of [
    ["-x", "n", "%d1"],
    ["-x", "n", "%d1"],
    ["-x", "y", "%d1", "%d4"],
    ["--addtag", "t1", "--addtag", "t2", "%d1"],
    ["--deltag", "t1", "%d1", "%d2"],
    ["--addtag", "t1", "%d4"],
    ["-x", "y", "/dev/ulvm-no-such-device"],
    ["%d1"],
    ["-x", "y"],
    ["-a", "-x", "y", "%d1"],
  ]) {
    same(["pvchange", ...s]);
    sameVg("vg");
  }
  same(["pvchange", "-u", "%d2"]);
  sameVg("vg", { ids: false });
  tw.sync("l");
});

test("pvresize: to the device size, smaller, refused below allocated extents, orphans", { skip }, () => {
  for (const s of [
    ["%d1"],
    ["-y", "--setphysicalvolumesize", "8m", "%d1"],
    ["--setphysicalvolumesize", "8m", "%d2"],
    ["-y", "--setphysicalvolumesize", "1m", "%d1"],
    ["-y", "--setphysicalvolumesize", "2m", "%d0"],
    ["-y", "--setphysicalvolumesize", "6m", "%d4"],
    ["%d1"],
    [],
  ]) {
    same(["pvresize", ...s]);
    sameVg("vg");
  }
  sameHeaders("%d4");
});

test("vgck and vgck --updatemetadata on a healthy VG; pvck", { skip }, () => {
  same(["vgck", "vg"]);
  same(["vgck"]);
  same(["vgck", "vg", "nosuch"]);
  same(["vgck", "--updatemetadata"]);
  same(["vgck", "--updatemetadata", "vg"]);
  sameVg("vg");
  for (const d of ["%d0", "%d3", "%d4"]) same(["pvck", d]);
  same(["pvck", "--dump", "metadata", "%d4"]);
  same(["pvck", "--dump", "foo", "%d0"]);
  same(["pvck", "--dump", "metadata", "%d0", "%d1"]);
});

test("vgcfgbackup and vgcfgrestore: a restore brings back the backed-up metadata as its seqno + 1", { skip }, () => {
  same(["vgcfgbackup", "-f", "./bk-%s.vg", "vg"]);
  same(["vgcfgbackup", "-f", "./bk.vg", "nosuch"]);
  same(["vgchange", "--addtag", "later", "vg"]);
  same(["vgcfgrestore", "-f", "./bk-vg.vg", "vg"]);
  sameVg("vg");
  // Both list lvm2's file (each world's own file has its own creation time).
  copyFileSync(join(tw.l.dir, "bk-vg.vg"), join(tw.u.dir, "bk-vg.vg"));
  same(["vgcfgrestore", "-l", "-f", "./bk-vg.vg"]);
  same(["vgcfgrestore", "-f", "./bk-vg.vg", "other"]);
  same(["vgcfgrestore", "-f", "./no-such-file", "vg"]);
  same(["vgcfgrestore"]);
});

test("vgremove: refused at the prompt, then removed with its LVs; the PVs are orphans on disk", { skip }, () => {
  same(["vgremove", "vg"], { input: "n\n" });
  same(["vgremove", "vg"], { input: "" });
  sameVg("vg");
  same(["vgremove", "-f", "vg"]);
  for (const d of ["%d0", "%d1", "%d2"]) sameHeaders(d);
  same(["vgremove", "vg"]);
  same(["vgremove"]);
});

test("every VG ulvm wrote passes the real lvm vgck", { skip }, () => {
  tw.ulvmOk("vgcreate", "-q", "vg9", "%d0", "%d1");
  tw.ulvmOk("vgextend", "-q", "vg9", "%d2");
  tw.ulvmOk("vgchange", "-q", "--addtag", "z", "vg9");
  tw.ulvmOk("vgreduce", "-q", "vg9", "%d2");
  tw.sync("u");
  const r = tw.lvm(["vgck", "vg9"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.trim(), "");
  assert.match(tw.lvm(["vgs", "--noheadings", "-o", "vg_name,pv_count,vg_tags", "vg9"]).stdout, /vg9\s+2\s+z/);
});
