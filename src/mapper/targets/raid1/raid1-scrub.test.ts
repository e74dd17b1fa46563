import { test } from "node:test";
import assert from "node:assert/strict";
import { raid1Rig, type Raid1Rig } from "./raid1-rig.js";
import { formatStatusInfo } from "../../status.js";
import { equalBytes } from "../../test-helpers.js";
import { TableError } from "../../table-error.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";

const SIZE = 8192; // sectors: 4 MiB
const REGION = 1024;

async function rig(legs = 2, params: string[] = []): Promise<Raid1Rig> {
  const r = await raid1Rig({ legs, sizeSectors: SIZE, regionSectors: REGION, params });
  await r.target.whenInSync();
  // Something other than zeros on every leg.
  const data = new Uint8Array(SIZE * SECTOR_BYTES);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 9)) & 0xff;
  await r.dev.write(0, data);
  return r;
}

function corrupt(r: Raid1Rig, leg: number, sector: number, sectors: number): void {
  r.dataMems[leg]!.bytes.subarray(sector * SECTOR_BYTES, (sector + sectors) * SECTOR_BYTES).fill(0xee);
}

async function scrub(r: Raid1Rig, action: "check" | "repair"): Promise<void> {
  await r.dev.message(0, [action]);
  await r.target.whenScrubDone();
}

test("check reports exactly the corrupted units, in sectors, and where; repair makes the legs identical; a second check finds 0", async () => {
  const r = await rig();
  corrupt(r, 1, 100, 8); // inside unit [0, 128)
  corrupt(r, 1, 5100, 40); // across units [4992, 5120) and [5120, 5248)
  corrupt(r, 1, 8190, 2); // the last unit [8064, 8192)
  await scrub(r, "check");
  let st = r.target.status();
  assert.equal(st.mismatchCount, 128 * 4);
  assert.equal(formatStatusInfo(st), "raid1 2 AA 8192/8192 idle 512 0 -");
  assert.deepEqual(
    st.scrub?.places.map((p) => [p.sector, p.sectors, p.legs, p.source, p.readError]),
    [
      [0, 128, [1], 0, false],
      [4992, 256, [1], 0, false],
      [8064, 128, [1], 0, false],
    ],
  );
  assert.equal(st.scrub?.rewrittenSectors, 0, "check leaves a readable leg alone");
  assert.ok(!equalBytes(r.dataMems[0]!.bytes, r.dataMems[1]!.bytes));
  const ev = r.env.events.find((e) => e.kind === "scrub-done");
  assert.ok(ev !== undefined && ev.kind === "scrub-done" && ev.mismatchSectors === 512 && ev.places.length === 3);

  await scrub(r, "repair");
  st = r.target.status();
  assert.equal(st.mismatchCount, 0, "dm-raid reports 0 after a repair");
  assert.equal(st.scrub?.action, "repair");
  assert.equal(st.scrub?.mismatchSectors, 512);
  assert.equal(st.scrub?.rewrittenSectors, 512);
  assert.equal(st.scrub?.places.length, 3);
  assert.ok(equalBytes(r.dataMems[0]!.bytes, r.dataMems[1]!.bytes));

  await scrub(r, "check");
  assert.equal(r.target.status().mismatchCount, 0);
  assert.deepEqual(r.target.status().scrub?.places, []);
  await r.dev.remove();
});

test("repair: the first leg wins, even against two agreeing legs (no voting)", async () => {
  const r = await rig(3);
  corrupt(r, 0, 300, 1);
  await scrub(r, "check");
  assert.equal(r.target.status().mismatchCount, 256, "two legs differ from leg 0: 128 sectors each");
  assert.deepEqual(r.target.status().scrub?.places.map((p) => [p.sector, p.sectors, p.legs]), [[256, 128, [1, 2]]]);
  await scrub(r, "repair");
  assert.ok(equalBytes(r.dataMems[0]!.bytes, r.dataMems[1]!.bytes));
  assert.ok(equalBytes(r.dataMems[0]!.bytes, r.dataMems[2]!.bytes));
  assert.equal(r.dataMems[2]!.bytes[300 * SECTOR_BYTES], 0xee);
  await r.dev.remove();
});

test("status while a scrub runs: the action and its progress; other actions are refused until idle", async () => {
  const r = await rig();
  r.target.scrubber.setRate(256 * 1024); // 4 MiB at 256 KiB/s: long enough to look at
  await r.dev.message(0, ["check"]);
  await new Promise((res) => setTimeout(res, 100));
  const st = r.target.status();
  assert.equal(st.syncAction, "check");
  assert.ok(st.syncedSectors > 0 && st.syncedSectors < SIZE, `progress ${st.syncedSectors}`);
  await assert.rejects(r.dev.message(0, ["repair"]), (e: unknown) => e instanceof TableError && /sync action is "check"/.test(e.message));
  await r.dev.message(0, ["idle"]);
  assert.equal(r.target.status().syncAction, "idle");
  assert.equal(r.target.status().scrub?.aborted, true);
  await r.dev.message(0, ["frozen"]);
  assert.equal(r.target.status().syncAction, "frozen");
  await assert.rejects(r.dev.message(0, ["check"]));
  await r.dev.message(0, ["idle"]);
  await assert.rejects(r.dev.message(0, ["resync"]), TableError);
  await r.dev.remove();
});

test("random client writes during a check never count as mismatches", async () => {
  const r = await rig();
  r.target.scrubber.setRate(8 << 20);
  await r.dev.message(0, ["check"]);
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  let writes = 0;
  const writers = Array.from({ length: 4 }, async () => {
    while (r.target.scrubber.running) {
      const sectors = 1 + rnd(300);
      const sector = rnd(SIZE - sectors);
      await r.dev.write(sector * SECTOR_BYTES, new Uint8Array(sectors * SECTOR_BYTES).fill(rnd(256)));
      writes++;
      // Memory devices complete in microtasks: let the scrub's batches in.
      await new Promise<void>((res) => setImmediate(res));
    }
  });
  await r.target.whenScrubDone();
  await Promise.all(writers);
  assert.ok(writes > 20, `${writes} writes ran during the check`);
  assert.equal(r.target.status().scrub?.aborted, false);
  assert.equal(r.target.status().mismatchCount, 0);
  assert.ok(equalBytes(r.dataMems[0]!.bytes, r.dataMems[1]!.bytes));
  await r.dev.remove();
});

test("a leg whose read fails during a check is rewritten from the first leg and counted; it stays in the set", async () => {
  const r = await rig();
  corrupt(r, 1, 2048, 16); // unreadable and wrong
  r.data[1]!.addRule({ ops: ["read"], offsetBytes: 2048 * SECTOR_BYTES, lengthBytes: 512, failCount: 1 });
  await scrub(r, "check");
  const st = r.target.status();
  assert.equal(st.scrub?.places.length, 1);
  const p = st.scrub!.places[0]!;
  assert.equal(p.readError, true);
  assert.deepEqual(p.legs, [1]);
  assert.ok(p.sector <= 2048 && p.sector + p.sectors > 2048);
  assert.equal(st.mismatchCount, p.sectors);
  assert.equal(st.scrub?.rewrittenSectors, p.sectors);
  assert.equal(formatStatusInfo(st).split(" ")[2], "AA");
  assert.ok(equalBytes(r.dataMems[0]!.bytes, r.dataMems[1]!.bytes));
  await scrub(r, "check");
  assert.equal(r.target.status().mismatchCount, 0);
  await r.dev.remove();
});
