import { ensureDir } from "../config/paths.js";
import { readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ImportedVg } from "../format/vg-import.js";
import { ULVM_VERSION } from "../base/version.js";
import { lvmCrc } from "../base/crc.js";
import { normalizeAsParsed } from "../format/vg-normalize.js";

/**
 * A cache of parsed metadata texts in $ULVM_RUN_DIR/cache. Parsing a 1,000-LV
 * VG costs ~50 ms in a fresh Node process; reading its parse back costs a few.
 * An entry holds the text itself, byte for byte, then the parse as JSON, and
 * is used only when its text equals the one just read from the PV: a stale,
 * foreign or colliding entry can never stand for other bytes, and no hash has
 * to be computed (node:crypto alone costs ~3 ms to load). The file name (text
 * length and CRC) only finds the candidate. The ulvm version is in the entry's
 * first line, so a new parser never reads an old shape. The text is still read
 * and CRC-checked from the PV every time; only the parse is skipped. Small
 * texts are not cached (parsing them is cheaper than a file).
 */
const MIN_CACHED_TEXT_BYTES = 32 * 1024;
const MAX_ENTRIES = 16;
const MAGIC = "ulvm-parse-cache";
const FIRST_LINE_MAX = 256;

export class ParseCache {
  constructor(private readonly dir: string | undefined) {}

  private file(text: Uint8Array): string {
    return join(this.dir!, `vg-${text.length}-${lvmCrc(text).toString(16).padStart(8, "0")}.cache`);
  }

  /** The parse of exactly these bytes (a text as read, NUL dropped), if stored. */
  get(text: Uint8Array): ImportedVg | undefined {
    if (!this.dir || text.length < MIN_CACHED_TEXT_BYTES) return undefined;
    let entry: Buffer;
    try {
      entry = readFileSync(this.file(text));
    } catch {
      return undefined;
    }
    const nl = entry.subarray(0, FIRST_LINE_MAX).indexOf(0x0a);
    if (nl === -1 || entry.toString("latin1", 0, nl) !== `${MAGIC} ${ULVM_VERSION} ${text.length}`) return undefined;
    const jsonStart = nl + 1 + text.length;
    if (entry.length <= jsonStart || !entry.subarray(nl + 1, jsonStart).equals(text)) return undefined;
    try {
      // Written with every non-ASCII character escaped, so latin1 is a faithful (and the fastest) decoding.
      return JSON.parse(entry.toString("latin1", jsonStart)) as ImportedVg;
    } catch {
      return undefined;
    }
  }

  put(text: Uint8Array, imported: ImportedVg): void {
    if (!this.dir || text.length < MIN_CACHED_TEXT_BYTES) return;
    try {
      ensureDir(this.dir);
      const file = this.file(text);
      const tmp = `${file}.${process.pid}.tmp`;
      const json = JSON.stringify(imported).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
      writeFileSync(tmp, Buffer.concat([Buffer.from(`${MAGIC} ${ULVM_VERSION} ${text.length}\n`, "latin1"), text, Buffer.from(json, "latin1")]), { mode: 0o600 });
      renameSync(tmp, file);
      this.prune();
    } catch {
      // A cache that cannot be written is just not used.
    }
  }

  /**
   * After a commit: the VG just written is what parsing its text gives (the
   * exporter and importer round-trip; a test holds them to it), so store it
   * without parsing, with the header fields the text carries.
   */
  putWritten(textWithHeader: string, vg: ImportedVg["vg"]): void {
    if (!this.dir || textWithHeader.length + 1 < MIN_CACHED_TEXT_BYTES) return;
    // The header follows the VG section on disk; LV sections have creation_* keys too.
    const header = textWithHeader.slice(textWithHeader.lastIndexOf("\ncontents = "));
    const d = /\ndescription = "((?:[^"\\]|\\.)*)"/.exec(header);
    const h = /\ncreation_host = "((?:[^"\\]|\\.)*)"/.exec(header);
    const t = /\ncreation_time = (\d+)/.exec(header);
    const unescape = (x: string | undefined): string | undefined => x?.replace(/\\(["\\])/g, "$1");
    // The on-disk text carries a NUL; the cache is keyed by the text as read back (NUL dropped).
    this.put(Buffer.from(textWithHeader, "utf8"), {
      vg: normalizeAsParsed(vg),
      description: unescape(d?.[1]),
      creationHost: unescape(h?.[1]),
      creationTime: t ? Number(t[1]) : undefined,
    });
  }

  private prune(): void {
    // Entries of the older format (.json, keyed by SHA-256) age out with the rest.
    const files = readdirSync(this.dir!).filter((f) => f.startsWith("vg-") && (f.endsWith(".cache") || f.endsWith(".json")));
    if (files.length <= MAX_ENTRIES) return;
    const aged = files.map((f) => ({ f, t: statSync(join(this.dir!, f)).mtimeMs })).sort((a, b) => a.t - b.t);
    for (const { f } of aged.slice(0, files.length - MAX_ENTRIES)) {
      try {
        unlinkSync(join(this.dir!, f));
      } catch {
        /* raced with another command */
      }
    }
  }
}
