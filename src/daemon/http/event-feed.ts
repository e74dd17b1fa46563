import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";

/**
 * The events the status page shows, in the record format the daemon's
 * event log writes (one JSON object per line of $ULVM_RUN_DIR/events.log).
 * This folder only reads them: EventFeed is what the page needs, and the
 * daemon's own event log can provide it directly; until it does,
 * FileEventFeed follows the file.
 */
export interface UlvmEvent {
  /** Monotonic, never reused, persisted across daemon restarts. */
  id: number;
  /** ISO 8601. */
  time: string;
  /** kebab-case: leg-failed, lv-degraded, resync-finished... */
  name: string;
  severity: "error" | "warning" | "info";
  vg?: string;
  lv?: string;
  pv?: string;
  leg?: string;
  details?: Record<string, unknown>;
}

export interface EventFeed {
  /** The last `n` events, oldest first. */
  recent(n: number): UlvmEvent[];
  /** Call `fn` for every new event; returns the unsubscribe function. */
  subscribe(fn: (e: UlvmEvent) => void): () => void;
}

const KEEP = 200;
const POLL_MS = 1000;
/** On start, only the end of a large file is read. */
const INITIAL_TAIL_BYTES = 256 * 1024;

/**
 * Follows events.log as `tail -F` does: polls its size once a second while
 * anyone is subscribed (or when recent() is asked), reads what was
 * appended, and starts over from the beginning when the file was rotated
 * (another inode, or shorter than what was read).
 */
export class FileEventFeed implements EventFeed {
  private readonly events: UlvmEvent[] = [];
  private readonly subscribers = new Set<(e: UlvmEvent) => void>();
  private offset = 0;
  private ino = -1;
  private partial = "";
  private timer: NodeJS.Timeout | undefined;
  private primed = false;

  constructor(private readonly file: string) {}

  recent(n: number): UlvmEvent[] {
    this.poll();
    return this.events.slice(-n);
  }

  subscribe(fn: (e: UlvmEvent) => void): () => void {
    this.subscribers.add(fn);
    this.timer ??= setInterval(() => this.poll(), POLL_MS).unref();
    return () => {
      this.subscribers.delete(fn);
      if (this.subscribers.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.subscribers.clear();
  }

  private poll(): void {
    let st;
    try {
      st = statSync(this.file);
    } catch {
      // No log yet: whatever appears from now on is new.
      this.primed = true;
      return;
    }
    if (st.ino !== this.ino || st.size < this.offset) {
      this.ino = st.ino;
      // A rotated file is read from its start; the very first look reads only its tail.
      this.offset = this.primed ? 0 : Math.max(0, st.size - INITIAL_TAIL_BYTES);
      this.partial = "";
    }
    const first = !this.primed;
    this.primed = true;
    if (st.size <= this.offset) return;
    let text: string;
    let fd: number | undefined;
    try {
      fd = openSync(this.file, "r");
      const size = Math.min(fstatSync(fd).size, this.offset + 4 * INITIAL_TAIL_BYTES);
      const buf = Buffer.alloc(size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      text = this.partial + buf.subarray(0, n).toString("utf8");
    } catch {
      return;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    const lines = text.split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) {
      const e = parseEvent(line);
      if (!e) continue;
      this.events.push(e);
      if (!first) for (const fn of this.subscribers) fn(e);
    }
    if (this.events.length > KEEP) this.events.splice(0, this.events.length - KEEP);
  }
}

function parseEvent(line: string): UlvmEvent | undefined {
  if (line.trim() === "") return undefined;
  try {
    const e = JSON.parse(line) as UlvmEvent;
    return typeof e.id === "number" && typeof e.name === "string" ? e : undefined;
  } catch {
    return undefined;
  }
}
