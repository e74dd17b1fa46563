/**
 * The event record, as agreed with the status page and the metrics (one JSON
 * object per line of $ULVM_RUN_DIR/events.log). Field names and event names
 * are a contract: scripts, hooks and the status page read them.
 */
export type EventSeverity = "error" | "warning" | "info";

export type EventName =
  | "leg-failed"
  | "lv-degraded"
  | "lv-partial"
  | "pv-missing"
  | "pv-returned"
  | "repair-started"
  | "repair-finished"
  | "repair-failed"
  | "spare-allocated"
  | "no-spare"
  | "resync-started"
  | "resync-progress"
  | "resync-finished"
  | "recovery-started"
  | "recovery-progress"
  | "recovery-finished"
  | "scrub-started"
  | "scrub-finished"
  | "integrity-mismatch-healed"
  | "metadata-repaired"
  | "daemon-started"
  | "daemon-stopped"
  | "test";

export interface UlvmEvent {
  /** Monotonic, never reused, kept across daemon restarts (read back from events.log). */
  readonly id: number;
  /** ISO 8601, UTC, milliseconds. */
  readonly time: string;
  readonly name: EventName;
  readonly severity: EventSeverity;
  readonly vg?: string;
  readonly lv?: string;
  readonly pv?: string;
  readonly leg?: string;
  readonly details: Readonly<Record<string, unknown>>;
}

/** What an emitter says; the log adds id and time, and the severity when the name decides it. */
export interface EventInput {
  readonly name: EventName;
  readonly severity?: EventSeverity;
  readonly vg?: string;
  readonly lv?: string;
  readonly pv?: string;
  readonly leg?: string;
  readonly details?: Record<string, unknown>;
  /** One human sentence for `ulvm events`, syslog and mail; kept in details.message. */
  readonly message?: string;
}

/**
 * The failure class (mdadm mails Fail, DegradedArray...; these are ours).
 * scrub-finished is an error only when it found mismatches: its emitter says
 * so. Everything else is info unless its emitter says otherwise: an initial
 * sync, a check that finds nothing, a repair that worked are not alarms.
 */
const ERROR_EVENTS: ReadonlySet<EventName> = new Set<EventName>(["leg-failed", "lv-degraded", "lv-partial", "pv-missing", "no-spare", "repair-failed"]);
const WARNING_EVENTS: ReadonlySet<EventName> = new Set<EventName>(["metadata-repaired"]);

export function defaultSeverity(name: EventName): EventSeverity {
  return ERROR_EVENTS.has(name) ? "error" : WARNING_EVENTS.has(name) ? "warning" : "info";
}

/** "vg0/lv0", "vg0", or "" */
export function eventObject(e: Pick<UlvmEvent, "vg" | "lv" | "pv">): string {
  if (e.vg && e.lv) return `${e.vg}/${e.lv}`;
  return e.vg ?? e.pv ?? "";
}

/** The sentence describing an event: its message, else one made from its fields. */
export function eventMessage(e: UlvmEvent): string {
  const m = e.details.message;
  if (typeof m === "string" && m !== "") return m;
  const parts: string[] = [];
  if (e.leg) parts.push(`leg ${e.leg}`);
  if (e.pv) parts.push(`on ${e.pv}`);
  const rest = Object.entries(e.details)
    .filter(([k]) => k !== "message")
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  return [...parts, ...rest].join(" ");
}

/** `2026-12-07 12:00:00  #42  leg-failed  vg0/lv0  leg lv0_rimage_1 on /dev/loop3 failed (write EIO)` */
export function formatEventLine(e: UlvmEvent): string {
  const when = e.time.replace("T", " ").replace(/\.\d+Z$|Z$/, "");
  const obj = eventObject(e);
  return [when, `#${e.id}`, e.name, ...(obj ? [obj] : []), eventMessage(e)].filter((s) => s !== "").join("  ");
}

/** A line of events.log, or undefined for a torn or foreign line. */
export function parseEventLine(line: string): UlvmEvent | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const o = JSON.parse(line) as UlvmEvent;
    if (typeof o.id !== "number" || !Number.isSafeInteger(o.id) || typeof o.name !== "string" || typeof o.time !== "string") return undefined;
    return { ...o, details: o.details && typeof o.details === "object" ? o.details : {} };
  } catch {
    return undefined;
  }
}
