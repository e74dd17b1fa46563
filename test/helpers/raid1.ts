import assert from "node:assert/strict";
import { join } from "node:path";
import type { Lab } from "./lab.js";
import { DaemonClient } from "../../src/daemon/control-client.js";
import type { ActiveLvStatus, MappedDeviceStatus } from "../../src/daemon/protocol.js";
import { decodeDmRaidSuperblock, type DmRaidSuperblock } from "../../src/mapper/raid/dm-raid-superblock.js";
import { RMETA_BITMAP_OFFSET_BYTES, BITMAP_SUPERBLOCK_BYTES } from "../../src/mapper/raid/md-bitmap-format.js";

/**
 * What the raid1 integration tests read from the outside: PV files (images
 * and rmeta at their extents), the dm-raid superblock and md bitmap on disk,
 * and the daemon's status of a raid1 LV. The layout the tests rely on is
 * ulvm's (and lvm2's) default: pe_start 1 MiB, 4 MiB extents, each rmeta at
 * the first extent of its image's area.
 */
export const MiB = 1 << 20;
export const PE_START_BYTES = MiB;
export const EXTENT_BYTES = 4 * MiB;

export { pread, pwrite } from "./file-bytes.js";
import { pread } from "./file-bytes.js";

/** Two ranges of two files hold the same bytes (compared 4 MiB at a time). */
export function sameBytes(a: string, aOffset: number, b: string, bOffset: number, lengthBytes: number): boolean {
  for (let off = 0; off < lengthBytes; off += 4 * MiB) {
    const n = Math.min(4 * MiB, lengthBytes - off);
    if (!pread(a, aOffset + off, n).equals(pread(b, bOffset + off, n))) return false;
  }
  return true;
}

/** The dm-raid superblock of the rmeta at extent `pe` of a PV file; fails the test if there is none. */
export function superblockAt(pv: string, pe = 0): DmRaidSuperblock {
  const r = decodeDmRaidSuperblock(pread(pv, PE_START_BYTES + pe * EXTENT_BYTES, 4096));
  assert.equal(r.kind, "superblock", "an rmeta with a dm-raid superblock");
  return r.kind === "superblock" ? r.superblock : (undefined as never);
}

/** How many of the first `regions` bits of the md bitmap in the rmeta at extent `pe` are set (dirty). */
export function bitmapSetBits(pv: string, regions: number, pe = 0): number {
  const bits = pread(pv, PE_START_BYTES + pe * EXTENT_BYTES + RMETA_BITMAP_OFFSET_BYTES + BITMAP_SUPERBLOCK_BYTES, Math.ceil(regions / 8));
  let n = 0;
  for (let r = 0; r < regions; r++) if ((bits[r >> 3]! >> (r & 7)) & 1) n++;
  return n;
}

/** The daemon's status of every active LV of a lab. */
export async function daemonStatus(lab: Lab): Promise<ActiveLvStatus[]> {
  const c = await DaemonClient.tryConnect({ systemDir: join(lab.dir, "etc"), runDir: join(lab.dir, "run"), devDir: join(lab.dir, "dev") });
  assert.ok(c, "the daemon runs");
  try {
    return (await c.request<{ lvs: ActiveLvStatus[] }>({ op: "status" })).lvs;
  } finally {
    c.close();
  }
}

/** The status of an active LV's own (top) device. */
export async function topStatus(lab: Lab, lv: string): Promise<MappedDeviceStatus> {
  const a = (await daemonStatus(lab)).find((l) => l.lv === lv);
  assert.ok(a, `${lv} is active`);
  return a.devices.find((d) => d.lvName === lv)!;
}

/** Poll (every 50 ms, 10 s at most) until the raid1 LV's health chars match; returns the last status. */
export async function waitRaidHealth(lab: Lab, lv: string, re: RegExp): Promise<MappedDeviceStatus> {
  let st = await topStatus(lab, lv);
  for (let i = 0; i < 200 && !re.test(st.raid?.health ?? ""); i++) {
    lab.run("sleep", ["0.05"]);
    st = await topStatus(lab, lv);
  }
  return st;
}
