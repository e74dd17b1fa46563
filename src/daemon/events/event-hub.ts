import { join } from "node:path";
import type { Config } from "../../config/config.js";
import type { Paths } from "../../config/paths.js";
import { EventLog } from "./event-log.js";
import { eventMessage, eventObject, type EventInput, type UlvmEvent } from "./event-types.js";
import { HookRunner } from "./hook-runner.js";
import { MailNotifier } from "./mail-notifier.js";
import { SyslogSink } from "./syslog-sink.js";

export const hooksDir = (p: Paths): string => join(p.systemDir, "events.d");

/**
 * Where the daemon's events go: events.log (and recent()/subscribe() for the
 * status page), the daemon log, the hooks in events.d, syslog, and mail for
 * the failure class. emit() returns once the line is written; everything else
 * runs in the background and can neither delay nor fail the emitter.
 *
 * Settings (ulvm.conf, read at each event so a change needs no restart):
 *   events { hook_timeout_s = 30  mail_to = "root"  notify_interval_s = 3600 }
 */
export class EventHub {
  readonly log: EventLog;
  private readonly hooks: HookRunner;
  private readonly mail: MailNotifier;
  private readonly syslog: SyslogSink;

  constructor(
    paths: Paths,
    private readonly config: () => Config,
    private readonly daemonLog: (line: string) => void,
  ) {
    this.mail = new MailNotifier(paths.runDir, () => this.mailSettings(), daemonLog);
    this.log = new EventLog(paths.runDir, { usedId: this.mail.lastNotifiedId });
    this.log.onListenerError = (e) => daemonLog(`event listener failed: ${(e as Error)?.stack ?? String(e)}`);
    this.hooks = new HookRunner(hooksDir(paths), () => this.setting((c) => c.int("events/hook_timeout_s", 30), 30) * 1000, daemonLog);
    this.syslog = new SyslogSink(daemonLog);
    this.log.subscribe((e) => this.hooks.dispatch(e));
    this.log.subscribe((e) => this.mail.dispatch(e));
    this.log.subscribe((e) => this.syslog.dispatch(e));
  }

  /** Record an event. Never throws: an event that cannot be written is still logged and delivered. */
  emit(input: EventInput): UlvmEvent | undefined {
    try {
      const e = this.log.append(input);
      const obj = eventObject(e);
      this.daemonLog(`event #${e.id} ${e.severity} ${e.name}${obj ? ` ${obj}` : ""}: ${eventMessage(e)}`);
      return e;
    } catch (err) {
      this.daemonLog(`event ${input.name} not recorded: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** For tests and a clean stop: hooks, mail and syslog have nothing queued or running. */
  get idle(): boolean {
    return this.hooks.idle && this.mail.idle;
  }

  close(): void {
    this.hooks.stop();
    this.log.close();
  }

  private mailSettings() {
    return {
      mailTo: this.setting((c) => c.str("events/mail_to", ""), ""),
      intervalSec: Math.max(0, this.setting((c) => c.int("events/notify_interval_s", 3600), 3600)),
      timeoutMs: 60_000,
    };
  }

  /** A setting; a broken ulvm.conf is said in the log and the default used (an event is never lost to it). */
  private setting<T>(get: (c: Config) => T, dflt: T): T {
    try {
      return get(this.config());
    } catch (e) {
      this.daemonLog(`events: ${(e as Error).message}; using ${JSON.stringify(dflt)}`);
      return dflt;
    }
  }
}
