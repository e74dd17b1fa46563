/**
 * nbdkit's (and qemu's, and GnuTLS psktool's) PSK file: one `identity:hexkey`
 * line per user. Anyone who can read the file can connect, so keys never
 * appear in a message. Shared by ulvm's NBD client (one identity's key) and
 * its server (every identity's).
 */
import { readFileSync } from "node:fs";
import { IoError } from "../errors/errors.js";

/** Every identity's key in `file`; a line without a colon is skipped, a key that is not hex is an error. */
export function readPskFile(file: string): Map<string, Buffer> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new IoError(`cannot read TLS PSK file ${file}: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code ?? "EIO");
  }
  const keys = new Map<string, Buffer>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const identity = line.slice(0, colon);
    const hex = line.slice(colon + 1).trim();
    if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new IoError(`TLS PSK file ${file}: the key of "${identity}" is not hexadecimal`, "EINVAL");
    if (!keys.has(identity)) keys.set(identity, Buffer.from(hex, "hex"));
  }
  return keys;
}

/** The key for `identity` in a PSK file. */
export function readPskKey(file: string, identity: string): Buffer {
  const key = readPskFile(file).get(identity);
  if (key === undefined) throw new IoError(`TLS PSK file ${file} has no key for "${identity}"`, "ENOENT");
  return key;
}

/** TLS 1.2 PSK suites: gnutls (nbdkit, qemu) and OpenSSL agree on these; Node's TLS 1.3 PSK is limited. */
export const PSK_CIPHERS = "PSK-AES256-GCM-SHA384:PSK-AES128-GCM-SHA256:PSK-CHACHA20-POLY1305:DHE-PSK-AES256-GCM-SHA384:DHE-PSK-AES128-GCM-SHA256";
