import { test } from "node:test";
import assert from "node:assert/strict";
import { SCENARIOS } from "./scenarios/index.js";
import { runScenario } from "./lib/scenario.js";

/**
 * The short, seeded slice of the torture suite inside `npm test`: every
 * scenario of issue 5 with its quick sizes and one or two iterations, with a
 * fixed seed. The full run is `npm run torture` (test/torture/run.ts).
 */
const SEED = 20251125;

for (const s of SCENARIOS) {
  const skip = s.quickIterations === 0 ? "not in the slice (npm run torture runs it)" : s.unavailable();
  test(`torture slice: ${s.name}: ${s.title} (seed ${SEED})`, { skip, timeout: 600_000 }, async () => {
    const lines: string[] = [];
    const r = await runScenario(s, { seed: SEED, iterations: s.quickIterations, quick: true, verbose: false, keep: false, print: (l) => lines.push(l) });
    assert.equal(r.failures.length, 0, `${lines.join("\n")}\nreplay: npm run torture -- --quick --seed ${r.failures[0]?.seed} --scenario ${s.name} --iterations 1`);
  });
}
