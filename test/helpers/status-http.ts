import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Lab } from "./lab.js";

/**
 * What the metrics and status page tests share: a lab of two 64 MiB PV
 * files whose daemon listens on a port of its own choosing (port 0: no race
 * for a free port; the address is read back from the daemon's log), and a
 * reader of the Prometheus text format.
 */
export function metricsLab(prefix: string, extra = "", metrics = 'listen = "127.0.0.1:0"'): Lab {
  const lab = new Lab(prefix);
  lab.addDisk("d1", 64);
  lab.addDisk("d2", 64);
  lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 0\n${extra}}\nmetrics {\n\t${metrics}\n}\n`);
  return lab;
}

export function daemonLog(lab: Lab): string {
  const f = join(lab.dir, "run", "ulvmd.log");
  return existsSync(f) ? readFileSync(f, "utf8") : "";
}

/** The listener's base URL from the daemon's log (it is written before the daemon says "started"). */
export function listenerUrl(lab: Lab): string {
  const m = /metrics and status page on (http:\/\/\S+\/)/.exec(daemonLog(lab));
  assert.ok(m, `the daemon started its listener:\n${daemonLog(lab)}`);
  return m[1]!.replace("0.0.0.0", "127.0.0.1").replace("[::]", "127.0.0.1");
}

/** The value of one sample of a metric whose labels include `labels`; undefined when there is none. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

/** Poll `fn` (every 100 ms) until it returns something other than undefined, or fail after `deadlineMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, deadlineMs = 20_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
