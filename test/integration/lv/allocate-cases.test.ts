/**
 * The allocation scenarios of src/model/allocate-cases.ts replayed with the
 * real lvm2: their expected layouts (which the pure unit tests hold ulvm's
 * allocator to) must be what lvm2 itself produces. Mirror cases use the
 * mirror oracle.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { Lab, lvmUnavailable, type RunResult } from "../../helpers/lab.js";
import { ALLOC_CASES, segmentText, type AllocCase } from "../../../src/model/allocate-cases.js";
import { DeviceScan } from "../../../src/commands/scan.js";
import { listNamedDevices } from "../../../src/commands/device-list.js";
import { loadVg } from "../../../src/commands/vg-store.js";
import { ORACLE, oracleUnavailable } from "./lv-diff.js";

function lvm2(lab: Lab, oracle: boolean, args: string[]): RunResult {
  if (!oracle) return lab.lvm(...args);
  const env = { ...lab.env, LVM_SYSTEM_DIR: lab.lvmDir, LVM_SUPPRESS_FD_WARNINGS: "1", ULVM_ORACLE_MIRROR: "1" };
  const r = spawnSync(ORACLE, args, { env, encoding: "utf8" });
  return { code: r.status ?? 128, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Run a case with lvm2; returns the layouts of the expected LVs, or the error of the failing step. */
export async function lvm2Outcome(c: AllocCase): Promise<Record<string, string[]> | { error: string }> {
  const lab = new Lab("ulvm-alloccase-");
  try {
    c.pvs.forEach((n, i) => lab.addDisk(`d${i}`, n * 4 + 1));
    const loops = lab.attachLoops();
    const dev = (i: number): string => loops.get(`d${i}`)!;
    const pvArg = (s: string): string => s.replace(/^(\d+)/, (_, i: string) => dev(Number(i)));
    const ok = (args: string[]): RunResult => {
      const r = lvm2(lab, !!c.mirror, args);
      return r;
    };
    const must = (args: string[]): void => {
      const r = ok(args);
      if (r.code !== 0) throw new Error(`lvm ${args.join(" ")}: ${r.stderr}`);
    };
    must(["pvcreate", ...c.pvs.map((_, i) => dev(i))]);
    must(["vgcreate", "-s", "4m", "vg", ...c.pvs.map((_, i) => dev(i))]);
    (c.fill ?? []).forEach(([pv, start, count], i) => must(["lvcreate", "-l", String(count), "-n", `f${i}`, "vg", `${dev(pv)}:${start}-${start + count - 1}`]));
    for (const st of c.steps) {
      const args: string[] = st.cmd === "create" ? ["lvcreate", "-l", String(st.extents), "-n", st.lv] : ["lvextend", "-l", `+${st.extents}`];
      if (st.stripes && st.stripes > 1) args.push("-i", String(st.stripes), "-I", "64k");
      if (st.mirrors) args.push("--type", "mirror", "-m", String(st.mirrors));
      if (st.log === "core") args.push("--mirrorlog", "core");
      if (st.policy) args.push("--alloc", st.policy);
      args.push(st.cmd === "create" ? "vg" : `vg/${st.lv}`, ...(st.pvs ?? []).map(pvArg));
      const r = ok(args);
      if (r.code !== 0) {
        const line = r.stderr.split("\n").map((l) => l.trim()).find((l) => l && !l.startsWith("WARNING") && !l.startsWith("Using default"));
        return { error: line ?? r.stderr };
      }
    }
    const scan = await DeviceScan.run(listNamedDevices(c.pvs.map((_, i) => dev(i))));
    const vg = loadVg(scan, "vg")!.vg;
    const out: Record<string, string[]> = {};
    if ("error" in c.expect) return { error: "(no error)" };
    for (const name of Object.keys(c.expect)) out[name] = segmentText(vg, name);
    return out;
  } finally {
    lab.cleanup();
  }
}

for (const c of ALLOC_CASES) {
  const skip = c.mirror ? oracleUnavailable() : lvmUnavailable();
  test(`lvm2 agrees: ${c.name}`, { skip }, async () => {
    assert.deepEqual(await lvm2Outcome(c), c.expect);
  });
}
