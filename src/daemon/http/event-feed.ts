import type { UlvmEvent } from "../events/event-types.js";

export type { UlvmEvent };

/**
 * The events the status page shows: the daemon's event log (events.log)
 * provides this directly, so the page sees an event the moment it is
 * recorded, with the same id and fields `ulvm events --json` prints.
 */
export interface EventFeed {
  /** The last `n` events, oldest first. */
  recent(n: number): UlvmEvent[];
  /** Call `fn` for every new event; returns the unsubscribe function. */
  subscribe(fn: (e: UlvmEvent) => void): () => void;
}
