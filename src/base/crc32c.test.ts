import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { crc32c, crc32cSoftware } from "./crc32c.js";

// RFC 3720 (iSCSI) appendix B.4 test vectors, and the common "123456789" check value.
const VECTORS: Array<[string, Uint8Array, number]> = [
  ["32 bytes of zeroes", new Uint8Array(32), 0x8a9136aa],
  ["32 bytes of 0xff", new Uint8Array(32).fill(0xff), 0x62a8ab43],
  ["32 bytes incrementing 00..1f", Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
  ["32 bytes decrementing 1f..00", Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
  [
    "an iSCSI read command PDU",
    Uint8Array.from([
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
      0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ]),
    0xd9963a56,
  ],
  ['"123456789"', new TextEncoder().encode("123456789"), 0xe3069283],
];

for (const [name, data, want] of VECTORS) {
  test(`crc32c of ${name} is 0x${want.toString(16)} (native and software)`, () => {
    assert.equal(crc32c(data), want);
    assert.equal(crc32cSoftware(data), want);
  });
}

test("crc32c chains, takes any Uint8Array view, and agrees with the software baseline on random data", () => {
  for (let i = 0; i < 50; i++) {
    const a = randomBytes(1 + (i * 37) % 700);
    const b = randomBytes(1 + (i * 91) % 4096);
    const whole = Buffer.concat([a, b]);
    assert.equal(crc32c(b, crc32c(a)), crc32c(whole));
    assert.equal(crc32c(whole), crc32cSoftware(whole));
    assert.equal(crc32cSoftware(b, crc32cSoftware(a)), crc32cSoftware(whole));
    // A subarray of a larger buffer is hashed over its own bytes only.
    const padded = new Uint8Array(whole.length + 16);
    padded.set(whole, 8);
    assert.equal(crc32c(padded.subarray(8, 8 + whole.length)), crc32c(whole));
  }
});
