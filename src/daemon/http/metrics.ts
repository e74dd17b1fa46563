import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from "prom-client";
import { LATENCY_BUCKETS_SECONDS, type LatencyHistogram } from "../../blockdev/counting-block-device.js";
import { ULVM_VERSION } from "../../base/version.js";
import { LEG_STATES, LV_HEALTH_STATES } from "./health.js";
import type { IoStats } from "./io-stats.js";
import type { StatusSnapshot } from "./snapshot.js";

/**
 * The Prometheus metrics (`GET /metrics`), in a registry of their own (never
 * prom-client's global one). Every value is read at scrape time from one
 * snapshot the server takes just before `render()` and from the I/O
 * counters; nothing here runs between scrapes. Names follow Prometheus'
 * conventions: `ulvm_` prefix, base units in the name, `_total` for counters,
 * a `state` label with 1 for the current state and 0 for the others (as
 * node_exporter's node_md_state), read and write as separate metrics.
 */
export class UlvmMetrics {
  readonly registry = new Registry();
  private snap: StatusSnapshot | undefined;

  constructor(private readonly io: IoStats) {
    const reg = [this.registry];
    const self = this;
    const lvs = () => (self.snap?.vgs ?? []).flatMap((v) => v.lvs);
    const lvGauge = (name: string, help: string, value: (l: ReturnType<typeof lvs>[number]) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ["vg", "lv"],
        registers: reg,
        collect() {
          this.reset();
          for (const l of lvs()) this.set({ vg: l.vg, lv: l.lv }, value(l));
        },
      });
    };
    const lvCounter = (name: string, help: string, value: (l: ReturnType<typeof lvs>[number]) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ["vg", "lv"],
        registers: reg,
        collect() {
          this.reset();
          for (const l of lvs()) this.inc({ vg: l.vg, lv: l.lv }, value(l));
        },
      });
    };
    lvGauge("ulvm_lv_size_bytes", "Size of the active logical volume in bytes.", (l) => l.sizeBytes);
    new Gauge({
      name: "ulvm_lv_health",
      help: "Health of the LV: 1 for its current state (ok, degraded: redundancy lost, partial: data unavailable), 0 for the others.",
      labelNames: ["vg", "lv", "state"],
      registers: reg,
      collect() {
        this.reset();
        for (const l of lvs()) for (const s of LV_HEALTH_STATES) this.set({ vg: l.vg, lv: l.lv, state: s }, l.health === s ? 1 : 0);
      },
    });
    lvGauge("ulvm_lv_sync_ratio", "Fraction of the LV whose copies are in sync (0 to 1; 1 without redundancy).", (l) => l.syncRatio);
    lvGauge("ulvm_lv_resync_bytes", "Bytes of the LV still to be synced.", (l) => l.resyncRemainingBytes);
    lvCounter("ulvm_lv_resynced_bytes_total", "Bytes copied by the resync or recovery since the LV's table was loaded.", (l) => l.resyncedBytes);
    lvCounter("ulvm_lv_read_ops_total", "Reads completed by the LV's exported device.", (l) => l.io?.readOps ?? 0);
    lvCounter("ulvm_lv_write_ops_total", "Writes completed by the LV's exported device.", (l) => l.io?.writeOps ?? 0);
    lvCounter("ulvm_lv_read_bytes_total", "Bytes read from the LV's exported device.", (l) => l.io?.readBytes ?? 0);
    lvCounter("ulvm_lv_written_bytes_total", "Bytes written to the LV's exported device.", (l) => l.io?.writtenBytes ?? 0);
    this.registry.registerMetric(latencyHistogram("ulvm_lv_read_duration_seconds", "Time to complete a read of the LV's exported device.", () => lvs().map((l) => ({ labels: { vg: l.vg, lv: l.lv }, h: this.io.lv(l.lvId)?.readLatency }))));
    this.registry.registerMetric(latencyHistogram("ulvm_lv_write_duration_seconds", "Time to complete a write to the LV's exported device.", () => lvs().map((l) => ({ labels: { vg: l.vg, lv: l.lv }, h: this.io.lv(l.lvId)?.writeLatency }))));
    new Gauge({
      name: "ulvm_leg_health",
      help: "Health of a leg (mirror or raid1 image, stripe): 1 for its current state (in_sync, syncing, failed, absent), 0 for the others.",
      labelNames: ["vg", "lv", "leg", "pv", "state"],
      registers: reg,
      collect() {
        this.reset();
        for (const l of lvs()) for (const g of l.legs) for (const s of LEG_STATES) this.set({ vg: l.vg, lv: l.lv, leg: g.name, pv: g.pv, state: s }, g.state === s ? 1 : 0);
      },
    });
    new Counter({
      name: "ulvm_leg_errors_total",
      help: "I/O errors that failed the leg (one per failure the target reported).",
      labelNames: ["vg", "lv", "leg", "pv"],
      registers: reg,
      collect() {
        this.reset();
        for (const l of lvs()) for (const g of l.legs) this.inc({ vg: l.vg, lv: l.lv, leg: g.name, pv: g.pv }, g.errors);
      },
    });
    new Gauge({
      name: "ulvm_nbd_connections",
      help: "Open NBD client connections.",
      registers: reg,
      collect() {
        this.set(self.snap?.nbdConnections ?? 0);
      },
    });
    new Gauge({ name: "ulvm_build_info", help: "ulvm's version, 1.", labelNames: ["version", "nodejs"], registers: reg }).set({ version: ULVM_VERSION, nodejs: process.version }, 1);
    collectDefaultMetrics({ register: this.registry });
    // prom-client 15 exports these three as gauges named "_total", which `promtool check metrics`
    // rejects (a _total suffix is for counters); nodejs_active_handles and friends carry the same counts.
    for (const n of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) this.registry.removeSingleMetric(n);
  }

  /** The exposition text for one scrape of `snap`. */
  async render(snap: StatusSnapshot): Promise<string> {
    this.snap = snap;
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * A histogram over LatencyHistogram's fixed buckets: prom-client's own
 * Histogram can only observe, and observing through it (a label lookup per
 * I/O) on the data path is what this avoids.
 */
function latencyHistogram(name: string, help: string, series: () => Array<{ labels: Record<string, string>; h: LatencyHistogram | undefined }>): Metric {
  const get = () => {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const { labels, h } of series()) {
      let cum = 0;
      LATENCY_BUCKETS_SECONDS.forEach((le, i) => {
        cum += h?.counts[i] ?? 0;
        values.push({ labels: { ...labels, le }, value: cum, metricName: `${name}_bucket` });
      });
      cum += h?.counts[LATENCY_BUCKETS_SECONDS.length] ?? 0;
      values.push({ labels: { ...labels, le: "+Inf" }, value: cum, metricName: `${name}_bucket` });
      values.push({ labels, value: h?.sumSeconds ?? 0, metricName: `${name}_sum` });
      values.push({ labels, value: h?.count ?? 0, metricName: `${name}_count` });
    }
    return { name, help, type: "histogram", values, aggregator: "sum" };
  };
  return { name, help, get, getForPromString: get, reset: () => undefined } as unknown as Metric;
}
