import { LvmError } from "../errors/errors.js";

/**
 * A table that device-mapper would refuse: gaps, bad lengths, unknown target
 * types, bad target arguments, devices that cannot be opened or are too
 * small. Raised once, at load(); targets then trust their inputs.
 * `details` carries the line index and target type when known.
 */
export class TableError extends LvmError {
  constructor(message: string, details?: { line?: number; targetType?: string } & Record<string, unknown>, cause?: unknown) {
    super("table", message, { details: details ?? {}, cause });
  }
}
