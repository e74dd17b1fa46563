/**
 * Errors are values with a code and an lvm2 exit status (tools/errors.h):
 * 0 success, 2 no such command, 3 invalid command line, 5 command failed.
 * Lower layers throw; cli/main, nbd/server and daemon/ catch.
 */
export const EXIT_OK = 0;
export const EXIT_NO_SUCH_CMD = 2;
export const EXIT_INVALID_CMD_LINE = 3;
export const EXIT_FAILED = 5;

export class LvmError extends Error {
  readonly code: string;
  readonly exitCode: number;
  readonly details: Readonly<Record<string, unknown>>;
  /** Lines already printed in lvm2's wording; main prints `message` unless `silent`. */
  silent = false;
  constructor(code: string, message: string, opts: { exitCode?: number; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = opts.exitCode ?? EXIT_FAILED;
    this.details = opts.details ?? {};
  }
}

/** A bad command line: exit 3, like lvm2's EINVALID_CMD_LINE. */
export class UsageError extends LvmError {
  /** Print lvm2's `Run \`CMD --help' for more information.` after the message. */
  readonly command: string | undefined;
  constructor(message: string, command?: string, details?: Record<string, unknown>) {
    super("usage", message, { exitCode: EXIT_INVALID_CMD_LINE, details: details ?? {} });
    this.command = command;
  }
}

export class NoSuchCommandError extends LvmError {
  constructor(message: string) {
    super("no-such-command", message, { exitCode: EXIT_NO_SUCH_CMD });
  }
}

export class NotFoundError extends LvmError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("not-found", message, { details: details ?? {} });
  }
}

/** Bytes on a device or a text that do not follow the format. */
export class FormatError extends LvmError {
  constructor(message: string, details?: { device?: string; offsetBytes?: number } & Record<string, unknown>) {
    super("format", message, { details: details ?? {} });
  }
}

export class AllocationError extends LvmError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("allocation", message, { details: details ?? {} });
  }
}

export class MissingPvError extends LvmError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("missing-pv", message, { details: details ?? {} });
  }
}

/** The VG or a device is busy, locked or in use. */
export class BusyError extends LvmError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("busy", message, { details: details ?? {} });
  }
}

/** An I/O failure on a device; `errno` is the POSIX name (EIO, ENOSPC, ...). */
export class IoError extends LvmError {
  readonly errno: string;
  constructor(message: string, errno = "EIO", details?: Record<string, unknown>, cause?: unknown) {
    super("io", message, { details: details ?? {}, cause });
    this.errno = errno;
  }
}

/** A broken invariant: a bug in ulvm, never the user's fault. */
export class InternalError extends LvmError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("internal", `Internal error: ${message}`, { details: details ?? {} });
  }
}

/** Generic failure with an lvm2-worded message (exit 5). */
export class CommandError extends LvmError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("failed", message, { details: details ?? {} });
  }
}

export function isLvmError(e: unknown): e is LvmError {
  return e instanceof LvmError;
}
