import { spawnSync, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync, truncateSync, closeSync, openSync } from "node:fs";
import { join, resolve as resolvePath } from "node:path";
import { REPO_ROOT, DIST_ROOT } from "./fixtures.js";

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
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly disks = new Map<string, string>();
  private loops: string[] = [];
  private loopOf = new Map<string, string>();
  readonly lvmDir: string;

  constructor(prefix = "ulvm-lab-") {
    const base = existsSync("/var/tmp") ? "/var/tmp" : "/tmp";
    this.dir = mkdtempSync(join(base, prefix));
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

  writeConfig(text: string): void {
    writeFileSync(join(this.dir, "etc", "ulvm.conf"), text);
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

  /** Everything mounted under this lab (filesystems first, then FUSE), deepest first. */
  private mountsUnder(): string[] {
    let text = "";
    try {
      text = readFileSync("/proc/self/mounts", "utf8");
    } catch {
      return [];
    }
    return text
      .split("\n")
      .map((l) => l.split(" ")[1] ?? "")
      .map((m) => m.replace(/\\040/g, " "))
      .filter((m) => m.startsWith(this.dir + "/"))
      .sort((a, b) => b.length - a.length);
  }

  cleanup(): void {
    for (const m of this.mountsUnder()) if (!m.includes("/run/fuse/")) spawnSync("umount", ["-l", m]);
    this.stopDaemon("SIGTERM");
    this.stopDaemon("SIGKILL");
    // Loop devices over our FUSE files, then the FUSE mounts themselves.
    const loops = spawnSync("losetup", ["-n", "-O", "NAME,BACK-FILE", "-l"], { encoding: "utf8" }).stdout ?? "";
    for (const line of loops.split("\n")) {
      const [name, back] = line.trim().split(/\s+/);
      if (name && back && back.startsWith(this.dir + "/")) spawnSync("losetup", ["-d", name]);
    }
    for (const m of this.mountsUnder()) spawnSync("fusermount3", ["-uz", m]);
    // Our disks' loops went with the pass above. Detaching this.loops by name again would
    // race with a concurrent test that has just been given the freed number: only a loop
    // still backed by a file of ours is ours.
    for (const l of this.loops) {
      const back = spawnSync("losetup", ["-n", "-O", "BACK-FILE", l], { encoding: "utf8" }).stdout?.trim() ?? "";
      if (back.startsWith(this.dir + "/")) spawnSync("losetup", ["-d", l]);
    }
    this.loops = [];
    this.loopOf.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Why FUSE device paths (nbdfuse + loop) cannot be used here, or undefined. */
export function devicePathUnavailable(): string | undefined {
  if (!which("nbdfuse")) return "nbdfuse not installed (apt-get install libnbd-bin)";
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
