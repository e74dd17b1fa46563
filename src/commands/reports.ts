import type { CommandDef } from "../cli/command-def.js";
import { notImplemented } from "./not-implemented.js";

export const pvs: CommandDef = notImplemented("pvs");
export const vgs: CommandDef = notImplemented("vgs");
export const lvs: CommandDef = notImplemented("lvs");
