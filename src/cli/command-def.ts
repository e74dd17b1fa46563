import type { Args, OptionSpec } from "./args.js";
import type { ToolContext } from "../commands/toolcontext.js";

/** One lvm command: its options, help text and the function that runs it. */
export interface CommandDef {
  name: string;
  /** One line for `ulvm help`. */
  summary: string;
  /** Usage lines for `ulvm CMD --help`, in lvm2's style. */
  usage: string;
  options: OptionSpec[];
  /** Commands that never look at devices (help, version, daemon) set this false. */
  needsDevices?: boolean;
  /** Returns the exit code (0 success, 5 failure); throws LvmError for errors. */
  run(ctx: ToolContext, args: Args): Promise<number>;
}

/** Options every command accepts, as in lvm2. */
export const COMMON_OPTIONS: OptionSpec[] = [
  { name: "help", short: "h", value: false },
  { name: "longhelp", value: false },
  { name: "version", value: false },
  { name: "verbose", short: "v", value: false, repeat: true },
  { name: "debug", short: "d", value: false, repeat: true },
  { name: "quiet", short: "q", value: false, repeat: true },
  { name: "test", short: "t", value: false },
  { name: "yes", short: "y", value: false },
  { name: "config", value: true, repeat: true },
  { name: "commandprofile", value: true },
  { name: "profile", value: true },
  { name: "devices", value: true, repeat: true },
  { name: "devicesfile", value: true },
  { name: "driverloaded", value: true },
  { name: "nolocking", value: false },
  { name: "lockopt", value: true },
  { name: "nohints", value: false },
  { name: "journal", value: true },
];
