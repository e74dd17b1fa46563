/**
 * Handshake: the option-haggling phase of one connection (§2), fixed
 * newstyle only. Options are answered synchronously, in order; the last
 * reply to GO (or the EXPORT_NAME answer) hands the connection to the
 * transmission phase through HandshakeSession.enterTransmission.
 *
 * Hard closes here (§7.2): unknown client flags, bad option magic and
 * absurd option lengths (both in the parser), too many options, and an
 * unknown export in EXPORT_NAME (which has no way to say "no").
 */
import {
  decodeInfoRequest,
  decodeMetaContextRequest,
  encodeExportNameReply,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoText,
  encodeOptionError,
  encodeOptionReply,
  encodeRepMetaContext,
  encodeRepServer,
} from "./codec.js";
import type { NbdOption } from "./codec.js";
import type { ConnectionHost } from "./connection-host.js";
import type { NbdExport } from "./nbd-export.js";
import type { TlsMode } from "./server-tls.js";
import {
  BASE_ALLOCATION_CONTEXT,
  BLOCK_SIZE_MAXIMUM_BYTES,
  BLOCK_SIZE_MINIMUM_BYTES,
  BLOCK_SIZE_PREFERRED_BYTES,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_NAME,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_TOO_BIG,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  optionName,
} from "./protocol.js";

/** Context id we hand out for base:allocation in REP_META_CONTEXT. */
export const BASE_ALLOCATION_CONTEXT_ID = 1;

/** What the transmission phase inherits from the handshake. */
export interface Negotiated {
  readonly structuredReplies: boolean;
  /** base:allocation was selected for the export that was opened. */
  readonly blockStatusContext: boolean;
}

/** The connection, as the handshake sees it. */
export interface HandshakeSession {
  readonly host: ConnectionHost;
  /** The connection itself is being shut down. */
  readonly shuttingDown: boolean;
  send(reply: Buffer): void;
  hardClose(reason: string): void;
  /** Close after the replies already sent. */
  endGracefully(): void;
  enterTransmission(exp: NbdExport, transmissionFlags: number, negotiated: Negotiated): void;
  /** This listener's TLS mode, and whether STARTTLS has already upgraded the connection. */
  readonly tlsMode: TlsMode;
  readonly tlsActive: boolean;
  /** Upgrade to TLS right after the STARTTLS ACK that was just sent. */
  startTls(): void;
}

export class Handshake {
  private noZeroes = false;
  private optionCount = 0;
  private structuredReplies = false;
  /** Export a SET_META_CONTEXT selected base:allocation for; only a GO on that name gets it (§2.3). */
  private metaContextExport: string | null = null;

  constructor(private readonly session: HandshakeSession) {}

  onClientFlags(flags: number): void {
    const known = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES;
    if ((flags & ~known) !== 0) {
      // §2.1: an unknown client flag means we cannot talk; both peers drop the connection.
      this.session.hardClose(`unknown client flags 0x${flags.toString(16)}`);
      return;
    }
    // A client without C_FIXED_NEWSTYLE may only use EXPORT_NAME; serving its
    // other options anyway is tolerated by the spec (§2.1).
    this.noZeroes = (flags & NBD_FLAG_C_NO_ZEROES) !== 0;
  }

  onOption(opt: NbdOption): void {
    const s = this.session;
    if (++this.optionCount > s.host.limits.maxOptions) {
      s.hardClose(`more than ${s.host.limits.maxOptions} options`);
      return;
    }
    const { code } = opt;
    if (s.shuttingDown || s.host.shuttingDown) {
      this.error(code, NBD_REP_ERR_SHUTDOWN, "server is shutting down");
      s.endGracefully();
      return;
    }
    if (s.tlsMode === "require" && !s.tlsActive && code !== NBD_OPT_STARTTLS && code !== NBD_OPT_ABORT) {
      // FORCEDTLS (proto.md "TLS support"): EXPORT_NAME has no error reply, so it closes.
      if (code === NBD_OPT_EXPORT_NAME) s.hardClose("NBD_OPT_EXPORT_NAME before TLS, which is required");
      else this.error(code, NBD_REP_ERR_TLS_REQD, "TLS is required");
      return;
    }
    switch (code) {
      case NBD_OPT_EXPORT_NAME:
        this.exportName(opt);
        return;
      case NBD_OPT_ABORT:
        // Reply, then close; a client that does not wait for the ACK is fine (§2.3).
        s.send(encodeOptionReply(code, NBD_REP_ACK));
        s.endGracefully();
        return;
      case NBD_OPT_LIST:
        if (opt.lengthBytes !== 0) {
          this.error(code, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
          return;
        }
        for (const e of s.host.listExports()) s.send(encodeRepServer(code, e.name, e.description));
        s.send(encodeOptionReply(code, NBD_REP_ACK));
        return;
      case NBD_OPT_STARTTLS:
        this.startTls(opt);
        return;
      case NBD_OPT_INFO:
      case NBD_OPT_GO:
        this.infoOrGo(opt);
        return;
      case NBD_OPT_STRUCTURED_REPLY:
        if (opt.lengthBytes !== 0) {
          this.error(code, NBD_REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data");
          return;
        }
        this.structuredReplies = true; // asked twice: ACK again, as nbdkit does
        s.send(encodeOptionReply(code, NBD_REP_ACK));
        return;
      case NBD_OPT_LIST_META_CONTEXT:
      case NBD_OPT_SET_META_CONTEXT:
        this.metaContext(opt);
        return;
      default:
        // Unknown (incl. PEEK_EXPORT, EXTENDED_HEADERS): the parser already drained the data (§2.2).
        this.error(code, NBD_REP_ERR_UNSUP, `${optionName(code)} is not supported`);
    }
  }

  /**
   * STARTTLS (proto.md "TLS support"): ACK, then the TLS handshake at once;
   * everything negotiated before is forgotten and haggling starts over.
   */
  private startTls(opt: NbdOption): void {
    const { code } = opt;
    // Without TLS configured: ERR_POLICY, never ERR_TLS_REQD (§8).
    if (this.session.tlsMode === "off") return this.error(code, NBD_REP_ERR_POLICY, "TLS not configured");
    if (opt.lengthBytes !== 0) return this.error(code, NBD_REP_ERR_INVALID, "NBD_OPT_STARTTLS takes no data");
    if (this.session.tlsActive) return this.error(code, NBD_REP_ERR_INVALID, "TLS is already active");
    this.session.send(encodeOptionReply(code, NBD_REP_ACK));
    this.structuredReplies = false;
    this.metaContextExport = null;
    this.session.startTls();
  }

  private error(code: number, replyType: number, message: string): void {
    this.session.send(encodeOptionError(code, replyType, message));
  }

  private exportName(opt: NbdOption): void {
    const s = this.session;
    // No option reply exists for EXPORT_NAME: the only way to refuse is to hang up (§2.3).
    if (opt.data === null) {
      s.hardClose("NBD_OPT_EXPORT_NAME name too long");
      return;
    }
    const name = opt.data.toString("utf8");
    const exp = s.host.findExport(name);
    if (exp === undefined) {
      s.hardClose(`NBD_OPT_EXPORT_NAME: no export "${name}"`);
      return;
    }
    const flags = exp.transmissionFlags(this.structuredReplies);
    s.send(encodeExportNameReply(exp.sizeBytes, flags, this.noZeroes));
    s.enterTransmission(exp, flags, this.negotiatedFor(exp));
  }

  private infoOrGo(opt: NbdOption): void {
    const s = this.session;
    const { code } = opt;
    if (opt.data === null) {
      this.error(code, NBD_REP_ERR_TOO_BIG, `${optionName(code)} data too long`);
      return;
    }
    const info = decodeInfoRequest(opt.data);
    if (info === null) {
      this.error(code, NBD_REP_ERR_INVALID, `${optionName(code)}: malformed request`);
      return;
    }
    const exp = s.host.findExport(info.exportName);
    if (exp === undefined) {
      this.error(code, NBD_REP_ERR_UNKNOWN, `export "${info.exportName}" not found`);
      return;
    }
    const flags = exp.transmissionFlags(this.structuredReplies);
    // Each info at most once; unknown types are ignored. INFO_BLOCK_SIZE and
    // INFO_EXPORT always: qemu fails without the latter even though it does
    // not ask for it (§2.3).
    const asked = new Set(info.infoTypes);
    if (asked.has(NBD_INFO_NAME)) s.send(encodeInfoText(code, NBD_INFO_NAME, exp.name));
    if (asked.has(NBD_INFO_DESCRIPTION) && exp.description !== "") s.send(encodeInfoText(code, NBD_INFO_DESCRIPTION, exp.description));
    s.send(encodeInfoBlockSize(code, BLOCK_SIZE_MINIMUM_BYTES, BLOCK_SIZE_PREFERRED_BYTES, BLOCK_SIZE_MAXIMUM_BYTES));
    s.send(encodeInfoExport(code, exp.sizeBytes, flags));
    s.send(encodeOptionReply(code, NBD_REP_ACK));
    if (code === NBD_OPT_GO) s.enterTransmission(exp, flags, this.negotiatedFor(exp));
  }

  private negotiatedFor(exp: NbdExport): Negotiated {
    return { structuredReplies: this.structuredReplies, blockStatusContext: this.structuredReplies && this.metaContextExport === exp.name };
  }

  private metaContext(opt: NbdOption): void {
    const s = this.session;
    const { code } = opt;
    if (!this.structuredReplies) {
      this.error(code, NBD_REP_ERR_INVALID, `${optionName(code)} needs structured replies first`);
      return;
    }
    if (opt.data === null) {
      this.error(code, NBD_REP_ERR_TOO_BIG, `${optionName(code)} data too long`);
      return;
    }
    const req = decodeMetaContextRequest(opt.data);
    if (req === null) {
      this.error(code, NBD_REP_ERR_INVALID, `${optionName(code)}: malformed request`);
      return;
    }
    if (s.host.findExport(req.exportName) === undefined) {
      this.error(code, NBD_REP_ERR_UNKNOWN, `export "${req.exportName}" not found`);
      return;
    }
    if (code === NBD_OPT_LIST_META_CONTEXT) {
      // No queries = list everything; "base:" is a namespace wildcard in LIST only (§5).
      const matches = req.queries.length === 0 || req.queries.some((q) => q === BASE_ALLOCATION_CONTEXT || q === "base:");
      if (matches) s.send(encodeRepMetaContext(code, 0, BASE_ALLOCATION_CONTEXT));
    } else {
      // SET replaces the selection; unknown contexts are ignored, not errors.
      const selected = req.queries.includes(BASE_ALLOCATION_CONTEXT);
      this.metaContextExport = selected ? req.exportName : null;
      if (selected) s.send(encodeRepMetaContext(code, BASE_ALLOCATION_CONTEXT_ID, BASE_ALLOCATION_CONTEXT));
    }
    s.send(encodeOptionReply(code, NBD_REP_ACK));
  }
}
