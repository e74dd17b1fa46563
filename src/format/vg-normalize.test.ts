import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import fc from "fast-check";
import { FIXTURES_DIR, readFixture } from "../../test/helpers/fixtures.js";
import { parseVgText } from "./vg-import.js";
import { exportVgText } from "./vg-export.js";
import { normalizeAsParsed } from "./vg-normalize.js";
import type { VolumeGroup } from "../model/types.js";

/** Compare as JSON does (undefined properties and absent ones are the same thing to readers). */
const j = (x: unknown): unknown => JSON.parse(JSON.stringify(x));
const roundTrip = (vg: VolumeGroup): VolumeGroup => parseVgText(exportVgText(vg, { style: "disk", description: "x", nowSeconds: 0 })).vg;

const fixtureVgs = (): VolumeGroup[] => {
  const out: VolumeGroup[] = [];
  for (const fx of readdirSync(FIXTURES_DIR).filter((d) => !d.includes(".")))
    for (const f of readdirSync(`${FIXTURES_DIR}/${fx}`).filter((x) => x.endsWith("-committed.raw") || x.endsWith(".vg"))) out.push(parseVgText(readFixture(fx, f)).vg);
  return out;
};

test("normalizeAsParsed(vg) is what reading back the exported text gives, for every fixture", () => {
  for (const vg of fixtureVgs()) assert.deepEqual(j(normalizeAsParsed(vg)), j(roundTrip(vg)));
});

test("normalizeAsParsed matches the round trip for VGs changed the way commands change them (property)", () => {
  const base = fixtureVgs();
  const words = ["READ", "WRITE", "VISIBLE", "FIXED_MINOR", "NOTSYNCED", "LOCKED"];
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: base.length - 1 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.constantFrom(...words), fc.boolean(), fc.constantFrom("inherit", "normal", "cling", undefined), fc.integer({ min: -1, max: 3 })), { maxLength: 8 }),
      fc.boolean(),
      (i, edits, reverse) => {
        const vg = structuredClone({ ...base[i]!, historicalLvs: undefined }) as VolumeGroup;
        if (reverse) vg.lvs.reverse();
        for (const [k, w, add, alloc, ra] of edits) {
          const lv = vg.lvs[k % Math.max(1, vg.lvs.length)];
          if (!lv) continue;
          if (w === "FIXED_MINOR") continue; // needs major/minor keys alongside
          lv.status = add ? [...lv.status.filter((s) => s !== w), w] : lv.status.filter((s) => s !== w || s === "VISIBLE");
          lv.flags = add ? [...lv.flags, "FUTURE_COMPAT_WORD", "ACTIVATION_SKIP"] : lv.flags;
          lv.allocationPolicy = alloc;
          lv.readAheadSectors = ra === 0 || ra === 1 ? undefined : ra === -1 ? -1 : ra * 256;
        }
        vg.pvs.forEach((pv, n) => {
          if (n % 2) pv.status = [...pv.status.filter((s) => s !== "MISSING"), "MISSING"];
        });
        assert.deepEqual(j(normalizeAsParsed(vg)), j(roundTrip(vg)));
      },
    ),
    { numRuns: 200, seed: 42 },
  );
});
