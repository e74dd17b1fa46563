import { join, resolve } from "node:path";
import { mkdirSync } from "node:fs";

/**
 * Where ulvm keeps things. The environment variables are a contract with users
 * and scripts: ULVM_SYSTEM_DIR (config, backups), ULVM_RUN_DIR (locks, daemon
 * pid file and sockets), ULVM_DEV_DIR (device paths of active LVs).
 */
export interface Paths {
  systemDir: string;
  runDir: string;
  devDir: string;
}

export function pathsFromEnv(env: NodeJS.ProcessEnv = process.env): Paths {
  return {
    systemDir: env.ULVM_SYSTEM_DIR || "/etc/ulvm",
    runDir: env.ULVM_RUN_DIR || "/run/ulvm",
    devDir: env.ULVM_DEV_DIR || "/dev",
  };
}

export const configFile = (p: Paths): string => join(p.systemDir, "ulvm.conf");
export const deviceFilesFile = (p: Paths): string => join(p.systemDir, "device-files");
export const backupDir = (p: Paths): string => join(p.systemDir, "backup");
export const archiveDir = (p: Paths): string => join(p.systemDir, "archive");
export const lockDir = (p: Paths): string => join(p.runDir, "lock");
export const daemonPidFile = (p: Paths): string => join(p.runDir, "ulvmd.pid");
export const daemonControlSocket = (p: Paths): string => join(p.runDir, "ulvmd.sock");
export const nbdSocket = (p: Paths): string => join(p.runDir, "nbd.sock");

/**
 * mkdir -p, one component at a time. Node 20's recursive mkdirSync can spin
 * forever on paths it cannot create (e.g. under /proc); this fails instead.
 */
export function ensureDir(path: string, mode = 0o700): void {
  const abs = resolve(path);
  const parts = abs.split("/").filter((p) => p.length > 0);
  let cur = "";
  for (const p of parts) {
    cur += "/" + p;
    try {
      mkdirSync(cur, { mode });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "EEXIST" && code !== "EISDIR") throw e;
    }
  }
}
