import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Lab } from "../../helpers/lab.js";
import { RawNbdClient } from "../nbd/raw-client.js";
import { NBD_CMD_WRITE } from "../../../src/nbd/protocol.js";
import { SERVER_FAULTS } from "../../helpers/hostile-nbd-server.js";
import { hostileLegWorld } from "../../helpers/hostile-leg.js";
import { EXTENT_BYTES, MiB, PE_START_BYTES, pread, waitRaidHealth } from "../../helpers/raid1.js";
import { nbdReadAll, nbdWriteAll, patternBytes } from "../../torture/lib/nbd-io.js";
import { ulvmAsync } from "../../helpers/run-async.js";

/**
 * A raid1 leg on a PV served by a hostile NBD server (issue 18, the fast
 * version of the torture suite's hostile-server scenario): the server is
 * honest while the VG and the LV are made and synced, then breaks the
 * protocol one way per test. Each way must cost the remote leg and nothing
 * else: the client reading and writing the LV sees no error and no wrong
 * byte, the LV is served from the local leg, the daemon lives on.
 */
const LV_MIB = 8;
/** Where image 0's data starts on the local PV (its rmeta is the PV's first extent). */
const IMAGE_DATA = PE_START_BYTES + EXTENT_BYTES;

/** ulvm without blocking the event loop, which the in-process server needs. */
async function ulvm(lab: Lab, ...args: string[]): Promise<string> {
  const r = await ulvmAsync(lab, args);
  assert.equal(r.code, 0, `ulvm ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

for (const fault of SERVER_FAULTS) {
  test(`raid1 with a leg on a hostile NBD server (${fault}): the leg fails, the client sees no error and no wrong byte, the daemon lives`, async () => {
    const lab = new Lab("ulvm-hostileleg-");
    try {
      const w = await hostileLegWorld(lab, (...a) => ulvm(lab, ...a), LV_MIB);
      const before = patternBytes(LV_MIB * MiB, 1);
      await nbdWriteAll(w.nbdSocket, "vg/r", before);
      w.server.misbehave(fault);

      // Reads (some may be balanced onto the remote leg), then writes (every one reaches it).
      assert.ok((await nbdReadAll(w.nbdSocket, "vg/r")).equals(before), "the LV reads what was written before");
      const expected = Buffer.from(before);
      const update = patternBytes(2 * MiB, 2);
      update.copy(expected, 3 * MiB);
      const { client } = await RawNbdClient.ready(w.nbdSocket, { exportName: "vg/r" });
      try {
        const r = await client.request({ type: NBD_CMD_WRITE, offsetBytes: 3 * MiB, lengthBytes: update.length }, update);
        assert.equal(r.error, 0, "the client's write succeeded");
      } finally {
        client.destroy();
      }
      assert.ok(w.server.faultsSent > 0, "the hostile server was reached");
      const st = await waitRaidHealth(lab, "r", /^A[D-]$/);
      assert.match(st.raid?.health ?? "", /^A[D-]$/, `the remote image failed, the local one did not: ${st.raid?.health}`);
      assert.ok((await nbdReadAll(w.nbdSocket, "vg/r")).equals(expected), "the LV reads every byte as written");
      assert.ok(pread(w.local, IMAGE_DATA, LV_MIB * MiB).equals(expected), "the local image holds every byte");
      const log = readFileSync(join(lab.dir, "run", "ulvmd.log"), "utf8");
      assert.doesNotMatch(log, /TypeError|RangeError|uncaught|unhandled/i, "the daemon did not stumble");
      assert.match(log, /"kind":"leg-failed","device":"vg-r","leg":1,/, "the remote leg (slot 1) is the one that failed");
      // The first request to fail decides the errno (EPROTO for a lie, EPIPE for its neighbours on the dropped
      // connection, EIO for the error reply, ENXIO when the PV check got there first); a stall ends by the deadline.
      if (fault === "stall-mid-reply") assert.match(log, /timed out after 2 s/, "the stall ended by nbd_timeout_s");
    } finally {
      lab.cleanup();
    }
  });
}
