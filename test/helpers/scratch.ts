import { existsSync } from "node:fs";
import { tmpdir } from "node:os";

/**
 * Where tests and torture scenarios make their scratch directories.
 * scripts/test.sh and scripts/torture.sh give each run folders of its own
 * (ULVM_TEST_SCRATCH on disk, ULVM_TEST_SCRATCH_SHM on tmpfs; TMPDIR is the
 * former, for tests that use os.tmpdir()), so that at the end they can tell
 * exactly what of that run is left on the machine (test/leftovers-cli.ts).
 * Run by hand, tests use /var/tmp and /dev/shm.
 */
export function scratchBase(): string {
  return process.env.ULVM_TEST_SCRATCH || (existsSync("/var/tmp") ? "/var/tmp" : tmpdir());
}

/** A tmpfs for scratch disks (flushes cost nothing), or undefined where there is none. */
export function scratchShmBase(): string | undefined {
  if (process.env.ULVM_TEST_SCRATCH_SHM) return process.env.ULVM_TEST_SCRATCH_SHM;
  return existsSync("/dev/shm") ? "/dev/shm" : undefined;
}
