import type { CommandDef } from "../cli/command-def.js";
import { notImplemented } from "./not-implemented.js";

export const lvextend: CommandDef = notImplemented("lvextend");
export const lvreduce: CommandDef = notImplemented("lvreduce");
export const lvresize: CommandDef = notImplemented("lvresize");
