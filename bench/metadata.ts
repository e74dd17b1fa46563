/**
 * Metadata benchmark (issue: foundation): a VG of 1,000 LVs on four PVs, and
 * the wall time of `ulvm lvs`, `ulvm vgs` and `ulvm lvcreate` against
 * `lvm lvs`, `lvm vgs` and `lvm lvcreate -an -Zn` on the same devices in the
 * same run, interleaved, as ratios (ulvm / lvm2). Both tools read the very
 * same loop devices. Run: node dist/bench/metadata.js [--lvs 1000] [--reps 7]
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { formatId } from "../src/base/uuid.js";
import { join } from "node:path";
import { Lab, lvmUnavailable } from "../test/helpers/lab.js";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const LV_COUNT = opt("lvs", 1000);
const REPS = opt("reps", 7);

function timeMs(fn: () => { code: number; stderr: string }): number {
  const t0 = process.hrtime.bigint();
  const r = fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.code !== 0) throw new Error(`command failed: ${r.stderr}`);
  return ms;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

function main(): void {
  const why = lvmUnavailable();
  if (why) {
    console.log(`metadata bench skipped: ${why}`);
    return;
  }
  const lab = new Lab("ulvm-bench-md-");
  try {
    for (const d of ["pv1", "pv2", "pv3", "pv4"]) lab.addDisk(d, 8192);
    lab.attachLoops();
    // Both tools keep a backup of the metadata after each change (lvm2's default; ulvm does the same).
    const conf = join(lab.dir, "lvm", "lvm.conf");
    writeFileSync(conf, readFileSync(conf, "utf8").replace("backup = 0", `backup = 1\n\tbackup_dir = "${join(lab.dir, "lvm", "backup")}"`));
    const loops = ["pv1", "pv2", "pv3", "pv4"].map((d) => lab.loop(d));
    for (const l of loops) lab.lvmOk("pvcreate", "-q", l);
    lab.lvmOk("vgcreate", "-q", "-s", "4m", "benchvg", ...loops);
    // 1,000 LVs in one metadata write: edit a backup of the VG and restore it.
    const bk = join(lab.dir, "bench.vg");
    lab.lvmOk("vgcfgbackup", "-f", bk, "benchvg");
    let text = readFileSync(bk, "utf8");
    const pvNames = ["pv0", "pv1", "pv2", "pv3"];
    let lvText = "\tlogical_volumes {\n";
    for (let i = 0; i < LV_COUNT; i++) {
      const pv = pvNames[i % 4]!;
      const pe = Math.floor(i / 4);
      const id = formatId(`bench${String(i).padStart(27, "0")}`);
      lvText += `\n\t\tlv${i} {\n\t\t\tid = "${id}"\n\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]\n\t\t\tflags = []\n\t\t\tcreation_time = 1795554874\n\t\t\tcreation_host = "bench"\n\t\t\tsegment_count = 1\n\n\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 1\n\n\t\t\t\ttype = "striped"\n\t\t\t\tstripe_count = 1\n\n\t\t\t\tstripes = [\n\t\t\t\t\t"${pv}", ${pe}\n\t\t\t\t]\n\t\t\t}\n\t\t}\n`;
    }
    lvText += "\t}\n";
    text = text.replace(/(\n\tphysical_volumes \{[\s\S]*?\n\t\}\n)/, `$1\n${lvText}`);
    writeFileSync(bk, text);
    lab.lvmOk("vgcfgrestore", "-q", "-f", bk, "benchvg");
    // NODE_EXTRA_CA_CERTS (set on these sandboxes for their proxy) makes every Node process
    // load a CA bundle at start-up, ~50 ms here; ulvm never opens TLS and a user's shell does
    // not set it, so ulvm runs without it. The cost it would add is printed below.
    const caCerts = lab.env.NODE_EXTRA_CA_CERTS;
    delete lab.env.NODE_EXTRA_CA_CERTS;
    const rows: Array<{ name: string; ulvm: number[]; lvm: number[] }> = [
      { name: "lvs", ulvm: [], lvm: [] },
      { name: "vgs", ulvm: [], lvm: [] },
      { name: "lvcreate", ulvm: [], lvm: [] },
    ];
    // Warm the page cache and the tools once.
    lab.ulvm("lvs");
    lab.lvm("lvs");
    // Reports: both tools read the same, unchanging VG, interleaved.
    for (let r = 0; r < REPS; r++) {
      rows[0]!.ulvm.push(timeMs(() => lab.ulvm("lvs")));
      rows[0]!.lvm.push(timeMs(() => lab.lvm("lvs")));
      rows[1]!.ulvm.push(timeMs(() => lab.ulvm("vgs")));
      rows[1]!.lvm.push(timeMs(() => lab.lvm("vgs")));
    }
    // lvcreate: each tool after its own previous write, as when it is the only one managing the VG
    // (ulvm keeps the parse of what it wrote; metadata last written by lvm2 costs ulvm one parse, see cold row).
    for (let r = 0; r < REPS; r++) rows[2]!.ulvm.push(timeMs(() => lab.ulvm("lvcreate", "-an", "-L", "4m", "-n", `u${r}`, "benchvg")));
    for (let r = 0; r < REPS; r++) rows[2]!.lvm.push(timeMs(() => lab.lvm("lvcreate", "-an", "-Zn", "-L", "4m", "-n", `l${r}`, "benchvg")));
    // Cold: ulvm reading metadata that lvm2 just wrote (no parse to reuse).
    const cold = { name: "lvs (cold)", ulvm: [] as number[], lvm: [] as number[] };
    for (let r = 0; r < REPS; r++) {
      lab.lvmOk("lvchange", "--addtag", `t${r}`, "benchvg/lv0");
      cold.ulvm.push(timeMs(() => lab.ulvm("lvs")));
      cold.lvm.push(timeMs(() => lab.lvm("lvs")));
    }
    rows.push(cold);
    console.log(`metadata bench: VG of ${LV_COUNT} LVs on 4 PVs, ${REPS} repetitions, wall time in ms (median)`);
    console.log(`${"command".padEnd(10)} ${"ulvm".padStart(9)} ${"lvm2".padStart(9)} ${"ulvm/lvm2".padStart(10)}`);
    for (const row of rows) {
      const u = median(row.ulvm);
      const l = median(row.lvm);
      console.log(`${row.name.padEnd(10)} ${u.toFixed(1).padStart(9)} ${l.toFixed(1).padStart(9)} ${(u / l).toFixed(2).padStart(10)}`);
    }
    const startup = (env: NodeJS.ProcessEnv): string =>
      median([0, 1, 2, 3, 4].map(() => timeMs(() => { const r = spawnSync(process.execPath, ["-e", "0"], { env }); return { code: r.status ?? 1, stderr: "" }; }))).toFixed(1);
    console.log(`(node start-up alone: ${startup(lab.env)} ms` + (caCerts === undefined ? ")" : `; with this machine's NODE_EXTRA_CA_CERTS, which ulvm ran without: ${startup({ ...lab.env, NODE_EXTRA_CA_CERTS: caCerts })} ms)`));
  } finally {
    lab.cleanup();
  }
}

main();
