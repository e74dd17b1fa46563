/**
 * Helpers for the NBD integration tests: a server on a unix socket in a
 * fresh temporary directory, cleaned up after the test; tool detection for
 * skips that name the missing tool.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { releaseUnder } from "../../helpers/leftovers.js";
import { NbdServer } from "../../../src/nbd/server.js";
import type { NbdServerOptions } from "../../../src/nbd/server.js";
import type { NbdExportOptions } from "../../../src/nbd/nbd-export.js";

/** A short temporary directory (unix socket paths must stay under 108 bytes). */
export function tempDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ulvm-nbd-"));
  t.after(() => {
    // FUSE mounts, nbdfuse and servers a test started over this folder (the shared helper).
    releaseUnder([dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

export interface ServerFixture {
  readonly server: NbdServer;
  readonly dir: string;
  readonly socketPath: string;
  uri(exportName?: string): string;
}

export async function startServer(t: TestContext, exports: readonly NbdExportOptions[], opts: NbdServerOptions = {}): Promise<ServerFixture> {
  const dir = tempDir(t);
  const socketPath = path.join(dir, "nbd.sock");
  const server = new NbdServer(opts);
  for (const e of exports) server.addExport(e);
  await server.listenUnix(socketPath);
  t.after(() => server.close({ timeoutMs: 2000 }));
  return {
    server,
    dir,
    socketPath,
    uri: (exportName = "") => `nbd+unix:///${encodeURIComponent(exportName).replace(/%2F/g, "/")}?socket=${socketPath}`,
  };
}

/** Deterministic bytes: the same (size, seed) always gives the same content. */
export function pattern(sizeBytes: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(sizeBytes);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < sizeBytes; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    if (i + 4 <= sizeBytes) b.writeUInt32LE(x, i);
    else for (let j = i; j < sizeBytes; j++) b[j] = (x >>> (8 * (j - i))) & 0xff;
  }
  return b;
}

const toolCache = new Map<string, boolean>();

/** Is a command on PATH? */
export function hasTool(name: string): boolean {
  let v = toolCache.get(name);
  if (v === undefined) {
    v = spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
    toolCache.set(name, v);
  }
  return v;
}

/** `skip` option value for node:test: false when every tool is present, else a message naming the missing ones. */
export function skipUnless(...tools: string[]): string | false {
  const missing = tools.filter((x) => !hasTool(x));
  return missing.length === 0 ? false : `${missing.join(", ")} not installed`;
}

/** The compiled serve-file CLI next to this build (dist/test/... → dist/src/nbd/serve-file.js). */
export const SERVE_FILE_JS = fileURLToPath(new URL("../../../src/nbd/serve-file.js", import.meta.url));

/** Poll until `cond()` holds (readiness, never a fixed sleep); fails after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
