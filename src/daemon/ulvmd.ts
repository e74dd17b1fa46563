import { runDaemon } from "./daemon-main.js";

/** The daemon process's entry point (the CLI starts it; `ulvm daemon` runs the same code in the foreground). */
void runDaemon().then((code) => process.exit(code));
