import { CommandError } from "../errors/errors.js";
import type { ToolContext } from "./toolcontext.js";

/**
 * `vgchange -a|--activate` and `vgchange --refresh`: the activation side of
 * vgchange, owned by the activation work. vgchange parses the option, reads
 * the VG and hands over here; until activation lands this fails plainly.
 */
export type VgActivationChange =
  | { kind: "activate"; value: string; activationMode: string | undefined; partial: boolean; ignoreActivationSkip: boolean; readOnly: boolean }
  | { kind: "refresh" };

export async function vgchangeActivate(ctx: ToolContext, vgName: string, change: VgActivationChange): Promise<void> {
  void ctx;
  const what = change.kind === "refresh" ? "vgchange --refresh" : `vgchange -a ${change.value}`;
  throw new CommandError(`${what} ${vgName}: activation is not implemented in this version of ulvm.`);
}

/** lvm2's activation values for -a: y|n|ay plus their aliases. */
export const ACTIVATE_VALUES = ["e", "ey", "ye", "s", "sy", "ys", "y", "a", "ay", "ya", "n", "en", "ne", "ln", "nl", "ly", "yl"];
