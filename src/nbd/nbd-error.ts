/**
 * Map failures to the NBD error values a client understands (§7.1). Clients
 * treat values outside the spec's list as EINVAL, so every errno is folded
 * into that list here, once.
 */
import { IoError } from "../errors/errors.js";
import { NBD_EINVAL, NBD_EIO, NBD_ENOMEM, NBD_ENOSPC, NBD_ENOTSUP, NBD_EOVERFLOW, NBD_EPERM, NBD_ESHUTDOWN } from "./protocol.js";

const BY_ERRNO: Readonly<Record<string, number>> = {
  EPERM: NBD_EPERM,
  EROFS: NBD_EPERM,
  EACCES: NBD_EPERM,
  EIO: NBD_EIO,
  ENOMEM: NBD_ENOMEM,
  EINVAL: NBD_EINVAL,
  ENOSPC: NBD_ENOSPC,
  EDQUOT: NBD_ENOSPC,
  EFBIG: NBD_ENOSPC,
  EOVERFLOW: NBD_EOVERFLOW,
  ENOTSUP: NBD_ENOTSUP,
  EOPNOTSUPP: NBD_ENOTSUP,
  ESHUTDOWN: NBD_ESHUTDOWN,
};

/** NBD error for a POSIX errno name; anything unlisted is an I/O error. */
export function nbdErrorFromErrno(errno: string): number {
  return BY_ERRNO[errno] ?? NBD_EIO;
}

/** NBD error for anything a BlockDevice threw: IoError carries its errno; anything else is EIO. */
export function nbdErrorOf(e: unknown): number {
  if (e instanceof IoError) return nbdErrorFromErrno(e.errno);
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === "string" ? nbdErrorFromErrno(code) : NBD_EIO;
}

const NAMES: Readonly<Record<number, string>> = {
  0: "OK",
  [NBD_EPERM]: "EPERM",
  [NBD_EIO]: "EIO",
  [NBD_ENOMEM]: "ENOMEM",
  [NBD_EINVAL]: "EINVAL",
  [NBD_ENOSPC]: "ENOSPC",
  [NBD_EOVERFLOW]: "EOVERFLOW",
  [NBD_ENOTSUP]: "ENOTSUP",
  [NBD_ESHUTDOWN]: "ESHUTDOWN",
};

export function nbdErrorName(error: number): string {
  return NAMES[error] ?? `NBD_ERROR_${error}`;
}
