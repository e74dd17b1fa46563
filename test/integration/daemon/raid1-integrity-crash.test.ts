/**
 * raid1 + integrity and kill -9 of the daemon under writes, in bitmap mode
 * (dirty bitmap) and in journal mode (dm-integrity's journal). After the next
 * activation: every byte reads (no EILSEQ/EIO), no mismatch is counted, what
 * was acknowledged and flushed before is intact, and every block of the area
 * being written holds either its old bytes or one whole write of the
 * client's: never anything else under a valid tag. In journal mode the
 * journal left on disk is read with the kernel's replay rules and the
 * activation must have replayed it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from "node:fs";
import { Lab, loopUnavailable, which } from "../../helpers/lab.js";
import { JournalImage, planReplay } from "../../../src/mapper/integrity/journal-format.js";
import { journalGeometry } from "../../../src/mapper/integrity/integrity-format.js";

const skip = !which("nbdcopy") || !which("qemu-io") ? "nbdcopy and qemu-io needed (apt-get install libnbd-bin qemu-utils)" : loopUnavailable();
const MiB = 1 << 20;

for (const mode of ["bitmap", "journal"] as const) {
  test(`raid1 + integrity (${mode}): kill -9 of the daemon during writes leaves no false mismatch and loses nothing flushed`, { skip, timeout: 120_000 }, async () => {
    const lab = new Lab(`ulvm-integ-crash-${mode}-`);
    let writer: ReturnType<typeof spawn> | undefined;
    try {
      lab.ok("vgcreate", "-q", "vg", lab.addDisk("d0", 64), lab.addDisk("d1", 64));
      lab.ok("lvcreate", "-q", "--type", "raid1", "-m1", "--raidintegrity", "y", "--raidintegritymode", mode, "-L", "8m", "-n", "r", "vg");
      const uri = `nbd+unix:///vg/r?socket=${lab.dir}/run/nbd.sock`;
      const before = randomBytes(8 * MiB);
      writeFileSync(`${lab.dir}/in.bin`, before);
      assert.equal(lab.run("nbdcopy", ["--flush", `${lab.dir}/in.bin`, uri]).code, 0);
      // Writes of whole 64 KiB patterns (byte values 1..200) over the second half, many of them in flight when the daemon dies.
      const cmds: string[] = [];
      for (let i = 0; i < 2000; i++) cmds.push("-c", `write -P ${(i % 200) + 1} ${4 * MiB + ((i * 7) % 64) * 65536} 64k`);
      writer = spawn("qemu-io", ["-f", "raw", "--cache", "writeback", ...cmds, uri], { stdio: ["ignore", "pipe", "pipe"] });
      let wrote = 0;
      writer.stdout!.on("data", (b: Buffer) => (wrote += b.toString().split("wrote ").length - 1));
      for (let i = 0; i < 400 && wrote < 50; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(wrote >= 50, "the writer is under way");
      lab.stopDaemon("SIGKILL");
      writer.kill("SIGKILL");
      writer = undefined;

      // Where each leg's data and metadata are (PV file, first extent).
      const place = (lv: string): { pv: string; at: number } => {
        const line = lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name,devices", "vg").split("\n").find((l) => l.includes(`[${lv}]`))!;
        const m = /(\S+)\((\d+)\)\s*$/.exec(line)!;
        return { pv: m[1]!, at: MiB + Number(m[2]) * 4 * MiB };
      };
      const torn = 6 * MiB + 4096;
      const readAt = (file: string, at: number, n: number): Buffer => {
        const b = Buffer.alloc(n);
        const fd = openSync(file, "r");
        readSync(fd, b, 0, n, at);
        closeSync(fd);
        return b;
      };
      if (mode === "journal") {
        // The journal leg 0 left, read with the kernel's rules (replay_journal): what the replay must write, last entry wins.
        const meta = place("r_rimage_0_imeta");
        const sections = readAt(meta.pv, meta.at + 12, 4).readUInt32LE(0);
        const geo = journalGeometry(4, 1);
        const img = new JournalImage(geo, sections, 1, 4, new Uint8Array(readAt(meta.pv, meta.at + 8 * 512, sections * geo.sectionSectors * 512)));
        const plan = planReplay(img);
        assert.equal(plan.kind, "ok", "the journal's commit ids are valid");
        const replay = new Map<number, Uint8Array>();
        if (plan.kind === "ok" && !plan.empty)
          for (let n = 0; n < plan.sections; n++)
            for (let e = 0; e < geo.sectionEntries; e++) {
              const i = (plan.start + n) % sections;
              const st = img.entry(i, e);
              if (st.kind === "sector") replay.set(st.sector, img.getBlock(i, e, new Uint8Array(512)));
            }
        assert.ok(replay.size > 0, "the journal holds committed writes to replay");
        // A copy to the data area cut by the crash: one replayed block of leg 0 is garbage in the data area now.
        const [sector, block] = [...replay.entries()].at(-1)!;
        const iorig = place("r_rimage_0_iorig");
        const fd = openSync(iorig.pv, "r+");
        writeSync(fd, Buffer.alloc(512, 0xee), 0, 512, iorig.at + sector * 512);
        closeSync(fd);
        const up = lab.ulvm("lvchange", "-ay", "vg/r");
        assert.equal(up.code, 0, up.stderr);
        assert.ok(readAt(iorig.pv, iorig.at + sector * 512, 512).equals(block), `the replay rewrote sector ${sector} of leg 0 from the journal`);
      } else {
      // The region being written is dirty on disk: the bitmap's first bit (one bit covers this small LV).
      for (const leg of [0, 1]) {
        const meta = place(`r_rimage_${leg}_imeta`);
        const b = Buffer.alloc(1);
        const fd = openSync(meta.pv, "r");
        readSync(fd, b, 0, 1, meta.at + 8 * 512);
        closeSync(fd);
        assert.equal(b[0]! & 1, 1, `leg ${leg}: the region written is marked dirty in the bitmap`);
      }
      // The kill rarely lands between a data write and its tag write (both take microseconds), so that
      // window is made here by hand: a client write (a whole 512-byte block of 0x33) whose data reached
      // both legs and whose tags did not. The recovery must recompute its tags, not report it.
      for (const leg of [0, 1]) {
        const iorig = place(`r_rimage_${leg}_iorig`);
        const fd = openSync(iorig.pv, "r+");
        writeSync(fd, Buffer.alloc(512, 0x33), 0, 512, iorig.at + torn);
        closeSync(fd);
      }
      const up = lab.ulvm("lvchange", "-ay", "vg/r");
      assert.equal(up.code, 0, up.stderr);
      }

      const read = lab.run("nbdcopy", [uri, `${lab.dir}/out.bin`]);
      assert.equal(read.code, 0, `every byte reads after the crash: ${read.stderr}`);
      const after = readFileSync(`${lab.dir}/out.bin`);
      assert.ok(after.subarray(0, 4 * MiB).equals(before.subarray(0, 4 * MiB)), "the flushed first half is intact");
      let changed = 0;
      for (let off = 4 * MiB; off < 8 * MiB; off += 512) {
        const blk = after.subarray(off, off + 512);
        if (blk.equals(before.subarray(off, off + 512))) continue;
        const v = blk[0]!;
        assert.ok(v >= 1 && v <= 200 && blk.every((x) => x === v), `block at ${off}: neither its old bytes nor a client write`);
        changed++;
      }
      assert.ok(changed > 0, "some of the writes landed");
      if (mode === "bitmap") assert.ok(after.subarray(torn, torn + 512).every((x) => x === 0x33), "the torn write reads as written");
      const counts = lab.ok("lvs", "-a", "--noheadings", "--separator", ";", "-o", "lv_name,integritymismatches", "vg");
      for (const line of counts.trim().split("\n")) {
        const [name, n] = line.trim().split(";");
        if (/^(r|\[r_rimage_\d\])$/.test(name!)) assert.equal(n, "0", `${name}: no mismatch counted`);
      }
      // A second read, once the raid1 resync of the dirty regions had time to run, still passes.
      assert.equal(lab.run("nbdcopy", [uri, `${lab.dir}/out2.bin`]).code, 0);
    } finally {
      writer?.kill("SIGKILL");
      lab.cleanup();
    }
  });
}
