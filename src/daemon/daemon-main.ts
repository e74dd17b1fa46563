import { pathsFromEnv } from "../config/paths.js";
import { Daemon } from "./daemon.js";
import { LvmError } from "../errors/errors.js";

/** Entry point of the daemon process (started by the CLI or by `ulvm daemon`). */
export async function runDaemon(): Promise<number> {
  const d = new Daemon(pathsFromEnv());
  try {
    await d.start();
  } catch (e) {
    process.stderr.write(`  ${e instanceof LvmError ? e.message : (e as Error).stack}\n`);
    return 5;
  }
  const stop = (): void => void d.stop().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.on("uncaughtException", (e) => d.log(`uncaught: ${e.stack}`));
  process.on("unhandledRejection", (e) => d.log(`unhandled rejection: ${(e as Error)?.stack ?? String(e)}`));
  return new Promise(() => undefined);
}
