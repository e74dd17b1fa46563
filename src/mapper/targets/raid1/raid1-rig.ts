/**
 * Test rig for raid1 tests (not used by production code): N slots, each an
 * rmeta and an rimage on memory devices behind FaultBlockDevices, a mapped
 * device with one `raid raid1` line, and an env that records events.
 */
import type { MirrorOptions } from "../mirror/mirror-target.js";
import type { TestEnv } from "../../test-helpers.js";
import { Raid1Target } from "./raid1-target.js";
import { MappedDevice } from "../../mapped-device.js";
import { Table } from "../../table.js";
import { defaultTargetTypes } from "../../target-types.js";
import { testEnv } from "../../test-helpers.js";
import { FaultBlockDevice, IoRecorder } from "../../../blockdev/fault-block-device.js";
import { MemoryBlockDevice } from "../../../blockdev/memory-block-device.js";

export interface Raid1RigOptions {
  legs?: number;
  sizeSectors?: number;
  regionSectors?: number;
  /** Extra raid parameters after the chunk size (e.g. ["nosync"], ["rebuild", "1"]). */
  params?: string[];
  /** Slots written `- -`. */
  absent?: number[];
  raid?: Partial<MirrorOptions>;
  recorder?: IoRecorder;
  /** Reuse backing memories (to reopen, or "restart" after a crash). */
  memories?: { meta: MemoryBlockDevice[]; data: MemoryBlockDevice[] };
  noResume?: boolean;
}

export interface Raid1Rig {
  dev: MappedDevice;
  target: Raid1Target;
  meta: FaultBlockDevice[];
  data: FaultBlockDevice[];
  metaMems: MemoryBlockDevice[];
  dataMems: MemoryBlockDevice[];
  env: TestEnv;
  sizeSectors: number;
  regionSectors: number;
}

export const RMETA_BYTES = 64 * 1024;

export function raid1Line(o: Raid1RigOptions, sizeSectors: number, regionSectors: number, legs: number): string {
  const params = ["0", ...(o.params ?? []), "region_size", String(regionSectors)];
  const devs = Array.from({ length: legs }, (_, i) => ((o.absent ?? []).includes(i) ? ["-", "-"] : [`rmeta${i}`, `rimage${i}`])).flat();
  return `0 ${sizeSectors} raid raid1 ${params.length} ${params.join(" ")} ${legs} ${devs.join(" ")}\n`;
}

export async function raid1Rig(o: Raid1RigOptions = {}): Promise<Raid1Rig> {
  const n = o.legs ?? 2;
  const sizeSectors = o.sizeSectors ?? 2048;
  const regionSectors = o.regionSectors ?? 64;
  const metaMems = o.memories?.meta ?? Array.from({ length: n }, (_, i) => new MemoryBlockDevice(`rmeta${i}`, RMETA_BYTES));
  const dataMems = o.memories?.data ?? Array.from({ length: n }, (_, i) => new MemoryBlockDevice(`rimage${i}`, sizeSectors * 512));
  const rec = o.recorder ? { recorder: o.recorder } : {};
  const meta = metaMems.map((m, i) => new FaultBlockDevice(m, { name: `rmeta${i}`, ...rec }));
  const data = dataMems.map((m, i) => new FaultBlockDevice(m, { name: `rimage${i}`, ...rec }));
  const devs: Record<string, FaultBlockDevice> = {};
  meta.forEach((d, i) => (devs[`rmeta${i}`] = d));
  data.forEach((d, i) => (devs[`rimage${i}`] = d));
  const env = testEnv(devs);
  const dev = new MappedDevice("vg-lv", {
    env,
    targetTypes: defaultTargetTypes({ raid: { cleanIntervalMs: 0, resyncBatchBytes: 64 * 1024, resyncIoBytes: 16 * 1024, resyncThreads: 0, legWriteThread: false, ...(o.raid ?? {}) } }),
  });
  const [t] = await dev.load(Table.parse(raid1Line(o, sizeSectors, regionSectors, n)));
  if (!Raid1Target.is(t)) throw new Error("not a raid1");
  if (!o.noResume) await dev.resume();
  return { dev, target: t, meta, data, metaMems, dataMems, env, sizeSectors, regionSectors };
}
