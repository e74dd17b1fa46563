import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { basename } from "node:path";
import { FIXTURES_DIR, readFixture, unpackImages } from "../../helpers/fixtures.js";
import { MemoryBlockDevice } from "../../../src/blockdev/memory-block-device.js";
import { FaultBlockDevice } from "../../../src/blockdev/fault-block-device.js";
import { MapperRegistry } from "../../../src/mapper/mapper-registry.js";
import { MappedDevice } from "../../../src/mapper/mapped-device.js";
import { MirrorTarget } from "../../../src/mapper/targets/mirror/mirror-target.js";
import { Table } from "../../../src/mapper/table.js";
import { defaultTargetTypes } from "../../../src/mapper/target-types.js";
import { decodeDiskLog } from "../../../src/mapper/dirty-log/disk-log-format.js";
import type { BlockDevice } from "../../../src/blockdev/block-device.js";
import type { MapperEvent } from "../../../src/mapper/events.js";

/**
 * The mapper against disks made by the real lvm2 (test/fixtures/lvm2, see
 * its README). Tables are written by hand from each fixture's metadata
 * (lvs-segments.txt, vgcfgbackup.vg): extent_size 2048 sectors, pe_start
 * 2048 sectors, pv0/1/2 = disk1/2/3, so PE n of a PV is at sector
 * 2048 + n * 2048. The activation layer will derive the same lines.
 */
interface Pattern {
  lv: string;
  lv_offset: number;
  length: number;
  sha256: string;
  first_record: string;
  pieces: Array<{ image: string; image_offset: number; length: number; lv_offset: number }>;
  mirror_legs_written?: number[];
}

const skip = existsSync(FIXTURES_DIR) ? false : `no fixtures at ${FIXTURES_DIR}`;

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

function loadImages(fixture: string): { disks: Record<string, MemoryBlockDevice>; cleanup: () => void } {
  const { dir, images } = unpackImages(fixture);
  const disks: Record<string, MemoryBlockDevice> = {};
  for (const path of images) {
    const name = basename(path, ".img");
    disks[name] = new MemoryBlockDevice(name, new Uint8Array(readFileSync(path)));
  }
  return { disks, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function envOf(devs: Record<string, BlockDevice>, events: MapperEvent[] = []) {
  return {
    openDevice: (n: string) => {
      const d = devs[n];
      if (!d) throw new Error(`no ${n}`);
      return d;
    },
    onEvent: (e: MapperEvent) => {
      events.push(e);
    },
  };
}

const PE = (n: number) => String(2048 + n * 2048);

/** fxlinear, from a-linear/lvs-segments.txt. */
const A_TABLES: Record<string, string> = {
  lv_one: `0 8192 linear disk1 ${PE(0)}\n`,
  lv_span: `0 22528 linear disk1 ${PE(4)}\n22528 10240 linear disk2 ${PE(0)}\n`,
  lv_stripe: `0 8192 striped 2 128 disk2 ${PE(5)} disk3 ${PE(0)}\n`,
  lv_frag: `0 4096 linear disk3 ${PE(5)}\n4096 4096 linear disk3 ${PE(10)}\n`,
};

test("a-linear: every lvm2 pattern reads back through hand-built linear/striped tables", { skip }, async () => {
  const { disks, cleanup } = loadImages("a-linear");
  try {
    const reg = new MapperRegistry(envOf(disks));
    for (const [lv, text] of Object.entries(A_TABLES)) {
      const d = reg.create(`fxlinear-${lv}`);
      await d.load(Table.parse(text));
      await d.resume();
    }
    const patterns = JSON.parse(readFixture("a-linear", "patterns.json")) as Pattern[];
    assert.equal(patterns.length, 13);
    for (const p of patterns) {
      const d = reg.get(`fxlinear-${p.lv}`)!;
      const b = new Uint8Array(p.length);
      await d.read(p.lv_offset, b);
      assert.equal(sha256(b), p.sha256, `${p.lv} @ ${p.lv_offset}`);
      assert.equal(Buffer.from(b.subarray(0, 64)).toString("latin1"), p.first_record);
    }
    // Writing through the LV lands at the image offsets lvm2 computed (across the disk1 -> disk2 and chunk boundaries).
    for (const p of patterns.filter((x) => x.pieces.length > 1)) {
      const d = reg.get(`fxlinear-${p.lv}`)!;
      const data = new Uint8Array(p.length).map((_, i) => (i * 7 + 1) & 0xff);
      await d.write(p.lv_offset, data);
      for (const piece of p.pieces) {
        const img = disks[basename(piece.image, ".img.gz")]!;
        const want = data.subarray(piece.lv_offset - p.lv_offset, piece.lv_offset - p.lv_offset + piece.length);
        assert.deepEqual(img.bytes.subarray(piece.image_offset, piece.image_offset + piece.length), want, `${p.lv} piece at ${piece.image_offset}`);
      }
    }
  } finally {
    cleanup();
  }
});

test("b-mirror: the synthetic disk log's dirty region 5 is resynced from leg 0 to leg 1; patterns end up on both legs", { skip }, async () => {
  const { disks, cleanup } = loadImages("b-mirror");
  try {
    const events: MapperEvent[] = [];
    const faults = Object.fromEntries(Object.entries(disks).map(([k, v]) => [k, new FaultBlockDevice(v, { name: k })]));
    const reg = new MapperRegistry(envOf(faults, events), defaultTargetTypes({ mirror: { cleanIntervalMs: 0, resyncEnabled: false } }));
    const sub: Record<string, string> = {
      "fxmirror-lv_mirror_mimage_0": `0 16384 linear disk1 ${PE(0)}\n`,
      "fxmirror-lv_mirror_mimage_1": `0 16384 linear disk2 ${PE(0)}\n`,
      "fxmirror-lv_mirror_mlog": `0 2048 linear disk3 ${PE(0)}\n`,
      "fxmirror-lv_corelog_mimage_0": `0 4096 linear disk1 ${PE(8)}\n`,
      "fxmirror-lv_corelog_mimage_1": `0 4096 linear disk2 ${PE(8)}\n`,
      "fxmirror-lv_lin": `0 4096 linear disk3 ${PE(1)}\n`,
    };
    for (const [name, text] of Object.entries(sub)) {
      const d = reg.create(name);
      await d.load(Table.parse(text));
      await d.resume();
    }
    const mirrorLine =
      "0 16384 mirror disk 2 fxmirror-lv_mirror_mlog 1024 2 fxmirror-lv_mirror_mimage_0 0 fxmirror-lv_mirror_mimage_1 0 1 handle_errors\n";
    const lvMirror = reg.create("fxmirror-lv_mirror");
    const [t] = await lvMirror.load(Table.parse(mirrorLine));
    assert.ok(MirrorTarget.is(t));
    await lvMirror.resume();
    assert.equal(lvMirror.table(), mirrorLine);
    assert.equal(
      lvMirror.status(),
      "0 16384 mirror 2 fxmirror-lv_mirror_mimage_0 fxmirror-lv_mirror_mimage_1 15/16 1 AA 3 disk fxmirror-lv_mirror_mlog A\n",
    );
    assert.equal(t.log.isInSync(5), false);
    // The header was rewritten as the kernel does (nr_regions = 16), bits kept.
    const logBytes = disks["disk3"]!.bytes.subarray(1048576, 1048576 + 1536);
    const decoded = decodeDiskLog(logBytes, 16);
    assert.equal(decoded.header.nrRegions, 16n);
    assert.deepEqual([...decoded.cleanBits], [0xdf, 0xff, 0, 0]);

    const patterns = (JSON.parse(readFixture("b-mirror", "patterns.json")) as Pattern[]).filter((p) => p.lv === "lv_mirror");
    const region5 = patterns.find((p) => p.mirror_legs_written?.length === 1)!;
    // Before the resync, region 5 is served from leg 0 only: leg 1 lacks it.
    const b = new Uint8Array(region5.length);
    await lvMirror.read(region5.lv_offset, b);
    assert.equal(sha256(b), region5.sha256);
    await reg.get("fxmirror-lv_mirror_mimage_1")!.read(region5.lv_offset, b);
    assert.ok(b.every((x) => x === 0), "leg 1 really lacks region 5");
    assert.equal(faults["disk2"]!.stats.reads, 1, "only the direct read above touched disk2");

    await t.setResyncEnabled(true);
    await t.whenInSync();
    assert.equal(t.status().resync.copiedRegions, 1);
    assert.match(lvMirror.status(), / 16\/16 1 AA /);
    assert.deepEqual(events.filter((e) => e.kind === "in-sync"), [{ kind: "in-sync", device: "fxmirror-lv_mirror" }]);
    for (const p of patterns) {
      for (const leg of ["disk1", "disk2"]) {
        const img = disks[leg]!.bytes;
        const off = 2048 * 512 + p.lv_offset; // PE 0 of each leg's PV
        assert.equal(sha256(img.subarray(off, off + p.length)), p.sha256, `${p.lv} @ ${p.lv_offset} on ${leg}`);
      }
    }
    // Region 5 is whole on leg 1 now, and a clean suspend writes the log back all clean.
    const r5 = [2048 * 512 + 5 * 1024 * 512, 2048 * 512 + 6 * 1024 * 512] as const;
    assert.deepEqual(disks["disk2"]!.bytes.subarray(...r5), disks["disk1"]!.bytes.subarray(...r5));
    await lvMirror.suspend();
    assert.deepEqual([...decodeDiskLog(logBytes, 16).cleanBits], [0xff, 0xff, 0, 0]);
    await lvMirror.resume();

    // The core-log mirror resyncs completely at activation.
    const core = reg.create("fxmirror-lv_corelog");
    const [c] = await core.load(
      Table.parse("0 4096 mirror core 1 1024 2 fxmirror-lv_corelog_mimage_0 0 fxmirror-lv_corelog_mimage_1 0\n"),
    );
    await core.resume();
    assert.match(core.status(), / 0\/4 1 AA 1 core\n$/);
    assert.ok(MirrorTarget.is(c));
    await c.setResyncEnabled(true);
    await c.whenInSync();
    assert.equal(c.status().resync.copiedRegions, 4);
    const corePattern = (JSON.parse(readFixture("b-mirror", "patterns.json")) as Pattern[]).find((p) => p.lv === "lv_corelog")!;
    const cb = new Uint8Array(corePattern.length);
    await core.read(corePattern.lv_offset, cb);
    assert.equal(sha256(cb), corePattern.sha256);

    // Sub-devices are in use by the mirrors.
    assert.deepEqual(reg.holders("fxmirror-lv_mirror_mimage_0"), ["fxmirror-lv_mirror"]);
    await assert.rejects(reg.remove("fxmirror-lv_mirror_mlog"), /in use/);
    for (const n of ["fxmirror-lv_mirror", "fxmirror-lv_corelog"]) await reg.remove(n);
    for (const n of Object.keys(sub)) await reg.remove(n);
  } finally {
    cleanup();
  }
});

test("b-mirror, the seed's drill: leg 1 wiped under a live mirror, reads stay correct; a new leg is synced with progress", { skip }, async () => {
  const { disks, cleanup } = loadImages("b-mirror");
  try {
    const spare = new MemoryBlockDevice("disk4", 16 << 20);
    const devs: Record<string, BlockDevice> = { ...disks, disk4: spare };
    const reg = new MapperRegistry(envOf(devs), defaultTargetTypes({ mirror: { cleanIntervalMs: 0, resyncIoBytes: 64 * 1024, resyncBatchBytes: 512 * 1024 } }));
    const mk = async (name: string, text: string): Promise<MappedDevice> => {
      const d = reg.create(name);
      await d.load(Table.parse(text));
      await d.resume();
      return d;
    };
    await mk("vg-m_mimage_0", `0 16384 linear disk1 ${PE(0)}\n`);
    await mk("vg-m_mimage_1", `0 16384 linear disk2 ${PE(0)}\n`);
    await mk("vg-m_mlog", `0 2048 linear disk3 ${PE(0)}\n`);
    const m = await mk("vg-m", "0 16384 mirror disk 2 vg-m_mlog 1024 2 vg-m_mimage_0 0 vg-m_mimage_1 0\n");
    const t = m.liveTargets()[0] as MirrorTarget;
    await t.whenInSync();
    const file = new Uint8Array(3 << 20).map((_, i) => (i * 31) & 0xff);
    await m.write(1 << 20, file);
    await m.flush();
    // dd if=/dev/zero of=leg1 bs=1M count=10
    disks["disk2"]!.bytes.fill(0, 0, 10 << 20);
    const back = new Uint8Array(file.length);
    await m.read(1 << 20, back);
    assert.deepEqual(back, file, "reads come from leg 0");

    // lvconvert -m1 onto the spare: leg 1 replaced by a new image on disk4, marked stale.
    await mk("vg-m_mimage_2", `0 16384 linear disk4 ${PE(0)}\n`);
    const [nt] = await m.load(Table.parse("0 16384 mirror disk 2 vg-m_mlog 1024 2 vg-m_mimage_0 0 vg-m_mimage_2 0\n"));
    const mt = nt as MirrorTarget;
    mt.markLegStale(1);
    mt.setResyncRate(0);
    await m.resume();
    const progress: number[] = [];
    while (mt.status().insyncRegions < mt.status().totalRegions) {
      progress.push(mt.status().insyncRegions);
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(progress.length > 1 && progress[0]! < 16, `progress ${progress.join(",")}`);
    await m.read(1 << 20, back);
    assert.deepEqual(back, file);
    const leg0 = disks["disk1"]!.bytes.subarray(1 << 20, (1 << 20) + 16384 * 512);
    const leg2 = spare.bytes.subarray(1 << 20, (1 << 20) + 16384 * 512);
    assert.deepEqual(leg2, leg0, "the new leg holds a full copy");
  } finally {
    cleanup();
  }
});
