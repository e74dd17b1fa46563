import type { MapperEvent } from "../mapper/events.js";
import type { LoadedVg } from "../commands/vg-store.js";
import type { ActiveLv, Daemon } from "./daemon.js";

/**
 * What the daemon does when a device fails (dmeventd's role). The mapper
 * reports; this decides. Filled in by the mirror work: for now events are
 * logged and acknowledged.
 */
export class FailurePolicy {
  constructor(private readonly daemon: Daemon) {}
  start(): void {}
  stop(): void {}
  watch(_a: ActiveLv, _loaded: LoadedVg): void {}
  unwatch(_a: ActiveLv): void {}
  applyKnownFailures(_loaded: LoadedVg): void {}
  onEvent(e: MapperEvent): Promise<void> | void {
    this.daemon.log(`event ${JSON.stringify(e)}`);
  }
}
