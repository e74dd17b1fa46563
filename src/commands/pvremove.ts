import type { CommandDef } from "../cli/command-def.js";
import { UsageError } from "../errors/errors.js";
import { openBlockDevice } from "./device-open.js";
import { wipeLabels } from "../format/pv-write.js";
import { exitFor } from "./common.js";
import { loadVg } from "./vg-store.js";
import { vgLockName } from "./lock.js";

/** pvremove: wipe the LVM label of PVs that belong to no VG (tools/pvremove.c). */
export const pvremove: CommandDef = {
  name: "pvremove",
  summary: "Remove LVM label(s) from physical volume(s)",
  usage: `  pvremove - Remove LVM label(s) from physical volume(s)

  pvremove PV ...
	[ -f|--force ]
	[    --reportformat basic|json ]
	[ COMMON_OPTIONS ]
`,
  options: [
    { name: "force", short: "f", value: false, repeat: true },
    { name: "reportformat", value: true },
  ],
  async run(ctx, args) {
    if (args.positional.length === 0) throw new UsageError("Please enter a physical volume path", "pvremove");
    await ctx.locks.acquire("P_orphans");
    const scan = await ctx.scan();
    let failures = 0;
    for (const name of args.positional) {
      const sd = await ctx.findDevice(name);
      if (!sd || !sd.label) {
        if (!sd) ctx.out.error(`Cannot use ${name}: device not found`);
        else ctx.out.error(`No PV found on device ${name}.`);
        failures++;
        continue;
      }
      const vgName = scan.vgNames().find((v) => loadVg(scan, v)?.vg.pvs.some((pv) => pv.id === sd.label!.pvIdRaw));
      if (vgName !== undefined) {
        if (args.count("force") < 2) {
          ctx.out.error(`PV ${name} is used by VG ${vgName} so please use vgreduce first.`);
          ctx.out.error(`(If you are certain you need pvremove, then confirm by using --force twice.)`);
          ctx.out.error(`${name}: physical volume label not removed.`);
          failures++;
          continue;
        }
        if (!(await ctx.confirm(`Really WIPE LABELS from physical volume "${name}" of volume group "${vgName}"`))) {
          ctx.out.error(`${name}: physical volume label not removed.`);
          failures++;
          continue;
        }
        await ctx.locks.acquire(vgLockName(vgName));
        ctx.out.warn(`WARNING: Wiping physical volume label from ${name} of volume group "${vgName}".`);
      }
      if (ctx.opts.test) continue;
      const dev = await openBlockDevice(sd.entry.name, { write: true });
      try {
        await wipeLabels(dev);
        await dev.flush();
      } finally {
        await dev.close();
      }
      ctx.forgetDevice(sd.entry);
      ctx.out.print(`Labels on physical volume "${name}" successfully wiped.`);
    }
    return exitFor(failures);
  },
};
