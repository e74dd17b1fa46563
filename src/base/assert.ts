import { InternalError } from "../errors/errors.js";

/** For invariants only: a failure here is a bug in ulvm. */
export function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new InternalError(message);
}
