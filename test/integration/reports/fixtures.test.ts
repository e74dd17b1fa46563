import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DIST_ROOT, FIXTURES_DIR, readFixture, unpackImages } from "../../helpers/fixtures.js";
import { isRoot, ULVM_BIN, which } from "../../helpers/lab.js";

/**
 * ulvm's reports against the outputs lvm2 2.03.16 printed for the fixture
 * images (test/fixtures/lvm2, see its README): pvs, vgs, lvs -a -o +devices,
 * the JSON forms and the detail reports in bytes and sectors, and the
 * missing-PV warnings.
 *
 * Exact mode: the images are bind-mounted over /dev/loopN in a private mount
 * namespace, so ulvm sees the very device names lvm2 saw and the comparison
 * is byte for byte (only lvm2's "X" state characters, printed because it ran
 * without device-mapper, are read as "-"). Without root or unshare(1) the
 * images are used as files under their own names and the comparison ignores
 * column padding.
 */
interface Stage {
  fixture: string;
  /** Output file prefix ("1-missing-"). */
  prefix: string;
  /** Where the images come from and which ones are attached (diskN → /dev/loopN of that run). */
  imagesFrom: { fixture: string; prefix: string };
  loops: Record<string, string>;
}

/** "# disk1.img=/dev/loop0 disk3.img=/dev/loop1, disk2.img absent" → { disk1: "/dev/loop0", ... } */
function loopMap(fixture: string): Record<string, string> {
  const header = readFixture(fixture, "commands.log").split("\n")[0] ?? "";
  const out: Record<string, string> = {};
  for (const m of header.matchAll(/(disk\d+)\.img=(\/dev\/loop\d+)/g)) out[m[1]!] = m[2]!;
  return out;
}

const STAGES: Stage[] = [
  ...["a-linear", "b-mirror", "e-mda-wrap"].map((f) => ({ fixture: f, prefix: "", imagesFrom: { fixture: f, prefix: "" }, loops: loopMap(f) })),
  { fixture: "c-mirror-missing-leg", prefix: "1-missing-", imagesFrom: { fixture: "b-mirror", prefix: "" }, loops: loopMap("c-mirror-missing-leg") },
  { fixture: "c-mirror-missing-leg", prefix: "2-vgreduce-", imagesFrom: { fixture: "c-mirror-missing-leg", prefix: "2-vgreduce-" }, loops: loopMap("c-mirror-missing-leg") },
  { fixture: "c-mirror-missing-leg", prefix: "3-vgreduce-force-", imagesFrom: { fixture: "c-mirror-missing-leg", prefix: "3-vgreduce-force-" }, loops: loopMap("c-mirror-missing-leg") },
  { fixture: "d-mirror-missing-log", prefix: "1-missing-", imagesFrom: { fixture: "b-mirror", prefix: "" }, loops: loopMap("d-mirror-missing-log") },
  { fixture: "d-mirror-missing-log", prefix: "2-vgreduce-force-", imagesFrom: { fixture: "d-mirror-missing-log", prefix: "2-vgreduce-force-" }, loops: loopMap("d-mirror-missing-log") },
];

/** The commands make-fixtures.sh captured, by output file. */
const COMMANDS: Array<[string, string[]]> = [
  ["pvs.txt", ["pvs"]],
  ["vgs.txt", ["vgs"]],
  ["lvs-a-devices.txt", ["lvs", "-a", "-o", "+devices"]],
  ["lvs-a.json", ["lvs", "--reportformat", "json", "-a"]],
  ["pvs.json", ["pvs", "--reportformat", "json"]],
  ["vgs.json", ["vgs", "--reportformat", "json"]],
  ["vgs-detail.txt", ["vgs", "-o", "+vg_uuid,vg_seqno,vg_extent_size,vg_extent_count,vg_free_count,vg_mda_count,vg_mda_size,vg_mda_free", "--units", "b"]],
  ["pvs-detail.txt", ["pvs", "-o", "+pv_uuid,dev_size,pe_start,pv_pe_count,pv_pe_alloc_count,pv_mda_count,pv_mda_size", "--units", "b"]],
  ["lvs-segments.txt", ["lvs", "-a", "--segments", "-o", "+seg_start_pe,seg_pe_ranges,devices,stripe_size,region_size,lv_uuid", "--units", "s"]],
];

/** lvm2 ran without device-mapper: attribute characters 5-6 read "XX" where ulvm (with one) prints "--". */
function normaliseAttr(s: string): string {
  return s.replace(/(?<=[\s"])(\S{4})XX(\S{4})(?=[\s"]|$)/gm, "$1--$2");
}

function lvmStderr(text: string): string {
  return text
    .split("\n")
    .filter((l) => !l.includes("Activation disabled"))
    .join("\n");
}

const unshareProblem = ((): string | undefined => {
  if (!isRoot) return "not root: cannot bind-mount images over /dev/loopN";
  if (!which("unshare")) return "unshare(1) not installed";
  const r = spawnSync("unshare", ["-m", "--propagation", "private", "true"]);
  if (r.status !== 0) return "mount namespaces unavailable";
  return undefined;
})();

interface Setup {
  dir: string;
  /** disk name → image file */
  images: Map<string, string>;
  cleanup(): void;
}

function prepare(stage: Stage): Setup {
  const { dir, images } = unpackImages(stage.imagesFrom.fixture, stage.imagesFrom.prefix);
  const map = new Map<string, string>();
  for (const img of images) {
    const disk = /(disk\d+)\.img$/.exec(img)![1]!;
    if (stage.loops[disk]) map.set(disk, img);
  }
  for (const d of ["etc", "run", "dev"]) mkdirSync(join(dir, d), { recursive: true });
  return { dir, images: map, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function runUlvm(s: Setup, stage: Stage, args: string[], exact: boolean): { stdout: string; stderr: string; code: number } {
  const env = {
    ...process.env,
    ULVM_DIST: DIST_ROOT,
    ULVM_SYSTEM_DIR: join(s.dir, "etc"),
    ULVM_RUN_DIR: join(s.dir, "run"),
    ULVM_DEV_DIR: "/dev",
    TZ: "UTC",
    LC_ALL: "C",
  };
  const devs = exact ? [...s.images.keys()].map((d) => stage.loops[d]!) : [...s.images.values()];
  writeFileSync(join(s.dir, "etc", "ulvm.conf"), `devices {\n\tscan = [ ${devs.map((d) => `"${d}"`).join(", ")} ]\n}\n`);
  let r;
  if (exact) {
    const binds = [...s.images].map(([disk, img]) => `mount --bind '${img}' '${stage.loops[disk]}'`).join(" && ");
    r = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", `${binds} && exec "$0" "$@"`, process.execPath, ULVM_BIN, ...args], {
      env,
      encoding: "utf8",
    });
  } else r = spawnSync(process.execPath, [ULVM_BIN, ...args], { env, encoding: "utf8" });
  return { stdout: r.stdout ?? "", stderr: r.stderr ?? "", code: r.status ?? 128 };
}

/** For the file-backed run: fixture loop names become our image paths; column padding is ignored. */
function loose(text: string, s: Setup, stage: Stage): string {
  let t = text;
  for (const [disk, img] of s.images) t = t.replaceAll(stage.loops[disk]!, img);
  return t
    .split("\n")
    .map((l) => l.replace(/ +/g, " ").trimEnd())
    .join("\n");
}

for (const stage of STAGES) {
  for (const exact of [true, false]) {
    const label = `${stage.fixture}/${stage.prefix}* (${exact ? "byte for byte, images as /dev/loopN" : "images as files, padding ignored"})`;
    const skip = exact ? unshareProblem ?? (Object.values(stage.loops).some((l) => !existsSync(l)) ? "fixture loop device paths absent" : undefined) : undefined;
    test(`ulvm reports match lvm2's fixture outputs: ${label}`, { skip }, () => {
      const s = prepare(stage);
      try {
        let compared = 0;
        for (const [file, args] of COMMANDS) {
          const name = `${stage.prefix}${file}`;
          const path = join(FIXTURES_DIR, stage.fixture, name);
          if (!existsSync(path)) continue;
          const expected = normaliseAttr(readFileSync(path, "utf8"));
          const r = runUlvm(s, stage, args, exact);
          assert.equal(r.code, 0, `ulvm ${args.join(" ")} exit status\n${r.stderr}`);
          if (exact) assert.equal(r.stdout, expected, `${name}: ulvm ${args.join(" ")}`);
          else assert.equal(loose(r.stdout, s, stage), loose(expected, s, stage), `${name}: ulvm ${args.join(" ")}`);
          const errPath = `${path}.stderr`;
          if (existsSync(errPath)) {
            const expErr = lvmStderr(readFileSync(errPath, "utf8"));
            if (exact) assert.equal(r.stderr, expErr, `${name}.stderr`);
            else assert.equal(loose(r.stderr, s, stage), loose(expErr, s, stage), `${name}.stderr`);
          } else if (!stage.prefix.startsWith("1-") && !stage.prefix.startsWith("2-vgreduce-")) {
            assert.equal(r.stderr, "", `${name}: no warnings expected`);
          }
          compared++;
        }
        assert.ok(compared >= 9, `compared ${compared} outputs`);
      } finally {
        s.cleanup();
      }
    });
  }
}

test("the fixture loop maps name every attached disk", () => {
  for (const st of STAGES) assert.ok(Object.keys(st.loops).length >= 1, st.fixture);
  assert.deepEqual(loopMap("c-mirror-missing-leg"), { disk1: "/dev/loop0", disk3: "/dev/loop1" });
});

