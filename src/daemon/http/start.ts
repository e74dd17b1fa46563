import type { Daemon } from "../daemon.js";
import type { EventFeed } from "./event-feed.js";
import { listenSettings } from "./listen-config.js";
import { UlvmMetrics } from "./metrics.js";
import { SnapshotTaker } from "./snapshot.js";
import { StatusServer } from "./status-server.js";

/**
 * Start the metrics and status listener if `metrics { listen }` asks for
 * one. A bad setting or a busy port is logged and leaves the daemon running
 * without it: the listener is for watching, never a reason not to serve.
 */
export async function startStatusListener(daemon: Daemon, events: EventFeed): Promise<StatusServer | undefined> {
  let decision;
  try {
    decision = listenSettings(daemon.config());
  } catch (e) {
    daemon.log(`metrics listener not started: ${(e as Error).message}`);
    return undefined;
  }
  if (decision.kind === "off") return undefined;
  if (decision.kind === "refused") {
    daemon.log(`metrics listener not started: ${decision.reason}`);
    return undefined;
  }
  const server = new StatusServer(decision.settings, {
    snapshots: new SnapshotTaker(daemon),
    metrics: new UlvmMetrics(daemon.ioStats),
    events,
    log: (line) => daemon.log(line),
  });
  try {
    const addr = await server.listen();
    const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
    daemon.log(`metrics and status page on http://${host}:${addr.port}/${decision.settings.token ? " (bearer token required)" : ""}`);
    return server;
  } catch (e) {
    daemon.log(`metrics listener not started: ${decision.settings.host}:${decision.settings.port}: ${(e as Error).message}`);
    return undefined;
  }
}
