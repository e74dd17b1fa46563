import type { CommandDef } from "../cli/command-def.js";
import { notImplemented } from "../commands/not-implemented.js";

export const daemonCommand: CommandDef = notImplemented("daemon");
