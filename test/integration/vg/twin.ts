import { spawnSync } from "node:child_process";
import { copyFileSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Lab, ULVM_BIN, type RunResult } from "../../helpers/lab.js";
import { backupBody } from "../../helpers/metadata-backup.js";

/**
 * Two worlds with the same disks: "l" where the real lvm2 works on loop
 * devices and "u" where ulvm works on image files. A scenario is set up once
 * (usually with lvm2, then copied), the command under test runs in both, and
 * the results are compared after mapping device paths back to disk names
 * (%d0, %d1 ...) and dropping what lvm2 prints only because this machine has
 * no device-mapper or because lvm2's backups are off in the lab.
 */
const LVM_NOISE: RegExp[] = [
  /WARNING: Activation disabled\. No device-mapper interaction will be attempted\./,
  /WARNING: This metadata update is NOT backed up\./,
  /WARNING: Skipping zeroing and wipping, compiled without activation support\./,
  /WARNING: Logical volume \S+ not zeroed\./,
  /File descriptor \d+ .* leaked on lvm invocation/,
  // vgcfgrestore asks device-mapper for active LVs first.
  /\/dev\/mapper\/control: open failed/,
  /Failure to communicate with kernel device-mapper driver\./,
  /Check that device-mapper is available in the kernel\./,
  /Incompatible libdevmapper/,
  /WARNING: Failed to check for active volumes in volume group/,
];

export type World = "l" | "u";

export class Twin {
  readonly l: Lab;
  readonly u: Lab;
  readonly names: string[];
  private readonly loops: Map<string, string>;

  constructor(sizesMiB: readonly number[]) {
    this.l = new Lab("ulvm-vgtwin-l-");
    this.u = new Lab("ulvm-vgtwin-u-");
    this.names = sizesMiB.map((_, i) => `d${i}`);
    sizesMiB.forEach((s, i) => {
      this.l.addDisk(`d${i}`, s);
      this.u.addDisk(`d${i}`, s);
    });
    this.loops = this.l.attachLoops();
  }

  dev(world: World, name: string): string {
    return world === "l" ? this.loops.get(name)! : this.u.disk(name);
  }

  subst(world: World, args: readonly string[]): string[] {
    return args.map((a) => a.replace(/%(d\d+)/g, (_, n: string) => this.dev(world, n)));
  }

  /** Device paths back to %dN; lvm2's lab noise and empty trailing lines dropped. */
  norm(world: World, text: string): string {
    void world;
    let t = text;
    // Both worlds' names: metadata copied from one world keeps the other's device hints.
    // Longest names first: /dev/loop1 must not eat the start of /dev/loop12.
    const pairs = this.names.flatMap((n) => [[this.dev("l", n), n], [this.dev("u", n), n]] as const);
    for (const [path, n] of pairs.sort((a, b) => b[0].length - a[0].length)) t = t.split(path).join(`%${n}`);
    return t
      .split("\n")
      .filter((line) => !LVM_NOISE.some((re) => re.test(line)))
      .join("\n");
  }

  private normResult(world: World, r: RunResult): RunResult {
    return { code: r.code, stdout: this.norm(world, r.stdout), stderr: this.norm(world, r.stderr) };
  }

  /** Real lvm2 in the "l" world (optionally answering prompts), output normalised. */
  lvm(args: readonly string[], input = ""): RunResult {
    const env = { ...this.l.env, LVM_SYSTEM_DIR: this.l.lvmDir, LVM_SUPPRESS_FD_WARNINGS: "1" };
    const r = spawnSync("lvm", this.subst("l", args), { env, cwd: this.l.dir, encoding: "utf8", input });
    return this.normResult("l", { code: r.status ?? 128, stdout: r.stdout ?? "", stderr: r.stderr ?? "" });
  }

  /** ulvm in the "u" world, output normalised. */
  ulvm(args: readonly string[], input = ""): RunResult {
    const r = spawnSync(process.execPath, [ULVM_BIN, ...this.subst("u", args)], { env: this.u.env, cwd: this.u.dir, encoding: "utf8", input });
    return this.normResult("u", { code: r.status ?? 128, stdout: r.stdout ?? "", stderr: r.stderr ?? "" });
  }

  lvmOk(...args: string[]): string {
    const r = this.lvm(args);
    if (r.code !== 0) throw new Error(`lvm ${args.join(" ")} exited ${r.code}\n${r.stderr}`);
    return r.stdout;
  }

  ulvmOk(...args: string[]): string {
    const r = this.ulvm(args);
    if (r.code !== 0) throw new Error(`ulvm ${args.join(" ")} exited ${r.code}\n${r.stderr}`);
    return r.stdout;
  }

  /** Run the same command in both worlds. */
  both(args: readonly string[], input = ""): { lvm: RunResult; ulvm: RunResult } {
    return { lvm: this.lvm(args, input), ulvm: this.ulvm(args, input) };
  }

  /** Make the other world's disks byte-identical to `from`'s. */
  sync(from: World): void {
    for (const n of this.names) {
      if (from === "l") copyFileSync(this.l.disk(n), this.u.disk(n));
      else copyFileSync(this.u.disk(n), this.l.disk(n));
    }
  }

  /** The VG's metadata as each tool's vgcfgbackup writes it, normalised (see backupBody). */
  backup(world: World, vg: string): string {
    const lab = world === "l" ? this.l : this.u;
    const file = join(lab.dir, `backup-${vg}-${Date.now()}.vg`);
    const r = world === "l" ? this.lvm(["vgcfgbackup", "-f", file, vg]) : this.ulvm(["vgcfgbackup", "-f", file, vg]);
    if (r.code !== 0) return `(vgcfgbackup failed: ${r.stderr.trim()})`;
    const text = readFileSync(file, "utf8");
    rmSync(file);
    return backupBody(this.norm(world, text));
  }

  cleanup(): void {
    this.l.cleanup();
    this.u.cleanup();
  }
}

/** Lines of a command's stderr without one kind of line (for lines whose repetition count differs). */
export function without(text: string, re: RegExp): string {
  return text
    .split("\n")
    .filter((l) => !re.test(l))
    .join("\n");
}
