import { readFileSync } from "node:fs";
import { LvmError, EXIT_FAILED } from "../errors/errors.js";
import { parseConfig } from "../format/text/parser.js";
import { findPath, type ConfigSection } from "../format/text/config-tree.js";
import { configFile, type Paths } from "./paths.js";

/**
 * ulvm.conf, in lvm.conf syntax and read by the same parser as metadata text.
 * Only the settings ulvm understands are looked up; the rest is ignored, as
 * lvm2 ignores unknown settings.
 */
export const EXIT_INIT_FAILED = 4;

export class ConfigError extends LvmError {
  constructor(message: string) {
    super("config", message, { exitCode: EXIT_INIT_FAILED });
  }
}

export class Config {
  constructor(readonly root: ConfigSection, readonly file: string | undefined) {}

  static empty(): Config {
    return new Config({ kind: "section", name: "<root>", children: [], line: 1 }, undefined);
  }

  private setting(path: string) {
    const n = findPath(this.root, path);
    return n?.kind === "setting" ? n : undefined;
  }

  str(path: string, dflt: string): string {
    const s = this.setting(path);
    if (!s) return dflt;
    if (s.value.kind !== "string") throw new ConfigError(`Configuration setting "${path}" invalid. It's not a string value.`);
    return s.value.value;
  }

  int(path: string, dflt: number): number {
    const s = this.setting(path);
    if (!s) return dflt;
    if (s.value.kind !== "int") throw new ConfigError(`Configuration setting "${path}" invalid. It's not an integer value.`);
    return s.value.value;
  }

  bool(path: string, dflt: boolean): boolean {
    return this.int(path, dflt ? 1 : 0) !== 0;
  }

  strList(path: string): string[] | undefined {
    const s = this.setting(path);
    if (!s) return undefined;
    const items = s.value.kind === "array" ? s.value.items : [s.value];
    return items.map((it) => {
      if (it.kind !== "string") throw new ConfigError(`Configuration setting "${path}" invalid. Found a non-string element.`);
      return it.value;
    });
  }
}

/**
 * Load $ULVM_SYSTEM_DIR/ulvm.conf. A missing file is the empty config, as a
 * missing lvm.conf is for lvm2 (every setting at its default: see
 * commands/system-devices.ts for the devices seen then); a malformed one is an
 * error. `required` is kept for callers that want the file to exist.
 */
export function loadConfig(paths: Paths, opts: { required: boolean } = { required: false }): Config {
  const file = configFile(paths);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !opts.required) return Config.empty();
    if (code === "ENOENT") throw new ConfigError(`Configuration file ${file} not found.`);
    throw new ConfigError(`Failed to load config file ${file}: ${(e as Error).message}`);
  }
  try {
    return new Config(parseConfig(text, { mergeDuplicates: true, source: file }), file);
  } catch (e) {
    if (e instanceof LvmError) {
      const err = new ConfigError(`${e.message}\n  Failed to load config file ${file}`);
      throw err;
    }
    throw e;
  }
}

export { EXIT_FAILED };
