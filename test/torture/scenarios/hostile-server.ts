import assert from "node:assert/strict";
import type { Figures, IterationContext, Scenario } from "../lib/scenario.js";
import { max, sum } from "../lib/scenario.js";
import { World, sleep } from "../lib/world.js";
import { fioMissing, fioVerifyErrors, reap, startFio } from "../lib/setups.js";
import { nbdReadAll, patternBytes } from "../lib/nbd-io.js";
import { RawNbdClient } from "../../integration/nbd/raw-client.js";
import { NBD_CMD_FLUSH, NBD_CMD_WRITE } from "../../../src/nbd/protocol.js";
import { SERVER_FAULTS } from "../../helpers/hostile-nbd-server.js";
import { hostileLegWorld } from "../../helpers/hostile-leg.js";
import { EXTENT_BYTES, PE_START_BYTES, pread, topStatus } from "../../helpers/raid1.js";

/**
 * 6b. A hostile NBD *server* (issue 18): a raid1 LV with one image on a
 * local disk and one on a PV served by a server written in the test, honest
 * until fio (verify=crc32c) runs on the LV's first half, then lying one way
 * per iteration (wrong magic, a reply longer than the request, a 1 GiB
 * chunk, a reply to an unknown handle, a reply cut off then silence, an
 * unknown chunk type, an error reply). Meanwhile a client writes a pattern
 * into the second half. Asserted: the remote leg fails and only it; fio
 * sees no I/O error and no corrupt byte; the pattern reads back whole, from
 * the LV and from the local image; the daemon stays up.
 */
const LV_MIB = 16;
const HALF = (LV_MIB / 2) << 20;
const IMAGE_DATA = PE_START_BYTES + EXTENT_BYTES;

export const hostileServerScenario: Scenario = {
  name: "hostile-server",
  title: "a raid1 leg on a hostile NBD server beside fio",
  defaultIterations: SERVER_FAULTS.length * 2,
  quickIterations: 1,
  variants: SERVER_FAULTS.length,
  unavailable: fioMissing,
  async iterate(ctx: IterationContext): Promise<Figures> {
    const fault = SERVER_FAULTS[ctx.variant % SERVER_FAULTS.length]!;
    ctx.state("fault", fault);
    const w = new World({ prefix: "ulvm-tort-nbdsrv-", disks: [] });
    let failed = true;
    let fio: ReturnType<typeof startFio> | undefined;
    try {
      const run = async (...args: string[]): Promise<string> => {
        const r = await w.ulvmA(...args);
        assert.equal(r.code, 0, `ulvm ${args.join(" ")}: ${r.stderr}`);
        return r.stdout;
      };
      const h = await hostileLegWorld(w.lab, run, LV_MIB);
      const pid = w.daemonPid();
      fio = startFio(w, "vg/r", { offsetBytes: 0, sizeBytes: HALF, runtimeS: 600, iodepth: 4, seed: ctx.seed });
      await sleep(300 + ctx.rng.int(700));
      h.server.misbehave(fault);
      ctx.log(`server turned: ${fault}`);
      // The client's pattern over the second half, in 256 KiB writes, then a flush.
      const pattern = patternBytes(HALF, ctx.seed);
      const { client } = await RawNbdClient.ready(h.nbdSocket, { exportName: "vg/r" });
      try {
        for (let off = 0; off < HALF; off += 256 << 10) {
          const part = pattern.subarray(off, off + (256 << 10));
          const r = await client.request({ type: NBD_CMD_WRITE, offsetBytes: HALF + off, lengthBytes: part.length }, part);
          assert.equal(r.error, 0, `the client's write at ${HALF + off} failed (error ${r.error})`);
        }
        assert.equal((await client.request({ type: NBD_CMD_FLUSH, offsetBytes: 0, lengthBytes: 0 })).error, 0, "the client's flush failed");
      } finally {
        client.destroy();
      }
      await sleep(500 + ctx.rng.int(1500));
      const fioRun = fio;
      fio = undefined;
      fioRun.child.kill("SIGTERM");
      const fioResult = await reap(fioRun, 30_000);
      assert.equal(fioVerifyErrors(fioResult), undefined, `fio found corrupt data: ${fioVerifyErrors(fioResult)}`);
      assert.ok(!/io_u error|error=/.test(fioResult.stderr), `fio saw I/O errors: ${fioResult.stderr.slice(0, 800)}`);

      assert.ok(h.server.faultsSent > 0, "the hostile server was reached");
      assert.equal(w.daemonPid(), pid, "the daemon lives");
      let st = await topStatus(w.lab, "r");
      for (let i = 0; i < 200 && !/^A[D-]$/.test(st.raid?.health ?? ""); i++) {
        await sleep(50);
        st = await topStatus(w.lab, "r");
      }
      assert.match(st.raid?.health ?? "", /^A[D-]$/, `the remote image failed, the local one did not: ${st.raid?.health}`);
      const lv = await nbdReadAll(h.nbdSocket, "vg/r");
      assert.ok(lv.subarray(HALF).equals(pattern), "the LV reads the client's pattern whole");
      assert.ok(pread(h.local, IMAGE_DATA, LV_MIB << 20).equals(lv), "the LV's bytes are the local image's");
      ctx.log(`${fault}: ${h.server.honestRequests} honest requests, ${h.server.faultsSent} hostile replies`);
      failed = false;
      return { iterations: 1, faultsSent: h.server.faultsSent, honest: h.server.honestRequests, [`fault:${fault}`]: 1 };
    } finally {
      if (fio) fio.child.kill("SIGKILL");
      if (failed) ctx.state("daemon log", w.daemonLog().split("\n").slice(-20).join("\n"));
      await w.killDaemon("SIGTERM");
      await w.killDaemon("SIGKILL");
      w.cleanup();
    }
  },
  figure(all) {
    const kinds = SERVER_FAULTS.filter((f) => sum(all, `fault:${f}`) > 0).join(", ");
    return `${sum(all, "iterations")} raid1 LVs with a leg on a hostile NBD server (${kinds}): ${sum(all, "faultsSent")} hostile replies (max ${max(all, "faultsSent")} in one), each cost only the remote leg; fio I/O errors 0, corrupt bytes 0, the client's pattern whole, the daemon never died`;
  },
};
