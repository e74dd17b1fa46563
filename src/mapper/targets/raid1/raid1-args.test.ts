import { test } from "node:test";
import assert from "node:assert/strict";
import { formatRaid1Args, parseRaid1Args } from "./raid1-args.js";
import { TableError } from "../../table-error.js";

const LEN = 1 << 20;

test("parseRaid1Args reads lvm2's line and formatRaid1Args gives it back", () => {
  const line = "raid1 3 0 region_size 4096 2 m0 d0 m1 d1".split(" ");
  const a = parseRaid1Args(line, LEN);
  assert.equal(a.regionSectors, 4096);
  assert.equal(a.syncMode, "default");
  assert.deepEqual(a.devices, [
    { meta: "m0", data: "d0" },
    { meta: "m1", data: "d1" },
  ]);
  assert.deepEqual(formatRaid1Args(a), line);
});

test("every optional parameter and a `- -` slot round-trip", () => {
  const line =
    "raid1 14 0 nosync rebuild 2 min_recovery_rate 10 max_recovery_rate 100 write_mostly 0 max_write_behind 512 region_size 1024 3 m0 d0 - - m2 d2".split(" ");
  const a = parseRaid1Args(line, LEN);
  assert.deepEqual(formatRaid1Args(a), line);
  assert.equal(a.syncMode, "nosync");
  assert.deepEqual(a.rebuild, [2]);
  assert.deepEqual(a.writeMostly, [0]);
  assert.equal(a.minRecoveryRateKiBPerSec, 10);
  assert.equal(a.maxRecoveryRateKiBPerSec, 100);
  assert.equal(a.maxWriteBehind, 512);
  assert.equal(a.devices[1], undefined);
  assert.deepEqual(parseRaid1Args(formatRaid1Args(a), LEN), a);
  // parameters in another order parse the same
  const b = parseRaid1Args("raid1 6 0 region_size 1024 sync rebuild 1 2 m0 d0 m1 d1".split(" "), LEN);
  assert.deepEqual(formatRaid1Args(b), "raid1 6 0 sync rebuild 1 region_size 1024 2 m0 d0 m1 d1".split(" "));
});

test("no region_size: the kernel's default of 4 MiB, not printed back", () => {
  const a = parseRaid1Args("raid1 1 0 2 m0 d0 m1 d1".split(" "), LEN);
  assert.equal(a.regionSectors, 8192);
  assert.equal(a.regionSizeGiven, false);
  assert.deepEqual(formatRaid1Args(a), "raid1 1 0 2 m0 d0 m1 d1".split(" "));
});

const BAD: Array<[string, RegExp]> = [
  ["raid1 3 0 region_size 3000 2 m0 d0 m1 d1", /Region size is not a power of 2/],
  ["raid1 3 0 region_size 2097152 2 m0 d0 m1 d1", /Supplied region size is too large/],
  ["raid1 3 0 region_size 4096 3 m0 d0 m1 d1", /does not match the count given/],
  ["raid1 3 0 region_size 4096 2 m0 d0 m1 d1 m2", /does not match the count given/],
  ["raid1 5 0 region_size 4096 rebuild 2 2 m0 d0 m1 d1", /Invalid rebuild index given/],
  ["raid1 5 0 region_size 4096 rebuild 1 2 m0 d0 - -", /Drive designated for rebuild not specified/],
  ["raid1 5 0 region_size 4096 write_mostly 5 2 m0 d0 m1 d1", /Invalid write_mostly index given/],
  ["raid1 5 0 region_size 4096 daemon_sleep 5 2 m0 d0 m1 d1", /Unable to parse RAID parameter: daemon_sleep/],
  ["raid1 4 0 region_size 4096 frobnicate 2 m0 d0 m1 d1", /Unable to parse RAID parameter: frobnicate/],
  ["raid1 2 0 region_size 2 m0 d0 m1 d1", /Wrong number of raid parameters given/],
  ["raid1 3 0 region_size x 2 m0 d0 m1 d1", /Bad numerical argument/],
  ["raid1 3 x region_size 4096 2 m0 d0 m1 d1", /chunk_size/],
  ["raid1 4 0 nosync sync 2 m0 d0 m1 d1", /Invalid flags combination/],
  ["raid1 4 0 nosync nosync 2 m0 d0 m1 d1", /Only one 'nosync' argument allowed/],
  ["raid1 5 0 min_recovery_rate 100 max_recovery_rate 10 2 m0 d0 m1 d1", /Bogus recovery rates/],
  ["raid1 3 0 max_write_behind 40000 2 m0 d0 m1 d1", /Max write-behind limit out of range/],
  ["raid1 5 0 write_mostly 0 write_mostly 1 2 m0 d0 m1 d1", /Can't set all raid1 devices to write_mostly/],
  ["raid1 1 0 x m0 d0 m1 d1", /number of raid devices/],
  ["raid1 1 0 2 m0 - m1 d1", /needs both an rmeta and an rimage/],
  ["raid5_ls 1 0 2 m0 d0 m1 d1", /Unrecognised raid_type/],
  ["raid1 9", /Too few arguments/],
];

for (const [line, re] of BAD) {
  test(`parseRaid1Args throws TableError: ${line}`, () => {
    assert.throws(
      () => parseRaid1Args(line.split(" "), LEN),
      (e: unknown) => e instanceof TableError && re.test(e.message),
    );
  });
}
