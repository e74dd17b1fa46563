import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Lab } from "./lab.js";
import type { DevicePathRecord } from "../../src/daemon/device-path.js";

/** The daemon's record of the lab's one device path ($ULVM_RUN_DIR/devices/*.json). */
export function devicePathRecord(lab: Lab): DevicePathRecord {
  const dir = join(lab.dir, "run", "devices");
  const f = readdirSync(dir).find((n) => n.endsWith(".json"));
  assert.ok(f, "a device-path record");
  return JSON.parse(readFileSync(join(dir, f), "utf8")) as DevicePathRecord;
}
