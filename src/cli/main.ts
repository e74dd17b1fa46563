import { Args, parseArgs } from "./args.js";
import { COMMON_OPTIONS, type CommandDef } from "./command-def.js";
import { COMMANDS } from "./command-table.js";
import { EXIT_FAILED, EXIT_INVALID_CMD_LINE, EXIT_NO_SUCH_CMD, LvmError, UsageError } from "../errors/errors.js";
import { StdOutput, type Output } from "../commands/output.js";
import { ToolContext } from "../commands/toolcontext.js";
import { pathsFromEnv, type Paths } from "../config/paths.js";
import { Config } from "../config/config.js";
import { askYesNo } from "./prompt.js";
import { setLvActivationHooks } from "../commands/lv-activation.js";
import { daemonLvActivation } from "../commands/lv-activation-daemon.js";
import type { MetadataRepair } from "../commands/metadata-repairs.js";
import { DaemonClient } from "../daemon/control-client.js";

// Activation is the daemon's: the LV commands reach it through these hooks.
setLvActivationHooks(daemonLvActivation);

/**
 * The one boundary where errors become messages and exit codes (lvm2's
 * tools/errors.h): 0 ok, 2 no such command, 3 bad command line, 4 init
 * (config) failure, 5 command failed. No stack trace reaches the user.
 */
export interface RunOptions {
  out?: Output;
  paths?: Paths;
  env?: NodeJS.ProcessEnv;
  /** Answers prompts instead of stdin (daemon, tests). */
  prompt?: (q: string) => Promise<boolean>;
  /** Config already loaded (daemon). */
  config?: Config;
  /**
   * Told of each metadata copy the command's commits rewrote. By default the
   * running daemon is told at the end, which records the event (issue 15).
   */
  onMetadataRepaired?: (r: MetadataRepair) => void;
}

function printError(out: Output, e: unknown, command: string | undefined): number {
  if (e instanceof UsageError) {
    if (e.details.getopt) {
      out.writeErr(e.message + "\n");
      out.error("Error during parsing of command line.");
    } else {
      if (e.message) out.error(e.message);
      if (command && e.details.runHelp !== false) out.error(`Run \`${command} --help' for more information.`);
    }
    return EXIT_INVALID_CMD_LINE;
  }
  if (e instanceof LvmError) {
    if (!e.silent && e.message) out.error(e.message);
    return e.exitCode;
  }
  const err = e as Error;
  out.error(`Internal error: ${err?.message ?? String(e)}`);
  if (process.env.ULVM_DEBUG) out.writeErr(`${err?.stack ?? ""}\n`);
  return EXIT_FAILED;
}

export async function runCommand(argv: readonly string[], opts: RunOptions = {}): Promise<number> {
  const out = opts.out ?? new StdOutput();
  const name = argv[0];
  if (name === undefined || name === "--help" || name === "-h") {
    const { helpText } = await import("./help.js");
    out.write(helpText());
    return 0;
  }
  if (name === "--version") argv = ["version", ...argv.slice(1)];
  const entry = Object.prototype.hasOwnProperty.call(COMMANDS, argv[0]!) ? COMMANDS[argv[0]!] : undefined;
  if (!entry) {
    out.error("No such command.  Try 'ulvm help'.");
    return EXIT_NO_SUCH_CMD;
  }
  const cmdName = argv[0]!;
  let ctx: ToolContext | undefined;
  const repairs: MetadataRepair[] = [];
  try {
    const def: CommandDef = await entry.load();
    const parsed = parseArgs(cmdName, argv.slice(1), [...COMMON_OPTIONS, ...def.options]);
    const args = new Args(cmdName, parsed);
    if (args.has("help") || args.has("longhelp")) {
      out.write(def.usage.endsWith("\n") ? def.usage : def.usage + "\n");
      return 0;
    }
    const driver = args.yesNo("driverloaded");
    void driver;
    const devices = args.strs("devices").flatMap((d) => d.split(",")).filter((d) => d.length > 0);
    const paths = opts.paths ?? pathsFromEnv(opts.env);
    const config = def.needsDevices === false ? (opts.config ?? Config.empty()) : opts.config;
    ctx = new ToolContext(
      {
        paths,
        out,
        argv,
        devices,
        named: parsed.positional,
        yes: args.has("yes"),
        prompt: opts.prompt ?? ((q) => askYesNo(q, out)),
        verbose: args.count("verbose"),
        test: args.has("test"),
        onMetadataRepaired: opts.onMetadataRepaired ?? ((r) => repairs.push(r)),
      },
      config,
    );
    if (args.has("test")) out.warn("TEST MODE: Metadata will NOT be updated and volumes will not be (de)activated.");
    return await def.run(ctx, args);
  } catch (e) {
    return printError(out, e, cmdName);
  } finally {
    if (ctx) await ctx.close().catch(() => undefined);
    if (repairs.length > 0 && ctx) await tellDaemonOfRepairs(ctx.paths, repairs);
    if (out instanceof StdOutput) out.flush();
  }
}

/**
 * Metadata copies this command rewrote become events in the daemon's log
 * (with its hooks). Without a daemon there is no event log to add to: the
 * command's own warnings are then the only record, as with lvm2.
 */
async function tellDaemonOfRepairs(paths: Paths, repairs: readonly MetadataRepair[]): Promise<void> {
  const c = await DaemonClient.tryConnect(paths).catch(() => undefined);
  if (!c) return;
  try {
    for (const r of repairs) await c.request({ op: "metadata-repaired", vg: r.vg, pv: r.pv, what: r.what }).catch(() => undefined);
  } finally {
    c.close();
  }
}

export async function main(): Promise<void> {
  // `ulvm lvs | head`: a closed pipe ends the command quietly, as for any Unix tool.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  const code = await runCommand(process.argv.slice(2));
  process.exitCode = code;
}
