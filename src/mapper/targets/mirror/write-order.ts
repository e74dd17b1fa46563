/**
 * Keeps overlapping writes in arrival order on every leg.
 *
 * Each mirror write goes to all legs at once. If two writes to the same
 * sectors were both in flight, leg 0 could apply A then B while leg 1
 * applies B then A, leaving the legs different in a region the log calls in
 * sync. So a write registers its sector range when it arrives and, if an
 * earlier write still in flight overlaps it, waits until that one has
 * completed on every leg. Non-overlapping writes never wait and allocate no
 * promise (no await on the fast path).
 */
export interface OrderTicket {
  readonly startSector: number;
  readonly endSector: number;
  waiters: Array<() => void> | undefined;
}

export class WriteOrder {
  private readonly active = new Set<OrderTicket>();

  get inflight(): number {
    return this.active.size;
  }

  /**
   * Register [startSector, endSector). Returns the ticket and, when earlier
   * overlapping writes are in flight, a promise to await before issuing.
   */
  enter(startSector: number, endSector: number): { ticket: OrderTicket; wait: Promise<void> | undefined } {
    const ticket: OrderTicket = { startSector, endSector, waiters: undefined };
    let pending = 0;
    for (const t of this.active) if (t.startSector < endSector && startSector < t.endSector) pending++;
    if (pending === 0) {
      this.active.add(ticket);
      return { ticket, wait: undefined };
    }
    // Only now a closure: overlaps are the exception.
    let resolve: (() => void) | undefined;
    const onDone = (): void => {
      if (--pending === 0) resolve?.();
    };
    for (const t of this.active) if (t.startSector < endSector && startSector < t.endSector) (t.waiters ??= []).push(onDone);
    this.active.add(ticket);
    return { ticket, wait: new Promise<void>((r) => (resolve = r)) };
  }

  /** The write completed on every leg: later overlapping writes may go. */
  leave(ticket: OrderTicket): void {
    if (!this.active.delete(ticket)) return;
    const w = ticket.waiters;
    ticket.waiters = undefined;
    if (w) for (const f of w) f();
  }
}
