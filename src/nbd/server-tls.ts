/**
 * TLS on ulvm's NBD server (issue 18): `nbd { tls, tls_psk_file,
 * tls_certificates }`, as nbdkit's --tls / --tls-psk / --tls-certificates.
 *   - "off": STARTTLS is refused (NBD_REP_ERR_POLICY);
 *   - "on": the client chooses (a downgrade is possible, as with nbdkit);
 *   - "require": every option but STARTTLS and ABORT gets NBD_REP_ERR_TLS_REQD
 *     before TLS, and EXPORT_NAME (which has no error reply) closes.
 * PSK takes nbdkit's `identity:hexkey` file and wins over certificates, as
 * in nbdkit. X.509 takes a directory with server-cert.pem and server-key.pem
 * (and ca-cert.pem, to check client certificates with verify_peer).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import tls from "node:tls";
import { IoError } from "../errors/errors.js";
import { PSK_CIPHERS, readPskFile } from "./psk-file.js";

export type TlsMode = "off" | "on" | "require";
export const TLS_MODES: readonly TlsMode[] = ["off", "on", "require"];

export interface ServerTls {
  readonly mode: TlsMode;
  /** Options for tls.TLSSocket (isServer added by the connection); unused when mode is "off". */
  readonly options: tls.TLSSocketOptions;
}

export const NO_TLS: ServerTls = { mode: "off", options: {} };

export interface ServerTlsConfig {
  readonly mode: TlsMode;
  readonly pskFile?: string;
  readonly certificatesDir?: string;
  /** Ask for and check a client certificate against ca-cert.pem (X.509 only). */
  readonly verifyPeer?: boolean;
}

/** Load the credentials once, at start: a bad file is the daemon's start error, not every client's. */
export function serverTls(c: ServerTlsConfig): ServerTls {
  if (c.mode === "off") return NO_TLS;
  if (c.pskFile !== undefined) {
    const keys = readPskFile(c.pskFile);
    if (keys.size === 0) throw new IoError(`TLS PSK file ${c.pskFile} holds no key`, "EINVAL");
    return {
      mode: c.mode,
      options: {
        ciphers: PSK_CIPHERS,
        minVersion: "TLSv1.2",
        maxVersion: "TLSv1.2",
        // An unknown identity gets no key: the handshake fails.
        pskCallback: (_socket: tls.TLSSocket, identity: string) => keys.get(identity) ?? null,
      } as tls.TLSSocketOptions,
    };
  }
  if (c.certificatesDir !== undefined) {
    const read = (f: string, required: boolean): Buffer | undefined => {
      try {
        return readFileSync(join(c.certificatesDir!, f));
      } catch (e) {
        if (!required) return undefined;
        throw new IoError(`cannot read TLS certificate file ${join(c.certificatesDir!, f)}: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code ?? "EIO");
      }
    };
    const ca = read("ca-cert.pem", c.verifyPeer === true);
    const secureContext = tls.createSecureContext({ cert: read("server-cert.pem", true), key: read("server-key.pem", true), ...(ca ? { ca } : {}), minVersion: "TLSv1.2" });
    return { mode: c.mode, options: { secureContext, requestCert: c.verifyPeer === true, rejectUnauthorized: c.verifyPeer === true } };
  }
  throw new IoError(`NBD TLS is "${c.mode}" but neither a PSK file nor a certificates directory is set`, "EINVAL");
}
