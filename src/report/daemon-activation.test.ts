import { test } from "node:test";
import assert from "node:assert/strict";
import type { ActiveLvStatus } from "../daemon/protocol.js";
import { activationFromStatus } from "./daemon-activation.js";
import { copyPercent, lvAttr } from "./lv-attr.js";
import { percentText } from "./percent.js";
import { MIRROR_VG, viewFromText } from "./test-helpers.js";

const dev = (lvName: string, openCount: number, sync?: [number, number]): ActiveLvStatus["devices"][number] => ({
  name: `vgm-${lvName}`, lvName, state: "ACTIVE", sizeSectors: 0, openCount, table: "", status: "",
  ...(sync ? { sync: { insyncRegions: sync[0], totalRegions: sync[1], legHealth: ["A", "A"] } } : {}),
});

test("activationFromStatus(): the daemon's devices become lvm2-style LV states, sub-LVs included", () => {
  const st = activationFromStatus([
    { vg: "vgm", lv: "mir", lvId: "x", exportName: "vgm/mir", devicePath: undefined, openCount: 2, suspended: false,
      devices: [dev("mir_mlog", 1), dev("mir_mimage_0", 1), dev("mir_mimage_1", 1), dev("mir", 0, [8, 16])] },
  ]);
  assert.equal(st.lvState("vgm", "mir")?.openCount, 2, "the top LV's openers are the daemon's (NBD clients, mounts)");
  assert.equal(st.lvState("vgm", "mir_mimage_0")?.openCount, 1);
  assert.equal(st.lvState("vgm", "lin"), undefined);
  const v = viewFromText(MIRROR_VG, { activation: st });
  assert.equal(lvAttr(v.lvByName.get("mir")!), "mwi-aom---");
  assert.equal(lvAttr(v.lvByName.get("mir_mimage_1")!), "Iwi-aom---");
  assert.equal(percentText(copyPercent(v.lvByName.get("mir")!)), "50.00");
  assert.equal(st.lvState("vgm", "mir")?.monitoring, "monitored");
});

test("activationFromStatus(): a suspended device shows as suspended", () => {
  const st = activationFromStatus([
    { vg: "vgm", lv: "lin", lvId: "x", exportName: "vgm/lin", devicePath: undefined, openCount: 0, suspended: true,
      devices: [{ ...dev("lin", 0), state: "SUSPENDED" }] },
  ]);
  assert.equal(lvAttr(viewFromText(MIRROR_VG, { activation: st }).lvByName.get("lin")!), "-wi-s-----");
});
