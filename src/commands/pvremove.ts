import type { CommandDef } from "../cli/command-def.js";
import { notImplemented } from "./not-implemented.js";

export const pvremove: CommandDef = notImplemented("pvremove");
