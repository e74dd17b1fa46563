import type { CommandDef } from "../cli/command-def.js";
import { notImplemented } from "./not-implemented.js";

export const vgcreate: CommandDef = notImplemented("vgcreate");
