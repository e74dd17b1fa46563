import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomFillSync } from "node:crypto";
import { FileBlockDevice } from "../../../blockdev/file-block-device.js";
import { MemoryBlockDevice } from "../../../blockdev/memory-block-device.js";
import { MappedDevice } from "../../mapped-device.js";
import { Table } from "../../table.js";
import { defaultTargetTypes } from "../../target-types.js";
import { testEnv } from "../../test-helpers.js";
import { sharedCopyEngine } from "../../copy-threads/copy-engine.js";
import { Raid1Target } from "./raid1-target.js";
import { raid1Line, RMETA_BYTES } from "./raid1-rig.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";

/**
 * The scrub on plain files, as the daemon runs it: the rimages are
 * FileBlockDevices, so the copy threads compare the batches on their
 * leased extents and only the differing units come back to the event loop.
 */
const MiB = 1024 * 1024;
const SIZE = (12 * MiB) / SECTOR_BYTES; // sectors
const REGION = 2048; // 1 MiB

test("a check on file-backed legs compared by the copy threads finds exactly the corrupted units; repair fixes them", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ulvm-r1scrub-"));
  try {
    const data = randomFillSync(Buffer.alloc(SIZE * SECTOR_BYTES));
    const legs = 3;
    for (let i = 0; i < legs; i++) writeFileSync(join(dir, `rimage${i}`), data);
    const devs: Record<string, MemoryBlockDevice | FileBlockDevice> = {};
    for (let i = 0; i < legs; i++) {
      devs[`rmeta${i}`] = new MemoryBlockDevice(`rmeta${i}`, RMETA_BYTES);
      devs[`rimage${i}`] = await FileBlockDevice.open(join(dir, `rimage${i}`));
    }
    const env = testEnv(devs);
    // 4 MiB batches on the threads: three of them, each split between two threads.
    const types = defaultTargetTypes({ raid: { cleanIntervalMs: 0, legWriteThread: false, resyncThreadBatchBytes: 4 * MiB } });
    const dev = new MappedDevice("vg-lv", { env, targetTypes: types });
    const [t] = await dev.load(Table.parse(raid1Line({ params: ["nosync"] }, SIZE, REGION, legs)));
    if (!Raid1Target.is(t)) throw new Error("not a raid1");
    await dev.resume();
    await t.whenInSync();

    const engine = sharedCopyEngine(2)!;
    engine.warmUp();
    for (let i = 0; i < 500 && !engine.ready; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(engine.ready);
    const compare = engine.compare.bind(engine);
    let handed = 0;
    engine.compare = (l, u) => {
      handed++;
      return compare(l, u);
    };

    const corrupt = (leg: number, sector: number, sectors: number): void => {
      const fd = openSync(join(dir, `rimage${leg}`), "r+");
      writeSync(fd, Buffer.alloc(sectors * SECTOR_BYTES, 0xee), 0, sectors * SECTOR_BYTES, sector * SECTOR_BYTES);
      closeSync(fd);
    };
    corrupt(1, 100, 8); // unit [0, 128)
    corrupt(1, 8180, 20); // units [8064, 8192) and [8192, 8320): across a batch boundary, one place
    corrupt(1, 6000, 1); // unit [5888, 6016): in the first batch's second share
    corrupt(2, 6000, 1); // the same unit on leg 2 too
    corrupt(2, SIZE - 1, 1); // the last unit

    try {
      await dev.message(0, ["check"]);
      await t.whenScrubDone();
      let st = t.status();
      assert.equal(handed, 3, "every batch was compared by the threads");
      assert.equal(st.scrub?.aborted, false);
      assert.deepEqual(
        st.scrub?.places.map((p) => [p.sector, p.sectors, p.legs, p.source, p.readError]),
        [
          [0, 128, [1], 0, false],
          [5888, 128, [1, 2], 0, false],
          [8064, 256, [1], 0, false],
          [SIZE - 128, 128, [2], 0, false],
        ],
      );
      assert.equal(st.mismatchCount, 128 + 256 + 256 + 128);
      assert.equal(st.scrub?.rewrittenSectors, 0);

      await dev.message(0, ["repair"]);
      await t.whenScrubDone();
      st = t.status();
      assert.equal(st.scrub?.rewrittenSectors, 768);
      await dev.suspend();
      for (let i = 1; i < legs; i++) assert.ok(readFileSync(join(dir, `rimage${i}`)).equals(data), `rimage${i} repaired from rimage0`);
      await dev.resume();
      await dev.message(0, ["check"]);
      await t.whenScrubDone();
      assert.equal(t.status().mismatchCount, 0);
      assert.deepEqual(t.status().scrub?.places, []);
      assert.equal(handed, 9);
    } finally {
      engine.compare = compare;
      await dev.remove();
      for (const d of Object.values(devs)) await d.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
