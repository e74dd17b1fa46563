/**
 * validateRequest: the one place a transmission request is checked (house
 * rule 5: validate once at the edge; devices trust their inputs). Implements
 * the "ours" column of nbd-protocol.md §7.2:
 *
 *   unknown command                          → EINVAL (no payload assumed)
 *   command/flag whose feature we did not advertise, unknown flag,
 *   flag not valid for the command, DF without structured replies,
 *   BLOCK_STATUS without structured replies + a context → EINVAL
 *   WRITE/TRIM/WRITE_ZEROES on a read-only export       → EPERM
 *   READ/WRITE longer than our 32 MiB maximum           → EINVAL
 *   READ/TRIM/CACHE/BLOCK_STATUS past the end (and u64 wrap) → EINVAL
 *   WRITE/WRITE_ZEROES past the end                     → ENOSPC
 *   FLUSH offset/length                                 → ignored (reserved)
 *   zero length READ/WRITE/TRIM/WRITE_ZEROES/CACHE      → accepted, no I/O
 *   zero length BLOCK_STATUS                            → EINVAL
 *
 * NBD_CMD_DISC is handled by the connection before validation.
 */
import {
  BLOCK_SIZE_MAXIMUM_BYTES,
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_ENOSPC,
  NBD_EPERM,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
  commandName,
} from "./protocol.js";
import type { NbdRequest } from "./codec.js";

/** What the connection negotiated: the export's size and the flags it was sent. */
export interface RequestContext {
  readonly sizeBytes: number;
  readonly transmissionFlags: number;
  readonly structuredReplies: boolean;
  /** A meta context (base:allocation) is selected for this export. */
  readonly blockStatusContext: boolean;
}

export interface Rejection {
  readonly error: number;
  readonly message: string;
}

const KNOWN_FLAGS = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_DF | NBD_CMD_FLAG_REQ_ONE | NBD_CMD_FLAG_FAST_ZERO;

function reject(error: number, message: string): Rejection {
  return { error, message };
}

/** Null when the request may be executed; otherwise the error to answer with. */
export function validateRequest(req: NbdRequest, ctx: RequestContext): Rejection | null {
  const { type, flags } = req;
  const tflags = ctx.transmissionFlags;
  const name = commandName(type);

  // Command known and advertised?
  switch (type) {
    case NBD_CMD_READ:
    case NBD_CMD_WRITE:
      break;
    case NBD_CMD_FLUSH:
      if ((tflags & NBD_FLAG_SEND_FLUSH) === 0) return reject(NBD_EINVAL, `${name}: flush not supported by this export`);
      break;
    case NBD_CMD_TRIM:
      if ((tflags & NBD_FLAG_SEND_TRIM) === 0 && (tflags & NBD_FLAG_READ_ONLY) === 0) return reject(NBD_EINVAL, `${name}: trim not supported by this export`);
      break;
    case NBD_CMD_WRITE_ZEROES:
      if ((tflags & NBD_FLAG_SEND_WRITE_ZEROES) === 0 && (tflags & NBD_FLAG_READ_ONLY) === 0) return reject(NBD_EINVAL, `${name}: write zeroes not supported by this export`);
      break;
    case NBD_CMD_CACHE:
      if ((tflags & NBD_FLAG_SEND_CACHE) === 0) return reject(NBD_EINVAL, `${name}: cache not supported by this export`);
      break;
    case NBD_CMD_BLOCK_STATUS:
      if (!ctx.structuredReplies) return reject(NBD_EINVAL, `${name}: structured replies were not negotiated`);
      if (!ctx.blockStatusContext) return reject(NBD_EINVAL, `${name}: no metadata context was selected`);
      break;
    default:
      return reject(NBD_EINVAL, `unknown command ${type}`);
  }

  // Flags known, valid for the command, and advertised?
  if ((flags & ~KNOWN_FLAGS) !== 0) return reject(NBD_EINVAL, `${name}: unknown flags 0x${flags.toString(16)}`);
  if ((flags & NBD_CMD_FLAG_FUA) !== 0 && (tflags & NBD_FLAG_SEND_FUA) === 0) return reject(NBD_EINVAL, `${name}: FUA not supported by this export`);
  if ((flags & NBD_CMD_FLAG_NO_HOLE) !== 0 && type !== NBD_CMD_WRITE_ZEROES) return reject(NBD_EINVAL, `${name}: NO_HOLE is only valid on NBD_CMD_WRITE_ZEROES`);
  if ((flags & NBD_CMD_FLAG_FAST_ZERO) !== 0) {
    if (type !== NBD_CMD_WRITE_ZEROES) return reject(NBD_EINVAL, `${name}: FAST_ZERO is only valid on NBD_CMD_WRITE_ZEROES`);
    if ((tflags & NBD_FLAG_SEND_FAST_ZERO) === 0 && (tflags & NBD_FLAG_READ_ONLY) === 0) return reject(NBD_EINVAL, `${name}: FAST_ZERO not supported by this export`);
  }
  if ((flags & NBD_CMD_FLAG_DF) !== 0) {
    if (type !== NBD_CMD_READ) return reject(NBD_EINVAL, `${name}: DF is only valid on NBD_CMD_READ`);
    if ((tflags & NBD_FLAG_SEND_DF) === 0) return reject(NBD_EINVAL, `${name}: DF needs structured replies`);
  }
  if ((flags & NBD_CMD_FLAG_REQ_ONE) !== 0 && type !== NBD_CMD_BLOCK_STATUS) return reject(NBD_EINVAL, `${name}: REQ_ONE is only valid on NBD_CMD_BLOCK_STATUS`);

  // Writes on a read-only export (checked before size and range, as nbdkit does).
  const isWrite = type === NBD_CMD_WRITE || type === NBD_CMD_TRIM || type === NBD_CMD_WRITE_ZEROES;
  if (isWrite && (tflags & NBD_FLAG_READ_ONLY) !== 0) return reject(NBD_EPERM, `${name}: export is read-only`);

  if (type === NBD_CMD_FLUSH) return null; // offset/length are reserved: ignored (§7.2)

  if ((type === NBD_CMD_READ || type === NBD_CMD_WRITE) && req.lengthBytes > BLOCK_SIZE_MAXIMUM_BYTES) {
    return reject(NBD_EINVAL, `${name}: length ${req.lengthBytes} exceeds the maximum payload of ${BLOCK_SIZE_MAXIMUM_BYTES} bytes`);
  }
  if (type === NBD_CMD_BLOCK_STATUS && req.lengthBytes === 0) return reject(NBD_EINVAL, `${name}: zero length`);

  // Range. offsetBytes is exact below 2^53 and otherwise far beyond any
  // export, so this float comparison cannot be fooled by a u64 wrap.
  if (req.offsetBytes > ctx.sizeBytes || req.lengthBytes > ctx.sizeBytes - req.offsetBytes) {
    const error = type === NBD_CMD_WRITE || type === NBD_CMD_WRITE_ZEROES ? NBD_ENOSPC : NBD_EINVAL;
    return reject(error, `${name}: offset ${req.offsetBytes} + length ${req.lengthBytes} is beyond the end of the export (${ctx.sizeBytes} bytes)`);
  }
  return null;
}
