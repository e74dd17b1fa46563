import type { CommandDef } from "../cli/command-def.js";
import { notImplemented } from "./not-implemented.js";

export const vgcfgrestore: CommandDef = notImplemented("vgcfgrestore");
