import type { CommandDef } from "../cli/command-def.js";
import { notImplemented } from "./not-implemented.js";

export const pvdisplay: CommandDef = notImplemented("pvdisplay");
export const vgdisplay: CommandDef = notImplemented("vgdisplay");
export const lvdisplay: CommandDef = notImplemented("lvdisplay");
