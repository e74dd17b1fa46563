import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, rmSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Figures, IterationContext, Scenario } from "../lib/scenario.js";
import { sum } from "../lib/scenario.js";
import { World, sleep, type MirrorLayout, type Raid1Layout } from "../lib/world.js";
import { isPositionFailed } from "../../../src/mapper/raid/dm-raid-superblock.js";
import { InProcessDaemon } from "../lib/inproc-daemon.js";
import { ModelClient, describeViolations } from "../lib/nbd-model.js";
import { metadataNow } from "../lib/vg-checks.js";
import { VG } from "../lib/setups.js";
import { sha } from "../lib/nbd-io.js";
import { which, devicePathUnavailable } from "../../helpers/lab.js";
import type { Rng } from "../lib/rng.js";

/**
 * 4. Leg faults. A 2-leg mirror under the model client's random writes,
 * flushes and checked reads; then one leg gets write errors, read errors,
 * vanishes, or turns slow, either through the fault-injecting block device
 * under an in-process daemon or through nbdkit's error filter behind
 * nbdfuse (the PV is a FUSE file served by nbdkit). Asserted:
 *   - zero client-visible errors while a good leg remains, and every read
 *     returns what the model says (never data from a failed or stale leg:
 *     the failed leg's bytes are overwritten with garbage once it failed);
 *   - the failure is recorded (PV MISSING in the metadata on disk) before
 *     the write that hit it is acknowledged (checked at each such reply);
 *   - a delayed leg is not failed;
 *   - a leg that comes back (vgextend --restoremissing, reactivation) is
 *     stale: it is resynced from the leg that stayed, never used as a
 *     source; the surviving leg's bytes are not changed by the resync, the
 *     legs end identical and every acknowledged write reads back.
 *
 * The raid1 kinds (`lvcreate --type raid1 -m1`; image 1 gets write errors,
 * or image 0's PV vanishes and comes back) check the same, with the
 * target's own record as well: at the reply of every write that missed the
 * failed image, the surviving rmeta's dm-raid superblock already has the
 * failed slot's bit (and the PV is MISSING in the metadata); a returning
 * image is recovered from exactly the regions set in the surviving
 * bitmap, from the image that stayed.
 */
type Kind =
  | "write-errors"
  | "read-errors"
  | "vanish-primary-returns"
  | "delay"
  | "nbdkit-write-errors"
  | "nbdkit-vanish"
  | "vanish-secondary-returns"
  | "raid1-write-errors"
  | "raid1-vanish-primary-returns";
const KINDS: readonly Kind[] = [
  "write-errors",
  "read-errors",
  "raid1-write-errors",
  "vanish-primary-returns",
  "delay",
  "nbdkit-write-errors",
  "nbdkit-vanish",
  "vanish-secondary-returns",
  "raid1-vanish-primary-returns",
];

const LV_MIB = 24;

export const legFaultsScenario: Scenario = {
  name: "leg-faults",
  title: "leg faults: fault device and nbdkit error filter",
  defaultIterations: 27,
  quickIterations: 3,
  variants: KINDS.length,
  unavailable: () => undefined,
  async iterate(ctx: IterationContext): Promise<Figures> {
    const kind = KINDS[ctx.variant]!;
    ctx.state("fault", kind);
    if (kind.startsWith("nbdkit")) {
      const why = nbdkitUnavailable();
      if (why) {
        ctx.log(`${kind} skipped: ${why}`);
        return { skipped: 1 };
      }
      return nbdkitIteration(ctx, kind);
    }
    return faultDeviceIteration(ctx, kind);
  },
  figure(all) {
    return (
      `client-visible errors ${sum(all, "clientErrors")} in ${sum(all, "writes")} writes and ${sum(all, "reads")} checked reads; ` +
      `failures recorded before the ack ${sum(all, "recordedBeforeAck")}/${sum(all, "ackAfterFailure")}; stale or failed leg served ${sum(all, "staleReads")}; ` +
      `legs that came back resynced from the good leg ${sum(all, "returned")}; ` +
      `raid1: ${sum(all, "raid1")} iterations (${sum(all, "raidWrites")} writes, ${sum(all, "raidReads")} checked reads, ${sum(all, "raidClientErrors")} client-visible errors), failed bit on the surviving rmeta before the ack ${sum(all, "raidRecordedBeforeAck")}/${sum(all, "raidAckAfterFailure")}, ` +
      `returned images recovered = regions set in the bitmap ${sum(all, "raidExactRecovery")}/${sum(all, "raidReturned")} (${sum(all, "raidRecovered")} of ${sum(all, "raidRegions")} regions)` +
      (sum(all, "skipped") ? `; ${sum(all, "skipped")} nbdkit iterations skipped` : "")
    );
  },
};

function nbdkitUnavailable(): string | undefined {
  if (!which("nbdkit")) return "nbdkit not installed (apt-get install nbdkit)";
  if (!which("nbdfuse")) return "nbdfuse not installed (apt-get install libnbd-bin)";
  return devicePathUnavailable();
}

interface Run {
  model: ModelClient;
  /** Checks made at replies of writes that hit the failed leg. */
  ackAfterFailure: number;
  recordedBeforeAck: number;
}

/** Random I/O for `ms`, calling `midway` once halfway. */
async function loadFor(model: ModelClient, rng: Rng, ms: number, midway: () => Promise<void> | void): Promise<void> {
  let stop = false;
  let loadError: unknown;
  const load = model.load(rng, { depth: 4, maxSectors: 128, flushEvery: 10, readChance: 0.3, stop: () => stop }).catch((e: unknown) => {
    loadError = e;
  });
  try {
    await sleep(ms / 2);
    await midway();
    await sleep(ms / 2);
  } finally {
    stop = true;
    await load;
  }
  if (loadError !== undefined) throw loadError;
}

/** Overwrite a leg's bytes with garbage (a failed leg must never be read again). */
function trash(w: World, layout: MirrorLayout, leg: number): void {
  const seen = new Set<string>();
  for (const loc of layout.legs[leg]!) {
    if (!loc || seen.has(`${loc.path}:${loc.offsetBytes}`)) continue;
    seen.add(`${loc.path}:${loc.offsetBytes}`);
    const fd = openSync(loc.path, "r+");
    try {
      writeSync(fd, Buffer.alloc(layout.extentBytes, 0xa5), 0, layout.extentBytes, loc.offsetBytes);
    } finally {
      closeSync(fd);
    }
  }
}


/** Does the surviving rmeta's superblock (read from the PV file) mark `slot` failed? */
function failedBitOnDisk(w: World, layout: Raid1Layout, slot: number): boolean {
  const m = w.raidMeta(layout);
  const s = m.slots[1 - slot];
  return s?.kind === "valid" && isPositionFailed(s.sb.failedDevices, slot);
}

function legBytesHash(w: World, layout: MirrorLayout, leg: number): string {
  return sha(w.readLeg(layout, leg, 0, layout.extentCount * layout.extentBytes));
}

async function faultDeviceIteration(ctx: IterationContext, kind: Kind): Promise<Figures> {
  const rng = ctx.rng;
  const raid = kind.startsWith("raid1-");
  const w = new World({ prefix: "ulvm-tort-leg-", disks: [{ name: "d1", sizeMiB: LV_MIB + 8 }, { name: "d2", sizeMiB: LV_MIB + 8 }, { name: "d3", sizeMiB: 16 }] });
  let d: InProcessDaemon | undefined;
  let failed = true;
  try {
    w.ok("pvcreate", "-q", ...w.disks);
    w.ok("vgcreate", "-q", VG, ...w.disks);
    if (raid) w.ok("lvcreate", "-q", "-an", "-Zn", "--type", "raid1", "-m1", "-L", `${LV_MIB}m`, "-R", "256k", "-n", "m", VG, w.disk("d1"), w.disk("d2"));
    else w.ok("lvcreate", "-q", "-an", "-Zn", "-m1", "-L", `${LV_MIB}m`, "-R", "256k", "-n", "m", VG, w.disk("d1"), w.disk("d2"), w.disk("d3"));
    d = await InProcessDaemon.start(w);
    const act = await w.ulvmA("lvchange", "-ay", `${VG}/m`);
    assert.equal(act.code, 0, act.stderr);
    await w.waitInSync(VG, "m");
    const loaded = await w.loadVg(VG);
    const raidLayout = raid ? w.raid1Layout(loaded, "m") : undefined;
    const layout = raidLayout ?? w.mirrorLayout(loaded, "m");
    const victimLeg = kind === "read-errors" || kind === "vanish-primary-returns" || kind === "raid1-vanish-primary-returns" ? 0 : 1;
    const victim = w.disk(victimLeg === 0 ? "d1" : "d2");
    const victimPvId = loaded.vg.pvs.find((p) => loaded.deviceOf(p.id)?.entry.name === victim)!.id;
    const fault = d.fault(victim);
    const model = await ModelClient.open(w.nbdSocket, `${VG}/m`, undefined, ctx.seed);
    const run: Run = { model, ackAfterFailure: 0, recordedBeforeAck: 0 };
    let raidChecked = 0;
    // Recorded before acknowledged: at the reply of a write that hit the failed leg, MISSING is on disk.
    const victimRanges = (): Array<[number, number]> =>
      d!.failedWrites
        .filter((f) => f.path === victim)
        .flatMap((f) => {
          const out: Array<[number, number]> = [];
          layout.legs[victimLeg]!.forEach((loc, e) => {
            if (!loc || loc.path !== victim) return;
            const s = Math.max(f.offsetBytes, loc.offsetBytes);
            const t = Math.min(f.offsetBytes + f.lengthBytes, loc.offsetBytes + layout.extentBytes);
            if (s < t) out.push([e * layout.extentBytes + (s - loc.offsetBytes), e * layout.extentBytes + (t - loc.offsetBytes)]);
          });
          return out;
        });
    model.onWriteReply = async (wr) => {
      if (wr.error !== 0 || d!.failedWrites.length === 0) return;
      if (!victimRanges().some(([s, t]) => wr.offsetBytes < t && s < wr.offsetBytes + wr.lengthBytes)) return;
      run.ackAfterFailure++;
      const vg = await metadataNow(w.disks, VG);
      const flagged = vg?.pvs.find((p) => p.id === victimPvId)?.flags.includes("MISSING") ?? false;
      assert.ok(flagged, `write at LV byte ${wr.offsetBytes} (token ${wr.token}) hit the failed leg and was acknowledged before PV MISSING was on disk`);
      if (raidLayout) {
        assert.ok(failedBitOnDisk(w, raidLayout, victimLeg), `write at LV byte ${wr.offsetBytes} (token ${wr.token}) missed image ${victimLeg} and was acknowledged before the surviving superblock had its failed bit`);
        raidChecked++;
      }
      run.recordedBeforeAck++;
    };
    let injectedAt = 0;
    await loadFor(model, rng.fork(1), ctx.quick ? 1200 : 2400, () => {
      injectedAt = model.writesAcked;
      switch (kind.replace(/^raid1-/, "")) {
        case "write-errors":
          fault.addRule({ ops: ["write"], afterCount: rng.int(8), errno: rng.pick(["EIO", "ENOSPC", "EROFS"]) });
          break;
        case "read-errors":
          fault.addRule({ ops: ["read"], afterCount: rng.int(4), errno: "EIO" });
          break;
        case "vanish-primary-returns":
        case "vanish-secondary-returns":
          fault.vanish();
          break;
        case "delay":
          fault.setDelay(() => rng.int(15));
          break;
      }
    });
    ctx.log(`${kind}: fault after ${injectedAt} writes; ${model.writesAcked} writes, ${model.readsChecked} reads, legs ${JSON.stringify((await w.mirrorSync(VG, "m"))?.legHealth ?? "linear")}`);
    if (kind !== "delay") {
      // The leg has failed: it must never serve a read again, whatever it holds.
      await waitFor(async () => (await metadataNow(w.disks, VG))?.pvs.find((p) => p.id === victimPvId)?.flags.includes("MISSING") ?? false, "the failure to be recorded");
      trash(w, layout, victimLeg);
      for (let s = 0; s < model.sectors; s += 2048) await model.readCheck(s, Math.min(256, model.sectors - s));
    } else {
      const vg = await metadataNow(w.disks, VG);
      assert.ok(!vg?.pvs.some((p) => p.flags.includes("MISSING")), "a slow leg is not a failed leg");
    }
    if (raidLayout) {
      assert.ok(failedBitOnDisk(w, raidLayout, victimLeg), `the surviving rmeta's superblock marks slot ${victimLeg} failed`);
      const health = (await w.raidStatus(VG, "m"))?.health ?? "";
      ctx.state("raid health after the fault", health);
      assert.match(health, victimLeg === 0 ? /^[D-]A$/ : /^A[D-]$/, "dm-raid's health shows the failed image");
    }
    assert.deepEqual(model.errors, [], "no client-visible error while a good leg remains");
    assert.deepEqual(model.readMismatches, [], "every read returned the model's data");
    const missingNow = (await metadataNow(w.disks, VG))?.pvs.some((p) => p.flags.includes("MISSING")) ?? false;
    assert.equal(missingNow, kind !== "delay", "the failed leg's PV is MISSING in the metadata");
    let returned = 0;
    let raidExpected = -1;
    let raidCopied = 0;
    if (kind.endsWith("-returns")) {
      // The leg comes back (stale: it missed every write since it failed).
      model.close();
      const goodLeg = 1 - victimLeg;
      const goodBefore = legBytesHash(w, layout, goodLeg);
      const off = await w.ulvmA("lvchange", "-an", `${VG}/m`);
      assert.equal(off.code, 0, off.stderr);
      const back = await w.ulvmA("vgextend", "--restoremissing", VG, victim);
      assert.equal(back.code, 0, back.stderr);
      // Sometimes the daemon restarts as well (a reboot); otherwise the running daemon, which
      // remembers the failure, must take the PV back because the metadata says it was restored.
      const restart = rng.chance(0.5);
      ctx.state("daemon restarted before reactivation", restart);
      if (restart) {
        await d.stop();
        d = await InProcessDaemon.start(w);
      }
      if (raidLayout) {
        // The image that stayed holds the freshest superblock (the returning slot's failed bit) and bitmap.
        const meta = w.raidMeta(w.raid1Layout(await w.loadVg(VG), "m"));
        ctx.state("rmetas before the return", { freshest: meta.freshest, failed: meta.failedSlots, dirty: meta.dirty.length, full: meta.full ?? "-" });
        assert.deepEqual(meta.failedSlots, [victimLeg], "the freshest superblock marks the returning image failed");
        assert.equal(meta.freshest, 1 - victimLeg, "the freshest superblock is on the image that stayed");
        raidExpected = meta.full ? meta.toRecover.length : meta.dirty.length;
        ctx.log(`before the return: freshest slot ${meta.freshest}, failed ${JSON.stringify(meta.failedSlots)}, ${meta.dirty.length} of ${layout.regionCount} bits set${meta.full ? `, full: ${meta.full}` : ""}`);
      }
      const on = await w.ulvmA("lvchange", "-ay", `${VG}/m`);
      assert.equal(on.code, 0, on.stderr);
      const synced = await w.waitInSync(VG, "m");
      if (raidLayout) {
        raidCopied = synced.copied;
        assert.equal(raidCopied, raidExpected, `the returning image was recovered in ${raidCopied} regions; the surviving bitmap has ${raidExpected} set`);
        assert.equal((await w.raidStatus(VG, "m"))?.health, "AA", "both images in sync");
      }
      const check = await ModelClient.open(w.nbdSocket, `${VG}/m`, undefined, ctx.seed);
      const v = await model.verifyAll("acked", async (o, n) => {
        const r = await check.client.request({ type: 0, offsetBytes: o, lengthBytes: n });
        if (r.error !== 0 || !r.data) throw new Error(`read failed: ${r.error}`);
        return r.data;
      });
      check.close();
      assert.equal(v.length, 0, `after the stale leg came back: ${describeViolations(v)}`);
      const off2 = await w.ulvmA("lvchange", "-an", `${VG}/m`);
      assert.equal(off2.code, 0, off2.stderr);
      const after = raid ? w.raid1Layout(await w.loadVg(VG), "m") : w.mirrorLayout(await w.loadVg(VG), "m");
      const diff = w.legDiff(after);
      assert.equal(diff, -1, `legs differ at ${diff} after the returned leg was resynced`);
      const goodIndex = after.legs.findIndex((l) => l[0]?.path === w.disk(goodLeg === 0 ? "d1" : "d2"));
      assert.equal(legBytesHash(w, after, goodIndex), goodBefore, "the resync never wrote to the leg that stayed");
      if (raid) assert.deepEqual(w.raidMeta(after as Raid1Layout).failedSlots, [], "no failed bit left after the recovery");
      returned = 1;
    } else model.close();
    failed = false;
    return {
      clientErrors: model.errors.length,
      writes: model.writesAcked,
      reads: model.readsChecked,
      ackAfterFailure: run.ackAfterFailure,
      recordedBeforeAck: run.recordedBeforeAck,
      staleReads: model.readMismatches.length,
      returned,
      raid1: raid ? 1 : 0,
      raidWrites: raid ? model.writesAcked : 0,
      raidReads: raid ? model.readsChecked : 0,
      raidClientErrors: raid ? model.errors.length : 0,
      raidAckAfterFailure: raid ? run.ackAfterFailure : 0,
      raidRecordedBeforeAck: raidChecked,
      raidReturned: raid ? returned : 0,
      raidExactRecovery: raid && returned && raidCopied === raidExpected ? 1 : 0,
      raidRecovered: raidCopied,
      raidRegions: raid && returned ? layout.regionCount : 0,
    };
  } finally {
    if (failed && d) ctx.state("daemon log", d.log.slice(-30).join("\n"));
    if (failed && ctx.keep) ctx.state("kept", w.preserve(`leg-${ctx.seed}`));
    await d?.stop().catch(() => undefined);
    w.cleanup();
  }
}

async function waitFor(cond: () => Promise<boolean>, what: string, limitMs = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > limitMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------- nbdkit + nbdfuse

interface FusePv {
  nbdkit: ChildProcess;
  nbdfuse: ChildProcess;
  trigger: string;
  file: string;
}

/** Serve an image through nbdkit (file plugin, error filter armed by a trigger file) and nbdfuse. */
async function fusePv(w: World, name: string, image: string): Promise<FusePv> {
  const sock = join(w.dir, `${name}.nbdkit.sock`);
  const trigger = join(w.dir, `${name}.fail`);
  const mnt = join(w.dir, "fuse", name);
  mkdirSync(mnt, { recursive: true });
  // Writes fail (EIO) while the trigger file exists; reads keep working (a disk that went read-only).
  const nbdkit = spawn("nbdkit", ["-f", "-U", sock, "--filter=error", "file", image, "error-pwrite=EIO", "error-pwrite-rate=100%", `error-pwrite-file=${trigger}`], { stdio: "ignore" });
  await waitFor(async () => existsSync(sock), "nbdkit's socket", 20_000);
  const file = join(mnt, "pv");
  const nbdfuse = spawn("nbdfuse", [file, "--unix", sock], { stdio: "ignore" });
  await waitFor(async () => existsSync(file), "the nbdfuse file", 20_000);
  return { nbdkit, nbdfuse, trigger, file };
}

async function nbdkitIteration(ctx: IterationContext, kind: Kind): Promise<Figures> {
  const rng = ctx.rng;
  const w = new World({ prefix: "ulvm-tort-nbdkit-", disks: [{ name: "d1", sizeMiB: LV_MIB + 8 }, { name: "d3", sizeMiB: 16 }] });
  const raw = join(w.dir, "raw-d2.img");
  writeFileSync(raw, "");
  truncateSync(raw, (LV_MIB + 8) << 20);
  let pv: FusePv | undefined;
  let failed = true;
  try {
    pv = await fusePv(w, "d2", raw);
    // The FUSE file is a PV like the others; the scan sees it by name.
    w.writeConfig([w.diskDir, pv.file]);
    const disks = [w.disk("d1"), pv.file, w.disk("d3")];
    w.ok("pvcreate", "-q", ...disks);
    w.ok("vgcreate", "-q", VG, ...disks);
    w.ok("lvcreate", "-q", "-m1", "-L", `${LV_MIB}m`, "-R", "256k", "-n", "m", VG, ...disks);
    await w.waitInSync(VG, "m");
    const all = [...w.disks, pv.file];
    const loaded = await w.loadVg(VG, all);
    // Metadata is read back from the other PVs (the failing one may not answer at all).
    const others = w.disks;
    const victimPvId = loaded.vg.pvs.find((p) => loaded.deviceOf(p.id)?.entry.name === pv!.file)!.id;
    const model = await ModelClient.open(w.nbdSocket, `${VG}/m`, undefined, ctx.seed);
    let armed = false;
    let ackAfterFailure = 0;
    let recordedBeforeAck = 0;
    // Every write sent after the fault is armed hits the failing leg (until the leg is dropped).
    const sentAfterArm = new Set<number>();
    model.onWriteSent = (token) => {
      if (armed) sentAfterArm.add(token);
    };
    model.onWriteReply = async (wr) => {
      if (!armed || wr.error !== 0 || !sentAfterArm.has(wr.token)) return;
      ackAfterFailure++;
      const vg = await metadataNow(others, VG);
      assert.ok(vg?.pvs.find((p) => p.id === victimPvId)?.flags.includes("MISSING"), `write token ${wr.token} was acknowledged before the failed PV was recorded MISSING`);
      recordedBeforeAck++;
    };
    await loadFor(model, rng.fork(1), ctx.quick ? 1500 : 2500, () => {
      if (kind === "nbdkit-write-errors") writeFileSync(pv!.trigger, "");
      else pv!.nbdkit.kill("SIGKILL");
      armed = true;
    });
    await waitFor(async () => (await metadataNow(others, VG))?.pvs.find((p) => p.id === victimPvId)?.flags.includes("MISSING") ?? false, "the failure to be recorded");
    ctx.log(`${kind}: ${model.writesAcked} writes, ${model.readsChecked} reads, ${ackAfterFailure} acks checked after the failure`);
    assert.deepEqual(model.errors, [], "no client-visible error while a good leg remains");
    assert.deepEqual(model.readMismatches, [], "every read returned the model's data");
    model.close();
    failed = false;
    return { clientErrors: model.errors.length, writes: model.writesAcked, reads: model.readsChecked, ackAfterFailure, recordedBeforeAck, staleReads: 0, returned: 0 };
  } finally {
    if (failed) ctx.state("daemon log", w.daemonLog().split("\n").slice(-25).join("\n"));
    if (failed && ctx.keep) ctx.state("kept", w.preserve(`nbdkit-${ctx.seed}`));
    await w.killDaemon("SIGTERM");
    await w.killDaemon("SIGKILL");
    w.cleanup(); // unmounts the FUSE file
    pv?.nbdfuse.kill("SIGKILL");
    pv?.nbdkit.kill("SIGKILL");
    rmSync(raw, { force: true });
  }
}
