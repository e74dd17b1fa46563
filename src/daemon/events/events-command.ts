import { closeSync, openSync, readSync, statSync } from "node:fs";
import type { CommandDef } from "../../cli/command-def.js";
import type { Args } from "../../cli/args.js";
import { badArgument } from "../../commands/common.js";
import { UsageError } from "../../errors/errors.js";
import type { ToolContext } from "../../commands/toolcontext.js";
import { eventsLogFile, readEvents } from "./event-log.js";
import { formatEventLine, parseEventLine, type UlvmEvent } from "./event-types.js";

/**
 * `ulvm events [--follow] [--json] [--since ID|TIME]`: the daemon's events,
 * read from $ULVM_RUN_DIR/events.log and events.log.1 (so it works with no
 * daemon running), as `zpool events [-f]` shows ZFS's. --since ID shows the
 * events after ID (a script passes the last id it handled); --since TIME the
 * events at or after TIME (ISO 8601; UTC when no zone is given).
 */
export const eventsCommand: CommandDef = {
  name: "events",
  summary: "Display the events of the ulvm daemon",
  usage: `  events - Display the events of the ulvm daemon (failures, repairs, resyncs, scrubs)

  events
	[ -f|--follow ]
	[    --json ]
	[    --since ID|TIME ]
	[ COMMON_OPTIONS ]

  Reads $ULVM_RUN_DIR/events.log (and the rotated events.log.1). --follow
  keeps printing new events until interrupted. --json prints each event's
  record as stored (one JSON object per line). --since ID prints the events
  after event ID; --since TIME those at or after TIME, e.g. 2026-12-07T12:00:00Z.
`,
  options: [
    { name: "follow", short: "f", value: false },
    { name: "json", value: false },
    { name: "since", value: true },
  ],
  needsDevices: false,
  async run(ctx, args) {
    // lvm2's words for a positional argument a command does not take.
    if (args.positional.length) throw new UsageError(`Command does not accept argument: ${args.positional[0]!}.`, args.command);
    const keep = sinceFilter(args);
    const print = (e: UlvmEvent): void => ctx.out.write((args.has("json") ? JSON.stringify(e) : formatEventLine(e)) + "\n");
    let lastId = 0;
    for (const e of readEvents(ctx.paths.runDir)) {
      lastId = Math.max(lastId, e.id);
      if (keep(e)) print(e);
    }
    if (!args.has("follow")) return 0;
    // The CLI's stdout is buffered for one write per report; a follower flushes each event.
    const flush = (): void => (ctx.out as { flush?: () => void }).flush?.();
    flush();
    await follow(ctx, lastId, (e) => {
      if (keep(e)) print(e);
      flush();
    });
    return 0;
  },
};

/** Which events --since keeps. */
function sinceFilter(args: Args): (e: UlvmEvent) => boolean {
  const since = args.str("since");
  if (since === undefined) return () => true;
  if (/^\d+$/.test(since)) {
    const id = Number(since);
    return (e) => e.id > id;
  }
  // A time without a zone is UTC, as the times `ulvm events` prints.
  const iso = /^\d{4}-\d\d-\d\d([ T]\d\d:\d\d(:\d\d(\.\d+)?)?)?$/.test(since) ? since.replace(" ", "T") + (since.length > 10 ? "Z" : "T00:00:00Z") : since;
  const ms = /^\d{4}-\d\d-\d\d/.test(iso) ? Date.parse(iso) : NaN;
  if (Number.isNaN(ms)) throw badArgument(args, "since", since);
  return (e) => Date.parse(e.time) >= ms;
}

const FOLLOW_POLL_MS = 200;

/**
 * Print events as the daemon appends them, until SIGINT/SIGTERM or a closed
 * stdout. events.log is read from where the last read stopped; when it was
 * rotated (a new inode), the rest of the old one (now events.log.1) and the new
 * one are read again, and the ids already printed are skipped.
 */
async function follow(ctx: ToolContext, afterId: number, print: (e: UlvmEvent) => void): Promise<void> {
  const file = eventsLogFile(ctx.paths.runDir);
  let lastId = afterId;
  let ino = -1;
  let offset = 0;
  let partial = "";
  const emit = (e: UlvmEvent): void => {
    if (e.id <= lastId) return;
    lastId = e.id;
    print(e);
  };
  const start = statOrUndefined(file);
  if (start) {
    ino = start.ino;
    offset = start.size;
  }
  const tick = (): void => {
    const st = statOrUndefined(file);
    if (!st) return;
    if (st.ino !== ino || st.size < offset) {
      ino = st.ino;
      offset = st.size;
      partial = "";
      for (const e of readEvents(ctx.paths.runDir)) emit(e);
      return;
    }
    if (st.size === offset) return;
    const buf = Buffer.alloc(st.size - offset);
    const fd = openSync(file, "r");
    try {
      readSync(fd, buf, 0, buf.length, offset);
    } finally {
      closeSync(fd);
    }
    offset = st.size;
    const lines = (partial + buf.toString("utf8")).split("\n");
    partial = lines.pop()!;
    for (const l of lines) {
      const e = parseEventLine(l);
      if (e) emit(e);
    }
  };
  await new Promise<void>((resolve) => {
    const timer = setInterval(tick, FOLLOW_POLL_MS);
    const done = (): void => {
      clearInterval(timer);
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    };
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
    process.stdout.once("error", done);
  });
}

function statOrUndefined(file: string): { ino: number; size: number } | undefined {
  try {
    const st = statSync(file);
    return { ino: st.ino, size: st.size };
  } catch {
    return undefined;
  }
}
