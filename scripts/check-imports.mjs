#!/usr/bin/env node
// check-imports.mjs - `npm run lint` (and scripts/test.sh): the layering the
// README describes, checked on every relative import, export-from and
// import() of src/ (tests and their helpers excluded).
//
// A directory may import its own files and the directories of lower layers,
// never a higher layer nor a sibling of its own layer: blockdev/, mapper/ and
// nbd/ know nothing of PVs, VGs or LVs; mapper/ and nbd/ know nothing of each
// other. The top layer (the commands, the CLI, the daemon, reports, config)
// is one application and may import within itself.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const LAYERS = [
  ["errors"],
  ["base"],
  ["blockdev"],
  ["mapper", "nbd", "fuse", "model"],
  ["format", "segtypes"],
  ["activate"],
  ["config", "report", "commands", "cli", "daemon"],
];
const TOP = LAYERS.length - 1;
// Named exceptions, each with its reason.
const ALLOWED = [
  // The model keeps the settings of segment types it does not know as parsed (types only, no code).
  { file: "model/types.ts", target: "format/text/config-tree.js" },
];
const rank = new Map(LAYERS.flatMap((dirs, r) => dirs.map((d) => [d, r])));

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const src = join(root, "src");
const isTestFile = (f) => /\.test\.ts$|test-helpers\.ts$|-rig\.ts$/.test(f);

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (p.endsWith(".ts") && !isTestFile(p)) yield p;
  }
}

const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm;
const problems = [];
let checked = 0;
for (const file of files(src)) {
  const from = relative(src, file).split(sep)[0];
  if (!rank.has(from)) {
    problems.push(`${relative(root, file)}: directory src/${from}/ has no layer in scripts/check-imports.mjs`);
    continue;
  }
  const text = readFileSync(file, "utf8");
  for (const m of text.matchAll(IMPORT_RE)) {
    checked++;
    const to = relative(src, resolve(dirname(file), m[1])).split(sep)[0];
    if (to === from) continue;
    const target = relative(src, resolve(dirname(file), m[1])).split(sep).join("/");
    if (ALLOWED.some((a) => relative(src, file).split(sep).join("/") === a.file && target === a.target)) continue;
    const rf = rank.get(from);
    const rt = rank.get(to);
    const ok = rt !== undefined && (rt < rf || (rf === TOP && rt === TOP));
    if (!ok) {
      const line = text.slice(0, m.index).split("\n").length;
      problems.push(`${relative(root, file)}:${line}: ${from}/ imports ${to}/ (${m[1]})`);
    }
  }
}
if (problems.length) {
  for (const p of problems) console.error(`check-imports: ${p}`);
  console.error(`check-imports: ${problems.length} import(s) against the layering (see the top of scripts/check-imports.mjs)`);
  process.exit(1);
}
console.log(`check-imports: ${checked} relative imports follow the layering`);
