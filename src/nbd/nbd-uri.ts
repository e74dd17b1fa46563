/**
 * NBD URIs, as libnbd's nbd_connect_uri reads them (NetworkBlockDevice/nbd
 * doc/uri.md plus libnbd's query parameters; see
 * shared/reference/pvmove-network-legs.md B4):
 *
 *   nbd://host[:port]/export            plain TCP (libnbd: TLS disabled)
 *   nbds://[user@]host[:port]/export    TCP, TLS required
 *   nbd+unix:///export?socket=PATH      unix socket
 *   nbds+unix:///export?socket=PATH     unix socket, TLS required
 *
 * The export name is the path minus its first "/", percent-decoded
 * (nbd://h//disk → "/disk", no path → ""). The port defaults to 10809. The
 * user part is the TLS PSK identity. Query parameters: socket,
 * tls-psk-file, tls-certificates, tls-verify-peer, tls-hostname; unknown
 * ones are diagnosed, as the spec asks. A password in the user part (which
 * libnbd never uses: the key lives in the PSK file) is dropped from the
 * display form.
 */
export interface NbdUri {
  readonly scheme: "nbd" | "nbds" | "nbd+unix" | "nbds+unix";
  readonly tls: boolean;
  /** TCP only. IPv6 addresses without brackets. */
  readonly host?: string;
  readonly port?: number;
  /** Unix schemes only; a leading NUL byte means the abstract namespace. */
  readonly socketPath?: string;
  readonly exportName: string;
  /** PSK identity (libnbd's tls-username; default: the login name). */
  readonly tlsUsername?: string;
  readonly tlsPskFile?: string;
  readonly tlsCertificates?: string;
  readonly tlsVerifyPeer: boolean;
  readonly tlsHostname?: string;
  /** The URI as reports show it: as written, minus any password. */
  readonly display: string;
}

export const NBD_DEFAULT_PORT = 10809;

const SCHEMES = ["nbd", "nbds", "nbd+unix", "nbds+unix"] as const;
const KNOWN_PARAMS = new Set(["socket", "tls-psk-file", "tls-certificates", "tls-verify-peer", "tls-hostname"]);

/** Does this device name look like an NBD URI (any scheme libnbd knows, valid or not)? */
export function isNbdUri(name: string): boolean {
  return /^nbds?(\+(unix|vsock|tcp))?:\/\//i.test(name);
}

export class NbdUriError extends Error {}

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new NbdUriError(`bad percent-encoding in NBD URI ${what}`);
  }
}

export function parseNbdUri(text: string): NbdUri {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#.*)?$/i.exec(text);
  if (m === null) throw new NbdUriError(`not an NBD URI: ${text}`);
  const scheme = m[1]!.toLowerCase();
  if (!(SCHEMES as readonly string[]).includes(scheme)) {
    throw new NbdUriError(`unsupported NBD URI scheme "${scheme}" (use nbd, nbds, nbd+unix or nbds+unix)`);
  }
  const s = scheme as NbdUri["scheme"];
  const unix = s.endsWith("+unix");
  const tls = s.startsWith("nbds");

  // authority: [user[:password]@]host[:port]
  let authority = m[2]!;
  let user: string | undefined;
  let displayAuthority = authority;
  const at = authority.lastIndexOf("@");
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    authority = authority.slice(at + 1);
    const colon = userinfo.indexOf(":");
    const rawUser = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
    user = decode(rawUser, "user");
    displayAuthority = `${rawUser}@${authority}`;
  }
  let host: string | undefined;
  let port: number | undefined;
  const hp = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]*)(?::([0-9]*))?$/.exec(authority);
  if (hp === null) throw new NbdUriError(`bad host or port in NBD URI: ${text}`);
  host = hp[1]!.startsWith("[") ? hp[1]!.slice(1, -1) : decode(hp[1]!, "host");
  if (hp[2] !== undefined && hp[2] !== "") {
    port = Number(hp[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new NbdUriError(`bad port in NBD URI: ${text}`);
  }

  const path = m[3]!;
  const exportName = path.startsWith("/") ? decode(path.slice(1), "export name") : decode(path, "export name");

  const params = new Map<string, string>();
  for (const part of (m[4] ?? "").split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const key = decode(eq >= 0 ? part.slice(0, eq) : part, "query");
    const value = decode(eq >= 0 ? part.slice(eq + 1) : "", "query");
    if (!KNOWN_PARAMS.has(key) && !key.startsWith("x-")) throw new NbdUriError(`unknown NBD URI parameter "${key}"`);
    params.set(key, value);
  }

  let socketPath: string | undefined;
  if (unix) {
    if (host !== "" || port !== undefined) throw new NbdUriError(`${s}: URI must not name a host or port: ${text}`);
    socketPath = params.get("socket");
    if (socketPath === undefined || socketPath === "") throw new NbdUriError(`${s}: URI needs ?socket=PATH: ${text}`);
    host = undefined;
  } else {
    if (host === "") throw new NbdUriError(`${s}: URI needs a host: ${text}`);
    if (params.has("socket")) throw new NbdUriError(`${s}: socket= is only for nbd+unix and nbds+unix URIs`);
    port ??= NBD_DEFAULT_PORT;
  }

  const verify = params.get("tls-verify-peer");
  if (verify !== undefined && !["0", "1", "true", "false"].includes(verify.toLowerCase())) {
    throw new NbdUriError(`tls-verify-peer must be 0 or 1, not "${verify}"`);
  }
  const q = m[4] !== undefined ? `?${m[4]}` : "";
  return {
    scheme: s,
    tls,
    ...(host !== undefined ? { host } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(socketPath !== undefined ? { socketPath } : {}),
    exportName,
    ...(user !== undefined && user !== "" ? { tlsUsername: user } : {}),
    ...(params.has("tls-psk-file") ? { tlsPskFile: params.get("tls-psk-file")! } : {}),
    ...(params.has("tls-certificates") ? { tlsCertificates: params.get("tls-certificates")! } : {}),
    ...(params.has("tls-hostname") ? { tlsHostname: params.get("tls-hostname")! } : {}),
    tlsVerifyPeer: verify === undefined ? true : verify === "1" || verify.toLowerCase() === "true",
    display: `${s}://${displayAuthority}${path}${q}`,
  };
}
