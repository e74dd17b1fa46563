import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { Config } from "../../config/config.js";

/**
 * `metrics { listen = "127.0.0.1:9733" token_file = "/etc/ulvm/metrics.token" }`.
 * Off unless `listen` is set. The listener binds to loopback unless told
 * otherwise, and a non-loopback address needs a bearer token: the page and
 * the metrics name every VG, LV and PV of the machine.
 */
export interface ListenSettings {
  host: string;
  port: number;
  /** Undefined: no Authorization header is asked for (loopback only). */
  token: string | undefined;
}

export type ListenDecision = { kind: "off" } | { kind: "refused"; reason: string } | { kind: "listen"; settings: ListenSettings };

export function listenSettings(cfg: Config): ListenDecision {
  const listen = cfg.str("metrics/listen", "").trim();
  if (listen === "") return { kind: "off" };
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
  const host = m ? (m[1] ?? m[2] ?? "") : "";
  const port = m ? Number(m[3]) : NaN;
  if (!m || host === "" || !(port >= 0 && port <= 65535)) return { kind: "refused", reason: `metrics/listen "${listen}" is not HOST:PORT (e.g. "127.0.0.1:9733" or "[::1]:9733").` };
  const tokenFile = cfg.str("metrics/token_file", "");
  let token: string | undefined;
  if (tokenFile !== "") {
    try {
      token = readFileSync(tokenFile, "utf8").trim();
    } catch (e) {
      return { kind: "refused", reason: `metrics/token_file ${tokenFile} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}.` };
    }
    if (token === "") return { kind: "refused", reason: `metrics/token_file ${tokenFile} is empty.` };
  }
  if (!isLoopback(host) && token === undefined) {
    return { kind: "refused", reason: `metrics/listen "${listen}" is not a loopback address: set metrics/token_file to a file holding a bearer token, or listen on 127.0.0.1.` };
  }
  return { kind: "listen", settings: { host, port, token } };
}

export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  if (isIP(host) === 6) return host === "::1" || /^::ffff:127\./i.test(host);
  return false;
}
