import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../../helpers/fixtures.js";
import { which, ULVM_BIN } from "../../helpers/lab.js";
import { scratchBase } from "../../helpers/scratch.js";

/**
 * The shipped units (systemd/*.service) pass `systemd-analyze verify`. The
 * units name /usr/local/bin/ulvm, where the README installs it; verify checks
 * that ExecStart's binary exists, so the test verifies copies pointing at
 * this build's bin/ulvm (the only change).
 */
const UNIT_DIR = join(REPO_ROOT, "systemd");
const skip = which("systemd-analyze") ? undefined : "systemd-analyze not installed (apt-get install systemd)";

function verifyCopies(edit: (text: string) => string): { code: number; stderr: string } {
  const dir = mkdtempSync(join(scratchBase(), "ulvm-units-"));
  try {
    const files = readdirSync(UNIT_DIR).filter((f) => f.endsWith(".service"));
    for (const f of files) writeFileSync(join(dir, f), edit(readFileSync(join(UNIT_DIR, f), "utf8")));
    const r = spawnSync("systemd-analyze", ["verify", ...files.map((f) => join(dir, f))], { encoding: "utf8" });
    return { code: r.status ?? 128, stderr: r.stderr ?? "" };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("systemd-analyze verify accepts ulvmd.service and ulvm-activate.service", { skip }, () => {
  const r = verifyCopies((t) => t.replaceAll("/usr/local/bin/ulvm", ULVM_BIN));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.trim(), "");
  // verify does check: a unit whose command is missing is refused.
  const bad = verifyCopies((t) => t.replaceAll("/usr/local/bin/ulvm", "/nonexistent/ulvm"));
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /nonexistent/);
});

test("ulvm-activate.service runs vgchange -aay after the daemon and before the local file systems", () => {
  const t = readFileSync(join(UNIT_DIR, "ulvm-activate.service"), "utf8");
  const d = readFileSync(join(UNIT_DIR, "ulvmd.service"), "utf8");
  assert.match(t, /^ExecStart=\/usr\/local\/bin\/ulvm vgchange -aay$/m);
  assert.match(t, /^After=ulvmd\.service$/m);
  assert.match(t, /^Requires=ulvmd\.service$/m);
  for (const u of [t, d]) {
    assert.match(u, /^Before=local-fs-pre\.target$/m);
    assert.match(u, /^DefaultDependencies=no$/m);
  }
  assert.match(d, /^ExecStart=\/usr\/local\/bin\/ulvm daemon$/m);
});
