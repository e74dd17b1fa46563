#!/usr/bin/env bash
# Build: type-check and compile everything with tsc into dist/ (tests run from
# there), then bundle the CLI and the daemon with esbuild into dist/bundle/ as
# two CommonJS files. A fresh `ulvm lvs` then loads one file (with a V8 code
# cache next to it, written on first use by bin/ulvm) instead of resolving and
# linking ~150 ES modules: about 30 ms less per command on these machines.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
rm -rf dist/bundle
mkdir -p dist/bundle
echo '{ "type": "commonjs" }' > dist/bundle/package.json
for entry in "src/cli/main.js:ulvm.js" "src/daemon/ulvmd.js:ulvmd.js"; do
  npx esbuild "dist/${entry%%:*}" --bundle --platform=node --format=cjs --target=node20 --supported:dynamic-import=false \
    --outfile="dist/bundle/${entry##*:}" --log-level=warning \
    --inject:scripts/esbuild/import-meta-url.js --define:import.meta.url=importMetaUrl
done
