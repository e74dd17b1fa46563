import { existsSync } from "node:fs";
import { eventMessage, eventObject, type UlvmEvent } from "./event-types.js";
import { findProgram } from "./find-program.js";
import { JobLimiter, runProgram } from "./program-runner.js";

export const SYSLOG_SOCKET = "/dev/log";

const PRIORITY = { error: "daemon.crit", warning: "daemon.warning", info: "daemon.info" } as const;

/**
 * Events to syslog (journald reads /dev/log too). Node has no AF_UNIX
 * datagram sockets, so util-linux `logger` writes them, in the background,
 * a few at a time; when there is no /dev/log or no logger, nothing is done.
 */
export class SyslogSink {
  private readonly logger: string | undefined;
  private readonly limiter: JobLimiter;

  constructor(
    private readonly log: (line: string) => void,
    private readonly socket: string = SYSLOG_SOCKET,
  ) {
    this.logger = existsSync(socket) ? findProgram("logger", ["/usr/bin/logger", "/bin/logger"]) : undefined;
    this.limiter = new JobLimiter(2, 256, (what) => this.log(`syslog ${what}: dropped, logger too slow`));
  }

  get enabled(): boolean {
    return this.logger !== undefined;
  }

  dispatch(e: UlvmEvent): void {
    const logger = this.logger;
    if (!logger) return;
    const obj = eventObject(e);
    const text = `#${e.id} ${e.name}${obj ? ` ${obj}` : ""}: ${eventMessage(e)}`.replace(/\n/g, " ");
    this.limiter.run(`event #${e.id}`, async () => {
      const r = await runProgram({ file: logger, args: ["-t", "ulvm", "--socket", this.socket, "-p", PRIORITY[e.severity], "--", text], timeoutMs: 10_000 });
      if (r.error || r.timedOut || r.code !== 0) this.log(`syslog for event #${e.id}: logger failed: ${r.error ?? (r.timedOut ? "timed out" : `exit ${r.code}`)} ${r.output}`);
    });
  }
}
