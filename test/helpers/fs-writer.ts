import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, fsyncSync, openSync, closeSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * A client of a mounted filesystem that keeps writing and verifying files
 * while the admin works on the volume under it: it rewrites SLOTS files in
 * turn (each write fsynced, then renamed into place), and after each write
 * reads one file back with O_DIRECT (`dd iflag=direct`: from the device,
 * not the page cache) and checks it. It stops when the stop file appears and
 * prints its manifest (the generation of each file) as JSON; it exits 1 at
 * the first wrong byte or failed I/O. Run as a process of its own, so that
 * it goes on while the test waits on synchronous commands.
 */
export const SLOTS = 32;
const FILE_BYTES = 128 * 1024;

/** The bytes of file `slot` at generation `gen`: a hash chain, different for every (slot, gen). */
export function fileContent(slot: number, gen: number): Buffer {
  const out = Buffer.alloc(FILE_BYTES);
  let h = createHash("sha256").update(`${slot}:${gen}`).digest();
  for (let off = 0; off < FILE_BYTES; off += h.length) {
    h.copy(out, off);
    h = createHash("sha256").update(h).digest();
  }
  return out;
}

export const fileName = (slot: number): string => `f${String(slot).padStart(3, "0")}`;

export interface WriterReport {
  gens: number[];
  writes: number;
  verifies: number;
}

/** Check every file under `dir` against a writer's manifest; returns the names that differ. */
export function wrongFiles(dir: string, report: WriterReport): string[] {
  const bad: string[] = [];
  report.gens.forEach((gen, slot) => {
    if (gen < 0) return;
    const p = join(dir, fileName(slot));
    if (!existsSync(p) || !readFileSync(p).equals(fileContent(slot, gen))) bad.push(fileName(slot));
  });
  return bad;
}

/** Start the writer on `dir`; `stop()` asks it to stop and resolves with its report (rejects when it failed). */
export function startWriter(dir: string, env: NodeJS.ProcessEnv): { child: ChildProcess; stop: () => Promise<WriterReport>; failed: () => string | undefined } {
  const stopFile = join(dir, ".stop-writer");
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), dir, stopFile], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let exit: number | null | undefined;
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const done = new Promise<number>((r) => child.on("exit", (c) => r((exit = c ?? 1))));
  return {
    child,
    failed: () => (exit !== undefined && exit !== 0 ? `writer exited ${exit}: ${err}` : undefined),
    stop: async () => {
      closeSync(openSync(stopFile, "w"));
      const code = await done;
      if (code !== 0) throw new Error(`writer exited ${code}: ${err}${out}`);
      return JSON.parse(out) as WriterReport;
    },
  };
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

function runWriter(dir: string, stopFile: string): void {
  const gens = new Array<number>(SLOTS).fill(-1);
  let writes = 0;
  let verifies = 0;
  for (let i = 0; !existsSync(stopFile); i++) {
    const slot = i % SLOTS;
    const gen = gens[slot]! + 1;
    const tmp = join(dir, `${fileName(slot)}.tmp`);
    const fd = openSync(tmp, "w");
    writeSync(fd, fileContent(slot, gen));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(dir, fileName(slot)));
    gens[slot] = gen;
    writes++;
    // Verify one file from the device: the one just written, or an older one.
    const check = (slot * 7 + i) % SLOTS;
    if (gens[check]! >= 0) {
      const r = spawnSync("dd", [`if=${join(dir, fileName(check))}`, "iflag=direct", "bs=64K", "status=none"], { maxBuffer: 4 * FILE_BYTES });
      if (r.status !== 0 || !r.stdout.equals(fileContent(check, gens[check]!))) {
        process.stderr.write(`${fileName(check)} gen ${gens[check]}: ${r.status !== 0 ? `dd failed: ${r.stderr}` : "wrong bytes read back"}\n`);
        process.exit(1);
      }
      verifies++;
    }
    // A steady client rather than a flood: the machine's cores are shared.
    Atomics.wait(PAUSE, 0, 0, 10);
  }
  process.stdout.write(JSON.stringify({ gens, writes, verifies } satisfies WriterReport));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) runWriter(process.argv[2]!, process.argv[3]!);
