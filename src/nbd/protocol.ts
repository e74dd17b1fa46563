/**
 * NBD protocol constants, spelled as the upstream specification spells them
 * (NetworkBlockDevice/nbd doc/proto.md). Everything on the wire is big-endian.
 * Section numbers (§) refer to shared/reference/nbd-protocol.md.
 */

// §2.1 greeting and option haggling
export const NBDMAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
export const IHAVEOPT = 0x49484156454f5054n; // "IHAVEOPT"
export const NBD_REP_MAGIC = 0x0003e889045565a9n;

// handshake flags (server → client, u16)
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;
// client flags (client → server, u32)
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

// §3 transmission flags (u16)
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;
export const NBD_FLAG_SEND_RESIZE = 1 << 9;
export const NBD_FLAG_SEND_CACHE = 1 << 10;
export const NBD_FLAG_SEND_FAST_ZERO = 1 << 11;

// §2.3 option codes
export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_PEEK_EXPORT = 4;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;
export const NBD_OPT_EXTENDED_HEADERS = 11;

// §2.4 option reply types
export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
const NBD_REP_FLAG_ERROR = 0x80000000;
export const NBD_REP_ERR_UNSUP = (NBD_REP_FLAG_ERROR | 1) >>> 0;
export const NBD_REP_ERR_POLICY = (NBD_REP_FLAG_ERROR | 2) >>> 0;
export const NBD_REP_ERR_INVALID = (NBD_REP_FLAG_ERROR | 3) >>> 0;
export const NBD_REP_ERR_PLATFORM = (NBD_REP_FLAG_ERROR | 4) >>> 0;
export const NBD_REP_ERR_TLS_REQD = (NBD_REP_FLAG_ERROR | 5) >>> 0;
export const NBD_REP_ERR_UNKNOWN = (NBD_REP_FLAG_ERROR | 6) >>> 0;
export const NBD_REP_ERR_SHUTDOWN = (NBD_REP_FLAG_ERROR | 7) >>> 0;
export const NBD_REP_ERR_BLOCK_SIZE_REQD = (NBD_REP_FLAG_ERROR | 8) >>> 0;
export const NBD_REP_ERR_TOO_BIG = (NBD_REP_FLAG_ERROR | 9) >>> 0;
export const NBD_REP_ERR_EXT_HEADER_REQD = (NBD_REP_FLAG_ERROR | 10) >>> 0;

export function isOptionReplyError(replyType: number): boolean {
  return (replyType & NBD_REP_FLAG_ERROR) !== 0;
}

// §2.5 NBD_INFO_* types
export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

// §4 requests and replies
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;

export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_CACHE = 5;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;

export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;

// §5 structured replies
export const NBD_REPLY_FLAG_DONE = 1 << 0;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
export const NBD_REPLY_TYPE_ERROR = (1 << 15) | 1;
export const NBD_REPLY_TYPE_ERROR_OFFSET = (1 << 15) | 2;

// base:allocation extent flags (§5)
export const NBD_STATE_HOLE = 1 << 0;
export const NBD_STATE_ZERO = 1 << 1;
export const BASE_ALLOCATION_CONTEXT = "base:allocation";

// §7.1 error values
export const NBD_SUCCESS = 0;
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

// Wire sizes
export const GREETING_BYTES = 18; // NBDMAGIC + IHAVEOPT + u16 handshake flags
export const CLIENT_FLAGS_BYTES = 4;
export const OPTION_HEADER_BYTES = 16;
export const OPTION_REPLY_HEADER_BYTES = 20;
export const REQUEST_HEADER_BYTES = 28;
export const SIMPLE_REPLY_HEADER_BYTES = 16;
export const STRUCTURED_REPLY_HEADER_BYTES = 20;
/** Structured OFFSET_DATA chunk header including its u64 offset. */
export const OFFSET_DATA_HEADER_BYTES = STRUCTURED_REPLY_HEADER_BYTES + 8;
/** Zero padding after EXPORT_NAME's size and flags unless NO_ZEROES was agreed. */
export const EXPORT_NAME_PADDING_BYTES = 124;
/** Longest string the spec allows in any field. */
export const NBD_MAX_STRING_BYTES = 4096;

// §6 what we advertise in NBD_INFO_BLOCK_SIZE (the same as qemu-nbd)
export const BLOCK_SIZE_MINIMUM_BYTES = 1;
export const BLOCK_SIZE_PREFERRED_BYTES = 4096;
export const BLOCK_SIZE_MAXIMUM_BYTES = 32 * 1024 * 1024;

const COMMAND_NAMES: Readonly<Record<number, string>> = {
  [NBD_CMD_READ]: "NBD_CMD_READ",
  [NBD_CMD_WRITE]: "NBD_CMD_WRITE",
  [NBD_CMD_DISC]: "NBD_CMD_DISC",
  [NBD_CMD_FLUSH]: "NBD_CMD_FLUSH",
  [NBD_CMD_TRIM]: "NBD_CMD_TRIM",
  [NBD_CMD_CACHE]: "NBD_CMD_CACHE",
  [NBD_CMD_WRITE_ZEROES]: "NBD_CMD_WRITE_ZEROES",
  [NBD_CMD_BLOCK_STATUS]: "NBD_CMD_BLOCK_STATUS",
};

export function commandName(type: number): string {
  return COMMAND_NAMES[type] ?? `NBD_CMD_${type}`;
}

const OPTION_NAMES: Readonly<Record<number, string>> = {
  [NBD_OPT_EXPORT_NAME]: "NBD_OPT_EXPORT_NAME",
  [NBD_OPT_ABORT]: "NBD_OPT_ABORT",
  [NBD_OPT_LIST]: "NBD_OPT_LIST",
  [NBD_OPT_PEEK_EXPORT]: "NBD_OPT_PEEK_EXPORT",
  [NBD_OPT_STARTTLS]: "NBD_OPT_STARTTLS",
  [NBD_OPT_INFO]: "NBD_OPT_INFO",
  [NBD_OPT_GO]: "NBD_OPT_GO",
  [NBD_OPT_STRUCTURED_REPLY]: "NBD_OPT_STRUCTURED_REPLY",
  [NBD_OPT_LIST_META_CONTEXT]: "NBD_OPT_LIST_META_CONTEXT",
  [NBD_OPT_SET_META_CONTEXT]: "NBD_OPT_SET_META_CONTEXT",
  [NBD_OPT_EXTENDED_HEADERS]: "NBD_OPT_EXTENDED_HEADERS",
};

export function optionName(code: number): string {
  return OPTION_NAMES[code] ?? `NBD_OPT_${code}`;
}
