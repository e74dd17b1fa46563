/**
 * `nbd { tls = "off" | "on" | "require", tls_psk_file, tls_certificates,
 * tls_verify_peer }` (issue 18): the TLS of the daemon's NBD listeners.
 *
 * The TCP listener (`nbd { tcp = 1 }`) gets the mode as written. The unix
 * socket (mode 0600, the daemon's own device paths and local tools connect
 * there) offers TLS whenever it is configured but never requires it: whoever
 * can open that socket can read the PSK file as well, and nbdfuse must still
 * reach the daemon without credentials.
 */
import type { Config } from "../config/config.js";
import { ConfigError } from "../config/config.js";
import { LvmError } from "../errors/errors.js";
import { NO_TLS, TLS_MODES, serverTls, type ServerTls, type TlsMode } from "../nbd/server-tls.js";

export interface NbdListenerTls {
  readonly tcp: ServerTls;
  readonly unix: ServerTls;
}

export function nbdListenerTls(cfg: Config): NbdListenerTls {
  const mode = cfg.str("nbd/tls", "off");
  if (!(TLS_MODES as readonly string[]).includes(mode)) throw new ConfigError(`Configuration setting "nbd/tls" invalid. It must be "off", "on" or "require".`);
  if (mode === "off") return { tcp: NO_TLS, unix: NO_TLS };
  const pskFile = cfg.str("nbd/tls_psk_file", "") || undefined;
  const certificatesDir = cfg.str("nbd/tls_certificates", "") || undefined;
  let tcp: ServerTls;
  try {
    tcp = serverTls({ mode: mode as TlsMode, pskFile, certificatesDir, verifyPeer: cfg.bool("nbd/tls_verify_peer", false) });
  } catch (e) {
    if (e instanceof ConfigError || !(e instanceof LvmError)) throw e;
    throw new ConfigError(`Configuration setting "nbd/tls" invalid: ${e.message}.`);
  }
  return { tcp, unix: { ...tcp, mode: "on" } };
}
