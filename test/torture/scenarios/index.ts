import type { Scenario } from "../lib/scenario.js";
import { crashScenario } from "./crash.js";
import { tornMetadataScenario } from "./torn-metadata.js";
import { legFaultsScenario } from "./leg-faults.js";
import { powerLossScenario } from "./power-loss.js";
import { integrityPowerLossScenario } from "./integrity-power-loss.js";
import { integrityCrashScenario } from "./integrity-crash.js";
import { concurrencyScenario } from "./concurrency.js";
import { hostileNbdScenario } from "./hostile-nbd.js";
import { hostileServerScenario } from "./hostile-server.js";
import { corruptDisksScenario } from "./corrupt-disks.js";
import { outOfSpaceScenario } from "./out-of-space.js";
import { filesystemScenario } from "./filesystem.js";
import { bitRotScenario } from "./bit-rot.js";

/**
 * Issue 5's scenarios, in its order, with issue 17's raid1 + integrity kill -9 and power loss after
 * power-loss, and issue 18's hostile server beside the hostile client; then issue 17's bit rot.
 */
export const SCENARIOS: readonly Scenario[] = [crashScenario, powerLossScenario, integrityCrashScenario, integrityPowerLossScenario, tornMetadataScenario, legFaultsScenario, concurrencyScenario, hostileNbdScenario, hostileServerScenario, corruptDisksScenario, outOfSpaceScenario, filesystemScenario, bitRotScenario];
