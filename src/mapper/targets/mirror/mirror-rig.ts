/**
 * Test rig for mirror tests (not used by production code): N legs and a log
 * on memory devices behind FaultBlockDevices, a mapped device with one
 * mirror line, and an env that records events.
 */
import type { MirrorOptions } from "./mirror-target.js";
import type { TestEnv } from "../../test-helpers.js";
import { MirrorTarget } from "./mirror-target.js";
import { MappedDevice } from "../../mapped-device.js";
import { Table } from "../../table.js";
import { defaultTargetTypes } from "../../target-types.js";
import { testEnv } from "../../test-helpers.js";
import { FaultBlockDevice, IoRecorder } from "../../../blockdev/fault-block-device.js";
import { MemoryBlockDevice } from "../../../blockdev/memory-block-device.js";
import { MIRROR_MAGIC, encodeDiskLog } from "../../dirty-log/disk-log-format.js";
import { bitsetBytes } from "../../dirty-log/bitset.js";

export interface RigOptions {
  legs?: number;
  sizeSectors?: number;
  regionSectors?: number;
  log?: "core" | "disk";
  sync?: "sync" | "nosync";
  handleErrors?: boolean;
  mirror?: Partial<MirrorOptions>;
  /** Initial disk log: all regions clean/in sync, or a fresh LVM log (full resync). */
  initLog?: "clean" | "fresh";
  recorder?: IoRecorder;
  /** Reuse backing memories (to "restart" after a crash). */
  memories?: { legs: MemoryBlockDevice[]; log: MemoryBlockDevice };
  /** Don't resume (e.g. to mark a leg stale first). */
  noResume?: boolean;
}

export interface Rig {
  dev: MappedDevice;
  target: MirrorTarget;
  legs: FaultBlockDevice[];
  legMems: MemoryBlockDevice[];
  log: FaultBlockDevice;
  logMem: MemoryBlockDevice;
  env: TestEnv;
  table: Table;
  sizeSectors: number;
  regionSectors: number;
}

export function mirrorLine(o: RigOptions, sizeSectors: number, regionSectors: number, legs: number): string {
  const sync = o.sync ? [o.sync] : [];
  const log = (o.log ?? "disk") === "disk" ? ["disk", String(2 + sync.length), "log", String(regionSectors), ...sync] : ["core", String(1 + sync.length), String(regionSectors), ...sync];
  const legArgs = Array.from({ length: legs }, (_, i) => [`leg${i}`, "0"]).flat();
  return `0 ${sizeSectors} mirror ${[...log, String(legs), ...legArgs, ...(o.handleErrors ? ["1", "handle_errors"] : [])].join(" ")}\n`;
}

export async function mirrorRig(o: RigOptions = {}): Promise<Rig> {
  const nLegs = o.legs ?? 2;
  const sizeSectors = o.sizeSectors ?? 2048;
  const regionSectors = o.regionSectors ?? 64;
  const regionCount = Math.ceil(sizeSectors / regionSectors);
  const legMems = o.memories?.legs ?? Array.from({ length: nLegs }, (_, i) => new MemoryBlockDevice(`leg${i}`, sizeSectors * 512));
  const logMem = o.memories?.log ?? new MemoryBlockDevice("log", 64 * 1024);
  if (!o.memories && (o.log ?? "disk") === "disk") {
    const clean = (o.initLog ?? "clean") === "clean";
    const bits = new Uint8Array(bitsetBytes(regionCount)).fill(clean ? 0xff : 0);
    logMem.bytes.set(encodeDiskLog({ magic: MIRROR_MAGIC, version: 2, nrRegions: clean ? BigInt(regionCount) : 0xffffffffffffffffn }, bits, regionCount));
  }
  const rec = o.recorder ? { recorder: o.recorder } : {};
  const legs = legMems.map((m, i) => new FaultBlockDevice(m, { name: `leg${i}`, ...rec }));
  const log = new FaultBlockDevice(logMem, { name: "log", ...rec });
  const devs: Record<string, FaultBlockDevice> = { log };
  legs.forEach((l, i) => (devs[`leg${i}`] = l));
  const env = testEnv(devs);
  const dev = new MappedDevice("vg-lv", {
    env,
    targetTypes: defaultTargetTypes({ mirror: { cleanIntervalMs: 0, resyncBatchBytes: 64 * 1024, resyncIoBytes: 16 * 1024, ...(o.mirror ?? {}) } }),
  });
  const table = Table.parse(mirrorLine(o, sizeSectors, regionSectors, nLegs));
  const [t] = await dev.load(table);
  if (!MirrorTarget.is(t)) throw new Error("not a mirror");
  if (!o.noResume) await dev.resume();
  return { dev, target: t, legs, legMems, log, logMem, env, table, sizeSectors, regionSectors };
}
