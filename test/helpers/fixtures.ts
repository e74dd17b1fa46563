import { existsSync, readdirSync, readFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { join, dirname } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";

/** Repository root, found from this compiled file (dist/test/helpers/). */
export const REPO_ROOT = ((): string => {
  const up = (start: string): string | undefined => {
    for (let d = start; ; d = dirname(d)) {
      if (existsSync(join(d, "package.json")) && existsSync(join(d, "bin", "ulvm"))) return d;
      if (dirname(d) === d) return undefined;
    }
  };
  return process.env.ULVM_REPO ?? up(dirname(fileURLToPath(import.meta.url))) ?? up(process.cwd()) ?? process.cwd();
})();

/** The build these tests were compiled into (dist/ or a private --outDir): ulvm runs from the same one. */
export const DIST_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The lvm2-made fixtures, copied from ../shared/fixtures/lvm2 (see its README). */
export const FIXTURES_DIR = join(REPO_ROOT, "test", "fixtures", "lvm2");

export function fixtureNames(): string[] {
  return readdirSync(FIXTURES_DIR, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
}

export function fixtureFile(fixture: string, file: string): string {
  return join(FIXTURES_DIR, fixture, file);
}

export function readFixture(fixture: string, file: string): string {
  return readFileSync(fixtureFile(fixture, file), "utf8");
}

/** Decompress every image of a fixture (optionally with a stage prefix) into a fresh temp dir. */
export function unpackImages(fixture: string, prefix = ""): { dir: string; images: string[] } {
  const dir = mkdtempSync(join(tmpdir(), `ulvm-fx-${fixture}-`));
  const images: string[] = [];
  for (const f of readdirSync(join(FIXTURES_DIR, fixture)).sort()) {
    const m = new RegExp(`^${prefix}(disk\\d+)\\.img\\.gz$`).exec(f);
    if (!m) continue;
    const out = join(dir, `${m[1]}.img`);
    writeFileSync(out, gunzipSync(readFileSync(join(FIXTURES_DIR, fixture, f))));
    images.push(out);
  }
  return { dir, images };
}
