import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, renameSync, writeFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { which } from "../../helpers/lab.js";
import { daemonLog, listenerUrl, metricsLab, sample, waitFor } from "../../helpers/status-http.js";

/**
 * The daemon's Prometheus endpoint (`metrics { listen }`): a real scrape of
 * a raid1 LV checked by Debian's promtool, the values following writes and a
 * failed leg, a real prometheus server scraping it, and the listener's
 * security (loopback by default, bearer token otherwise, read-only).
 */
const MiB = 1 << 20;
const noQemu = which("qemu-io") ? undefined : "qemu-io not installed (apt-get install qemu-utils)";
const noPromtool = which("promtool") ? noQemu : "promtool not installed (apt-get install prometheus)";
const noPrometheus = which("prometheus") ? noQemu : "prometheus not installed (apt-get install prometheus)";

async function scrape(base: string): Promise<string> {
  const r = await fetch(base + "metrics");
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return r.text();
}

function promtoolCheck(text: string): void {
  const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  assert.equal(r.status, 0, `promtool check metrics: ${r.stdout}${r.stderr}`);
}

test("metrics: promtool accepts a scrape of a raid1 LV; size, written bytes and a failed leg show in the values", { skip: noPromtool }, async () => {
  const lab = metricsLab("ulvm-metrics-");
  try {
    lab.ok("pvcreate", lab.disk("d1"), lab.disk("d2"));
    lab.ok("vgcreate", "vg", lab.disk("d1"), lab.disk("d2"));
    lab.ok("lvcreate", "--type", "raid1", "-m1", "-L", "40M", "-n", "r", "vg");
    const base = listenerUrl(lab);
    const lv = { vg: "vg", lv: "r" };
    let text = await waitFor("the initial sync", async () => {
      const t = await scrape(base);
      return sample(t, "ulvm_lv_sync_ratio", lv) === 1 ? t : undefined;
    });
    promtoolCheck(text);
    assert.equal(sample(text, "ulvm_lv_size_bytes", lv), 40 * MiB);
    assert.equal(sample(text, "ulvm_lv_health", { ...lv, state: "ok" }), 1);
    assert.equal(sample(text, "ulvm_lv_health", { ...lv, state: "degraded" }), 0);
    assert.equal(sample(text, "ulvm_lv_resync_bytes", lv), 0);
    assert.equal(sample(text, "ulvm_leg_health", { ...lv, leg: "r_rimage_1", pv: lab.disk("d2"), state: "in_sync" }), 1);
    assert.equal(sample(text, "ulvm_build_info"), 1);
    assert.ok((sample(text, "process_resident_memory_bytes") ?? 0) > 0, "prom-client's process metrics are there");
    const writtenBefore = sample(text, "ulvm_lv_written_bytes_total", lv) ?? NaN;

    // 3 MiB written through NBD, then read back.
    const uri = `nbd+unix:///vg/r?socket=${join(lab.dir, "run", "nbd.sock")}`;
    const io = (cmd: string): void => {
      const r = lab.run("qemu-io", ["-f", "raw", "-c", cmd, uri]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
    };
    io("write -P 5 0 3M");
    io("read -P 5 0 3M");
    text = await scrape(base);
    promtoolCheck(text);
    assert.ok((sample(text, "ulvm_lv_written_bytes_total", lv) ?? 0) >= writtenBefore + 3 * MiB, "written bytes counted");
    assert.ok((sample(text, "ulvm_lv_read_bytes_total", lv) ?? 0) >= 3 * MiB, "read bytes counted");
    assert.ok((sample(text, "ulvm_lv_write_ops_total", lv) ?? 0) >= 1);
    assert.ok((sample(text, "ulvm_lv_write_duration_seconds_count", lv) ?? 0) >= 1);
    assert.equal(sample(text, "ulvm_lv_write_duration_seconds_count", lv), sample(text, "ulvm_lv_write_duration_seconds_bucket", { ...lv, le: "+Inf" }));

    // d2 goes away (out of the scanned folder) under a write: its leg fails, the LV is degraded.
    mkdirSync(join(lab.dir, "away"));
    renameSync(lab.disk("d2"), join(lab.dir, "away", "d2"));
    io("write -P 6 0 1M");
    text = await waitFor("the leg's failure in the metrics", async () => {
      const t = await scrape(base);
      // Wait for the end state (the leg failed or gone, the LV degraded), not just "no longer in
      // sync": between the failure and the policy's reload a scrape can catch the leg in between.
      const gone = ["failed", "absent"].some((s) => sample(t, "ulvm_leg_health", { ...lv, leg: "r_rimage_1", state: s }) === 1);
      return gone && sample(t, "ulvm_lv_health", { ...lv, state: "degraded" }) === 1 ? t : undefined;
    });
    promtoolCheck(text);
    const legState = ["failed", "absent"].find((s) => sample(text, "ulvm_leg_health", { ...lv, leg: "r_rimage_1", state: s }) === 1);
    assert.ok(legState, "the leg is failed or absent");
    assert.equal(sample(text, "ulvm_leg_health", { ...lv, leg: "r_rimage_1", pv: lab.disk("d2"), state: legState }), 1, "an absent leg keeps its PV label");
    assert.equal(sample(text, "ulvm_lv_health", { ...lv, state: "degraded" }), 1);
    assert.equal(sample(text, "ulvm_lv_health", { ...lv, state: "ok" }), 0);
    assert.equal(sample(text, "ulvm_leg_health", { ...lv, leg: "r_rimage_0", state: "in_sync" }), 1);
    assert.ok((sample(text, "ulvm_leg_errors_total", { ...lv, leg: "r_rimage_1" }) ?? 0) >= 1, "the failing I/O is counted on the leg");
  } finally {
    lab.cleanup();
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

test("metrics: a real prometheus server scrapes the endpoint, and its HTTP API returns ulvm_lv_size_bytes", { skip: noPrometheus }, async () => {
  const lab = metricsLab("ulvm-prom-");
  const promDir = join(lab.dir, "prometheus");
  let prom: ReturnType<typeof spawn> | undefined;
  // The lab's cleanup removes promDir; prometheus itself is killed here, however the test ends.
  const killProm = (): void => {
    if (prom && prom.exitCode === null) prom.kill("SIGKILL");
  };
  process.once("exit", killProm);
  try {
    lab.ok("pvcreate", lab.disk("d1"), lab.disk("d2"));
    lab.ok("vgcreate", "vg", lab.disk("d1"), lab.disk("d2"));
    lab.ok("lvcreate", "--type", "raid1", "-m1", "-L", "24M", "-n", "r", "vg");
    const target = new URL(listenerUrl(lab)).host;
    mkdirSync(join(promDir, "data"), { recursive: true });
    writeFileSync(join(promDir, "prometheus.yml"), `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ulvm\n    static_configs:\n      - targets: ["${target}"]\n`);
    const port = await freePort();
    let promLog = "";
    prom = spawn("prometheus", [`--config.file=${join(promDir, "prometheus.yml")}`, `--storage.tsdb.path=${join(promDir, "data")}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
    prom.stdout!.on("data", (d: Buffer) => (promLog += d.toString()));
    prom.stderr!.on("data", (d: Buffer) => (promLog = (promLog + d.toString()).slice(-20000)));
    const q = `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent('ulvm_lv_size_bytes{vg="vg",lv="r"}')}`;
    const result = await waitFor(
      "prometheus to have scraped ulvm_lv_size_bytes",
      async () => {
        if (prom!.exitCode !== null) assert.fail(`prometheus exited ${prom!.exitCode}:\n${promLog}`);
        const r = await fetch(q).catch(() => undefined);
        if (!r?.ok) return undefined;
        const body = (await r.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
        return body.data.result.length > 0 ? body.data.result : undefined;
      },
      90_000,
    );
    assert.equal(result.length, 1);
    assert.equal(result[0]!.metric.job, "ulvm");
    assert.equal(Number(result[0]!.value[1]), 24 * MiB);
    // The target is up as far as prometheus is concerned.
    const up = (await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=up`)).json()) as { data: { result: Array<{ value: [number, string] }> } };
    assert.equal(up.data.result[0]?.value[1], "1");
  } finally {
    killProm();
    if (prom && prom.exitCode === null) await new Promise((r) => prom!.once("exit", r));
    process.off("exit", killProm);
    rmSync(promDir, { recursive: true, force: true });
    lab.cleanup();
  }
});

test("metrics: a non-loopback listen address without metrics/token_file is refused; with one, a bearer token is required; POST is 405", { skip: noQemu }, async () => {
  const refused = metricsLab("ulvm-mtok-", "", 'listen = "0.0.0.0:0"');
  try {
    refused.ok("pvcreate", refused.disk("d1"));
    refused.ok("vgcreate", "vg", refused.disk("d1"));
    refused.ok("lvcreate", "-L", "8M", "-n", "l", "vg");
    assert.match(daemonLog(refused), /metrics listener not started: metrics\/listen "0\.0\.0\.0:0" is not a loopback address: set metrics\/token_file/);
    assert.doesNotMatch(daemonLog(refused), /metrics and status page on/);
    assert.match(refused.ok("lvs", "--noheadings", "-o", "lv_attr", "vg/l"), /-wi-a-----/, "the daemon serves anyway");
  } finally {
    refused.cleanup();
  }
  const token = "s3cret-" + process.pid;
  const lab = metricsLab("ulvm-mtok-", "", "");
  try {
    const tokenFile = join(lab.dir, "etc", "metrics.token");
    writeFileSync(tokenFile, token + "\n", { mode: 0o600 });
    lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 0\n}\nmetrics {\n\tlisten = "0.0.0.0:0"\n\ttoken_file = "${tokenFile}"\n}\n`);
    lab.ok("pvcreate", lab.disk("d1"));
    lab.ok("vgcreate", "vg", lab.disk("d1"));
    lab.ok("lvcreate", "-L", "8M", "-n", "l", "vg");
    assert.match(daemonLog(lab), /metrics and status page on http:\/\/0\.0\.0\.0:\d+\/ \(bearer token required\)/);
    const base = listenerUrl(lab);
    const auth = { Authorization: `Bearer ${token}` };
    for (const path of ["metrics", "", "api/status"]) {
      const no = await fetch(base + path);
      assert.equal(no.status, 401, `${path} without a token`);
      assert.match(no.headers.get("www-authenticate") ?? "", /^Bearer/);
      assert.equal((await fetch(base + path, { headers: { Authorization: "Bearer wrong" } })).status, 401, `${path} with a wrong token`);
      const yes = await fetch(base + path, { headers: auth });
      assert.equal(yes.status, 200, `${path} with the token`);
      await yes.arrayBuffer();
    }
    assert.equal(sample(await (await fetch(base + "metrics", { headers: auth })).text(), "ulvm_lv_size_bytes", { vg: "vg", lv: "l" }), 8 * MiB);
    for (const method of ["POST", "PUT", "DELETE"]) {
      const r = await fetch(base + "metrics", { method, headers: auth });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.get("allow"), "GET, HEAD");
    }
    assert.equal((await fetch(base + "metrics", { method: "HEAD", headers: auth })).status, 200);
    assert.equal((await fetch(base + "nothing", { headers: auth })).status, 404);
  } finally {
    lab.cleanup();
  }
});
