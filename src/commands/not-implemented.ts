import type { CommandDef } from "../cli/command-def.js";
import { CommandError } from "../errors/errors.js";

/** Placeholder for a command whose implementation has not landed yet: it fails plainly. */
export function notImplemented(name: string): CommandDef {
  return {
    name,
    summary: name,
    usage: `  ${name}: not implemented yet\n`,
    options: [],
    async run() {
      throw new CommandError(`${name}: not implemented yet in this version of ulvm.`);
    },
  };
}
