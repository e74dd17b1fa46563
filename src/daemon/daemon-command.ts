import type { CommandDef } from "../cli/command-def.js";

/** `ulvm daemon`: run the daemon in the foreground, for a service manager. */
export const daemonCommand: CommandDef = {
  name: "daemon",
  summary: "Run the ulvm daemon in the foreground",
  usage: `  daemon - Run the ulvm daemon in the foreground (for systemd and the like)

  daemon
	[ COMMON_OPTIONS ]

  The daemon holds active logical volumes and serves them over NBD on
  $ULVM_RUN_DIR/nbd.sock; it writes its pid to $ULVM_RUN_DIR/ulvmd.pid and
  listens for commands on $ULVM_RUN_DIR/ulvmd.sock. Commands that activate
  LVs start it automatically when it is not running.
`,
  options: [],
  needsDevices: false,
  async run() {
    const { runDaemon } = await import("./daemon-main.js");
    return runDaemon();
  },
};
