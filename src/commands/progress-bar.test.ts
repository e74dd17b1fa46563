import { test } from "node:test";
import assert from "node:assert/strict";
import { ProgressBar, bar, fmtEta } from "./progress-bar.js";

const MiB = 1 << 20;

function withClock(total: number, windowMs = 10_000): { pb: ProgressBar; at: (ms: number, done: number) => void; out: string[] } {
  let now = 0;
  const out: string[] = [];
  const pb = new ProgressBar({ label: "vg/lv", total, clock: () => now, windowMs, write: (s) => out.push(s) });
  return { pb, out, at: (ms, done) => ((now = ms), pb.update(done)) };
}

test("rate and ETA over the recent window, not the whole run", () => {
  const { pb, at } = withClock(1000 * MiB);
  at(0, 0);
  assert.equal(pb.rate(), undefined);
  assert.equal(pb.eta(), undefined);
  // A slow start: 1 MiB/s for 20 s.
  for (let s = 1; s <= 20; s++) at(s * 1000, s * MiB);
  assert.equal(pb.rate(), MiB);
  // Then 10 MiB/s: after 10 s the window holds only the fast part.
  for (let s = 21; s <= 30; s++) at(s * 1000, (20 + (s - 20) * 10) * MiB);
  assert.equal(pb.rate(), 10 * MiB);
  // 120 MiB done, 880 MiB left at 10 MiB/s.
  assert.equal(pb.eta(), 88);
  assert.match(pb.render(), /^ {2}vg\/lv: \[==>\.{17}\] {2}12\.00% {2} 10\.0 MiB\/s {2}ETA 1:28$/);
});

test("a stall shows no ETA; done shows 0:00 and a full bar", () => {
  const { pb, at } = withClock(100 * MiB, 5000);
  at(0, 50 * MiB);
  at(6000, 50 * MiB);
  assert.equal(pb.rate(), 0);
  assert.equal(pb.eta(), undefined);
  assert.match(pb.render(), /ETA --:--$/);
  at(7000, 100 * MiB);
  assert.equal(pb.eta(), 0);
  assert.match(pb.render(), /\[={20}\] 100\.00%.*ETA 0:00$/);
});

test("draw redraws in place and finish ends the line", () => {
  const { pb, at, out } = withClock(10 * MiB);
  at(0, 0);
  pb.draw();
  at(1000, 5 * MiB);
  pb.update(5 * MiB, "50.00");
  pb.draw();
  pb.finish();
  assert.ok(out[0]!.startsWith("\r  vg/lv: ") && out[0]!.endsWith("\x1b[K"));
  assert.match(out[1]!, / 50\.00%/);
  assert.equal(out[2], "\n");
});

test("md's bar shape and the ETA format", () => {
  assert.equal(bar(0, 10), "[>.........]");
  assert.equal(bar(0.55, 10), "[=====>....]");
  assert.equal(bar(1, 10), "[==========]");
  assert.equal(fmtEta(65), "1:05");
  assert.equal(fmtEta(3 * 3600 + 61), "3:01:01");
  assert.equal(fmtEta(undefined), "--:--");
});
