import type { CommandDef } from "../cli/command-def.js";
import { CommandError, NotFoundError } from "../errors/errors.js";
import { validateVg } from "../model/validate.js";
import { wipeOutdatedPvs } from "./vg-store.js";
import { cannotProcess, commitChange, doesNotAcceptOption, forEachVg, noMatchingSyntax, readVgForChange, selectVgs } from "./vg-common.js";

/**
 * vgck (tools/vgck.c): read each VG as any command would - which reports
 * damaged, stale and outdated metadata copies in lvm2's words - then check the
 * metadata and that no PV is missing. As in lvm2, damaged or stale copies are
 * warnings (exit 0); invalid metadata or missing PVs fail (exit 5).
 * `vgck --updatemetadata VG` rewrites the VG to every metadata area, which
 * repairs stale and damaged copies, labels without the used flag, and clears
 * outdated PVs.
 */
export const vgck: CommandDef = {
  name: "vgck",
  summary: "Check the consistency of volume group(s)",
  usage: `  vgck - Check the consistency of volume group(s)

  Read and display information about a VG.
  vgck
	[    --reportformat basic|json ]
	[ COMMON_OPTIONS ]
	[ VG|Tag ... ]

  Rewrite VG metadata to correct problems.
  vgck --updatemetadata VG
	[ COMMON_OPTIONS ]
`,
  options: [
    { name: "updatemetadata", value: false },
    { name: "reportformat", value: true },
  ],
  async run(ctx, args) {
    if (args.has("updatemetadata")) {
      if (!args.positional.length) throw doesNotAcceptOption("vgck", "updatemetadata");
      if (args.has("reportformat")) throw noMatchingSyntax(ctx, "vgck");
      const names = await selectVgs(ctx, args.positional);
      return forEachVg(ctx, names, async (name) => {
        const loaded = await readVgForChange(ctx, name, { handlesMissingPvs: true });
        if (!ctx.opts.test) await wipeOutdatedPvs(loaded, (l) => ctx.out.warn(l));
        await commitChange(ctx, loaded);
      });
    }
    const names = await selectVgs(ctx, args.positional);
    return forEachVg(ctx, names, async (name) => {
      let loaded;
      try {
        loaded = await ctx.readVg(name, { lock: false });
      } catch (e) {
        if (e instanceof NotFoundError) throw cannotProcess(name, e.message);
        throw e;
      }
      const problems = validateVg(loaded.vg);
      if (problems.length) throw new CommandError(problems.map((p) => `Internal error: ${p}`).join("\n"));
      const missing = loaded.missingPvIds().length;
      if (missing) throw new CommandError(`The volume group is missing ${missing} physical volumes.`);
    });
  },
};
