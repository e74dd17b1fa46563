import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { devString } from "./dev-number.js";

test("devString() splits st_dev as the kernel prints MAJ:MIN", () => {
  assert.equal(devString(40), "0:40"); // an anonymous device (FUSE, tmpfs)
  assert.equal(devString((254 << 8) | 3), "254:3");
  // A minor above 255 keeps its high bits above the major (the kernel's new_encode_dev).
  assert.equal(devString((0x345 & 0xff) | ((0x345 & ~0xff) << 12) | (7 << 8)), "7:837");
});

test("devString() of stat('/') matches the device /proc/self/mountinfo gives the root mount", () => {
  const line = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .find((l) => l.split(" ")[4] === "/");
  assert.ok(line, "no root mount in /proc/self/mountinfo");
  assert.equal(devString(statSync("/").dev), line.split(" ")[2]);
});
