import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { timingSafeEqual, createHash } from "node:crypto";
import type { EventFeed, UlvmEvent } from "./event-feed.js";
import type { UlvmMetrics } from "./metrics.js";
import type { SnapshotTaker, StatusSnapshot } from "./snapshot.js";
import type { ListenSettings } from "./listen-config.js";
import { STATUS_PAGE_HTML } from "./status-page.js";

/**
 * The daemon's read-only HTTP listener (node:http, no framework for five
 * routes):
 *   GET /             the status page (one self-contained HTML file)
 *   GET /metrics      Prometheus text
 *   GET /api/status   the status snapshot and the recent events, JSON
 *   GET /api/stream   server-sent events: `status` every second, `ulvm-event` as they happen
 * GET and HEAD only (405 otherwise). With a token, every route needs
 * `Authorization: Bearer <token>` (401 otherwise); the page carries the
 * token in its URL's fragment (#token=...), which browsers never send.
 */
const RECENT_EVENTS = 50;
const STREAM_INTERVAL_MS = 1000;

export interface StatusServerDeps {
  snapshots: SnapshotTaker;
  metrics: UlvmMetrics;
  events: EventFeed;
  log: (line: string) => void;
}

export class StatusServer {
  private readonly server: Server;
  private readonly streams = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly tokenHash: Buffer | undefined;

  constructor(
    private readonly settings: ListenSettings,
    private readonly deps: StatusServerDeps,
  ) {
    this.tokenHash = settings.token === undefined ? undefined : sha256(settings.token);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        deps.log(`http: ${req.method} ${req.url}: ${(e as Error).stack ?? String(e)}`);
        if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", "internal error\n", req.method === "HEAD");
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 65_000;
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ host: this.settings.host, port: this.settings.port }, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    for (const s of this.streams) s.end();
    this.streams.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" });
      res.end("read-only: GET and HEAD only\n");
      return;
    }
    const head = req.method === "HEAD";
    if (!this.authorized(req)) {
      res.writeHead(401, { "WWW-Authenticate": 'Bearer realm="ulvm"', "Content-Type": "text/plain; charset=utf-8" });
      res.end(head ? undefined : "a bearer token is needed (Authorization: Bearer <token>)\n");
      return;
    }
    const path = new URL(req.url ?? "/", "http://x").pathname;
    switch (path) {
      case "/":
      case "/index.html":
        send(res, 200, "text/html; charset=utf-8", STATUS_PAGE_HTML, head);
        return;
      case "/metrics": {
        const text = await this.deps.metrics.render(this.deps.snapshots.take());
        send(res, 200, this.deps.metrics.contentType, text, head);
        return;
      }
      case "/api/status":
        send(res, 200, "application/json", JSON.stringify(this.statusBody()), head);
        return;
      case "/api/stream":
        this.openStream(res, head);
        return;
      default:
        send(res, 404, "text/plain; charset=utf-8", "not found\n", head);
    }
  }

  private authorized(req: IncomingMessage): boolean {
    if (!this.tokenHash) return true;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
    // Compared as hashes: equal lengths, and no timing hint about the token.
    return m !== null && timingSafeEqual(sha256(m[1]!), this.tokenHash);
  }

  private statusBody(): { status: StatusSnapshot; events: UlvmEvent[] } {
    return { status: this.deps.snapshots.take(), events: this.deps.events.recent(RECENT_EVENTS) };
  }

  private openStream(res: ServerResponse, head: boolean): void {
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-store", Connection: "keep-alive", "X-Accel-Buffering": "no" });
    if (head) {
      res.end();
      return;
    }
    const body = this.statusBody();
    res.write(`event: events\ndata: ${JSON.stringify(body.events)}\n\n`);
    res.write(`event: status\ndata: ${JSON.stringify(body.status)}\n\n`);
    this.streams.add(res);
    res.on("close", () => {
      this.streams.delete(res);
      if (this.streams.size === 0) this.stopStreaming();
    });
    this.timer ??= setInterval(() => this.pushStatus(), STREAM_INTERVAL_MS);
    this.unsubscribe ??= this.deps.events.subscribe((e) => this.broadcast(`event: ulvm-event\ndata: ${JSON.stringify(e)}\n\n`));
  }

  private stopStreaming(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** One snapshot per tick, whatever the number of pages open. */
  private pushStatus(): void {
    this.broadcast(`event: status\ndata: ${JSON.stringify(this.deps.snapshots.take())}\n\n`);
  }

  private broadcast(frame: string): void {
    for (const s of this.streams) s.write(frame);
  }
}

function send(res: ServerResponse, code: number, type: string, body: string, head: boolean): void {
  res.writeHead(code, { "Content-Type": type, "Content-Length": Buffer.byteLength(body), "Cache-Control": "no-store" });
  res.end(head ? undefined : body);
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}
