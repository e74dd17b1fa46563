/**
 * NbdExport: one named export and the connections attached to it.
 * The server owns the registry; the device stays the caller's (the server
 * never closes it).
 */
import type { BlockDevice } from "../blockdev/block-device.js";
import {
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
} from "./protocol.js";

export interface NbdExportOptions {
  /** Export name as clients ask for it (the daemon uses "VG/LV"; "" is the default export). */
  readonly name: string;
  readonly device: BlockDevice;
  /** Serve read-only even if the device is writable. A device without caps.write is always read-only. */
  readonly readOnly?: boolean;
  /** Free text for NBD_INFO_DESCRIPTION and NBD_OPT_LIST. */
  readonly description?: string;
}

/** Anything attached to an export that can be asked to leave. */
export interface ExportClient {
  /** Finish requests already received, answer new ones with ESHUTDOWN, then close. */
  shutdown(): void;
  /** Resolves once the connection is fully closed. */
  readonly closed: Promise<void>;
}

export class NbdExport {
  /** Changes only through NbdServer.renameExport; connections keep their export object. */
  name: string;
  readonly device: BlockDevice;
  readonly readOnly: boolean;
  readonly description: string;
  readonly clients = new Set<ExportClient>();
  /** Set when the export is being removed: new GO/EXPORT_NAME requests no longer find it. */
  removing = false;

  constructor(opts: NbdExportOptions) {
    this.name = opts.name;
    this.device = opts.device;
    this.readOnly = (opts.readOnly ?? false) || !opts.device.caps.write;
    this.description = opts.description ?? "";
  }

  get sizeBytes(): number {
    return this.device.sizeBytes;
  }

  /**
   * §3 transmission flags. CAN_MULTI_CONN is sound because every connection
   * goes through the same BlockDevice, whose flush() covers every write that
   * resolved before it on any connection, and we only reply to a write after
   * it resolved.
   */
  transmissionFlags(structuredReplies: boolean): number {
    const caps = this.device.caps;
    let flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_CACHE;
    if (caps.flush) flags |= NBD_FLAG_SEND_FLUSH | NBD_FLAG_CAN_MULTI_CONN;
    if (structuredReplies) flags |= NBD_FLAG_SEND_DF; // reads are always one chunk
    if (this.readOnly) {
      flags |= NBD_FLAG_READ_ONLY;
    } else {
      // FUA needs either native FUA or a flush to emulate it.
      if (caps.fua || caps.flush) flags |= NBD_FLAG_SEND_FUA;
      if (caps.trim && this.device.discard !== undefined) flags |= NBD_FLAG_SEND_TRIM;
      // Zeroes are always possible (written from a zero buffer if the device has no writeZeroes);
      // FAST_ZERO is advertised so that clients can learn cheaply that zeroing is not fast (ENOTSUP).
      flags |= NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
    }
    return flags;
  }
}
