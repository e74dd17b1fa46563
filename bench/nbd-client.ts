/**
 * NBD client benchmark (issue 18, "Speed"): ulvm's NBD client (the one a
 * remote PV goes through, src/nbd/client.ts) against nbdcopy (libnbd) on the
 * same nbdkit file export over loopback TCP, plain and with TLS-PSK
 * required, in the same run.
 *
 * Each repetition, for each export (plain, TLS):
 *   - read: nbdcopy EXPORT null: (its defaults: multi-conn, many requests
 *     in flight) vs ulvm's client reading the whole export in 1 MiB requests,
 *     16 in flight, on its one connection;
 *   - write: nbdcopy FILE EXPORT (the source file in the page cache) vs ulvm's
 *     client writing the same bytes from memory, 1 MiB requests, 16 in
 *     flight, then a flush (nbdcopy flushes at the end too).
 * nbdkit's backing file is on /var/tmp (page cache; nobody syncs).
 * Prints MB/s (median) and the per-repetition ratios' medians:
 *   NBDCLIENT_READ_RATIO / NBDCLIENT_WRITE_RATIO (ulvm / nbdcopy, plain),
 *   NBDCLIENT_TLS_READ_RATIO / NBDCLIENT_TLS_WRITE_RATIO (ulvm TLS / ulvm plain).
 *
 * And a mirror across hosts: two raid1 LVs of --mirror-mib in one daemon, one
 * with both images on local files, one with image 1 on a PV on a third
 * nbdkit (plain, loopback TCP); each written then read whole through the
 * daemon's NBD export (ulvm's client, 1 MiB x16, a flush after the writes):
 *   NBDCLIENT_MIRROR_WRITE_RATIO / NBDCLIENT_MIRROR_READ_RATIO (remote leg / both local).
 *
 *   node dist/bench/nbd-client.js [--mib N=512] [--mirror-mib M=256] [--reps R=3]
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NbdClientDevice } from "../src/nbd/client.js";
import { Lab } from "../test/helpers/lab.js";
import { makeFile, median } from "./bench-files.js";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const MIB = opt("mib", 512);
const REPS = opt("reps", 3);
const MIRROR_MIB = opt("mirror-mib", 256);
const MiB = 1 << 20;
const QD = 16;

async function startNbdkit(dir: string, name: string, port: number, file: string, tlsArgs: string[]): Promise<ChildProcess> {
  const pidFile = join(dir, `${name}.pid`);
  const child = spawn("nbdkit", ["-f", "--exit-with-parent", "-P", pidFile, "-i", "127.0.0.1", "-p", String(port), ...tlsArgs, "file", file], { stdio: "ignore" });
  for (let i = 0; i < 500 && !(existsSync(pidFile) && readFileSync(pidFile, "utf8").endsWith("\n")); i++) await new Promise((r) => setTimeout(r, 10));
  if (!existsSync(pidFile)) throw new Error(`nbdkit ${name} did not start`);
  return child;
}

function timed(cmd: string, args: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Whole export in 1 MiB requests, QD in flight; returns seconds. */
async function ulvmPass(uri: string, write: boolean, data: Buffer): Promise<number> {
  const dev = await NbdClientDevice.open(uri);
  if (dev.sizeBytes > data.length) throw new Error(`${uri}: export larger than the data`);
  try {
    const t0 = process.hrtime.bigint();
    let next = 0;
    const worker = async (): Promise<void> => {
      const buf = Buffer.alloc(MiB);
      while (next < dev.sizeBytes) {
        const off = next;
        next += MiB;
        if (write) await dev.write(off, data.subarray(off, off + MiB));
        else await dev.read(off, buf);
      }
    };
    await Promise.all(Array.from({ length: QD }, worker));
    if (write) await dev.flush();
    return Number(process.hrtime.bigint() - t0) / 1e9;
  } finally {
    await dev.close();
  }
}

/**
 * The same raid1 LV twice in one daemon (lab): vgl/m on two local files, vgr/m
 * with image 1 on an NBD PV (`remoteUri`). Returns the two exports' URIs.
 */
function mirrors(lab: Lab, remoteUri: string): { local: string; remote: string } {
  const must = (...args: string[]): void => {
    const r = lab.ulvm(...args);
    if (r.code !== 0) throw new Error(`ulvm ${args.join(" ")}: ${r.stderr}`);
  };
  const disks = ["l1", "l2", "l3"].map((n) => lab.addDisk(n, MIRROR_MIB + 16));
  lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}", "${remoteUri}" ]\n}\nactivation {\n\tdevice_path = 0\n}\n`);
  must("pvcreate", "-q", ...disks, remoteUri);
  must("vgcreate", "-q", "vgl", disks[0]!, disks[1]!);
  must("vgcreate", "-q", "vgr", disks[2]!, remoteUri);
  must("lvcreate", "-q", "--type", "raid1", "-m1", "--nosync", "-L", `${MIRROR_MIB}M`, "-n", "m", "vgl");
  must("lvcreate", "-q", "--type", "raid1", "-m1", "--nosync", "-L", `${MIRROR_MIB}M`, "-n", "m", "vgr", disks[2]!, remoteUri);
  const sock = join(lab.dir, "run", "nbd.sock");
  return { local: `nbd+unix:///vgl/m?socket=${sock}`, remote: `nbd+unix:///vgr/m?socket=${sock}` };
}

async function main(): Promise<void> {
  const dir = mkdtempSync("/var/tmp/ulvm-bench-nbdclient-");
  const children: ChildProcess[] = [];
  let lab: Lab | undefined;
  try {
    const file = join(dir, "export.img");
    const src = join(dir, "src.img");
    makeFile(file, MIB);
    makeFile(src, MIB);
    const data = readFileSync(src);
    const psk = join(dir, "keys.psk");
    writeFileSync(psk, `alice:${"6b".repeat(32)}\n`, { mode: 0o600 });
    const port = 30000 + (process.pid % 20000);
    children.push(await startNbdkit(dir, "plain", port, file, []));
    children.push(await startNbdkit(dir, "tls", port + 1, file, ["--tls=require", `--tls-psk=${psk}`]));
    const remotePv = join(dir, "remote-pv.img");
    makeFile(remotePv, MIRROR_MIB + 16);
    children.push(await startNbdkit(dir, "remote-pv", port + 2, remotePv, []));
    lab = new Lab("ulvm-bench-nbdmirror-");
    const mir = mirrors(lab, `nbd://127.0.0.1:${port + 2}/`);
    const mirData = data.subarray(0, MIRROR_MIB * MiB);
    const mirMb = (s: number): number => (MIRROR_MIB * MiB) / 1e6 / s;
    const plain = `nbd://127.0.0.1:${port}/`;
    const tls = `nbds://alice@127.0.0.1:${port + 1}/?tls-psk-file=${psk}`;
    const mb = (s: number): number => (MIB * MiB) / 1e6 / s;
    const rows = { copyRead: [] as number[], copyWrite: [] as number[], read: [] as number[], write: [] as number[], tlsRead: [] as number[], tlsWrite: [] as number[] };
    const ratios = { read: [] as number[], write: [] as number[], tlsRead: [] as number[], tlsWrite: [] as number[], mirWrite: [] as number[], mirRead: [] as number[] };
    const mirRows = { localWrite: [] as number[], remoteWrite: [] as number[], localRead: [] as number[], remoteRead: [] as number[] };
    for (let rep = 0; rep < REPS; rep++) {
      const copyRead = mb(timed("nbdcopy", [plain, "null:"]));
      const read = mb(await ulvmPass(plain, false, data));
      const copyWrite = mb(timed("nbdcopy", [src, plain]));
      const write = mb(await ulvmPass(plain, true, data));
      const tlsRead = mb(await ulvmPass(tls, false, data));
      const tlsWrite = mb(await ulvmPass(tls, true, data));
      rows.copyRead.push(copyRead);
      rows.copyWrite.push(copyWrite);
      rows.read.push(read);
      rows.write.push(write);
      rows.tlsRead.push(tlsRead);
      rows.tlsWrite.push(tlsWrite);
      ratios.read.push(read / copyRead);
      ratios.write.push(write / copyWrite);
      ratios.tlsRead.push(tlsRead / read);
      ratios.tlsWrite.push(tlsWrite / write);
      const localWrite = mirMb(await ulvmPass(mir.local, true, mirData));
      const remoteWrite = mirMb(await ulvmPass(mir.remote, true, mirData));
      const localRead = mirMb(await ulvmPass(mir.local, false, mirData));
      const remoteRead = mirMb(await ulvmPass(mir.remote, false, mirData));
      mirRows.localWrite.push(localWrite);
      mirRows.remoteWrite.push(remoteWrite);
      mirRows.localRead.push(localRead);
      mirRows.remoteRead.push(remoteRead);
      ratios.mirWrite.push(remoteWrite / localWrite);
      ratios.mirRead.push(remoteRead / localRead);
    }
    console.log(`NBD client bench: nbdkit file export of ${MIB} MiB on loopback TCP, ${REPS} repetitions, MB/s (median)`);
    const row = (label: string, xs: number[]): void => console.log(`${label.padEnd(44)} ${median(xs).toFixed(0).padStart(8)}`);
    row("nbdcopy export -> null:", rows.copyRead);
    row("ulvm client read (1 MiB x16)", rows.read);
    row("ulvm client read over TLS-PSK", rows.tlsRead);
    row("nbdcopy file -> export", rows.copyWrite);
    row("ulvm client write (1 MiB x16) + flush", rows.write);
    row("ulvm client write over TLS-PSK", rows.tlsWrite);
    console.log(`raid1 LV of ${MIRROR_MIB} MiB through the daemon's export (1 MiB x16), MB/s (median)`);
    row("write, both legs local", mirRows.localWrite);
    row("write, one leg over loopback TCP", mirRows.remoteWrite);
    row("read, both legs local", mirRows.localRead);
    row("read, one leg over loopback TCP", mirRows.remoteRead);
    const out = (key: string, xs: number[]): void => console.log(`${key} ${median(xs).toFixed(2)} ${Math.min(...xs).toFixed(2)} ${Math.max(...xs).toFixed(2)}`);
    out("NBDCLIENT_READ_RATIO", ratios.read);
    out("NBDCLIENT_WRITE_RATIO", ratios.write);
    out("NBDCLIENT_TLS_READ_RATIO", ratios.tlsRead);
    out("NBDCLIENT_TLS_WRITE_RATIO", ratios.tlsWrite);
    out("NBDCLIENT_MIRROR_WRITE_RATIO", ratios.mirWrite);
    out("NBDCLIENT_MIRROR_READ_RATIO", ratios.mirRead);
  } finally {
    // The daemon first: its remote PV's server goes next.
    lab?.cleanup();
    for (const c of children) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`nbd-client bench: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
