import { Rng, iterationSeed } from "./rng.js";

/**
 * What a torture scenario is, and the loop that runs one: N iterations, each
 * with its own seed (iteration 0 uses the base seed, so a printed seed
 * replays with `--seed S --scenario X --iterations 1`), counting failures
 * and summing the figures each iteration measures.
 */
export type Figures = Record<string, number>;

export interface IterationContext {
  readonly seed: number;
  readonly index: number;
  /** Which of the scenario's variants this iteration runs: seed % variants (a replayed seed runs the same one). */
  readonly variant: number;
  readonly rng: Rng;
  /** The short slice run inside `npm test`: smaller sizes, fewer boundaries. */
  readonly quick: boolean;
  /** Progress, printed with --verbose. */
  log(line: string): void;
  /** State worth printing if the iteration fails (replaced by key). */
  state(key: string, value: unknown): void;
  /** --keep: copy the disks of a failed iteration somewhere that outlives it. */
  readonly keep: boolean;
}

export interface Scenario {
  readonly name: string;
  readonly title: string;
  /** Iterations of `npm run torture` (sized for 20 minutes on 2 cores in all). */
  readonly defaultIterations: number;
  /** Iterations of the slice inside `npm test`. */
  readonly quickIterations: number;
  /** Kinds of iteration (commands, moments, fault types); consecutive iterations cycle through them. */
  readonly variants?: number;
  /** Why the scenario cannot run on this machine (and what it would need), or undefined. */
  unavailable(): string | undefined;
  /** One iteration: throws on a violated property; returns what it measured. */
  iterate(ctx: IterationContext): Promise<Figures>;
  /** The one-line figure from the figures of every passed iteration. */
  figure(all: readonly Figures[]): string;
}

export interface IterationFailure {
  readonly index: number;
  readonly seed: number;
  readonly error: string;
  readonly state: Record<string, unknown>;
}

export interface ScenarioResult {
  readonly name: string;
  readonly iterations: number;
  readonly failures: IterationFailure[];
  readonly figure: string;
  readonly skipped: string | undefined;
  readonly ms: number;
}

export interface RunOptions {
  readonly seed: number;
  readonly iterations: number;
  readonly quick: boolean;
  readonly verbose: boolean;
  readonly keep: boolean;
  readonly print: (line: string) => void;
}

export function sum(all: readonly Figures[], key: string): number {
  return all.reduce((n, f) => n + (f[key] ?? 0), 0);
}

export function max(all: readonly Figures[], key: string): number {
  return all.reduce((n, f) => Math.max(n, f[key] ?? 0), 0);
}

export function replayCommand(name: string, seed: number): string {
  return `npm run torture -- --seed ${seed} --scenario ${name} --iterations 1`;
}

export async function runScenario(s: Scenario, o: RunOptions): Promise<ScenarioResult> {
  const t0 = Date.now();
  const why = s.unavailable();
  if (why) return { name: s.name, iterations: 0, failures: [], figure: `skipped: ${why}`, skipped: why, ms: 0 };
  const passed: Figures[] = [];
  const failures: IterationFailure[] = [];
  for (let i = 0; i < o.iterations; i++) {
    const v = s.variants ?? 1;
    let seed = iterationSeed(o.seed, i);
    // Consecutive iterations cycle through the variants; the variant is a function of the seed alone.
    if (v > 1 && i > 0) seed = (seed - (seed % v) + ((o.seed + i) % v)) >>> 0 || v;
    const state: Record<string, unknown> = {};
    const ctx: IterationContext = {
      seed,
      index: i,
      variant: seed % v,
      rng: new Rng(seed),
      quick: o.quick,
      log: (line) => {
        if (o.verbose) o.print(`  [${s.name} #${i} seed ${seed}] ${line}`);
      },
      state: (k, v) => {
        state[k] = v;
      },
      keep: o.keep,
    };
    try {
      passed.push(await s.iterate(ctx));
    } catch (e) {
      const err = e instanceof Error ? (e.stack ?? e.message) : String(e);
      const f: IterationFailure = { index: i, seed, error: err, state };
      failures.push(f);
      o.print(`FAIL ${s.name} iteration ${i} seed ${seed}`);
      o.print(`  replay: ${replayCommand(s.name, seed)}`);
      for (const line of err.split("\n").slice(0, 40)) o.print(`  | ${line}`);
      for (const [k, v] of Object.entries(state)) o.print(`  state ${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
    }
  }
  return { name: s.name, iterations: o.iterations, failures, figure: s.figure(passed), skipped: undefined, ms: Date.now() - t0 };
}

export function resultLine(r: ScenarioResult): string {
  if (r.skipped) return `${r.name.padEnd(12)} skipped: ${r.skipped}`;
  return `${r.name.padEnd(12)} iterations ${String(r.iterations).padStart(3)}  failures ${String(r.failures.length).padStart(2)}  ${(r.ms / 1000).toFixed(0).padStart(4)}s  ${r.figure}`;
}
