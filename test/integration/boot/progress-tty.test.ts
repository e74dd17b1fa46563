import { test } from "node:test";
import assert from "node:assert/strict";
import { Lab, ULVM_BIN, which } from "../../helpers/lab.js";

/**
 * lvconvert waiting for a new mirror leg: on a terminal (a real pty, made by
 * util-linux's `script`) the bar with percentage, rate and ETA redrawn in
 * place; through a pipe, lvm2's "vg/lv: Converted: N%" lines exactly.
 */
const skip = which("script") ? undefined : "script (util-linux) not installed";
const quote = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;

test("lvconvert shows a progress bar on a tty and lvm2's lines otherwise", { skip }, () => {
  const lab = new Lab("ulvm-progress-");
  try {
    for (const d of ["a", "b", "c"]) lab.addDisk(d, 64);
    lab.ok("vgcreate", "vg", lab.disk("a"), lab.disk("b"), lab.disk("c"));
    lab.ok("lvcreate", "-L", "32m", "-n", "lv", "vg", lab.disk("a"));
    const cmd = [process.execPath, ULVM_BIN, "lvconvert", "-y", "--type", "mirror", "-m", "1", "-i", "1", "vg/lv", lab.disk("b")].map(quote).join(" ");
    const tty = lab.run("script", ["-qfec", cmd, "/dev/null"]);
    assert.equal(tty.code, 0, tty.stdout + tty.stderr);
    // Redrawn in place: carriage return, the md-style bar, a percentage, the rate and the ETA.
    assert.match(tty.stdout, /\r {2}vg\/lv: \[[=>.]{20}\] +\d+\.\d\d% +(-|[\d.]+ [KMG]iB\/s) +ETA (--:--|\d+:\d\d)/);
    assert.match(tty.stdout, /\[={20}\] 100\.00%/);
    assert.match(tty.stdout, /vg\/lv: Converted: 100\.00%/);
    // Not a terminal: lvm2's lines, nothing else.
    lab.ok("lvconvert", "-y", "-m", "0", "vg/lv");
    const piped = lab.ulvm("lvconvert", "-y", "--type", "mirror", "-m", "1", "-i", "1", "vg/lv", lab.disk("c"));
    assert.equal(piped.code, 0, piped.stderr);
    const lines = piped.stdout.split("\n").filter((l) => l.includes("vg/lv:"));
    assert.ok(lines.length >= 1);
    for (const l of lines) assert.match(l, /^ {2}vg\/lv: Converted: \d+\.\d\d%$/);
    assert.equal(lines[lines.length - 1], "  vg/lv: Converted: 100.00%");
    assert.doesNotMatch(piped.stdout, /\r|ETA/);
    lab.ok("vgchange", "-an", "vg");
  } finally {
    lab.cleanup();
  }
});
