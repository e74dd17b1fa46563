import type { CommandDef } from "../cli/command-def.js";
import { notImplemented } from "./not-implemented.js";

export const pvscan: CommandDef = notImplemented("pvscan");
export const vgscan: CommandDef = notImplemented("vgscan");
export const lvscan: CommandDef = notImplemented("lvscan");
