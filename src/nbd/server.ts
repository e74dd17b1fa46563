/**
 * NbdServer: the export registry and the listeners.
 *
 * Exports are named (the daemon uses "VG/LV"), each backed by a BlockDevice
 * the caller owns. They can be added and removed at runtime; removing one
 * that clients have open either refuses (BusyError, so deactivation can
 * refuse while open) or disconnects those clients cleanly. openCount() feeds
 * the "open" attribute of lvs.
 *
 * Listeners: a unix socket (the daemon's `$ULVM_RUN_DIR/nbd.sock`, created
 * with mode 0600 after removing a stale socket) and, when configured, TCP
 * (loopback unless told otherwise). close() is graceful: requests already
 * received finish, new ones get ESHUTDOWN, then connections close.
 *
 *   const server = new NbdServer({ log });
 *   await server.listenUnix(`${runDir}/nbd.sock`);         // mode 0600
 *   server.addExport({ name: "vg0/lv0", device, readOnly: false });
 *   server.openCount("vg0/lv0");                            // lvs "open" attribute
 *   await server.removeExport("vg0/lv0");                   // BusyError while open
 *   await server.removeExport("vg0/lv0", { disconnect: true });
 *   await server.close();
 */
import { NO_TLS, type ServerTls } from "./server-tls.js";
import fs from "node:fs";
import net from "node:net";
import { BufferPool, sharedBufferPool } from "../blockdev/buffer-pool.js";
import { BusyError, IoError, NotFoundError } from "../errors/errors.js";
import { NbdConnection } from "./connection.js";
import { DEFAULT_CONNECTION_LIMITS } from "./connection-host.js";
import type { BudgetWaiter, ConnectionHost, ConnectionLimits } from "./connection-host.js";
import { NbdExport } from "./nbd-export.js";
import type { NbdExportOptions } from "./nbd-export.js";

export type { NbdExportOptions } from "./nbd-export.js";

export type NbdLogLevel = "debug" | "info" | "warn";

export interface NbdServerOptions {
  readonly limits?: Partial<ConnectionLimits>;
  /** Connections beyond this are closed at once. */
  readonly maxConnections?: number;
  /** Bytes of request/reply buffers all connections together may hold before reads are held back. */
  readonly maxGlobalInFlightBytes?: number;
  readonly pool?: BufferPool;
  /** Read sockets into our own buffers (socket-reader.ts); default true. */
  readonly userBuffers?: boolean;
  readonly log?: (level: NbdLogLevel, message: string) => void;
}

export interface NbdCloseOptions {
  /** After this long, connections still busy are destroyed. */
  readonly timeoutMs?: number;
}

export interface NbdRemoveExportOptions extends NbdCloseOptions {
  /** Disconnect clients that have the export open instead of refusing. */
  readonly disconnect?: boolean;
}

export interface NbdServerStats {
  readonly connectionCount: number;
  readonly globalInFlightBytes: number;
  readonly exports: ReadonlyArray<{ readonly name: string; readonly openCount: number; readonly readOnly: boolean; readonly sizeBytes: number }>;
}

/** sun_path is 108 bytes including the terminating NUL. */
const UNIX_PATH_MAX_BYTES = 107;

export class NbdServer implements ConnectionHost {
  readonly limits: ConnectionLimits;
  readonly pool: BufferPool;
  readonly userBuffers: boolean;
  readonly maxGlobalInFlightBytes: number;
  private globalInFlightBytes = 0;
  private readonly budgetWaiters = new Set<BudgetWaiter>();
  private wakeScheduled = false;
  private shuttingDownFlag = false;
  private readonly maxConnections: number;
  private readonly exports = new Map<string, NbdExport>();
  private readonly connections = new Set<NbdConnection>();
  private readonly listeners: net.Server[] = [];
  private readonly logFn: (level: NbdLogLevel, message: string) => void;

  constructor(opts: NbdServerOptions = {}) {
    this.limits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.limits };
    this.pool = opts.pool ?? sharedBufferPool;
    this.userBuffers = opts.userBuffers ?? true;
    this.maxConnections = opts.maxConnections ?? 1024;
    this.maxGlobalInFlightBytes = opts.maxGlobalInFlightBytes ?? 512 * 1024 * 1024;
    this.logFn = opts.log ?? (() => {});
  }

  get shuttingDown(): boolean {
    return this.shuttingDownFlag;
  }

  log(level: NbdLogLevel, message: string): void {
    this.logFn(level, message);
  }

  // ------------------------------------------------------------ export registry

  /** Register an export. Throws BusyError if the name is taken. */
  addExport(opts: NbdExportOptions): void {
    if (this.exports.has(opts.name)) throw new BusyError(`NBD export "${opts.name}" already exists`, { exportName: opts.name });
    if (Buffer.byteLength(opts.name, "utf8") > 4096) throw new IoError(`NBD export name too long`, "EINVAL", { exportName: opts.name });
    this.exports.set(opts.name, new NbdExport(opts));
  }

  /**
   * Remove an export. While clients have it open this throws BusyError,
   * unless `disconnect` is set: then they are shut down cleanly (requests
   * already received finish, new ones get ESHUTDOWN) and this resolves once
   * they are gone. Either way no new client can open it once this is called.
   * The device is not closed: it belongs to the caller.
   */
  async removeExport(name: string, opts: NbdRemoveExportOptions = {}): Promise<void> {
    const exp = this.exports.get(name);
    if (exp === undefined) throw new NotFoundError(`NBD export "${name}" not found`, { exportName: name });
    if (exp.clients.size > 0 && opts.disconnect !== true) {
      throw new BusyError(`NBD export "${name}" is open by ${exp.clients.size} client(s)`, { exportName: name, openCount: exp.clients.size });
    }
    exp.removing = true;
    this.exports.delete(name);
    const clients = [...exp.clients];
    for (const c of clients) c.shutdown();
    await this.waitClosed(clients, opts.timeoutMs);
  }

  /**
   * Rename an export (lvrename of an active LV): connected clients keep
   * their connection to the same device; new clients use the new name.
   */
  renameExport(oldName: string, newName: string): void {
    const exp = this.exports.get(oldName);
    if (exp === undefined) throw new NotFoundError(`NBD export "${oldName}" not found`, { exportName: oldName });
    if (this.exports.has(newName)) throw new BusyError(`NBD export "${newName}" already exists`, { exportName: newName });
    this.exports.delete(oldName);
    exp.name = newName;
    this.exports.set(newName, exp);
  }

  hasExport(name: string): boolean {
    return this.exports.has(name);
  }

  exportNames(): string[] {
    return [...this.exports.keys()];
  }

  /** Clients that completed the handshake for this export and are still connected (0 if none or unknown). */
  openCount(name: string): number {
    return this.exports.get(name)?.clients.size ?? 0;
  }

  isOpen(name: string): boolean {
    return this.openCount(name) > 0;
  }

  findExport(name: string): NbdExport | undefined {
    const e = this.exports.get(name);
    return e === undefined || e.removing ? undefined : e;
  }

  listExports(): readonly NbdExport[] {
    return [...this.exports.values()].filter((e) => !e.removing);
  }

  stats(): NbdServerStats {
    return {
      connectionCount: this.connections.size,
      globalInFlightBytes: this.globalInFlightBytes,
      exports: [...this.exports.values()].map((e) => ({ name: e.name, openCount: e.clients.size, readOnly: e.readOnly, sizeBytes: e.sizeBytes })),
    };
  }

  // ------------------------------------------------------------ listeners

  private newListener(remoteOf: (s: net.Socket) => string, tcp: boolean, tls: ServerTls): net.Server {
    // pauseOnConnect: the socket must not read before socket-reader adopts it.
    const srv = net.createServer({ pauseOnConnect: true, noDelay: tcp }, (sock) => this.accept(sock, remoteOf(sock), tcp, tls));
    srv.on("error", (e) => this.log("warn", `NBD listener error: ${e.message}`));
    return srv;
  }

  private accept(sock: net.Socket, remote: string, tcp: boolean, tls: ServerTls): void {
    sock.on("error", () => {});
    if (this.shuttingDownFlag || this.connections.size >= this.maxConnections) {
      this.log("warn", `NBD: refusing connection from ${remote}: ${this.shuttingDownFlag ? "shutting down" : "too many connections"}`);
      sock.destroy();
      return;
    }
    // TCP_NODELAY was set on the accepted handle (createServer's noDelay) and stays with it.
    void tcp;
    this.connections.add(new NbdConnection(this, sock, remote, tls));
  }

  connectionClosed(conn: BudgetWaiter): void {
    this.connections.delete(conn as NbdConnection);
    this.budgetWaiters.delete(conn);
  }

  // ------------------------------------------------------------ byte budget (ConnectionHost)

  tryReserve(bytes: number): boolean {
    // Nothing held at all: let it through, so one maximal request always can.
    if (this.globalInFlightBytes > 0 && this.globalInFlightBytes + bytes > this.maxGlobalInFlightBytes) return false;
    this.globalInFlightBytes += bytes;
    return true;
  }

  unreserve(bytes: number): void {
    this.globalInFlightBytes -= bytes;
    if (this.budgetWaiters.size === 0 || this.wakeScheduled) return;
    // Wake waiters outside the caller's stack (it is in the middle of its own bookkeeping).
    this.wakeScheduled = true;
    queueMicrotask(() => {
      this.wakeScheduled = false;
      const waiters = [...this.budgetWaiters];
      this.budgetWaiters.clear();
      for (const w of waiters) w.onBudgetAvailable();
    });
  }

  waitForBudget(waiter: BudgetWaiter): void {
    this.budgetWaiters.add(waiter);
  }

  /**
   * Listen on a unix socket, created with `mode` (default 0600). A stale
   * socket file at the path (nobody accepting) is removed first; a live one
   * or a non-socket file is an error (EADDRINUSE / EEXIST).
   */
  async listenUnix(path: string, opts: { mode?: number; tls?: ServerTls } = {}): Promise<void> {
    if (Buffer.byteLength(path) > UNIX_PATH_MAX_BYTES) {
      throw new IoError(`${path}: unix socket path longer than ${UNIX_PATH_MAX_BYTES} bytes`, "ENAMETOOLONG", { path });
    }
    await removeStaleSocket(path);
    const mode = opts.mode ?? 0o600;
    const srv = this.newListener(() => `unix:${path}`, false, opts.tls ?? NO_TLS);
    await new Promise<void>((resolve, reject) => {
      srv.once("error", reject);
      // bind(2) runs synchronously inside listen(): a umask in force just for
      // that call creates the socket without a window of wider permissions.
      const oldMask = process.umask(0o777 & ~mode);
      try {
        srv.listen(path, () => {
          srv.off("error", reject);
          resolve();
        });
      } finally {
        process.umask(oldMask);
      }
    }).catch((e: unknown) => {
      throw new IoError(`${path}: cannot listen: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code ?? "EIO", { path }, e);
    });
    fs.chmodSync(path, mode);
    this.listeners.push(srv);
  }

  /** Listen on TCP; loopback unless `host` says otherwise. Resolves to the bound address (port 0 picks one). */
  async listenTcp(opts: { host?: string; port?: number; tls?: ServerTls } = {}): Promise<net.AddressInfo> {
    const host = opts.host ?? "127.0.0.1";
    const port = opts.port ?? 10809;
    const srv = this.newListener((s) => `tcp:${s.remoteAddress ?? "?"}:${s.remotePort ?? "?"}`, true, opts.tls ?? NO_TLS);
    await new Promise<void>((resolve, reject) => {
      srv.once("error", reject);
      srv.listen(port, host, () => {
        srv.off("error", reject);
        resolve();
      });
    }).catch((e: unknown) => {
      throw new IoError(`${host}:${port}: cannot listen: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code ?? "EIO", { host, port }, e);
    });
    this.listeners.push(srv);
    return srv.address() as net.AddressInfo;
  }

  // ------------------------------------------------------------ shutdown

  /**
   * Stop listening, let requests already received finish (new ones get
   * ESHUTDOWN / ERR_SHUTDOWN), close every connection, and after `timeoutMs`
   * (default 10 s) destroy whatever is still open. Devices are not closed.
   */
  async close(opts: NbdCloseOptions = {}): Promise<void> {
    this.shuttingDownFlag = true;
    const listenersClosed = this.listeners.splice(0).map((l) => new Promise<void>((resolve) => l.close(() => resolve())));
    const conns = [...this.connections];
    for (const c of conns) c.shutdown();
    await this.waitClosed(conns, opts.timeoutMs);
    await Promise.all(listenersClosed);
  }

  private async waitClosed(conns: readonly { closed: Promise<void>; shutdown(): void }[], timeoutMs = 10_000): Promise<void> {
    if (conns.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all(conns.map((c) => c.closed)).then(() => true);
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const done = await Promise.race([all, timeout]);
    clearTimeout(timer);
    if (!done) {
      this.log("warn", `NBD: ${conns.length} connection(s) did not close within ${timeoutMs} ms; destroying`);
      for (const c of conns) if (c instanceof NbdConnection) c.destroy();
      await all;
    }
  }
}

/** Remove a socket file nobody accepts on; refuse to touch anything else. */
async function removeStaleSocket(path: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new IoError(`${path}: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code ?? "EIO", { path }, e);
  }
  if (!st.isSocket()) throw new IoError(`${path}: exists and is not a socket`, "EEXIST", { path });
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.createConnection(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (live) throw new IoError(`${path}: another server is listening on this socket`, "EADDRINUSE", { path });
  fs.unlinkSync(path);
}
