import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { eventMessage, eventObject, formatEventLine, type UlvmEvent } from "./event-types.js";
import { findProgram } from "./find-program.js";
import { JobLimiter, runProgram } from "./program-runner.js";

export const NOTIFY_STATE = "events-notify.state";

/** What survives a restart: the last event mailed and when each (vg, lv, event) was last mailed. */
interface NotifyState {
  lastNotifiedId: number;
  /** key → epoch milliseconds of the last mail. */
  sent: Record<string, number>;
}

export interface MailSettings {
  /** events/mail_to; "" = no mail. */
  mailTo: string;
  /** events/notify_interval_s. */
  intervalSec: number;
  timeoutMs: number;
}

const SENDMAIL_TIMEOUT_MS = 60_000;

/**
 * Mail for the failure-class events (severity "error"), through the local
 * sendmail (`sendmail -t`, found on PATH, else /usr/sbin or /usr/lib), as
 * mdadm mails Fail and DegradedArray.
 *
 * Rate limit, as ZED's zed_rate_limit: one mail per (VG, LV or PV, event
 * name) per notify_interval_s. The decision and the state file are written
 * before sendmail runs, so a daemon that restarts (even one killed while
 * mailing) never mails the same event, nor the same kind of event for the
 * same LV within the interval, again.
 */
export class MailNotifier {
  private readonly stateFile: string;
  private state: NotifyState;
  private readonly limiter: JobLimiter;
  private saidNoSendmail = false;

  constructor(
    runDir: string,
    private readonly settings: () => MailSettings,
    private readonly log: (line: string) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.stateFile = join(runDir, NOTIFY_STATE);
    this.state = readState(this.stateFile);
    this.limiter = new JobLimiter(2, 256, (what) => this.log(`mail ${what}: not sent, too many mails waiting`));
  }

  get lastNotifiedId(): number {
    return this.state.lastNotifiedId;
  }

  get idle(): boolean {
    return this.limiter.idle;
  }

  /** Decide now (synchronously: no two events race for one key), send in the background. */
  dispatch(e: UlvmEvent): void {
    if (e.severity !== "error" || e.id <= this.state.lastNotifiedId) return;
    const s = this.settings();
    if (s.mailTo === "") return;
    const key = `${e.vg ?? ""}/${e.lv ?? e.pv ?? ""}/${e.name}`;
    const last = this.state.sent[key];
    const nowMs = this.now();
    if (last !== undefined && nowMs - last < s.intervalSec * 1000) {
      this.log(`event #${e.id} (${e.name} ${eventObject(e)}) not mailed: mailed ${Math.round((nowMs - last) / 1000)}s ago (events/notify_interval_s = ${s.intervalSec})`);
      return;
    }
    const sendmail = findProgram("sendmail", ["/usr/sbin/sendmail", "/usr/lib/sendmail"]);
    if (!sendmail) {
      if (!this.saidNoSendmail) this.log(`events/mail_to is set but no sendmail was found: events are not mailed`);
      this.saidNoSendmail = true;
      return;
    }
    this.state.sent[key] = nowMs;
    this.state.lastNotifiedId = e.id;
    this.save();
    const message = composeMail(s.mailTo, e);
    this.limiter.run(`for event #${e.id}`, async () => {
      const r = await runProgram({ file: sendmail, args: ["-t"], input: message, timeoutMs: s.timeoutMs || SENDMAIL_TIMEOUT_MS });
      const ok = !r.error && !r.timedOut && r.code === 0;
      this.log(`mail to ${s.mailTo} for event #${e.id} (${e.name} ${eventObject(e)}): ${ok ? "sent" : `${sendmail} failed: ${r.error ?? (r.timedOut ? "timed out" : `exit ${r.code ?? r.signal}`)}`}${r.output ? `: ${r.output}` : ""}`);
    });
  }

  private save(): void {
    // Keys older than a day past any sensible interval only grow the file.
    const horizon = this.now() - Math.max(this.settings().intervalSec * 1000, 0) - 86_400_000;
    for (const [k, t] of Object.entries(this.state.sent)) if (t < horizon) delete this.state.sent[k];
    try {
      writeFileSync(this.stateFile + ".tmp", JSON.stringify(this.state) + "\n");
      renameSync(this.stateFile + ".tmp", this.stateFile);
    } catch (err) {
      this.log(`could not save ${this.stateFile}: ${(err as Error).message}`);
    }
  }
}

function readState(file: string): NotifyState {
  try {
    const o = JSON.parse(readFileSync(file, "utf8")) as Partial<NotifyState>;
    const sent: Record<string, number> = {};
    for (const [k, v] of Object.entries(o.sent ?? {})) if (typeof v === "number") sent[k] = v;
    return { lastNotifiedId: typeof o.lastNotifiedId === "number" ? o.lastNotifiedId : 0, sent };
  } catch {
    return { lastNotifiedId: 0, sent: {} };
  }
}

/** An RFC 5322 message for `sendmail -t` (recipients from To:). */
export function composeMail(to: string, e: UlvmEvent): string {
  const host = hostname();
  const obj = eventObject(e);
  const headerSafe = (s: string): string => s.replace(/[\r\n]+/g, " ");
  return [
    `To: ${headerSafe(to)}`,
    `Subject: ${headerSafe(`ulvm ${e.name} event${obj ? ` on ${obj}` : ""}:${host}`)}`,
    `Content-Type: text/plain; charset=utf-8`,
    `X-Ulvm-Event-Id: ${e.id}`,
    ``,
    `This is an automatically generated mail message from ulvm running on ${host}.`,
    ``,
    `${e.name} event detected${obj ? ` on ${obj}` : ""}: ${eventMessage(e)}`,
    ``,
    formatEventLine(e),
    JSON.stringify(e),
    ``,
  ].join("\n");
}
