import { test } from "node:test";
import assert from "node:assert/strict";
import { MappedDevice } from "../mapped-device.js";
import { Table } from "../table.js";
import { stripeMapSector } from "./striped.js";
import { Prng, equalBytes, mem, testEnv } from "../test-helpers.js";
import { SECTOR_BYTES } from "../../base/bytes.js";
import type { MemoryBlockDevice } from "../../blockdev/memory-block-device.js";

/**
 * Differential test: random I/O through a table mixing linear and striped
 * targets against a plain reference buffer, then every PV sector is checked
 * against an independent model of the mapping (built by enumerating rows,
 * stripes and chunks in order rather than by stripe_map_sector's division).
 */
interface Piece {
  readonly type: "linear" | "striped";
  readonly lengthSectors: number;
  readonly chunkSectors?: number;
  readonly areas: ReadonlyArray<{ pv: string; offsetSectors: number }>;
}

function tableOf(pieces: readonly Piece[]): Table {
  let start = 0;
  return Table.from(
    pieces.map((p) => {
      const args =
        p.type === "linear"
          ? [p.areas[0]!.pv, String(p.areas[0]!.offsetSectors)]
          : [String(p.areas.length), String(p.chunkSectors), ...p.areas.flatMap((a) => [a.pv, String(a.offsetSectors)])];
      const line = { startSector: start, lengthSectors: p.lengthSectors, targetType: p.type, args };
      start += p.lengthSectors;
      return line;
    }),
  );
}

/** LV sector -> (pv, sector), by enumeration. */
function modelMap(pieces: readonly Piece[]): Array<{ pv: string; sector: number }> {
  const map: Array<{ pv: string; sector: number }> = [];
  for (const p of pieces) {
    if (p.type === "linear") {
      for (let i = 0; i < p.lengthSectors; i++) map.push({ pv: p.areas[0]!.pv, sector: p.areas[0]!.offsetSectors + i });
      continue;
    }
    const k = p.areas.length;
    const c = p.chunkSectors!;
    const rows = p.lengthSectors / k / c;
    for (let row = 0; row < rows; row++)
      for (let s = 0; s < k; s++) for (let j = 0; j < c; j++) map.push({ pv: p.areas[s]!.pv, sector: p.areas[s]!.offsetSectors + row * c + j });
  }
  return map;
}

const PIECES: Piece[] = [
  { type: "linear", lengthSectors: 1000, areas: [{ pv: "pv0", offsetSectors: 100 }] },
  {
    type: "striped",
    lengthSectors: 768,
    chunkSectors: 16,
    areas: [
      { pv: "pv1", offsetSectors: 0 },
      { pv: "pv2", offsetSectors: 0 },
      { pv: "pv0", offsetSectors: 2000 },
    ],
  },
  // non-power-of-two chunk and stripe count handled like the kernel's sector_div path
  {
    type: "striped",
    lengthSectors: 240,
    chunkSectors: 24,
    areas: [
      { pv: "pv1", offsetSectors: 3000 },
      { pv: "pv2", offsetSectors: 3000 },
    ],
  },
  { type: "linear", lengthSectors: 500, areas: [{ pv: "pv2", offsetSectors: 5000 }] },
];

test("stripeMapSector matches the fixture example from the reference (§7)", () => {
  // lv_stripe: LV byte 135168 = sector 264 -> chunk 2 -> stripe 0, row 1 -> sector 136 of stripe 0's
  // area (disk2 byte 6361088 = pe_start 2048 + PE 5 * 2048 + 136 sectors)
  assert.deepEqual(stripeMapSector(264, 128, 2), { stripe: 0, sector: 136 });
  assert.deepEqual(stripeMapSector(127, 128, 2), { stripe: 0, sector: 127 });
  assert.deepEqual(stripeMapSector(128, 128, 2), { stripe: 1, sector: 0 });
  assert.deepEqual(stripeMapSector(24 * 3 + 5, 24, 3), { stripe: 0, sector: 24 + 5 });
});

for (const seed of [1, 2, 3]) {
  test(`linear + striped mapping agrees with a reference model under random I/O (seed ${seed})`, async () => {
    const rng = new Prng(seed);
    const pvs: Record<string, MemoryBlockDevice> = { pv0: mem("pv0", 4 << 20), pv1: mem("pv1", 4 << 20), pv2: mem("pv2", 4 << 20) };
    const dev = new MappedDevice("vg-lv", { env: testEnv(pvs) });
    const table = tableOf(PIECES);
    await dev.load(table);
    await dev.resume();
    const totalSectors = table.sizeSectors;
    const ref = new Uint8Array(totalSectors * SECTOR_BYTES);
    const boundaries = [1000, 1768, 2008];
    for (let op = 0; op < 300; op++) {
      let start: number;
      // Half the requests straddle a target boundary.
      if (rng.int(2) === 0) start = Math.max(0, boundaries[rng.int(boundaries.length)]! - 1 - rng.int(40));
      else start = rng.int(totalSectors);
      const len = Math.min(1 + rng.int(80), totalSectors - start);
      if (rng.int(3) > 0) {
        const data = rng.pattern(len * SECTOR_BYTES, op + seed * 1000);
        await dev.write(start * SECTOR_BYTES, data, { fua: rng.int(4) === 0 });
        ref.set(data, start * SECTOR_BYTES);
      } else {
        const into = new Uint8Array(len * SECTOR_BYTES);
        await dev.read(start * SECTOR_BYTES, into);
        assert.ok(equalBytes(into, ref.subarray(start * SECTOR_BYTES, (start + len) * SECTOR_BYTES)), `read mismatch at op ${op}`);
      }
      if (op % 50 === 0) await dev.flush();
    }
    // Concurrent reads across everything.
    const whole = new Uint8Array(ref.length);
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => {
        const a = Math.floor((i * totalSectors) / 8);
        const b = Math.floor(((i + 1) * totalSectors) / 8);
        return dev.read(a * SECTOR_BYTES, whole.subarray(a * SECTOR_BYTES, b * SECTOR_BYTES));
      }),
    );
    assert.ok(equalBytes(whole, ref));
    // Every LV sector sits where the enumeration model says; nothing else on the PVs was touched.
    const map = modelMap(PIECES);
    assert.equal(map.length, totalSectors);
    const used = new Map<string, Set<number>>(Object.keys(pvs).map((k) => [k, new Set<number>()]));
    map.forEach(({ pv, sector }, lvSector) => {
      used.get(pv)!.add(sector);
      const got = pvs[pv]!.bytes.subarray(sector * SECTOR_BYTES, (sector + 1) * SECTOR_BYTES);
      const want = ref.subarray(lvSector * SECTOR_BYTES, (lvSector + 1) * SECTOR_BYTES);
      if (!equalBytes(got, want)) assert.fail(`LV sector ${lvSector} is not at ${pv}:${sector}`);
    });
    for (const [name, pv] of Object.entries(pvs)) {
      const u = used.get(name)!;
      for (let s = 0; s < pv.sizeBytes / SECTOR_BYTES; s++) {
        if (u.has(s)) continue;
        const sec = pv.bytes.subarray(s * SECTOR_BYTES, (s + 1) * SECTOR_BYTES);
        if (sec.some((b) => b !== 0)) assert.fail(`${name}:${s} outside every mapped area was written`);
      }
    }
  });
}

test("striped status reports per-stripe health and the table reproduces its arguments", async () => {
  const pvs = { a: mem("a", 1 << 20), b: mem("b", 1 << 20) };
  const dev = new MappedDevice("s", { env: testEnv(pvs) });
  await dev.load(Table.parse("0 256 striped 2 64 a 0 b 128\n"));
  await dev.resume();
  assert.equal(dev.table(), "0 256 striped 2 64 a 0 b 128\n");
  assert.equal(dev.status(), "0 256 striped 2 a b 1 AA\n");
});
