/**
 * What a connection needs from its server, and the limits it enforces.
 * Kept apart from NbdServer so that connection.ts and handshake.ts depend on
 * an interface, not on the server.
 */
import type { BufferPool } from "../blockdev/buffer-pool.js";
import { DEFAULT_PARSER_LIMITS } from "./codec.js";
import type { NbdExport } from "./nbd-export.js";

export interface ConnectionLimits {
  /** Options per connection before a hard close (§2.2; nbdkit stops at 32, but nbdinfo --list asks per export). */
  readonly maxOptions: number;
  /** Option data buffered for known options; longer known options get ERR_TOO_BIG. */
  readonly maxBufferedOptionBytes: number;
  /** Option data above this is a hard close. */
  readonly maxOptionBytes: number;
  /** WRITE payloads above our maximum but up to this are drained and answered EINVAL; beyond: hard close (§7.2). */
  readonly maxDrainedPayloadBytes: number;
  /** Requests being served per connection; more wait (headers only) and the socket is paused. */
  readonly maxInFlightRequests: number;
  /** Buffer bytes (payloads, read data) held per connection before reads are held back. */
  readonly maxInFlightBytes: number;
  /** Close connections that have not reached transmission after this long (0 = never). */
  readonly handshakeTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxOptions: 256,
  maxBufferedOptionBytes: DEFAULT_PARSER_LIMITS.maxBufferedOptionBytes,
  maxOptionBytes: DEFAULT_PARSER_LIMITS.maxOptionBytes,
  maxDrainedPayloadBytes: 64 * 1024 * 1024,
  maxInFlightRequests: 256,
  maxInFlightBytes: 64 * 1024 * 1024,
  handshakeTimeoutMs: 30_000,
};

/** A connection waiting for the server-wide byte budget. */
export interface BudgetWaiter {
  onBudgetAvailable(): void;
}

export interface ConnectionHost {
  readonly limits: ConnectionLimits;
  readonly pool: BufferPool;
  /** Read into user buffers (socket-reader.ts); false forces plain 'data' events. */
  readonly userBuffers: boolean;
  readonly shuttingDown: boolean;
  findExport(name: string): NbdExport | undefined;
  listExports(): readonly NbdExport[];
  /**
   * Take `bytes` from the server-wide budget for request and reply buffers.
   * Fails (and the caller must wait, see waitForBudget) while the budget is
   * exhausted, except when nothing at all is held, so that one maximal
   * request can always proceed.
   */
  tryReserve(bytes: number): boolean;
  /** Return bytes to the budget; wakes connections waiting for it. */
  unreserve(bytes: number): void;
  /** Call `waiter.onBudgetAvailable()` (once) after the next unreserve. */
  waitForBudget(waiter: BudgetWaiter): void;
  connectionClosed(conn: BudgetWaiter): void;
  log(level: "debug" | "info" | "warn", message: string): void;
}
