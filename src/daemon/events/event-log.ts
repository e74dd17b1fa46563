import { closeSync, fstatSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { defaultSeverity, parseEventLine, type EventInput, type UlvmEvent } from "./event-types.js";

export const EVENTS_LOG = "events.log";
export const eventsLogFile = (runDir: string): string => join(runDir, EVENTS_LOG);
export const rotatedFile = (file: string): string => `${file}.1`;

export type EventListener = (e: UlvmEvent) => void;

export interface EventLogOptions {
  /** Past this size, events.log becomes events.log.1 (replacing the older one) and a new one starts. */
  maxBytes?: number;
  /** Events kept in memory for recent(). */
  recentCount?: number;
  /** An id known to be used already (the mail state's), for when both files were removed. */
  usedId?: number;
  now?: () => Date;
}

const DEFAULT_MAX_BYTES = 1 << 20;
const DEFAULT_RECENT = 200;

/**
 * The daemon's event record: one JSON line per event, appended to
 * $ULVM_RUN_DIR/events.log, bounded to two files of at most maxBytes.
 *
 * Ids continue across restarts: at open, the last id is read back from
 * events.log and events.log.1 (at most 2 x maxBytes, once), so
 * `ulvm events --since ID` and the mail state never see an id twice.
 *
 * An append is one write(2) of one line on an O_APPEND descriptor, on the
 * event loop: the id order and the file order are then the same, a line is
 * never interleaved, and `ulvm events` may read while the daemon writes. It
 * costs one small write to the run directory (tmpfs) per event; events come
 * at human rates (a failure, a 10% step), never per I/O.
 *
 * Listeners are called synchronously and must only queue their work (hooks,
 * mail, the status page): an emitter on the policy path never waits for them.
 */
export class EventLog {
  readonly file: string;
  private readonly maxBytes: number;
  private readonly recentCount: number;
  private readonly now: () => Date;
  private fd: number | undefined;
  private sizeBytes = 0;
  private lastIdValue = 0;
  private readonly recentEvents: UlvmEvent[] = [];
  private readonly listeners = new Set<EventListener>();
  /** Called with a listener's exception (the daemon logs it); a listener never stops an emitter. */
  onListenerError: (e: unknown) => void = () => undefined;

  constructor(runDir: string, opts: EventLogOptions = {}) {
    this.file = eventsLogFile(runDir);
    this.maxBytes = Math.max(1024, opts.maxBytes ?? DEFAULT_MAX_BYTES);
    this.recentCount = Math.max(1, opts.recentCount ?? DEFAULT_RECENT);
    this.now = opts.now ?? (() => new Date());
    this.open(opts.usedId ?? 0);
  }

  get lastId(): number {
    return this.lastIdValue;
  }

  private open(usedId: number): void {
    const older = readEventFile(rotatedFile(this.file));
    const current = readEventFile(this.file);
    const all = [...older, ...current];
    this.lastIdValue = all.reduce((m, e) => Math.max(m, e.id), usedId);
    this.recentEvents.push(...all.slice(-this.recentCount));
    this.fd = openSync(this.file, "a", 0o644);
    this.sizeBytes = fstatSync(this.fd).size;
  }

  /** Record an event: it gets the next id and the current time, and goes to every listener. */
  append(input: EventInput): UlvmEvent {
    const details: Record<string, unknown> = { ...(input.details ?? {}) };
    if (input.message !== undefined) details.message = input.message;
    const event: UlvmEvent = {
      id: this.lastIdValue + 1,
      time: this.now().toISOString(),
      name: input.name,
      severity: input.severity ?? defaultSeverity(input.name),
      ...(input.vg !== undefined ? { vg: input.vg } : {}),
      ...(input.lv !== undefined ? { lv: input.lv } : {}),
      ...(input.pv !== undefined ? { pv: input.pv } : {}),
      ...(input.leg !== undefined ? { leg: input.leg } : {}),
      details,
    };
    this.lastIdValue = event.id;
    this.write(Buffer.from(JSON.stringify(event) + "\n"));
    this.recentEvents.push(event);
    if (this.recentEvents.length > this.recentCount) this.recentEvents.splice(0, this.recentEvents.length - this.recentCount);
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch (e) {
        this.onListenerError(e);
      }
    }
    return event;
  }

  private write(line: Buffer): void {
    if (this.fd === undefined) return; // closed: the event still reaches listeners and recent()
    if (this.sizeBytes > 0 && this.sizeBytes + line.length > this.maxBytes) this.rotate();
    writeSync(this.fd, line);
    this.sizeBytes += line.length;
  }

  /** events.log → events.log.1: a reader following the old file by descriptor still sees its end. */
  private rotate(): void {
    closeSync(this.fd!);
    renameSync(this.file, rotatedFile(this.file));
    this.fd = openSync(this.file, "a", 0o644);
    this.sizeBytes = 0;
  }

  /** The last n events, oldest first. */
  recent(n: number = this.recentCount): UlvmEvent[] {
    return n <= 0 ? [] : this.recentEvents.slice(-n);
  }

  /** Live events; returns the unsubscribe function. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Every well-formed event of one file ([] when it does not exist); torn lines are skipped. */
export function readEventFile(file: string): UlvmEvent[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const out: UlvmEvent[] = [];
  for (const line of text.split("\n")) {
    const e = parseEventLine(line);
    if (e) out.push(e);
  }
  return out;
}

/** events.log.1 then events.log, in id order, without duplicates. */
export function readEvents(runDir: string): UlvmEvent[] {
  const file = eventsLogFile(runDir);
  const seen = new Set<number>();
  const out: UlvmEvent[] = [];
  for (const e of [...readEventFile(rotatedFile(file)), ...readEventFile(file)]) {
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    out.push(e);
  }
  return out.sort((a, b) => a.id - b.id);
}
