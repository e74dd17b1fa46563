import type { Server } from "node:net";
import { realpathSync } from "node:fs";
import { lockDir, type Paths, ensureDir } from "../config/paths.js";

/**
 * Per-VG locks held for a command's whole read-change-commit (lvm2 takes
 * flock()s on V_<vg> files; Node has no flock). A lock is a listening unix
 * socket in Linux's abstract namespace: binding the name is exclusive and the
 * kernel releases it when the holder exits in any way, kill -9 included, so a
 * crashed holder can never leave a VG locked. Names are scoped by the run
 * directory, so separate ULVM_RUN_DIR trees (tests) never contend.
 */
export class Lock {
  constructor(readonly name: string, private readonly server: Server) {}
  release(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

async function scopeOf(paths: Paths): Promise<string> {
  let dir = paths.runDir;
  try {
    ensureDir(lockDir(paths));
    dir = realpathSync(dir);
  } catch {
    // An unwritable run dir still gets a consistent scope from its name.
  }
  const { createHash } = await import("node:crypto");
  return createHash("sha256").update(dir).digest("hex").slice(0, 24);
}

// Builtins are loaded on first use: most commands (reports) never lock.
async function tryBind(address: string): Promise<Server | undefined> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE") resolve(undefined);
      else reject(e);
    });
    server.listen({ path: address, exclusive: true }, () => {
      server.unref(); // never keeps the process alive; exit releases it
      resolve(server);
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class LockManager {
  private scopeCache: string | undefined;
  private readonly held = new Map<string, Lock>();
  constructor(private readonly paths: Paths) {}

  /** Computed on first use: commands that never lock (reports) skip the realpath and hash. */
  private async scope(): Promise<string> {
    return (this.scopeCache ??= await scopeOf(this.paths));
  }

  /** Wait for a lock (lvm2 waits by default). Names: "V_<vg>", "P_orphans", "P_global". */
  async acquire(name: string): Promise<Lock> {
    const existing = this.held.get(name);
    if (existing) return existing;
    const address = `\0ulvm-${await this.scope()}-${name}`.slice(0, 107);
    let delayMs = 2;
    for (;;) {
      const server = await tryBind(address);
      if (server) {
        const lock = new Lock(name, server);
        this.held.set(name, lock);
        return lock;
      }
      await sleep(delayMs);
      delayMs = Math.min(50, delayMs * 2);
    }
  }

  /** Take a lock if nobody holds it; undefined (at once) if somebody does. */
  async tryAcquire(name: string): Promise<Lock | undefined> {
    const existing = this.held.get(name);
    if (existing) return existing;
    const server = await tryBind(`\0ulvm-${await this.scope()}-${name}`.slice(0, 107));
    if (!server) return undefined;
    const lock = new Lock(name, server);
    this.held.set(name, lock);
    return lock;
  }

  /** Several locks in a fixed order (globals first, then by name) so two commands never deadlock. */
  async acquireAll(names: readonly string[]): Promise<void> {
    const order = [...new Set(names)].sort((a, b) => (a[0] === b[0] ? (a < b ? -1 : a > b ? 1 : 0) : a[0] === "P" ? -1 : 1));
    for (const n of order) await this.acquire(n);
  }

  isHeld(name: string): boolean {
    return this.held.has(name);
  }

  async release(name: string): Promise<void> {
    const l = this.held.get(name);
    if (!l) return;
    this.held.delete(name);
    await l.release();
  }

  async releaseAll(): Promise<void> {
    for (const n of [...this.held.keys()]) await this.release(n);
  }
}

export const vgLockName = (vg: string): string => `V_${vg}`;
