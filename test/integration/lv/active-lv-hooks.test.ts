/**
 * The activation hooks: what the LV commands do when an LV is active (the
 * daemon's business, simulated here). lvm2 asks before removing or reducing
 * an active LV, warns about data on a reduce, deactivates before removal,
 * activates a new LV as -a says and reloads after a resize or rename.
 * The commands run in-process so the hooks can be replaced.
 */
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Lab } from "../../helpers/lab.js";
import { runCommand } from "../../../src/cli/main.js";
import { MemoryOutput } from "../../../src/commands/output.js";
import { pathsFromEnv } from "../../../src/config/paths.js";
import { setLvActivationHooks } from "../../../src/commands/lv-activation.js";
import { writeUlvmConf } from "./lv-diff.js";
import { CommandError } from "../../../src/errors/errors.js";

interface Recorder {
  calls: string[];
  questions: string[];
}

function activeHooks(rec: Recorder, active: boolean): void {
  setLvActivationHooks({
    async isActive(_ctx, _loaded, lv) {
      rec.calls.push(`isActive ${lv.name}`);
      return active;
    },
    async activateNew(_ctx, _loaded, lv, how) {
      rec.calls.push(`activateNew ${lv.name} ${how}`);
    },
    async reload(_ctx, _loaded, name) {
      rec.calls.push(`reload ${name}`);
    },
    async deactivate(_ctx, _loaded, lv) {
      rec.calls.push(`deactivate ${lv.name}`);
    },
  });
}

afterEach(() => setLvActivationHooks(undefined));

async function ulvm(lab: Lab, rec: Recorder, answer: boolean, ...argv: string[]): Promise<{ code: number; out: MemoryOutput }> {
  const out = new MemoryOutput();
  const code = await runCommand(argv, {
    out,
    paths: pathsFromEnv(lab.env),
    prompt: async (q) => {
      rec.questions.push(q);
      return answer;
    },
  });
  return { code, out };
}

function setup(): Lab {
  const lab = new Lab("ulvm-lvhooks-");
  // The setup runs the CLI, which would activate through the daemon: not here.
  writeUlvmConf(lab, false);
  lab.addDisk("d0", 64);
  lab.addDisk("d1", 64);
  lab.ok("pvcreate", lab.disk("d0"), lab.disk("d1"));
  lab.ok("vgcreate", "vg", lab.disk("d0"), lab.disk("d1"));
  lab.ok("lvcreate", "-l", "4", "-n", "a", "vg");
  // The commands under test run in-process with the recording hooks instead.
  writeUlvmConf(lab, true);
  return lab;
}

test("lvremove asks about an active LV; 'n' keeps it", async () => {
  const lab = setup();
  try {
    const rec: Recorder = { calls: [], questions: [] };
    activeHooks(rec, true);
    const r = await ulvm(lab, rec, false, "lvremove", "vg/a");
    assert.equal(r.code, 5);
    assert.deepEqual(rec.questions, ["Do you really want to remove active logical volume vg/a?"]);
    assert.equal(r.out.stderr, "  Logical volume vg/a not removed.\n");
    assert.ok(!rec.calls.includes("deactivate a"));
    const lvs = await ulvm(lab, rec, false, "lvs", "--noheadings", "-o", "lv_name", "vg");
    assert.match(lvs.out.stdout, /\ba\b/);
  } finally {
    lab.cleanup();
  }
});

test("lvremove of an active LV: 'y' deactivates it first, -f skips the question", async () => {
  const lab = setup();
  try {
    const rec: Recorder = { calls: [], questions: [] };
    activeHooks(rec, true);
    const r = await ulvm(lab, rec, true, "lvremove", "vg/a");
    assert.equal(r.code, 0, r.out.stderr);
    assert.equal(r.out.stdout, '  Logical volume "a" successfully removed.\n');
    assert.deepEqual(rec.calls, ["isActive a", "deactivate a"]);
    assert.equal((await ulvm(lab, rec, false, "lvcreate", "-an", "-l", "4", "-n", "b", "vg")).code, 0);
    rec.questions.length = 0;
    const r2 = await ulvm(lab, rec, false, "lvremove", "-f", "vg/b");
    assert.equal(r2.code, 0, r2.out.stderr);
    assert.deepEqual(rec.questions, []);
  } finally {
    lab.cleanup();
  }
});

test("lvreduce of an active LV warns and asks; 'n' leaves it as it was", async () => {
  const lab = setup();
  try {
    const rec: Recorder = { calls: [], questions: [] };
    activeHooks(rec, true);
    const r = await ulvm(lab, rec, false, "lvreduce", "-l", "-1", "vg/a");
    assert.equal(r.code, 5);
    assert.equal(
      r.out.stderr,
      "  WARNING: Reducing active logical volume to 12.00 MiB.\n  THIS MAY DESTROY YOUR DATA (filesystem etc.)\n  Logical volume vg/a NOT reduced.\n",
    );
    assert.deepEqual(rec.questions, ["Do you really want to reduce vg/a?"]);
    const y = await ulvm(lab, rec, true, "lvreduce", "-l", "-1", "vg/a");
    assert.equal(y.code, 0, y.out.stderr);
    assert.ok(rec.calls.includes("reload a"), "the resized LV is reloaded");
  } finally {
    lab.cleanup();
  }
});

test("inactive LVs are removed and reduced without a question", async () => {
  const lab = setup();
  try {
    const rec: Recorder = { calls: [], questions: [] };
    activeHooks(rec, false);
    assert.equal((await ulvm(lab, rec, false, "lvreduce", "-l", "-1", "vg/a")).code, 0);
    assert.equal((await ulvm(lab, rec, false, "lvremove", "vg/a")).code, 0);
    assert.deepEqual(rec.questions, []);
  } finally {
    lab.cleanup();
  }
});

test("lvcreate hands the new LV to activation as -a asks; lvrename and lvextend reload", async () => {
  const lab = setup();
  try {
    const rec: Recorder = { calls: [], questions: [] };
    activeHooks(rec, false);
    assert.equal((await ulvm(lab, rec, false, "lvcreate", "-l", "2", "-n", "n1", "vg")).code, 0);
    assert.equal((await ulvm(lab, rec, false, "lvcreate", "-an", "-l", "2", "-n", "n2", "vg")).code, 0);
    assert.equal((await ulvm(lab, rec, false, "lvrename", "vg", "n1", "n3")).code, 0);
    assert.equal((await ulvm(lab, rec, false, "lvextend", "-l", "+1", "vg/n3")).code, 0);
    assert.deepEqual(rec.calls, ["activateNew n1 y", "activateNew n2 n", "reload n3", "reload n3"]);
    // global/activation = 0 (lvm2's "no device-mapper") bypasses the hooks altogether.
    writeUlvmConf(lab, false);
    rec.calls.length = 0;
    assert.equal((await ulvm(lab, rec, false, "lvcreate", "-l", "1", "-n", "n4", "vg")).code, 0);
    assert.deepEqual(rec.calls, []);
  } finally {
    lab.cleanup();
  }
});

test("a new LV that cannot be activated is removed again, as lvm2 reverts it", async () => {
  const lab = setup();
  try {
    const rec: Recorder = { calls: [], questions: [] };
    setLvActivationHooks({
      async isActive() {
        return false;
      },
      async activateNew(_ctx, _loaded, lv) {
        rec.calls.push(`activateNew ${lv.name}`);
        throw new CommandError("daemon: no such device");
      },
      async reload() {},
      async deactivate(_ctx, _loaded, lv) {
        rec.calls.push(`deactivate ${lv.name}`);
      },
    });
    const r = await ulvm(lab, rec, false, "lvcreate", "-l", "2", "-n", "bad", "vg");
    assert.equal(r.code, 5);
    assert.equal(r.out.stderr, "  daemon: no such device\n  Failed to activate new LV vg/bad.\n");
    assert.equal(r.out.stdout, "");
    assert.deepEqual(rec.calls, ["activateNew bad", "deactivate bad"]);
    setLvActivationHooks(undefined);
    const lvs = await ulvm(lab, rec, false, "lvs", "--noheadings", "-o", "lv_name", "vg");
    assert.doesNotMatch(lvs.out.stdout, /\bbad\b/);
  } finally {
    lab.cleanup();
  }
});
