/**
 * The FUSE kernel protocol's numbers and struct sizes, as Linux's
 * include/uapi/linux/fuse.h (libfuse's fuse_kernel.h) defines them. Only what
 * ulvm's one-file server speaks; every struct is little-endian on the hosts
 * ulvm runs on (x86-64, arm64) and padded to 8 bytes.
 */
export const FUSE_KERNEL_VERSION = 7;
/** The minor version ulvm speaks: 7.31 has max_pages (7.28) and the 64-byte init_out (7.23). */
export const FUSE_KERNEL_MINOR_VERSION = 31;
export const FUSE_ROOT_ID = 1;

export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  INTERRUPT: 36,
  DESTROY: 38,
  BATCH_FORGET: 42,
} as const;

/** INIT flags (fuse_init_in/out.flags). */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  BIG_WRITES: 1 << 5,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
} as const;

/** fuse_open_out.open_flags. */
export const FOPEN_DIRECT_IO = 1 << 0;
export const FOPEN_KEEP_CACHE = 1 << 1;

/** fuse_setattr_in.valid: which attributes a SETATTR changes. */
export const FATTR_SIZE = 1 << 3;

/** Notifications (fuse_out_header.error with unique 0). */
export const FUSE_NOTIFY_INVAL_INODE = 2;
export const NOTIFY_INVAL_INODE_OUT_SIZE = 24; // ino, off, len

export const Errno = {
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  EINVAL: 22,
  ENOSPC: 28,
  EROFS: 30,
  ENOSYS: 38,
  EPROTO: 71,
} as const;

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
/** open(2) access mode bits, as in fuse_open_in.flags. */
export const O_ACCMODE = 3;
export const O_RDONLY = 0;

/** Struct sizes in bytes. */
export const IN_HEADER_SIZE = 40; // fuse_in_header
export const OUT_HEADER_SIZE = 16; // fuse_out_header
export const ATTR_SIZE = 88; // fuse_attr (7.9+: blksize, padding)
export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE; // fuse_entry_out
export const ATTR_OUT_SIZE = 16 + ATTR_SIZE; // fuse_attr_out
export const OPEN_OUT_SIZE = 16;
export const READ_IN_SIZE = 40;
export const WRITE_IN_SIZE = 40; // 7.9+
export const WRITE_OUT_SIZE = 8;
export const STATFS_OUT_SIZE = 80; // fuse_kstatfs
export const INIT_IN_SIZE = 16; // major, minor, max_readahead, flags (flags2 and the rest since 7.36 are ignored)
export const INIT_OUT_SIZE = 64; // 7.23+
export const INIT_OUT_SIZE_COMPAT_22 = 24; // 7.5 .. 7.22
export const INIT_OUT_SIZE_COMPAT = 8; // before 7.5
export const INTERRUPT_IN_SIZE = 8;
export const FSYNC_IN_SIZE = 16;
export const OPEN_IN_SIZE = 8;
export const SETATTR_IN_SIZE = 88;
