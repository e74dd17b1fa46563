import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, devicePathUnavailable, which } from "../../helpers/lab.js";
import { SLOTS, startWriter, wrongFiles } from "../../helpers/fs-writer.js";
import { listenerUrl, sample } from "../../helpers/status-http.js";
import { NetnsPeer, netnsUnavailable, waitPidFile } from "../../helpers/netns.js";
import { MiB, PE_START_BYTES, EXTENT_BYTES, bitmapSetBits, pwrite, sameBytes, superblockAt, topStatus, waitRaidHealth } from "../../helpers/raid1.js";
import { encodeDmRaidSuperblock, isPositionFailed, withPositionFailed } from "../../../src/mapper/raid/dm-raid-superblock.js";

/**
 * A raid1 LV with one image on another "host" (issue 18): the remote PV is a
 * file served by nbdkit inside a network namespace, reached over a veth
 * pair; ulvm's daemon runs in the test's namespace. `ip link set down` is a
 * partition: the remote's requests stall, miss `devices { nbd_timeout_s }`,
 * and its leg fails while the client's writes go on without an error. Once
 * the cable is back, `vgextend --restoremissing` + `lvchange --refresh`
 * recover only the regions the write-intent bitmap marked meanwhile.
 */
const skip = netnsUnavailable() ?? (which("nbdkit") ? undefined : "nbdkit not installed") ?? (which("qemu-io") ? undefined : "qemu-io not installed (apt-get install qemu-utils)");

const LV_MIB = 64;
const PORT = 10809;

interface Remote {
  readonly peer: NetnsPeer;
  readonly image: string;
  readonly uri: string;
  /** nbdkit's log filter's file (a line per request, with its connection), when asked for. */
  readonly requestLog: string | undefined;
  /** SIGKILL the server (its connections reset), and start it again on the same address. */
  kill(): Promise<void>;
  restart(): Promise<void>;
}

/** nbdkit's file plugin serving remote/pv.img inside the peer namespace, with TLS required when `tls`, its requests logged when `log`. */
async function startRemote(lab: Lab, tls: boolean, opts: { log?: boolean } = {}): Promise<Remote> {
  const peer = NetnsPeer.create(lab);
  mkdirSync(join(lab.dir, "remote"));
  const image = join(lab.dir, "remote", "pv.img");
  closeSync(openSync(image, "w"));
  truncateSync(image, 128 * MiB);
  const pidFile = join(lab.dir, "remote", "nbdkit.pid");
  const psk = join(lab.dir, "remote", "keys.psk");
  writeFileSync(psk, `alice:${"5a".repeat(32)}\n`, { mode: 0o600 });
  const args = ["nbdkit", "-f", "--exit-with-parent", "-P", pidFile, "-p", String(PORT), "-i", peer.peerAddr];
  if (tls) args.push("--tls=require", `--tls-psk=${psk}`);
  const requestLog = opts.log ? join(lab.dir, "remote", "requests.log") : undefined;
  if (requestLog) args.push("--filter=log");
  const pluginArgs = ["file", image, ...(requestLog ? [`logfile=${requestLog}`] : [])];
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    rmSync(pidFile, { force: true });
    const c = peer.spawn([...args, ...pluginArgs]);
    child = c;
    await waitPidFile(pidFile, c);
  };
  const kill = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once("exit", r));
    c.kill("SIGKILL");
    await gone;
  };
  lab.onCleanup(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  await start();
  const uri = tls ? `nbds://alice@${peer.peerAddr}:${PORT}/?tls-psk-file=${psk}` : `nbd://${peer.peerAddr}:${PORT}/`;
  return { peer, image, uri, requestLog, kill, restart: start };
}

/** A VG on a local disk and the remote PV, a raid1 LV with image 0 local and image 1 remote, written once and in sync with a clean bitmap. */
async function raid1AcrossHosts(lab: Lab, remote: Remote, opts: { devicePath?: boolean; extraConfig?: string } = {}): Promise<{ local: string; io: (...cmds: string[]) => void; regionBytes: number }> {
  const local = lab.addDisk("d1", 128);
  lab.writeConfig(
    `devices {\n\tscan = [ "${join(lab.dir, "disks")}", "${remote.uri}" ]\n\tnbd_timeout_s = 3\n}\nactivation {\n\tdevice_path = ${opts.devicePath ? 1 : 0}\n}\n${opts.extraConfig ?? ""}`,
  );
  lab.ok("pvcreate", local, remote.uri);
  lab.ok("vgcreate", "vg", local, remote.uri);
  lab.ok("lvcreate", "--type", "raid1", "-m1", "-L", `${LV_MIB}M`, "-n", "r", "vg", local, remote.uri);
  const devices = lab.ok("lvs", "--noheadings", "-o", "devices", "vg/r_rimage_1").trim();
  assert.ok(devices.startsWith(remote.uri.replace(/\?.*/, "")), `image 1 is on the remote PV: ${devices}`);
  const regionBytes = Number(lab.ok("lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "region_size", "vg/r").trim());
  const nbd = `nbd+unix:///vg/r?socket=${join(lab.dir, "run", "nbd.sock")}`;
  const io = (...cmds: string[]): void => {
    const r = lab.run("qemu-io", ["-f", "raw", ...cmds.flatMap((c) => ["-c", c]), nbd]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.doesNotMatch(r.stdout + r.stderr, /error|failed/i);
  };
  io(`write -P 1 0 ${LV_MIB}M`);
  assert.equal((await waitRaidHealth(lab, "r", /^AA$/)).raid?.health, "AA");
  const regions = (LV_MIB * MiB) / regionBytes;
  for (let i = 0; i < 200 && bitmapSetBits(local, regions) > 0; i++) lab.run("sleep", ["0.05"]);
  assert.equal(bitmapSetBits(local, regions), 0, "the write-intent bitmap on disk is clean");
  return { local, io, regionBytes };
}

/** qemu-io in the background: its exit code and output once it ends. */
function ioAsync(lab: Lab, cmds: string[]): Promise<{ code: number; out: string }> {
  const nbd = `nbd+unix:///vg/r?socket=${join(lab.dir, "run", "nbd.sock")}`;
  const child = spawn("qemu-io", ["-f", "raw", ...cmds.flatMap((c) => ["-c", c]), nbd], { env: lab.env });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code: code ?? 128, out })));
}

/** Where a raid1 image's data starts on its PV (its rmeta is the PV's first extent, its data from the next). */
const IMAGE_DATA = PE_START_BYTES + EXTENT_BYTES;

const variants = [
  { tls: true, fault: "partition" },
  { tls: false, fault: "partition" },
  { tls: true, fault: "server killed" },
] as const;
for (const { tls, fault } of variants) {
  const what = fault === "partition" ? "a partition (link down) fails the leg within nbd_timeout_s" : "the server killed fails the leg";
  test(`raid1 with a leg on a remote PV (${tls ? "nbds://, TLS-PSK required" : "nbd://"}): ${what} with no client error; back, only the regions written meanwhile are resynced`, { skip }, async () => {
    const lab = new Lab("ulvm-remoteleg-");
    try {
      const remote = await startRemote(lab, tls);
      const { local, io, regionBytes } = await raid1AcrossHosts(lab, remote);

      // A client writes through the partition: the first write goes to both legs, the cable is
      // pulled while the client sleeps, and the next writes stall on the remote leg until it fails.
      const writing = ioAsync(lab, ["write -P 2 8M 1M", "sleep 1500", "write -P 3 20M 1M", `write -P 4 ${40 * MiB - 512 * 1024} 1M`]);
      await new Promise((r) => setTimeout(r, 500));
      if (fault === "partition") remote.peer.down();
      else await remote.kill();
      const done = await writing;
      assert.equal(done.code, 0, done.out);
      assert.doesNotMatch(done.out, /error|failed/i, "the client saw no error");
      // Acknowledged, so the failure is on the survivor's rmeta already.
      assert.ok(isPositionFailed(superblockAt(local).failedDevices, 1), "rmeta_0 records slot 1 failed before the ack");
      const st = await topStatus(lab, "r");
      assert.match(st.raid?.health ?? "", /^A[D-]$/, `the remote image is failed: ${st.raid?.health}`);
      const regions = (LV_MIB * MiB) / regionBytes;
      const dirty = bitmapSetBits(local, regions);
      // The regions of the three writes (the last straddles a region boundary).
      const written = [
        [8 * MiB, MiB],
        [20 * MiB, MiB],
        [40 * MiB - 512 * 1024, MiB],
      ];
      const expected = new Set<number>();
      for (const [off, len] of written) for (let r = Math.floor(off! / regionBytes); r <= Math.floor((off! + len! - 1) / regionBytes); r++) expected.add(r);
      assert.equal(dirty, expected.size, "the bitmap on disk marks the regions written while the leg was away");
      // A partition drops packets and nothing resets: the leg failed because its requests missed nbd_timeout_s.
      if (fault === "partition") assert.match(readFileSync(join(lab.dir, "run", "ulvmd.log"), "utf8"), /timed out after 3 s/);

      // While partitioned, the LV reads the survivor's bytes.
      io("read -P 3 20M 1M", "read -P 1 0 8M");

      // The cable (or the server) is back: restore, refresh, recover.
      if (fault === "partition") remote.peer.up();
      else await remote.restart();
      const restore = lab.ulvm("vgextend", "--restoremissing", "vg", remote.uri);
      assert.equal(restore.code, 0, restore.stderr);
      const refreshed = lab.ulvm("lvchange", "--refresh", "vg/r");
      assert.equal(refreshed.code, 0, refreshed.stderr);
      const after = await waitRaidHealth(lab, "r", /^AA$/);
      assert.equal(after.raid?.health, "AA", "the remote image is back and in sync");
      const copiedBytes = (after.sync?.copiedRegions ?? 0) * regionBytes;
      assert.equal(copiedBytes, expected.size * regionBytes, `only the regions written meanwhile were copied (${copiedBytes} bytes, ${3 * MiB} written)`);

      lab.ok("lvchange", "-an", "vg/r");
      assert.ok(sameBytes(local, IMAGE_DATA, remote.image, IMAGE_DATA, LV_MIB * MiB), "the legs are identical");
      assert.equal(superblockAt(local).failedDevices, 0n, "no failed bit after the recovery");
      assert.equal(superblockAt(remote.image).failedDevices, 0n);
    } finally {
      lab.cleanup();
    }
  });
}

test("raid1 split brain: the remote leg, written by another side while partitioned, comes back and is never taken as current; it is recovered in full from the survivor", { skip }, async () => {
  const lab = new Lab("ulvm-splitbrain-");
  try {
    const remote = await startRemote(lab, false);
    const { local, io, regionBytes } = await raid1AcrossHosts(lab, remote);
    remote.peer.down();
    // Our side writes (the remote leg fails on it, recorded on the survivor's rmeta before the ack).
    io("write -P 2 8M 1M");
    assert.ok(isPositionFailed(superblockAt(local).failedDevices, 1), "rmeta_0 records slot 1 failed");
    const survivorEvents = superblockAt(local).eventCount;

    // The other side of the partition goes on with the remote image alone: it writes data (in a region our
    // side also wrote, and in one it did not), and its own superblock, as an activation there without our
    // leg leaves it: our slot marked failed, its events raised past ours (stand-in: the test writes the bytes
    // such an activation writes, since a second ulvm over the same VG would also fork the VG metadata).
    pwrite(remote.image, IMAGE_DATA + 8 * MiB, Buffer.alloc(MiB, 0x99));
    pwrite(remote.image, IMAGE_DATA + 30 * MiB, Buffer.alloc(MiB, 0x99));
    const theirs = superblockAt(remote.image);
    pwrite(remote.image, PE_START_BYTES, encodeDmRaidSuperblock({ ...theirs, eventCount: survivorEvents + 100n, failedDevices: withPositionFailed(0n, 0, true) }, 512));

    remote.peer.up();
    const restore = lab.ulvm("vgextend", "--restoremissing", "vg", remote.uri);
    assert.equal(restore.code, 0, restore.stderr);
    assert.equal(lab.ulvm("lvchange", "--refresh", "vg/r").code, 0);
    const after = await waitRaidHealth(lab, "r", /^AA$/);
    assert.equal(after.raid?.health, "AA");
    assert.equal((after.sync?.copiedRegions ?? 0) * regionBytes, LV_MIB * MiB, "the returning leg was recovered in full, not from the bitmap");
    // The LV reads the survivor's bytes everywhere.
    io("read -P 2 8M 1M", "read -P 1 0 8M", `read -P 1 9M ${LV_MIB - 9}M`);

    lab.ok("lvchange", "-an", "vg/r");
    assert.ok(sameBytes(local, IMAGE_DATA, remote.image, IMAGE_DATA, LV_MIB * MiB), "the remote image ends equal to the survivor");
    assert.equal(superblockAt(remote.image).failedDevices, 0n);
    assert.equal(superblockAt(local).failedDevices, 0n);
  } finally {
    lab.cleanup();
  }
});

/**
 * Reads of the remote image's data that nbdkit logged (its log filter) from byte `mark` of the log
 * on; label and metadata reads (the PV check, commands) are below IMAGE_DATA and not counted.
 */
function remoteReads(remote: Remote, mark: number): number {
  return readFileSync(remote.requestLog!, "utf8")
    .slice(mark)
    .split("\n")
    .filter((l) => {
      const m = / Read id=\d+ offset=0x([0-9a-f]+) /.exec(l);
      return m !== null && parseInt(m[1]!, 16) >= IMAGE_DATA;
    }).length;
}

test("raid1 with a leg on a remote PV: lvchange --writemostly on the remote leg keeps reads on the local leg (counted at the remote nbdkit)", { skip }, async () => {
  const lab = new Lab("ulvm-writemostly-");
  try {
    const remote = await startRemote(lab, false, { log: true });
    const { io } = await raid1AcrossHosts(lab, remote);
    const readAll = (): void => {
      for (let i = 0; i < 4; i++) io(`read -P 1 0 ${LV_MIB}M`);
    };
    // Without write-mostly the read balancing sends some reads across the network.
    let mark = readFileSync(remote.requestLog!, "utf8").length;
    readAll();
    const before = remoteReads(remote, mark);
    assert.ok(before > 0, "reads are balanced onto the remote leg while it is an ordinary leg");

    const pv = remote.uri;
    const r = lab.ulvm("lvchange", "--writemostly", `${pv}:y`, "vg/r");
    assert.equal(r.code, 0, r.stderr);
    assert.match(lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name,lv_attr", "vg"), /r_rimage_1\]?\s+\S{8}w/, "the remote image shows write-mostly (attr 9 = w)");
    mark = readFileSync(remote.requestLog!, "utf8").length;
    readAll();
    io(`write -P 5 0 1M`);
    io("read -P 5 0 1M");
    const after = remoteReads(remote, mark);
    assert.equal(after, 0, `no read reaches the remote leg once it is write-mostly (${before} before)`);
    assert.ok(readFileSync(remote.requestLog!, "utf8").slice(mark).includes(" Write id="), "writes still reach it");
  } finally {
    lab.cleanup();
  }
});

/** Where an LV's first extent is on a PV: `lvs -o seg_pe_ranges` ("PV:first-last"). */
function firstPe(lab: Lab, lv: string): number {
  const m = /:(\d+)-\d+/.exec(lab.ok("lvs", "-a", "--noheadings", "-o", "seg_pe_ranges", `vg/${lv}`));
  assert.ok(m, `the PE range of ${lv}`);
  return Number(m[1]);
}

async function waitHealth(lab: Lab, lv: string, re: RegExp, ms: number): Promise<string> {
  let h = "";
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    h = (await topStatus(lab, lv)).raid?.health ?? "";
    if (re.test(h)) break;
  }
  return h;
}

async function lvMetric(lab: Lab, name: string, lv: string): Promise<number> {
  const text = await (await fetch(listenerUrl(lab) + "metrics")).text();
  return sample(text, name, { vg: "vg", lv }) ?? NaN;
}

/** The filesystem's LV (beside vg/r, on the same 128 MiB PVs). */
const FS_MIB = 32;
const clientsSkip = skip ?? devicePathUnavailable() ?? (which("fio") ? undefined : "fio not installed") ?? (which("mkfs.ext4") ? undefined : "mkfs.ext4 not installed");

test("raid1 across hosts under fio verify and a mounted ext4 being written: the link goes down, the remote nbdkit is killed and restarted; no client error, only what was written meanwhile is resynced, the legs end identical", { skip: clientsSkip, timeout: 300_000 }, async () => {
  const lab = new Lab("ulvm-remoteclients-");
  let writer: ReturnType<typeof startWriter> | undefined;
  let fio: ReturnType<typeof spawn> | undefined;
  try {
    const remote = await startRemote(lab, true);
    const { local, regionBytes } = await raid1AcrossHosts(lab, remote, { devicePath: true, extraConfig: 'metrics {\n\tlisten = "127.0.0.1:0"\n}\n' });
    // A second raid1 LV across the hosts, for the filesystem.
    lab.ok("lvcreate", "--type", "raid1", "-m1", "-L", `${FS_MIB}M`, "-n", "fs", "vg", local, remote.uri);
    assert.equal(await waitHealth(lab, "fs", /^AA$/, 60_000), "AA");
    const regions = (LV_MIB * MiB) / regionBytes;
    const fsRegions = (FS_MIB * MiB) / regionBytes;
    const fsRmetaPe = firstPe(lab, "fs_rmeta_0");
    for (let i = 0; i < 200 && bitmapSetBits(local, fsRegions, fsRmetaPe) > 0; i++) await new Promise((r) => setTimeout(r, 50));
    const dev = join(lab.dir, "dev", "vg", "fs");
    const mnt = join(lab.dir, "mnt");
    mkdirSync(mnt);
    assert.equal(lab.run("mkfs.ext4", ["-q", dev]).code, 0);
    assert.equal(lab.run("mount", [dev, mnt]).code, 0);
    lab.onCleanup(() => void lab.run("umount", ["-l", mnt]));
    writer = startWriter(mnt, lab.env);

    // fio on vg/r through the daemon's NBD export: random writes verified as they go.
    let fioOut = "";
    fio = spawn("fio", ["--name=remote", "--ioengine=nbd", `--uri=nbd+unix:///vg/r?socket=${join(lab.dir, "run", "nbd.sock")}`, "--rw=randwrite", "--bsrange=4k-64k", "--iodepth=4", `--size=${32 * MiB}`, "--verify=crc32c", "--verify_fatal=1", "--verify_backlog=32", "--fsync=16", "--time_based", "--runtime=600", "--output-format=terse"], { env: lab.env });
    fio.stdout!.on("data", (d: Buffer) => (fioOut += d.toString()));
    fio.stderr!.on("data", (d: Buffer) => (fioOut += d.toString()));
    const fioDone = new Promise<void>((r) => fio!.on("close", () => r()));
    await new Promise((r) => setTimeout(r, 2000));

    // The cable is pulled: both remote images fail within nbd_timeout_s (3 s) of their next write.
    remote.peer.down();
    assert.match(await waitHealth(lab, "r", /^A[D-]$/, 30_000), /^A[D-]$/, "vg/r's remote image failed");
    assert.match(await waitHealth(lab, "fs", /^A[D-]$/, 30_000), /^A[D-]$/, "vg/fs's remote image failed");
    const writtenAtFailure = { r: await lvMetric(lab, "ulvm_lv_written_bytes_total", "r"), fs: await lvMetric(lab, "ulvm_lv_written_bytes_total", "fs") };
    await new Promise((r) => setTimeout(r, 2000));
    // While away, the server is killed too; the cable comes back and the server starts again.
    await remote.kill();
    remote.peer.up();
    await remote.restart();
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(writer.failed(), undefined, "the filesystem's client saw no error");

    const dirty = { r: bitmapSetBits(local, regions), fs: bitmapSetBits(local, fsRegions, fsRmetaPe) };
    const away = { r: (await lvMetric(lab, "ulvm_lv_written_bytes_total", "r")) - writtenAtFailure.r, fs: (await lvMetric(lab, "ulvm_lv_written_bytes_total", "fs")) - writtenAtFailure.fs };
    const restore = lab.ulvm("vgextend", "--restoremissing", "vg", remote.uri);
    assert.equal(restore.code, 0, restore.stderr);
    const resynced: Record<string, number> = {};
    for (const lv of ["r", "fs"] as const) {
      const refreshed = lab.ulvm("lvchange", "--refresh", `vg/${lv}`);
      assert.equal(refreshed.code, 0, refreshed.stderr);
      assert.equal(await waitHealth(lab, lv, /^AA$/, 60_000), "AA", `vg/${lv}'s remote image is back in sync`);
      const st = await topStatus(lab, lv);
      resynced[lv] = (st.sync?.copiedRegions ?? 0) * regionBytes;
    }
    // The clients go on a little on the repaired legs, then stop.
    await new Promise((r) => setTimeout(r, 1000));
    fio.kill("SIGTERM");
    await fioDone;
    fio = undefined;
    // Ended by SIGTERM (time based): its terse line's fifth field is the job's error, 0 when every I/O and verify passed.
    const terse = /^3;fio-[^;]*;remote;\d+;(\d+);/m.exec(fioOut);
    assert.ok(terse, `fio's result line: ${fioOut.slice(0, 2000)}`);
    assert.equal(terse[1], "0", `fio's error: ${fioOut.slice(0, 2000)}`);
    assert.doesNotMatch(fioOut, /verify: bad|verify failed|bad magic|io_u error/i, "fio saw no error and no corrupt block");
    const report = await writer.stop();
    writer = undefined;
    assert.ok(report.writes > SLOTS, `the filesystem's client wrote throughout (${report.writes} writes)`);
    assert.deepEqual(wrongFiles(mnt, report), []);
    assert.equal(lab.run("umount", [mnt]).code, 0);
    assert.equal(lab.run("e2fsck", ["-fn", dev]).code, 0, "the filesystem is clean");

    // Figures: bytes written while the leg was away, regions marked, bytes copied back.
    console.log(`# remote-leg clients: vg/r written while away ${away.r} B, dirty regions ${dirty.r} (${dirty.r * regionBytes} B), resynced ${resynced.r} B; vg/fs written while away ${away.fs} B, dirty ${dirty.fs} (${dirty.fs * regionBytes} B), resynced ${resynced.fs} B; region ${regionBytes} B, LVs ${LV_MIB} and ${FS_MIB} MiB`);
    for (const lv of ["r", "fs"] as const) {
      assert.equal(resynced[lv], dirty[lv] * regionBytes, `vg/${lv}: the regions marked while away were copied, no more`);
      assert.ok(resynced[lv]! < (lv === "r" ? LV_MIB : FS_MIB) * MiB, `vg/${lv}: a partial resync, not a full one`);
    }

    // Both deactivate: the restarted nbdkit shares only the network namespace, so the ext4 mounted when it
    // started is not held by a copy of the mounts (test/helpers/netns.ts).
    lab.ok("vgchange", "-an", "vg");
    for (const lv of ["r", "fs"]) {
      const at = PE_START_BYTES + (firstPe(lab, `${lv}_rimage_0`) * EXTENT_BYTES);
      const atRemote = PE_START_BYTES + (firstPe(lab, `${lv}_rimage_1`) * EXTENT_BYTES);
      assert.ok(sameBytes(local, at, remote.image, atRemote, (lv === "r" ? LV_MIB : FS_MIB) * MiB), `vg/${lv}: the legs are identical`);
    }
  } finally {
    if (fio) fio.kill("SIGKILL");
    if (writer) writer.child.kill("SIGKILL");
    lab.cleanup();
  }
});

test("raid1 across hosts with 10% of the TCP packets lost both ways (nftables, netem's loss; this kernel has no netem): fio verify sees no error, the legs end identical", { skip: skip ?? (which("fio") ? undefined : "fio not installed") ?? (which("nft") ? undefined : "nft not installed (apt-get install nftables)"), timeout: 180_000 }, async () => {
  const lab = new Lab("ulvm-remoteloss-");
  try {
    const remote = await startRemote(lab, false);
    const { local, regionBytes } = await raid1AcrossHosts(lab, remote);
    remote.peer.lose(10);
    const fio = lab.run("fio", ["--name=lossy", "--ioengine=nbd", `--uri=nbd+unix:///vg/r?socket=${join(lab.dir, "run", "nbd.sock")}`, "--rw=randwrite", "--bsrange=4k-64k", "--iodepth=4", `--size=${32 * MiB}`, "--verify=crc32c", "--verify_fatal=1", "--verify_backlog=32", "--fsync=16", "--time_based", "--runtime=8", "--output-format=terse"]);
    const lost = remote.peer.lostPackets();
    remote.peer.noLoss();
    const terse = /^3;fio-[^;]*;lossy;\d+;(\d+);/m.exec(fio.stdout);
    assert.ok(terse, `fio's result line: ${fio.stdout.slice(0, 2000)}${fio.stderr}`);
    assert.equal(terse[1], "0", `fio's error: ${fio.stdout.slice(0, 2000)}`);
    assert.doesNotMatch(fio.stdout + fio.stderr, /verify: bad|verify failed|bad magic|io_u error/i, "fio saw no error and no corrupt block");
    assert.ok(lost > 0, "packets were dropped");
    // Loss alone may or may not cost the remote leg (a request stalled past nbd_timeout_s fails it); either way it converges.
    const health = (await topStatus(lab, "r")).raid?.health ?? "";
    if (health !== "AA") {
      // The PV may or may not have been marked missing by then: --restoremissing is refused when it is not.
      lab.ulvm("vgextend", "--restoremissing", "vg", remote.uri);
      lab.ok("lvchange", "--refresh", "vg/r");
      assert.equal(await waitHealth(lab, "r", /^AA$/, 60_000), "AA");
    }
    console.log(`# remote-leg loss: ${lost} TCP packets dropped in 8 s of fio; health after the loss ${health}; region ${regionBytes} B`);
    lab.ok("lvchange", "-an", "vg/r");
    const at = PE_START_BYTES + firstPe(lab, "r_rimage_0") * EXTENT_BYTES;
    const atRemote = PE_START_BYTES + firstPe(lab, "r_rimage_1") * EXTENT_BYTES;
    assert.ok(sameBytes(local, at, remote.image, atRemote, LV_MIB * MiB), "the legs are identical");
  } finally {
    lab.cleanup();
  }
});
