/**
 * raid1 + integrity through the daemon, end to end: lvcreate --raidintegrity
 * activates the LV (its first activation initialises the tags, then the
 * `recalculate` flag is cleared and committed, as lvm2 does), a client writes
 * over NBD (nbdcopy), bits are flipped in one leg's iorig extents of the PV
 * file behind ulvm's back, and reads serve the right bytes, rewrite the rotten
 * copies and count them in `lvs -o integritymismatches`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { Lab, loopUnavailable, which } from "../../helpers/lab.js";
import { pread, pwrite, PE_START_BYTES, EXTENT_BYTES } from "../../helpers/raid1.js";

const skip = !which("nbdcopy") ? "nbdcopy not installed (apt-get install libnbd-bin)" : loopUnavailable();

/** An 8 MiB raid1 with integrity (bitmap mode) on d0 and d1, filled with random data through NBD. */
function integrityLv(lab: Lab): { d0: string; d1: string; uri: string; data: Buffer } {
  const d0 = lab.addDisk("d0", 64);
  const d1 = lab.addDisk("d1", 64);
  lab.ok("vgcreate", "-q", "vg", d0, d1);
  lab.ok("lvcreate", "--type", "raid1", "-m1", "--raidintegrity", "y", "--raidintegritymode", "bitmap", "-L", "8m", "-n", "r", "vg");
  const uri = `nbd+unix:///vg/r?socket=${lab.dir}/run/nbd.sock`;
  const data = randomBytes(8 << 20);
  writeFileSync(`${lab.dir}/in.bin`, data);
  assert.equal(lab.run("nbdcopy", [`${lab.dir}/in.bin`, uri]).code, 0);
  return { d0, d1, uri, data };
}

test("bit rot on both legs (different blocks) of raid1 + integrity: no wrong byte served, every rotten copy met is rewritten and counted", { skip }, () => {
  const lab = new Lab("ulvm-integ-heal-");
  try {
    const d0 = lab.addDisk("d0", 64);
    const d1 = lab.addDisk("d1", 64);
    lab.ok("vgcreate", "-q", "vg", d0, d1);
    const created = lab.ok("lvcreate", "--type", "raid1", "-m1", "--raidintegrity", "y", "--raidintegritymode", "bitmap", "-L", "8m", "-n", "r", "vg");
    assert.match(created, /Logical volume "r" created\./);
    // The first activation passed `recalculate`; the VG no longer asks for it.
    lab.ok("vgcfgbackup", "-f", `${lab.dir}/vg.txt`, "vg");
    const text = readFileSync(`${lab.dir}/vg.txt`, "utf8");
    assert.doesNotMatch(text, /recalculate/);
    assert.match(text, /mode = "B"/);
    const uri = `nbd+unix:///vg/r?socket=${lab.dir}/run/nbd.sock`;
    const data = randomBytes(8 << 20);
    writeFileSync(`${lab.dir}/in.bin`, data);
    assert.equal(lab.run("nbdcopy", [`${lab.dir}/in.bin`, uri]).code, 0);
    // Each image's iorig is extents 1-2 of its PV (rmeta at 0): flip one bit in sectors of both legs
    // (different sectors), so that whichever leg serves a read meets some rot.
    const rot: Array<[string, number[]]> = [
      [d0, [7, 1000, 4096]],
      [d1, [9999, 16383]],
    ];
    for (const [pv, sectors] of rot)
      for (const s of sectors) {
        const at = PE_START_BYTES + EXTENT_BYTES + s * 512 + 100;
        pwrite(pv, at, Buffer.from([pread(pv, at, 1)[0]! ^ 0x08]));
      }
    for (let pass = 0; pass < 2; pass++) {
      assert.equal(lab.run("nbdcopy", [uri, `${lab.dir}/out.bin`]).code, 0);
      assert.ok(readFileSync(`${lab.dir}/out.bin`).equals(data), `read ${pass}: every byte as written`);
    }
    // Copies met by a read were rewritten from the good leg; the counts say how many were met.
    const healedOn = ([pv, sectors]: [string, number[]]): number =>
      sectors.filter((s) => pread(pv, PE_START_BYTES + EXTENT_BYTES + s * 512, 512).equals(data.subarray(s * 512, s * 512 + 512))).length;
    const healed = rot.map(healedOn);
    assert.ok(healed[0]! + healed[1]! >= 1, "every sector was read, so some rot was met");
    const counts = lab
      .ok("lvs", "-a", "--noheadings", "--separator", ";", "-o", "lv_name,integritymismatches", "vg")
      .trim()
      .split("\n")
      .map((l) => l.trim().split(";"));
    const count = (name: string): number => Number(counts.find((c) => c[0] === name)![1]);
    assert.equal(count("[r_rimage_0]"), healed[0]);
    assert.equal(count("[r_rimage_1]"), healed[1]);
    assert.equal(count("r"), healed[0]! + healed[1]!);
    assert.match(lab.ok("lvs", "--noheadings", "-o", "lv_attr", "vg/r").trim(), /^rwi-a-r---$/, "the array stays healthy");
  } finally {
    lab.cleanup();
  }
});

interface EventRecord {
  name: string;
  severity: string;
  vg?: string;
  lv?: string;
  leg?: string;
  pv?: string;
  details: { sector?: number; sectors?: number; pe?: number; peLast?: number; healed?: boolean; legIndex?: number };
}

function events(lab: Lab): EventRecord[] {
  return lab
    .ok("events", "--json")
    .trim()
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as EventRecord)
    .filter((e) => e.name === "integrity-mismatch-healed");
}

/** The events come a moment after the read (adjacent blocks are gathered into one report first): poll for them. */
function eventsWhen(lab: Lab, enough: (es: EventRecord[]) => boolean): EventRecord[] {
  let es = events(lab);
  for (let i = 0; i < 200 && !enough(es); i++) {
    lab.run("sleep", ["0.05"]);
    es = events(lab);
  }
  return es;
}

test("a healed integrity mismatch is reported in the events with the LV sectors, the leg, its PV and extent; adjacent bad blocks are one report; a block bad on both legs is an error event and an EIO for that block only", { skip: skip ?? (which("qemu-io") ? undefined : "qemu-io not installed (apt-get install qemu-utils)") }, () => {
  const lab = new Lab("ulvm-integ-report-");
  try {
    const { d0, d1, uri, data } = integrityLv(lab);
    const extentSectors = EXTENT_BYTES / 512;
    // iorig = extents 1-2 of each PV. Leg 0: two adjacent sectors (one run) in the first extent;
    // leg 1: one sector in the second extent. Whichever leg serves a read meets its own rot.
    const rot: Array<{ pv: string; leg: number; sectors: number[] }> = [
      { pv: d0, leg: 0, sectors: [300, 301] },
      { pv: d1, leg: 1, sectors: [extentSectors + 77] },
    ];
    const flip = (pv: string, s: number): void => {
      const at = PE_START_BYTES + EXTENT_BYTES + s * 512 + 17;
      pwrite(pv, at, Buffer.from([pread(pv, at, 1)[0]! ^ 0x40]));
    };
    for (const r of rot) for (const s of r.sectors) flip(r.pv, s);
    for (let pass = 0; pass < 2; pass++) {
      assert.equal(lab.run("nbdcopy", [uri, `${lab.dir}/out.bin`]).code, 0);
      assert.ok(readFileSync(`${lab.dir}/out.bin`).equals(data));
    }
    const isHealed = (pv: string, s: number): boolean => pread(pv, PE_START_BYTES + EXTENT_BYTES + s * 512, 512).equals(data.subarray(s * 512, s * 512 + 512));
    const healedRuns = rot.filter((r) => r.sectors.every((s) => isHealed(r.pv, s)));
    assert.ok(healedRuns.length >= 1, "some rot was met and healed");
    const es = eventsWhen(lab, (x) => x.length >= healedRuns.length);
    assert.equal(es.length, healedRuns.length, `one event per healed run: ${JSON.stringify(es)}`);
    for (const r of healedRuns) {
      const e = es.find((x) => x.details.legIndex === r.leg);
      assert.ok(e, `an event for leg ${r.leg}`);
      assert.equal(e.severity, "info");
      assert.equal(e.vg, "vg");
      assert.equal(e.lv, "r");
      assert.equal(e.leg, `r_rimage_${r.leg}`);
      assert.equal(e.pv, r.pv);
      assert.equal(e.details.healed, true);
      assert.equal(e.details.sector, r.sectors[0]);
      assert.equal(e.details.sectors, r.sectors.length, "adjacent bad blocks are one run");
      assert.equal(e.details.pe, 1 + Math.floor(r.sectors[0]! / extentSectors));
    }
    // The daemon log says the same.
    const log = readFileSync(`${lab.dir}/run/ulvmd.log`, "utf8");
    assert.match(log, new RegExp(`integrity mismatch at LV sector ${healedRuns[0]!.sectors[0]}\\+${healedRuns[0]!.sectors.length} on leg r_rimage_${healedRuns[0]!.leg} on ${healedRuns[0]!.pv} PE \\d+: healed from another leg`));

    // The same block rotten on both legs: that read fails, nothing else does, and the event is an error.
    const both = 2 * extentSectors - 5;
    flip(d0, both);
    flip(d1, both);
    const bad = lab.run("qemu-io", ["-f", "raw", "-c", `read ${both * 512} 512`, uri]);
    assert.match(bad.stdout + bad.stderr, /Input\/output error/);
    const good = lab.run("qemu-io", ["-f", "raw", "-c", `read ${(both - 8) * 512} 4096`, uri]);
    assert.doesNotMatch(good.stdout + good.stderr, /error/i);
    const all = eventsWhen(lab, (x) => x.some((e) => e.severity === "error"));
    const err = all.find((e) => e.severity === "error");
    assert.ok(err, "an error event for the uncorrectable block");
    assert.equal(err.details.healed, false);
    assert.equal(err.details.sector, both);
    assert.equal(err.details.pe, 2);
    assert.ok(err.pv === d0 || err.pv === d1);
  } finally {
    lab.cleanup();
  }
});

test("lvchange --syncaction check on raid1 + integrity: every rotten block of either leg is found by its checksum and rewritten from the good copy; the legs are equal after; repair is refused as lvm2 does", { skip }, async () => {
  const lab = new Lab("ulvm-integ-check-");
  try {
    const { d0, d1, uri, data } = integrityLv(lab);
    // Rot on leg 1 (three blocks, two of them adjacent, in the same 64 KiB unit) and on leg 0 (one block, elsewhere).
    const rot: Array<[string, number[]]> = [
      [d1, [40, 41, 100, 12345]],
      [d0, [9000]],
    ];
    for (const [pv, sectors] of rot)
      for (const s of sectors) {
        const at = PE_START_BYTES + EXTENT_BYTES + s * 512 + 200;
        pwrite(pv, at, Buffer.from([pread(pv, at, 1)[0]! ^ 0x01]));
      }
    const refused = lab.ulvm("lvchange", "--syncaction", "repair", "vg/r");
    assert.equal(refused.code, 5);
    assert.match(refused.stderr, /^\s*Use syncaction check to detect and correct integrity checksum mismatches\.$/m);
    lab.ok("lvchange", "--syncaction", "check", "vg/r");
    const lvs = (fields: string): string[] => lab.ok("lvs", "--noheadings", "--separator", ";", "-o", fields, "vg/r").trim().split(";");
    for (let i = 0; i < 600 && lvs("raid_sync_action")[0] !== "idle"; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(lvs("raid_sync_action")[0], "idle");
    // Counted per bad block (512-byte blocks: one sector each), not per 64 KiB unit.
    assert.equal(Number(lvs("raid_mismatch_count")[0]), 5);
    // Every rotten copy was rewritten from the other leg: the legs' data extents are equal, and equal to what was written.
    const leg0 = pread(d0, PE_START_BYTES + EXTENT_BYTES, 8 << 20);
    const leg1 = pread(d1, PE_START_BYTES + EXTENT_BYTES, 8 << 20);
    assert.ok(leg0.equals(data), "leg 0 healed");
    assert.ok(leg1.equals(data), "leg 1 healed");
    // The log names the places: the LV sectors, the leg and where it is.
    const log = readFileSync(`${lab.dir}/run/ulvmd.log`, "utf8");
    assert.match(log, /check done: 5 mismatched sectors in 4 places/);
    assert.match(log, new RegExp(`LV sector 40\\+2 leg 1 \\(r_rimage_1 on ${d1} PE 1\\) read error from leg 0`));
    assert.match(log, new RegExp(`LV sector 9000\\+1 leg 0 \\(r_rimage_0 on ${d0} PE 2\\) read error from leg 1`));
    // A second check finds nothing: the tags of the rewritten blocks are right.
    lab.ok("lvchange", "--syncaction", "check", "vg/r");
    for (let i = 0; i < 600 && lvs("raid_sync_action")[0] !== "idle"; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(Number(lvs("raid_mismatch_count")[0]), 0);
  } finally {
    lab.cleanup();
  }
});
