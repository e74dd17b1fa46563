import { ensureDir } from "../config/paths.js";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ImportedVg } from "../format/vg-import.js";
import { ULVM_VERSION } from "../base/version.js";
import { normalizeAsParsed } from "../format/vg-normalize.js";

/**
 * A cache of parsed metadata texts in $ULVM_RUN_DIR/cache, keyed by the
 * SHA-256 of the text itself (and the ulvm version, so a new parser never
 * reads an old shape). Parsing a 1,000-LV VG costs ~50 ms in a fresh Node
 * process; reading its parse back costs ~4 ms. The text is still read and
 * CRC-checked from the PV every time; only the parse is skipped, so a stale
 * or foreign cache entry can only ever describe the very same bytes.
 * Small texts are not cached (parsing them is cheaper than a file).
 */
const MIN_CACHED_TEXT_BYTES = 32 * 1024;
const MAX_ENTRIES = 16;

export class ParseCache {
  constructor(private readonly dir: string | undefined) {}

  private key(text: string): string {
    return createHash("sha256").update(ULVM_VERSION).update("\0").update(text).digest("hex").slice(0, 40);
  }

  get(text: string): ImportedVg | undefined {
    if (!this.dir || text.length < MIN_CACHED_TEXT_BYTES) return undefined;
    try {
      return JSON.parse(readFileSync(join(this.dir, `vg-${this.key(text)}.json`), "utf8")) as ImportedVg;
    } catch {
      return undefined;
    }
  }

  put(text: string, imported: ImportedVg): void {
    if (!this.dir || text.length < MIN_CACHED_TEXT_BYTES) return;
    try {
      ensureDir(this.dir);
      const file = join(this.dir, `vg-${this.key(text)}.json`);
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(imported), { mode: 0o600 });
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
    // The on-disk text carries a NUL; the parse cache is keyed by the text as read back (NUL dropped).
    this.put(textWithHeader, {
      vg: normalizeAsParsed(vg),
      description: unescape(d?.[1]),
      creationHost: unescape(h?.[1]),
      creationTime: t ? Number(t[1]) : undefined,
    });
  }

  private prune(): void {
    const files = readdirSync(this.dir!).filter((f) => f.startsWith("vg-") && f.endsWith(".json"));
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
