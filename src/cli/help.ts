import type { CommandDef } from "./command-def.js";
import { COMMANDS } from "./command-table.js";
import { LIBDM_COMPAT_VERSION, LVM2_COMPAT_VERSION, ULVM_VERSION } from "../base/version.js";

export function helpText(): string {
  const names = Object.keys(COMMANDS).sort();
  const width = Math.max(...names.map((n) => n.length)) + 2;
  let s = "  Available ulvm commands:\n  Use 'ulvm help <command>' for more information\n   \n";
  for (const n of names) s += `  ${n.padEnd(width)}${COMMANDS[n]!.summary}\n`;
  return s;
}

export const help: CommandDef = {
  name: "help",
  summary: "Display help for commands",
  usage: "  help [command]\n",
  options: [],
  needsDevices: false,
  async run(ctx, args) {
    const name = args.positional[0];
    if (!name) {
      ctx.out.write(helpText());
      return 0;
    }
    const entry = Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!entry) {
      ctx.out.error("No such command.  Try 'ulvm help'.");
      return 2;
    }
    const def = await entry.load();
    ctx.out.write(def.usage.endsWith("\n") ? def.usage : def.usage + "\n");
    return 0;
  },
};

export const version: CommandDef = {
  name: "version",
  summary: "Display software and driver version information",
  usage: "  version\n",
  options: [],
  needsDevices: false,
  async run(ctx) {
    ctx.out.print(`ulvm version:    ${ULVM_VERSION}`);
    ctx.out.print(`LVM version:     ${LVM2_COMPAT_VERSION} (on-disk format and commands)`);
    ctx.out.print(`Library version: ${LIBDM_COMPAT_VERSION} (behaviour)`);
    ctx.out.print(`Driver version:  userspace mapper over NBD`);
    return 0;
  },
};
