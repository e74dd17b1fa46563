import type { Scenario } from "../lib/scenario.js";
import { sum } from "../lib/scenario.js";
import { powerLossScenario, powerLossIteration, type Kind } from "./power-loss.js";

/**
 * Issue 17: power loss under raid1 + integrity, in bitmap mode (B) and in
 * journal mode (J), in turn. The power-loss scenario's recording and replay
 * (see power-loss.ts), on `lvcreate --type raid1 -m1 --raidintegrity y
 * --raidintegritymode bitmap|journal`; its checks on the raid1 bitmap and
 * the flushed data hold as they are, with each leg's data read as the
 * activation serves it (journal replayed), and for every crash state, on
 * each leg, by dm-integrity's on-disk rules (test/torture/lib/integrity-oracle.ts):
 *   - no block with a valid tag over data the client never wrote (every
 *     block whose tag matches holds zeroes or a whole write of the client's);
 *   - no false mismatch: every block whose tag does not match is one the
 *     activation repairs (dirty bit set in B, journal entry replayed in J);
 *   - the journal's commit ids are valid, the superblock intact;
 * and for the states activated: every block reads, the raid1 recovers
 * exactly what its bitmap marks, flushed data is intact, and
 * `lvchange --syncaction check` then counts no mismatch (raid_mismatch_count
 * and integritymismatches 0).
 *
 * A torn sector (the crash cut one write inside a sector) is tolerated only
 * in bitmap mode and only where the write was not durable: bitmap mode
 * recomputes the tags of dirty regions (as the kernel does), so the torn
 * bytes read back under a fresh tag; journal mode never shows them.
 */
const KINDS: readonly Kind[] = ["raid1-integrity-bitmap", "raid1-integrity-journal"];

export const integrityPowerLossScenario: Scenario = {
  name: "integrity-power-loss",
  title: "power loss under raid1 + integrity (bitmap and journal mode): recorded writes replayed as crash states",
  defaultIterations: 6,
  quickIterations: 2,
  variants: KINDS.length,
  unavailable: powerLossScenario.unavailable,
  iterate: (ctx) => powerLossIteration(ctx, KINDS[ctx.variant]!),
  figure(all) {
    const part = (mode: string, f: typeof all): string =>
      `${mode}: ${f.length} iterations, ${sum(f, "states")} crash states (${sum(f, "records")} recorded writes/flushes), ` +
      `${sum(f, "integBlocks")} tags checked: valid tags over data never written 0, false mismatches 0, ${sum(f, "integRepairable")} stale tags all covered, ${sum(f, "integReplayed")} blocks in journal replays; ` +
      `flushed data lost 0; ${sum(f, "activated")} activated, checked: mismatches ${sum(f, "checkMismatches")}; wrong orderings caught ${sum(f, "raidMutantsCaught")}/${sum(f, "raidMutants")}, integrity oracle self-test caught ${sum(f, "integMutantsCaught")}/${sum(f, "integMutants")}`;
    return `${part("bitmap", all.filter((f) => f["journal"] !== 1))}; ${part("journal", all.filter((f) => f["journal"] === 1))}`;
  },
};
