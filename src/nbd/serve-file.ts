/**
 * serve-file: serve one file or block device over NBD, for tests and
 * benchmarks.
 *
 *   node dist/src/nbd/serve-file.js --unix SOCK [--export NAME] [--read-only]
 *        [--tcp [HOST:]PORT] [--inline-read-max BYTES] [--inline-write-max BYTES]
 *        [--no-user-buffers] [--verbose] FILE
 *
 * The export name defaults to "" (the default export). Exits 0 after a
 * graceful shutdown on SIGTERM or SIGINT, flushing the file first.
 */
import { FileBlockDevice } from "../blockdev/file-block-device.js";
import { NbdServer } from "./server.js";
import type { NbdLogLevel } from "./server.js";

interface Args {
  unix: string | null;
  tcp: { host: string; port: number } | null;
  exportName: string;
  readOnly: boolean;
  inlineReadMaxBytes: number | undefined;
  inlineWriteMaxBytes: number | undefined;
  userBuffers: boolean;
  verbose: boolean;
  file: string;
}

function usage(message: string): never {
  process.stderr.write(
    `serve-file: ${message}\n` +
      "usage: serve-file --unix SOCK [--tcp [HOST:]PORT] [--export NAME] [--read-only]\n" +
      "                  [--inline-read-max BYTES] [--inline-write-max BYTES] [--no-user-buffers] [--verbose] FILE\n",
  );
  process.exit(3);
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = {
    unix: null,
    tcp: null,
    exportName: "",
    readOnly: false,
    inlineReadMaxBytes: undefined,
    inlineWriteMaxBytes: undefined,
    userBuffers: true,
    verbose: false,
    file: "",
  };
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) usage(`${arg} needs a value`);
      return v;
    };
    const bytes = (): number => {
      const v = value();
      if (!/^[0-9]+$/.test(v)) usage(`${arg}: not a byte count: ${v}`);
      return Number(v);
    };
    switch (arg) {
      case "--unix":
        a.unix = value();
        break;
      case "--tcp": {
        const v = value();
        const m = /^(?:(.*):)?([0-9]+)$/.exec(v);
        if (m === null) usage(`--tcp: want [HOST:]PORT, got ${v}`);
        a.tcp = { host: m[1] ?? "127.0.0.1", port: Number(m[2]) };
        break;
      }
      case "--export":
        a.exportName = value();
        break;
      case "--read-only":
        a.readOnly = true;
        break;
      case "--inline-read-max":
        a.inlineReadMaxBytes = bytes();
        break;
      case "--inline-write-max":
        a.inlineWriteMaxBytes = bytes();
        break;
      case "--no-user-buffers":
        a.userBuffers = false;
        break;
      case "--verbose":
        a.verbose = true;
        break;
      default:
        if (arg.startsWith("--")) usage(`unknown option ${arg}`);
        files.push(arg);
    }
  }
  if (files.length !== 1 || files[0] === undefined) usage("exactly one FILE is needed");
  if (a.unix === null && a.tcp === null) usage("--unix SOCK or --tcp PORT is needed");
  a.file = files[0];
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const device = await FileBlockDevice.open(args.file, {
    readOnly: args.readOnly,
    ...(args.inlineReadMaxBytes !== undefined ? { inlineReadMaxBytes: args.inlineReadMaxBytes } : {}),
    ...(args.inlineWriteMaxBytes !== undefined ? { inlineWriteMaxBytes: args.inlineWriteMaxBytes } : {}),
  });
  const log = (level: NbdLogLevel, message: string): void => {
    if (args.verbose || level === "warn") process.stderr.write(`serve-file: ${level}: ${message}\n`);
  };
  const server = new NbdServer({ userBuffers: args.userBuffers, log });
  server.addExport({ name: args.exportName, device, readOnly: args.readOnly });
  if (args.unix !== null) await server.listenUnix(args.unix);
  if (args.tcp !== null) await server.listenTcp(args.tcp);
  log("info", `serving ${args.file} (${device.sizeBytes} bytes) as "${args.exportName}"`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log("info", `${signal}: shutting down`);
    void (async () => {
      let rc = 0;
      await server.close({ timeoutMs: 5000 });
      try {
        if (!args.readOnly) await device.flush();
      } catch (e) {
        process.stderr.write(`serve-file: flush failed: ${(e as Error).message}\n`);
        rc = 5;
      }
      await device.close();
      if (args.verbose) process.stderr.write(`serve-file: ${JSON.stringify(device.stats)}\n`);
      process.exit(rc);
    })();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((e: unknown) => {
  process.stderr.write(`serve-file: ${(e as Error).message}\n`);
  process.exit(5);
});
