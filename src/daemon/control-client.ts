import type { Socket } from "node:net";
import { existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { daemonControlSocket, daemonPidFile, type Paths, ensureDir } from "../config/paths.js";
import { CommandError, LvmError } from "../errors/errors.js";
import type { ControlReply, ControlRequest } from "./protocol.js";
import { join } from "node:path";

/**
 * The CLI's side of the control protocol. `ensure` starts the daemon when it
 * is not running (as lvm2 relies on the kernel being there, ulvm relies on
 * its daemon), waiting until its control socket answers.
 */
/** A request without its id (the client numbers them). */
export type RequestBody = ControlRequest extends infer R ? (R extends ControlRequest ? Omit<R, "id"> : never) : never;

type Pending = { resolve: (r: ControlReply) => void; reject: (e: Error) => void };

export class DaemonClient {
  private nextId = 1;
  private buf = "";
  private readonly pending = new Map<number, Pending>();
  private constructor(private readonly sock: Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf("\n")) !== -1) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        let msg: ControlReply;
        try {
          msg = JSON.parse(line) as ControlReply;
        } catch {
          continue;
        }
        const p = this.pending.get(msg.id);
        if (p) {
          this.pending.delete(msg.id);
          p.resolve(msg);
        }
      }
    });
    const fail = (e: Error): void => {
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    sock.on("error", fail);
    sock.on("close", () => fail(new CommandError("Connection to the ulvm daemon was lost.")));
  }

  static async tryConnect(paths: Paths): Promise<DaemonClient | undefined> {
    const path = daemonControlSocket(paths);
    if (!existsSync(path)) return undefined;
    const { connect } = await import("node:net");
    return new Promise((resolve) => {
      const s = connect(path);
      s.once("connect", () => {
        s.removeAllListeners("error");
        resolve(new DaemonClient(s));
      });
      s.once("error", () => resolve(undefined));
    });
  }

  /** Connect, starting the daemon first if needed. */
  static async ensure(paths: Paths, env: NodeJS.ProcessEnv = process.env): Promise<DaemonClient> {
    const c = await DaemonClient.tryConnect(paths);
    if (c) return c;
    await startDaemon(paths, env);
    for (let i = 0; i < 400; i++) {
      await new Promise((r) => setTimeout(r, 25));
      const c2 = await DaemonClient.tryConnect(paths);
      if (c2) return c2;
    }
    let log = "";
    try {
      log = readFileSync(join(paths.runDir, "ulvmd.log"), "utf8").split("\n").slice(-5).join("\n  ");
    } catch {
      /* none */
    }
    throw new CommandError(`The ulvm daemon did not start (see ${join(paths.runDir, "ulvmd.log")}).${log ? "\n  " + log : ""}`);
  }

  async request<T extends Record<string, unknown> = Record<string, unknown>>(req: RequestBody): Promise<T> {
    const id = this.nextId++;
    const reply = await new Promise<ControlReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.sock.write(JSON.stringify({ ...req, id }) + "\n");
    });
    if (!reply.ok) {
      const err = new LvmError(reply.error.code, reply.error.message, { exitCode: reply.error.exitCode });
      throw err;
    }
    return reply as unknown as T;
  }

  close(): void {
    this.sock.end();
    this.sock.destroy();
  }
}

/** Is a daemon recorded in the pid file alive? */
export function daemonPid(paths: Paths): number | undefined {
  try {
    const pid = Number(readFileSync(daemonPidFile(paths), "utf8").trim());
    if (!pid) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

export async function startDaemon(paths: Paths, env: NodeJS.ProcessEnv): Promise<void> {
  const { spawn } = await import("node:child_process");
  ensureDir(paths.runDir);
  const log = openSync(join(paths.runDir, "ulvmd.log"), "a");
  // Next to this module in both layouts: dist/src/daemon/ (tsc) and dist/bundle/ (esbuild).
  const main = fileURLToPath(new URL("./ulvmd.js", import.meta.url));
  const daemonEnv: NodeJS.ProcessEnv = { ...env, ULVM_RUN_DIR: paths.runDir, ULVM_SYSTEM_DIR: paths.systemDir, ULVM_DEV_DIR: paths.devDir };
  // Test-only crash points (blockdev/open-device.ts) belong to the command that was given them.
  delete daemonEnv.ULVM_TEST_CRASH_AFTER_WRITES;
  delete daemonEnv.ULVM_TEST_CRASH_TEAR;
  const child = spawn(process.execPath, [main], {
    detached: true,
    stdio: ["ignore", log, log],
    env: daemonEnv,
  });
  child.unref();
}
