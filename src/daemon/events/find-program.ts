import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** The first executable `name` on PATH, then in `extra` (full paths), or undefined. */
export function findProgram(name: string, extra: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [...(env.PATH ?? "").split(delimiter).filter((d) => d !== "").map((d) => join(d, name)), ...extra];
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}
