import { TableError } from "./table-error.js";

/**
 * Argument parsing for table lines, the equivalent of the kernel's
 * `sscanf(argv[i], "%llu%c", ...)` checks: plain unsigned decimal, nothing
 * trailing. Each failure becomes a TableError with the kernel's wording.
 */
export function parseUnsigned(text: string | undefined, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (text === undefined || !/^[0-9]+$/.test(text)) throw new TableError(`${what}: "${text ?? ""}" is not an unsigned integer`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n > max) throw new TableError(`${what}: ${text} is out of range`);
  return n;
}

export function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isInteger(Math.log2(n)) && 2 ** Math.log2(n) === n;
}

/** Largest value of a kernel `unsigned int` argument. */
export const U32_MAX = 0xffffffff;
