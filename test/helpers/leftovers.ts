import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { devString } from "../../src/base/dev-number.js";

/**
 * What a test run leaves on the machine, and how to take it away: loop
 * devices, mounts (filesystems and FUSE), and processes (ulvmd, nbdfuse,
 * nbdkit, qemu-nbd...) that belong to scratch directories. This is the one
 * cleanup mechanism of the test suite and the torture suite: every Lab and
 * World releases through `releaseUnder`, and scripts/test.sh and
 * scripts/torture.sh check with `findLeftovers` (test/leftovers-cli.ts) that
 * nothing of the run is left when it ends.
 *
 * "Belongs to a root" means: a loop device whose backing file is under it
 * (also when the file has since been deleted); a mount point under it; a
 * process whose command line names a path under it, whose working directory
 * is under it, or whose ULVM_RUN_DIR is under it. A loop device over a FUSE
 * file whose mount is gone (lazily unmounted) shows its backing file as the
 * path inside the vanished mount, "/dev" for a device path; such a loop is
 * found by its backing file no longer being reachable at that path, and
 * counted as the run's when it was not there when the run began.
 */

export interface LoopDevice {
  readonly name: string;
  /** As the kernel shows it; " (deleted)" stripped. */
  readonly backingFile: string;
  readonly backingDeleted: boolean;
  /** "MAJ:MIN" of the file system holding the backing file, and its inode. */
  readonly backingDev: string;
  readonly backingInode: number;
}

export interface Leftover {
  readonly kind: "loop" | "mount" | "process";
  /** /dev/loopN, a mount point, or a pid. */
  readonly id: string;
  readonly detail: string;
}


export function listLoops(): LoopDevice[] {
  const r = spawnSync("losetup", ["-J", "-l", "-O", "NAME,BACK-INO,BACK-MAJ:MIN,BACK-FILE"], { encoding: "utf8" });
  if (r.status !== 0 || !r.stdout.trim()) return [];
  type Row = { name: string; "back-ino"?: number | string | null; "back-maj:min"?: string | null; "back-file"?: string | null };
  const rows = (JSON.parse(r.stdout) as { loopdevices?: Row[] }).loopdevices ?? [];
  return rows.map((row) => {
    // The inode and device are missing when the kernel cannot stat the file (a FUSE file whose server is gone).
    let file = row["back-file"] ?? "";
    const deleted = file.endsWith(" (deleted)");
    if (deleted) file = file.slice(0, -" (deleted)".length);
    return { name: row.name, backingFile: file, backingDeleted: deleted, backingDev: (row["back-maj:min"] ?? "").trim(), backingInode: Number(row["back-ino"] ?? -1) };
  });
}

/** The loop's backing file is no longer the file at the path it shows (its mount or the file itself is gone). */
export function loopBackingUnreachable(l: LoopDevice): boolean {
  if (l.backingDeleted) return true;
  try {
    const st = statSync(l.backingFile);
    return devString(st.dev) !== l.backingDev || st.ino !== l.backingInode;
  } catch {
    return true;
  }
}

/**
 * A path in another run's scratch folders (scripts/test.sh and torture.sh
 * name theirs ulvm-test.* and ulvm-torture.*): that run's to judge. Two runs
 * can share a machine (a developer's, or helpers'); the orphan rule must not
 * take the other's loop devices for lost ones while it tears them down.
 */
function underOtherRun(path: string, roots: readonly string[]): boolean {
  return /\/ulvm-(test|torture)\.[^/]+\//.test(path) && !under(path, roots);
}

/** Identity of a loop attachment, for "was it there before the run". */
export function loopKey(l: LoopDevice): string {
  return `${l.name} ${l.backingDev} ${l.backingInode}`;
}

/** Mount points (from /proc/self/mounts), with their file system type. */
export function listMounts(): Array<{ point: string; type: string; source: string }> {
  let text = "";
  try {
    text = readFileSync("/proc/self/mounts", "utf8");
  } catch {
    return [];
  }
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(" "))
    .map((f) => ({ source: unescape(f[0] ?? ""), point: unescape(f[1] ?? ""), type: f[2] ?? "" }));
}

function under(path: string, roots: readonly string[]): boolean {
  return roots.some((r) => path === r || path.startsWith(r.endsWith("/") ? r : r + "/"));
}

function mentions(text: string, roots: readonly string[]): boolean {
  return roots.some((r) => text.includes(r.endsWith("/") ? r : r + "/") || text.split("\0").includes(r));
}

/** This process and its ancestors: never ours to kill. */
function ancestors(): Set<number> {
  const s = new Set<number>();
  let pid = process.pid;
  while (pid > 1 && !s.has(pid)) {
    s.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    } catch {
      break;
    }
  }
  return s;
}

export function listProcessesUnder(roots: readonly string[]): Array<{ pid: number; command: string }> {
  const mine = ancestors();
  const found: Array<{ pid: number; command: string }> = [];
  let pids: string[] = [];
  try {
    pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    return [];
  }
  for (const p of pids) {
    const pid = Number(p);
    if (mine.has(pid)) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!cmdline) continue; // kernel thread or zombie
      let hit = mentions(cmdline, roots);
      if (!hit) {
        try {
          hit = under(readlinkSync(`/proc/${pid}/cwd`), roots);
        } catch {
          /* not ours to read */
        }
      }
      if (!hit) {
        try {
          const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
          hit = env.some((e) => e.startsWith("ULVM_RUN_DIR=") && under(e.slice("ULVM_RUN_DIR=".length), roots));
        } catch {
          /* gone */
        }
      }
      if (hit) found.push({ pid, command: cmdline.split("\0").filter(Boolean).join(" ").slice(0, 200) });
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}

/**
 * Everything of `roots` still on the machine. `loopsBefore` (loopKey values)
 * names the loops that existed when the run began: a loop over an unreachable
 * backing file that is not among them is the run's too.
 */
export function findLeftovers(roots: readonly string[], loopsBefore?: ReadonlySet<string>): Leftover[] {
  const out: Leftover[] = [];
  for (const l of listLoops()) {
    if (under(l.backingFile, roots)) {
      out.push({ kind: "loop", id: l.name, detail: `backed by ${l.backingFile}${l.backingDeleted ? " (deleted)" : ""}` });
    } else if (loopsBefore && !loopsBefore.has(loopKey(l)) && !underOtherRun(l.backingFile, roots) && loopBackingUnreachable(l)) {
      out.push({ kind: "loop", id: l.name, detail: `backed by ${l.backingFile} (${l.backingDev}:${l.backingInode}), no longer reachable: a lost FUSE or scratch mount` });
    }
  }
  for (const m of listMounts()) if (under(m.point, roots)) out.push({ kind: "mount", id: m.point, detail: `${m.type} from ${m.source}` });
  for (const p of listProcessesUnder(roots)) out.push({ kind: "process", id: String(p.pid), detail: p.command });
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function waitGone(pids: number[], ms: number): void {
  const end = Date.now() + ms;
  while (pids.some(alive) && Date.now() < end) spawnSync("sleep", ["0.02"]);
}

/** Detach loop devices backed under `roots`, or whose backing is one of `files` (dev:ino of FUSE files whose mount may be gone). */
export function detachLoops(roots: readonly string[], extra: (l: LoopDevice) => boolean = () => false): void {
  for (const l of listLoops()) if (under(l.backingFile, roots) || extra(l)) spawnSync("losetup", ["-d", l.name]);
}

/**
 * Take away everything of `roots`, in the order that lets each step
 * succeed: filesystems first (lazily: a hung one must not hang the test),
 * then the processes (daemons tear down their own device paths on SIGTERM;
 * SIGKILL after 5 s), then loop devices (also those over FUSE files whose
 * mount was lost, named by `recordedFuseFiles`: "MAJ:MIN ino" or "loop /dev/loopN"), then FUSE
 * mounts, then any process still left.
 */
export function releaseUnder(roots: readonly string[], recordedFuseFiles: ReadonlySet<string> = new Set()): void {
  const deepestFirst = (): Array<{ point: string; type: string }> =>
    listMounts()
      .filter((m) => under(m.point, roots))
      .sort((a, b) => b.point.length - a.point.length);
  for (const m of deepestFirst()) if (!m.type.startsWith("fuse")) spawnSync("umount", ["-l", m.point]);
  const daemons = listProcessesUnder(roots).filter((p) => /ulvmd|ulvm(\.js)? daemon/.test(p.command));
  for (const p of daemons) process.kill(p.pid, "SIGTERM");
  waitGone(daemons.map((p) => p.pid), 5000);
  for (const p of daemons) if (alive(p.pid)) process.kill(p.pid, "SIGKILL");
  waitGone(daemons.map((p) => p.pid), 2000);
  // A loop whose FUSE mount was lost and whose server is gone too (the daemon's own FUSE server dies with the
  // daemon) shows no inode: it is the lab's when a record names it and it shows the lost path "/dev".
  detachLoops(roots, (l) => recordedFuseFiles.has(`${l.backingDev} ${l.backingInode}`) || (recordedFuseFiles.has(`loop ${l.name}`) && l.backingFile === "/dev" && l.backingInode < 0));
  for (const m of deepestFirst()) spawnSync("fusermount3", ["-uz", m.point]);
  for (const m of deepestFirst()) spawnSync("umount", ["-l", m.point]);
  const rest = listProcessesUnder(roots);
  for (const p of rest) {
    try {
      process.kill(p.pid, "SIGTERM");
    } catch {
      /* gone */
    }
  }
  waitGone(rest.map((p) => p.pid), 2000);
  for (const p of rest) {
    try {
      if (alive(p.pid)) process.kill(p.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
}

/** Loop attachments whose backing is unreachable and that appeared after `before`, not another run's: detach (the sweep at the end of a run). */
export function detachOrphanLoops(before: ReadonlySet<string>, roots: readonly string[]): void {
  for (const l of listLoops()) if (!before.has(loopKey(l)) && !underOtherRun(l.backingFile, roots) && loopBackingUnreachable(l)) spawnSync("losetup", ["-d", l.name]);
}
