import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Lab, ULVM_BIN, type RunResult } from "../../helpers/lab.js";
import { DeviceScan } from "../../../src/commands/scan.js";
import { listNamedDevices } from "../../../src/commands/device-list.js";
import { loadVg } from "../../../src/commands/vg-store.js";

/**
 * Commands that change a VG hold its lock from the read to the commit, so
 * concurrent changes serialise: started all at once, N commands each adding
 * one tag must leave all N tags and exactly N more metadata versions.
 */
function runAsync(lab: Lab, args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [ULVM_BIN, ...args], { env: lab.env, cwd: lab.dir });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.end();
    child.on("close", (code) => resolve({ code: code ?? 128, stdout, stderr }));
  });
}

async function readVg(lab: Lab, name: string) {
  const scan = await DeviceScan.run(listNamedDevices([...lab.disks.values()]));
  const loaded = loadVg(scan, name);
  assert.ok(loaded, `VG ${name} readable`);
  return loaded;
}

test("12 concurrent `vgchange --addtag` and `pvchange --addtag` lose no update", async () => {
  const lab = new Lab("ulvm-vgconc-");
  try {
    const d0 = lab.addDisk("d0", 16);
    const d1 = lab.addDisk("d1", 16);
    lab.ok("vgcreate", "-q", "vg", d0, d1);
    const start = (await readVg(lab, "vg")).vg.seqno;
    const n = 12;
    const runs = await Promise.all(
      Array.from({ length: n }, (_, i) => (i % 3 === 2 ? runAsync(lab, ["pvchange", "--addtag", `p${i}`, i % 2 ? d0 : d1]) : runAsync(lab, ["vgchange", "--addtag", `t${i}`, "vg"]))),
    );
    runs.forEach((r, i) => assert.equal(r.code, 0, `command ${i}: ${r.stderr}`));
    const loaded = await readVg(lab, "vg");
    assert.equal(loaded.vg.seqno, start + n, "one metadata version per command");
    const vgTags = new Set(loaded.vg.tags);
    const pvTags = new Set(loaded.vg.pvs.flatMap((p) => p.tags));
    for (let i = 0; i < n; i++) assert.ok(i % 3 === 2 ? pvTags.has(`p${i}`) : vgTags.has(`t${i}`), `tag of command ${i} kept`);
    assert.deepEqual(loaded.warnings, [], "both PVs hold the same, newest copy");
  } finally {
    lab.cleanup();
  }
});

test("a rename racing tag changes: every change lands on the VG under one of its names", async () => {
  const lab = new Lab("ulvm-vgconc-");
  try {
    const d0 = lab.addDisk("d0", 16);
    lab.ok("vgcreate", "-q", "vg", d0);
    const start = (await readVg(lab, "vg")).vg.seqno;
    const runs = await Promise.all([
      runAsync(lab, ["vgchange", "--addtag", "a", "vg"]),
      runAsync(lab, ["vgrename", "vg", "vg2"]),
      runAsync(lab, ["vgchange", "--addtag", "b", "vg"]),
    ]);
    assert.equal(runs[1]!.code, 0, runs[1]!.stderr);
    const loaded = await readVg(lab, "vg2");
    const landed = runs.filter((r) => r.code === 0).length;
    // A tag command that ran after the rename finds no "vg" and fails cleanly; the others are all there.
    for (const [i, tag] of [[0, "a"], [2, "b"]] as const) {
      if (runs[i]!.code === 0) assert.ok(loaded.vg.tags.includes(tag), `tag ${tag}`);
      else assert.match(runs[i]!.stderr, /Volume group "vg" not found/);
    }
    assert.equal(loaded.vg.seqno, start + landed);
  } finally {
    lab.cleanup();
  }
});
