/**
 * The end-of-run check of scripts/test.sh and scripts/torture.sh: nothing of
 * the run may be left on the machine (loop devices, mounts, processes of its
 * scratch folders; see test/helpers/leftovers.ts).
 *
 *   node dist/test/leftovers-cli.js snapshot FILE
 *       remember the loop devices that exist before the run
 *   node dist/test/leftovers-cli.js check [--before FILE] ROOT...
 *       name everything of ROOTs still there, release it, and exit 1 if there
 *       was anything (0 if not)
 */
import { readFileSync, writeFileSync } from "node:fs";
import { detachOrphanLoops, findLeftovers, listLoops, loopKey, releaseUnder } from "./helpers/leftovers.js";

function main(argv: string[]): number {
  const [verb, ...rest] = argv;
  if (verb === "snapshot" && rest.length === 1) {
    writeFileSync(rest[0]!, listLoops().map(loopKey).join("\n") + "\n");
    return 0;
  }
  if (verb === "check") {
    let before: Set<string> | undefined;
    const roots: string[] = [];
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] === "--before") {
        try {
          before = new Set(readFileSync(rest[++i]!, "utf8").split("\n").filter(Boolean));
        } catch {
          before = undefined; // no snapshot: only what is named under the roots
        }
      } else roots.push(rest[i]!);
    }
    if (roots.length === 0) return usage();
    const left = findLeftovers(roots, before);
    if (left.length === 0) {
      console.log(`leftovers: none (loop devices, mounts and processes of ${roots.join(", ")})`);
      return 0;
    }
    console.error(`leftovers: the run left ${left.length} thing(s) behind:`);
    for (const l of left) console.error(`  ${l.kind} ${l.id}: ${l.detail}`);
    releaseUnder(roots);
    if (before) detachOrphanLoops(before, roots);
    const still = findLeftovers(roots, before);
    if (still.length) for (const l of still) console.error(`  could not release ${l.kind} ${l.id}: ${l.detail}`);
    else console.error("leftovers: released them; failing the run");
    return 1;
  }
  return usage();
}

function usage(): number {
  console.error("usage: leftovers-cli snapshot FILE | check [--before FILE] ROOT...");
  return 3;
}

process.exit(main(process.argv.slice(2)));
