/**
 * `npm run torture`: every scenario of issue 5, N iterations each, one line
 * per scenario (iterations, failures, seconds, the figure it measures).
 *
 *   node dist/test/torture/run.js [--seed S] [--scenario NAME[,NAME]] [--iterations N]
 *                                 [--scale F] [--quick] [--verbose] [--keep] [--list]
 *
 * --seed       base seed (default: TORTURE_SEED or derived from the clock; always printed)
 * --iterations N for every selected scenario (default: each scenario's own, times --scale)
 * --quick      the small sizes of the slice inside `npm test`
 * --keep       copy the disks of a failed iteration to /var/tmp/ulvm-torture-kept-*
 * A failure prints its seed and the command that replays it. Exit status 1 if any failed.
 */
import { SCENARIOS } from "./scenarios/index.js";
import { resultLine, runScenario, type ScenarioResult } from "./lib/scenario.js";
import { World } from "./lib/world.js";

function parse(argv: string[]): Map<string, string | true> {
  const out = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const [k, v] = a.slice(2).split("=", 2) as [string, string | undefined];
    if (v !== undefined) out.set(k, v);
    else if (["seed", "scenario", "iterations", "scale"].includes(k)) out.set(k, argv[++i] ?? "");
    else out.set(k, true);
  }
  return out;
}

async function main(): Promise<number> {
  const args = parse(process.argv.slice(2));
  if (args.has("list")) {
    for (const s of SCENARIOS) console.log(`${s.name.padEnd(12)} ${String(s.defaultIterations).padStart(3)}  ${s.title}${s.unavailable() ? `  (cannot run here: ${s.unavailable()})` : ""}`);
    return 0;
  }
  const seedArg = args.get("seed") ?? process.env.TORTURE_SEED;
  const seed = typeof seedArg === "string" && seedArg !== "" ? Number(seedArg) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
  const names = typeof args.get("scenario") === "string" ? (args.get("scenario") as string).split(",") : SCENARIOS.map((s) => s.name);
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(", ")} (known: ${SCENARIOS.map((s) => s.name).join(", ")})`);
  const scale = Number(args.get("scale") ?? process.env.TORTURE_SCALE ?? 1);
  const itArg = args.get("iterations") ?? process.env.TORTURE_ITERATIONS;
  const quick = args.has("quick");
  const t0 = Date.now();
  console.log(`torture: seed ${seed}${quick ? " (quick)" : ""}; replay one iteration with: npm run torture -- --seed S --scenario X --iterations 1`);
  const results: ScenarioResult[] = [];
  for (const s of SCENARIOS.filter((x) => names.includes(x.name))) {
    const iterations = typeof itArg === "string" ? Number(itArg) : Math.max(1, Math.round((quick ? s.quickIterations : s.defaultIterations) * scale));
    const r = await runScenario(s, { seed, iterations, quick, verbose: args.has("verbose"), keep: args.has("keep"), print: (l) => console.log(l) });
    results.push(r);
    console.log(resultLine(r));
  }
  const failures = results.reduce((n, r) => n + r.failures.length, 0);
  console.log(`torture: ${results.length} scenarios, ${results.reduce((n, r) => n + r.iterations, 0)} iterations, ${failures} failures in ${((Date.now() - t0) / 1000).toFixed(0)} s (seed ${seed})`);
  return failures ? 1 : 0;
}

/** Interrupted: stop daemons, unmount, detach loops, remove the worlds still alive. */
function cleanupAndExit(code: number, why: string): void {
  console.error(`torture: ${why}; cleaning up ${World.live.size} world(s)`);
  for (const w of [...World.live]) {
    try {
      w.cleanup();
    } catch (e) {
      console.error(`torture: cleanup of ${w.dir}: ${(e as Error).message}`);
    }
  }
  process.exit(code);
}
process.on("SIGINT", () => cleanupAndExit(130, "interrupted"));
process.on("SIGTERM", () => cleanupAndExit(143, "terminated"));
process.on("uncaughtException", (e) => cleanupAndExit(2, `uncaught ${e.stack ?? e}`));
process.on("unhandledRejection", (e) => cleanupAndExit(2, `unhandled rejection ${(e as Error)?.stack ?? e}`));

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`torture: ${(e as Error).stack ?? e}`);
    process.exit(2);
  },
);
