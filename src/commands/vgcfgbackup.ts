import type { CommandDef } from "../cli/command-def.js";
import { notImplemented } from "./not-implemented.js";

export const vgcfgbackup: CommandDef = notImplemented("vgcfgbackup");
