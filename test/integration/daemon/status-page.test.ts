import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { which } from "../../helpers/lab.js";
import { REPO_ROOT } from "../../helpers/fixtures.js";
import { listenerUrl, metricsLab } from "../../helpers/status-http.js";

/**
 * The status page in a real browser (playwright-core driving Debian's
 * chromium): a raid1 LV's initial sync shows its progress moving, the LV is
 * green once in sync, and turns amber (degraded) without a reload when its
 * leg fails; the daemon's events (the sync's end, the leg's failure) appear in the events panel.
 * Screenshots go to test-output/screenshots/ in the repository (gitignored),
 * which outlives the run's scratch folders.
 */
const CHROMIUM = "/usr/bin/chromium";
const skip = !existsSync(CHROMIUM) ? `${CHROMIUM} not installed (apt-get install chromium)` : which("qemu-io") ? undefined : "qemu-io not installed (apt-get install qemu-utils)";
const SHOTS = join(REPO_ROOT, "test-output", "screenshots");

test("status page: sync progress moves, the LV is green, then amber when a leg fails, without a reload", { skip }, async () => {
  const { chromium } = await import("playwright-core");
  // 48 MiB at 6 MiB/s: the initial sync lasts about 8 s, long enough to be watched.
  const lab = metricsLab("ulvm-page-", "\tmirror_resync_rate = 6144\n");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  try {
    mkdirSync(SHOTS, { recursive: true });
    lab.ok("pvcreate", lab.disk("d1"), lab.disk("d2"));
    lab.ok("vgcreate", "vg", lab.disk("d1"), lab.disk("d2"));
    lab.ok("lvcreate", "--type", "raid1", "-m1", "-L", "48M", "-n", "r", "vg");
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    await page.goto(listenerUrl(lab));
    const lv = page.locator('[data-lv="vg/r"]');
    const job = lv.locator('[data-job="sync"]');

    // The initial sync: a percentage shown, then a larger one, then the job ends.
    await job.waitFor({ timeout: 30_000 });
    const first = Number(await job.getAttribute("data-percent"));
    assert.equal(await lv.getAttribute("data-color"), "green", "an initial sync is not degraded");
    await page.screenshot({ path: join(SHOTS, "1-initial-sync.png"), fullPage: true });
    // (Run in the page, where `document` is; a string, as this project compiles without the DOM's types.)
    await page.waitForFunction(`(() => { const el = document.querySelector('[data-lv="vg/r"] [data-job="sync"]'); return el === null || Number(el.getAttribute("data-percent")) > ${first}; })()`, undefined, { timeout: 60_000 });
    await job.waitFor({ state: "detached", timeout: 60_000 });
    assert.equal(await lv.getAttribute("data-color"), "green");
    assert.equal(await lv.locator('[data-leg="r_rimage_1"]').getAttribute("data-state"), "in_sync");
    await page.screenshot({ path: join(SHOTS, "2-in-sync.png"), fullPage: true });

    // The daemon's own events reach the panel live: the initial sync's end.
    await page.locator("#events tbody", { hasText: "resync-finished" }).waitFor({ timeout: 30_000 });

    // d2 goes away under a write: the page turns the LV amber by itself.
    mkdirSync(join(lab.dir, "away"));
    renameSync(lab.disk("d2"), join(lab.dir, "away", "d2"));
    const r = lab.run("qemu-io", ["-f", "raw", "-c", "write -P 6 0 1M", `nbd+unix:///vg/r?socket=${join(lab.dir, "run", "nbd.sock")}`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    await page.locator('[data-lv="vg/r"][data-color="amber"]').waitFor({ timeout: 30_000 });
    assert.equal(await lv.getAttribute("data-health"), "degraded");
    assert.match((await lv.locator('[data-leg="r_rimage_1"]').getAttribute("data-state")) ?? "", /^(failed|absent)$/);
    assert.equal(await page.locator('[data-vg="vg"]').getAttribute("data-color"), "amber", "the VG takes its worst LV's colour");
    await page.locator("#events tbody", { hasText: "leg-failed" }).waitFor({ timeout: 30_000 });
    assert.match((await page.locator("#overall").getAttribute("class")) ?? "", /amber/);
    await page.screenshot({ path: join(SHOTS, "3-leg-failed.png"), fullPage: true });
  } finally {
    await browser.close();
    lab.cleanup();
  }
});
