import { spawnSync, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync, existsSync, truncateSync, closeSync, openSync } from "node:fs";
import { join, resolve as resolvePath } from "node:path";
import { REPO_ROOT, DIST_ROOT } from "./fixtures.js";
import { releaseUnder } from "./leftovers.js";
import { scratchBase } from "./scratch.js";

/**
 * A throw-away world for integration tests: a directory with image files,
 * ulvm.conf, run and dev directories, and helpers to run the built ulvm and
 * the real lvm2 on the same disks (lvm2 through loop devices, with a private
 * lvm.conf that accepts only those loops and never touches device-mapper).
 */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const ULVM_BIN = join(REPO_ROOT, "bin", "ulvm");

export function which(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

export const isRoot = process.getuid?.() === 0;

/** Why loop devices cannot be used here, or undefined when they can. */
export function loopUnavailable(): string | undefined {
  if (!isRoot) return "needs root for loop devices";
  if (!which("losetup")) return "losetup (util-linux) not installed";
  if (!existsSync("/dev/loop-control")) return "no /dev/loop-control: loop devices unavailable";
  return undefined;
}

/** Why the real lvm2 cannot be compared with here, or undefined. */
export function lvmUnavailable(): string | undefined {
  if (!which("lvm")) return "lvm2 not installed (apt-get install lvm2)";
  return loopUnavailable();
}

export class Lab {
  /** Labs not yet cleaned up: released when the test process ends, however it ends. */
  static readonly live = new Set<Lab>();
  readonly dir: string;
  /** Other directories whose loops, mounts and processes are this lab's (a World's tmpfs disks). */
  readonly extraRoots: string[] = [];
  readonly env: NodeJS.ProcessEnv;
  readonly disks = new Map<string, string>();
  private loops: string[] = [];
  /** Things a test made outside the lab's folders (network namespaces, servers): undone last, newest first. */
  private readonly undo: Array<() => void> = [];
  private loopOf = new Map<string, string>();
  readonly lvmDir: string;

  constructor(prefix = "ulvm-lab-") {
    this.dir = mkdtempSync(join(scratchBase(), prefix));
    Lab.live.add(this);
    releaseLabsOnExit();
    for (const d of ["etc", "run", "dev", "disks", "lvm"]) mkdirSync(join(this.dir, d));
    this.lvmDir = join(this.dir, "lvm");
    this.env = {
      ...process.env,
      ULVM_SYSTEM_DIR: join(this.dir, "etc"),
      ULVM_RUN_DIR: join(this.dir, "run"),
      ULVM_DEV_DIR: join(this.dir, "dev"),
      // Tests built into another directory run ulvm from there; the repository's own
      // build runs through bin/ulvm's usual choice (the bundle), as users run it.
      ...(resolvePath(DIST_ROOT) !== resolvePath(join(REPO_ROOT, "dist")) ? { ULVM_DIST: DIST_ROOT } : {}),
      TZ: "UTC",
      LC_ALL: "C",
    };
    this.writeConfig(`devices {\n\tscan = [ "${join(this.dir, "disks")}" ]\n}\n`);
  }

  /**
   * ULVM_TEST_DEVICE_PATH_SERVER=fuse|nbdfuse runs every lab's device paths
   * on that server (unless its config names one): the device-path tests run
   * both ways without a copy of each (sections of the same name merge).
   */
  writeConfig(text: string): void {
    const server = process.env.ULVM_TEST_DEVICE_PATH_SERVER;
    const extra = server && !text.includes("device_path_server") ? `activation {\n\tdevice_path_server = "${server}"\n}\n` : "";
    writeFileSync(join(this.dir, "etc", "ulvm.conf"), text + extra);
  }

  /** Create a sparse image file disks/NAME of the given size. */
  addDisk(name: string, sizeMiB: number): string {
    const p = join(this.dir, "disks", name);
    closeSync(openSync(p, "w"));
    truncateSync(p, sizeMiB * 1024 * 1024);
    this.disks.set(name, p);
    return p;
  }

  disk(name: string): string {
    const p = this.disks.get(name);
    if (!p) throw new Error(`no disk ${name}`);
    return p;
  }

  ulvm(...args: string[]): RunResult {
    return this.run(process.execPath, [ULVM_BIN, ...args]);
  }

  /** ulvm with stdin text (prompts). */
  ulvmInput(input: string, ...args: string[]): RunResult {
    return this.run(process.execPath, [ULVM_BIN, ...args], input);
  }

  /** Run and require exit 0; returns stdout. */
  ok(...args: string[]): string {
    const r = this.ulvm(...args);
    if (r.code !== 0) throw new Error(`ulvm ${args.join(" ")} exited ${r.code}\n${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  run(cmd: string, args: string[], input?: string): RunResult {
    const r = spawnSync(cmd, args, { env: this.env, cwd: this.dir, encoding: "utf8", input: input ?? "", maxBuffer: 64 * 1024 * 1024 });
    return { code: r.status ?? 128, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  /**
   * Attach every disk to a loop device; ulvm then scans the loops instead of
   * the files. With `readOnlyView`, the loops are read-only and ulvm keeps
   * using the files: the real lvm reads what ulvm writes, through the loops.
   */
  attachLoops(opts: { readOnlyView?: boolean } = {}): Map<string, string> {
    for (const [name, p] of this.disks) {
      if (this.loopOf.has(name)) continue;
      const dev = execFileSync("losetup", ["-f", "--show", ...(opts.readOnlyView ? ["-r"] : []), p], { encoding: "utf8" }).trim();
      this.loops.push(dev);
      this.loopOf.set(name, dev);
    }
    if (!opts.readOnlyView) this.writeConfig(`devices {\n\tscan = [ ${[...this.loopOf.values()].map((l) => `"${l}"`).join(", ")} ]\n}\n`);
    this.writeLvmConf();
    return this.loopOf;
  }

  loop(name: string): string {
    const l = this.loopOf.get(name);
    if (!l) throw new Error(`disk ${name} has no loop device`);
    return l;
  }

  private writeLvmConf(): void {
    const acc = [...this.loopOf.values()].map((d) => `"a|^${d}$|", `).join("");
    writeFileSync(
      join(this.lvmDir, "lvm.conf"),
      `devices {\n\tobtain_device_list_from_udev = 0\n\tuse_devicesfile = 0\n\thints = "none"\n\tfilter = [ ${acc}"r|.*|" ]\n}\n` +
        `activation {\n\tudev_sync = 0\n\tudev_rules = 0\n\tmonitoring = 0\n}\n` +
        `global {\n\tactivation = 0\n\tuse_lvmpolld = 0\n}\n` +
        `backup {\n\tbackup = 0\n\tarchive = 0\n}\n`,
    );
  }

  /** The real lvm2, restricted to this lab's loop devices, activation disabled. */
  lvm(...args: string[]): RunResult {
    const env = { ...this.env, LVM_SYSTEM_DIR: this.lvmDir, LVM_SUPPRESS_FD_WARNINGS: "1" };
    const r = spawnSync("lvm", args, { env, cwd: this.dir, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    return { code: r.status ?? 128, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  lvmOk(...args: string[]): string {
    const r = this.lvm(...args);
    if (r.code !== 0) throw new Error(`lvm ${args.join(" ")} exited ${r.code}\n${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** Stop this lab's daemon (if any) and undo what it left: mounts, device paths, FUSE mounts. */
  stopDaemon(signal: NodeJS.Signals = "SIGTERM"): void {
    const pidFile = join(this.dir, "run", "ulvmd.pid");
    let pid = 0;
    try {
      pid = Number(readFileSync(pidFile, "utf8").trim());
    } catch {
      /* none */
    }
    if (pid) {
      try {
        process.kill(pid, signal);
      } catch {
        /* gone */
      }
      for (let i = 0; i < 200; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        spawnSync("sleep", ["0.025"]);
      }
    }
  }

  /** Undo `fn` at cleanup, after the daemon is stopped, even when the test fails. Synchronous, like cleanup. */
  onCleanup(fn: () => void): void {
    this.undo.push(fn);
  }

  /**
   * Release everything this lab made (filesystems and FUSE mounts, daemons,
   * nbdfuse, loop devices, also those over a device path whose FUSE mount
   * is gone) through the shared helper, then remove its directories.
   * Synchronous, so that it also runs from an exit handler.
   */
  cleanup(): void {
    Lab.live.delete(this);
    this.stopDaemon("SIGTERM");
    this.stopDaemon("SIGKILL");
    releaseUnder([this.dir, ...this.extraRoots], recordedFuseFiles(join(this.dir, "run", "devices")));
    for (const fn of this.undo.splice(0).reverse()) {
      try {
        fn();
      } catch {
        /* best effort: the next one still runs */
      }
    }
    this.loops = [];
    this.loopOf.clear();
    for (const d of [this.dir, ...this.extraRoots]) rmSync(d, { recursive: true, force: true });
  }
}

/**
 * The FUSE files of device paths a daemon recorded ("MAJ:MIN ino"): a loop
 * device over one of them is the lab's even when its mount is gone and the
 * loop shows its backing file as "/dev".
 */
function recordedFuseFiles(devicesDir: string): Set<string> {
  const ids = new Set<string>();
  let files: string[] = [];
  try {
    files = readdirSync(devicesDir).filter((f) => f.endsWith(".json"));
  } catch {
    return ids;
  }
  for (const f of files) {
    try {
      const rec = JSON.parse(readFileSync(join(devicesDir, f), "utf8")) as { fuseDev?: string; fuseIno?: number; loop?: string };
      if (rec.fuseDev && rec.fuseIno !== undefined) ids.add(`${rec.fuseDev} ${rec.fuseIno}`);
      if (rec.loop) ids.add(`loop ${rec.loop}`);
    } catch {
      /* half-written record */
    }
  }
  return ids;
}

let exitHookInstalled = false;
/**
 * A test file that fails, throws or is cancelled by the runner (SIGTERM on
 * a timeout) still releases its labs: on exit, and on SIGINT/SIGTERM/SIGHUP.
 * SIGKILL cannot be caught; the run's final check (test/leftovers-cli.ts)
 * sweeps what that leaves.
 */
function releaseLabsOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const releaseAll = (): void => {
    for (const lab of [...Lab.live]) {
      try {
        lab.cleanup();
      } catch {
        /* best effort: the next lab still gets its turn */
      }
    }
  };
  process.on("exit", releaseAll);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      releaseAll();
      process.kill(process.pid, sig);
    });
  }
}

/** Why FUSE device paths (a loop over a FUSE file) cannot be used here, or undefined. */
export function devicePathUnavailable(): string | undefined {
  // nbdfuse serves device paths only when a lab asks for it; the daemon's own FUSE server needs none.
  if (process.env.ULVM_TEST_DEVICE_PATH_SERVER === "nbdfuse" && !which("nbdfuse")) return "nbdfuse not installed (apt-get install libnbd-bin)";
  if (!existsSync("/dev/fuse")) return "no /dev/fuse";
  if (!which("fusermount3")) return "fusermount3 not installed (apt-get install fuse3)";
  return loopUnavailable();
}

/** Drop the lines lvm2 prints because activation is disabled, and the X state characters it shows. */
export function normaliseLvmStderr(s: string): string {
  return s
    .split("\n")
    .filter((l) => !l.includes("WARNING: Activation disabled. No device-mapper interaction will be attempted."))
    .join("\n");
}
