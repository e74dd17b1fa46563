import type { CommandDef } from "./command-def.js";

/**
 * Every command ulvm knows, loaded on demand so that `ulvm lvs` loads only
 * what lvs needs (start-up time is part of every command's cost).
 */
export interface CommandEntry {
  summary: string;
  load: () => Promise<CommandDef>;
}

const m = <T>(p: Promise<T>, key: keyof T): Promise<CommandDef> => p.then((mod) => mod[key] as unknown as CommandDef);

export const COMMANDS: Record<string, CommandEntry> = {
  help: { summary: "Display help for commands", load: () => m(import("./help.js"), "help") },
  version: { summary: "Display software and driver version information", load: () => m(import("./help.js"), "version") },
  daemon: { summary: "Run the ulvm daemon in the foreground", load: () => m(import("../daemon/daemon-command.js"), "daemonCommand") },
  events: { summary: "Display the events of the ulvm daemon", load: () => m(import("../daemon/events/events-command.js"), "eventsCommand") },
  pvcreate: { summary: "Initialize physical volume(s) for use by LVM", load: () => m(import("../commands/pvcreate.js"), "pvcreate") },
  pvremove: { summary: "Remove LVM label(s) from physical volume(s)", load: () => m(import("../commands/pvremove.js"), "pvremove") },
  pvs: { summary: "Display information about physical volumes", load: () => m(import("../commands/reports.js"), "pvs") },
  pvdisplay: { summary: "Display various attributes of physical volume(s)", load: () => m(import("../commands/display.js"), "pvdisplay") },
  pvscan: { summary: "List all physical volumes", load: () => m(import("../commands/scan-commands.js"), "pvscan") },
  pvchange: { summary: "Change attributes of physical volume(s)", load: () => m(import("../commands/pvchange.js"), "pvchange") },
  pvresize: { summary: "Resize physical volume(s)", load: () => m(import("../commands/pvresize.js"), "pvresize") },
  pvmove: { summary: "Move extents from one physical volume to another", load: () => m(import("../commands/pvmove.js"), "pvmove") },
  pvck: { summary: "Check metadata on physical volumes", load: () => m(import("../commands/pvck.js"), "pvck") },
  vgcreate: { summary: "Create a volume group", load: () => m(import("../commands/vgcreate.js"), "vgcreate") },
  vgextend: { summary: "Add physical volumes to a volume group", load: () => m(import("../commands/vgextend.js"), "vgextend") },
  vgreduce: { summary: "Remove physical volume(s) from a volume group", load: () => m(import("../commands/vgreduce.js"), "vgreduce") },
  vgremove: { summary: "Remove volume group(s)", load: () => m(import("../commands/vgremove.js"), "vgremove") },
  vgrename: { summary: "Rename a volume group", load: () => m(import("../commands/vgrename.js"), "vgrename") },
  vgs: { summary: "Display information about volume groups", load: () => m(import("../commands/reports.js"), "vgs") },
  vgdisplay: { summary: "Display volume group information", load: () => m(import("../commands/display.js"), "vgdisplay") },
  vgscan: { summary: "Search for all volume groups", load: () => m(import("../commands/scan-commands.js"), "vgscan") },
  vgck: { summary: "Check the consistency of volume group(s)", load: () => m(import("../commands/vgck.js"), "vgck") },
  vgcfgbackup: { summary: "Backup volume group configuration(s)", load: () => m(import("../commands/vgcfgbackup.js"), "vgcfgbackup") },
  vgcfgrestore: { summary: "Restore volume group configuration", load: () => m(import("../commands/vgcfgrestore.js"), "vgcfgrestore") },
  vgchange: { summary: "Change volume group attributes", load: () => m(import("../commands/vgchange.js"), "vgchange") },
  lvcreate: { summary: "Create a logical volume", load: () => m(import("../commands/lvcreate.js"), "lvcreate") },
  lvremove: { summary: "Remove logical volume(s) from the system", load: () => m(import("../commands/lvremove.js"), "lvremove") },
  lvrename: { summary: "Rename a logical volume", load: () => m(import("../commands/lvrename.js"), "lvrename") },
  lvextend: { summary: "Add space to a logical volume", load: () => m(import("../commands/lvresize.js"), "lvextend") },
  lvreduce: { summary: "Reduce the size of a logical volume", load: () => m(import("../commands/lvresize.js"), "lvreduce") },
  lvresize: { summary: "Resize a logical volume", load: () => m(import("../commands/lvresize.js"), "lvresize") },
  lvs: { summary: "Display information about logical volumes", load: () => m(import("../commands/reports.js"), "lvs") },
  lvdisplay: { summary: "Display information about a logical volume", load: () => m(import("../commands/display.js"), "lvdisplay") },
  lvscan: { summary: "List all logical volumes in all volume groups", load: () => m(import("../commands/scan-commands.js"), "lvscan") },
  lvchange: { summary: "Change the attributes of logical volume(s)", load: () => m(import("../commands/lvchange.js"), "lvchange") },
  lvconvert: { summary: "Change logical volume layout", load: () => m(import("../commands/lvconvert.js"), "lvconvert") },
};
