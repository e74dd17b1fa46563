import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createConnection } from "node:net";
import type { Figures, IterationContext, Scenario } from "../lib/scenario.js";
import { max, sum } from "../lib/scenario.js";
import { World, sleep } from "../lib/world.js";
import { VG, fioMissing, fioVerifyErrors, reap, startFio } from "../lib/setups.js";
import { nbdReadAll, nbdWriteAll, patternBytes } from "../lib/nbd-io.js";
import { RawNbdClient, type Reply } from "../../integration/nbd/raw-client.js";
import { encodeClientFlags, encodeOption, encodeRequest } from "../../../src/nbd/client-codec.js";
import { NBD_CMD_READ, NBD_CMD_TRIM, NBD_CMD_WRITE, NBD_CMD_WRITE_ZEROES } from "../../../src/nbd/protocol.js";
import { DaemonClient } from "../../../src/daemon/control-client.js";
import type { Rng } from "../lib/rng.js";

/**
 * 6. Hostile NBD clients against the daemon's own socket: garbage during
 * negotiation, unknown options and huge option lengths, bad request magic,
 * unknown commands and flags, ranges past the end and near 2^64, zero and
 * huge lengths, short payloads then close, disconnects in the middle of
 * replies, thousands of requests in flight. Meanwhile fio (verify=crc32c)
 * works on a mirror in the same VG. Asserted after every connection: the
 * daemon is alive and answers; requests outside the export or of unknown
 * commands never succeed; the daemon's memory stays bounded (RSS growth);
 * at the end no byte of the target LV changed outside the writes that were
 * sent, the neighbouring LV did not change at all, and fio saw nothing wrong.
 */
const TARGET_MIB = 8;
const CANARY_MIB = 4;
const RSS_GROWTH_LIMIT_MIB = 384;

type Kind = "garbage-negotiation" | "bad-options" | "bad-magic" | "hostile-requests" | "out-of-range" | "mid-reply-disconnect" | "flood" | "short-write-close";
const KINDS: readonly Kind[] = ["garbage-negotiation", "bad-options", "bad-magic", "hostile-requests", "out-of-range", "mid-reply-disconnect", "flood", "short-write-close"];

export const hostileNbdScenario: Scenario = {
  name: "hostile-nbd",
  title: "hostile NBD clients (raw-socket fuzzer) beside fio",
  defaultIterations: 4,
  quickIterations: 1,
  unavailable: fioMissing,
  async iterate(ctx: IterationContext): Promise<Figures> {
    const rng = ctx.rng;
    const w = new World({ prefix: "ulvm-tort-nbd-", disks: ["d1", "d2", "d3"].map((name) => ({ name, sizeMiB: 40 })) });
    let failed = true;
    let fio: ReturnType<typeof startFio> | undefined;
    try {
      w.ok("pvcreate", "-q", ...w.disks);
      w.ok("vgcreate", "-q", "-s", "1m", VG, ...w.disks);
      w.ok("lvcreate", "-q", "-m1", "-L", "16m", "-R", "256k", "-n", "served", VG, w.disk("d1"), w.disk("d2"), w.disk("d3"));
      w.ok("lvcreate", "-q", "-L", `${TARGET_MIB}m`, "-n", "target", VG, w.disk("d3"));
      w.ok("lvcreate", "-q", "-L", `${CANARY_MIB}m`, "-n", "canary", VG, w.disk("d3"));
      await w.waitInSync(VG, "served");
      const target = patternBytes(TARGET_MIB << 20, ctx.seed);
      const canary = patternBytes(CANARY_MIB << 20, ctx.seed + 1);
      await nbdWriteAll(w.nbdSocket, `${VG}/target`, target);
      await nbdWriteAll(w.nbdSocket, `${VG}/canary`, canary);
      const pid = w.daemonPid()!;
      const rss0 = rssMiB(pid);
      fio = startFio(w, `${VG}/served`, { offsetBytes: 0, sizeBytes: 16 << 20, runtimeS: 600, iodepth: 4, seed: ctx.seed });
      const writes: Written[] = [];
      const stats = { connections: 0, requests: 0, errorReplies: 0, disconnects: 0, leftOpen: 0, mustFail: 0, rssMaxGrowth: 0 };
      const n = ctx.quick ? 20 : 70;
      for (let i = 0; i < n; i++) {
        const kind = KINDS[i % KINDS.length]!;
        ctx.state("connection", { i, kind });
        await oneConnection(w, kind, rng.fork(i), writes, stats, i);
        stats.connections++;
        assert.equal(w.daemonPid(), pid, `the daemon died during a ${kind} connection`);
        await ping(w);
        stats.rssMaxGrowth = Math.max(stats.rssMaxGrowth, rssMiB(pid) - rss0);
        assert.ok(stats.rssMaxGrowth < RSS_GROWTH_LIMIT_MIB, `daemon RSS grew by ${stats.rssMaxGrowth} MiB`);
      }
      const fioRun = fio;
      fio = undefined;
      fioRun.child.kill("SIGTERM");
      const fioResult = await reap(fioRun, 30_000);
      assert.equal(fioVerifyErrors(fioResult), undefined, `fio found corrupt data: ${fioVerifyErrors(fioResult)}`);
      assert.ok(!/io_u error/.test(fioResult.stderr), `fio saw I/O errors: ${fioResult.stderr.slice(0, 800)}`);
      // Nothing written outside the writes sent, nothing at all to the neighbour.
      const now = await nbdReadAll(w.nbdSocket, `${VG}/target`);
      for (let b = 0; b < now.length; b++) {
        if (now[b] === target[b]) continue;
        const ok = writes.some((x) => b >= x.offset && b < x.offset + x.length && (x.byte === undefined || now[b] === x.byte));
        if (!ok) assert.fail(`target byte ${b} changed to ${now[b]} outside every write sent`);
      }
      assert.ok((await nbdReadAll(w.nbdSocket, `${VG}/canary`)).equals(canary), "the neighbouring LV is untouched");
      ctx.log(`${stats.connections} connections, ${stats.requests} requests, ${stats.errorReplies} error replies, ${stats.disconnects} disconnects, RSS +${stats.rssMaxGrowth} MiB`);
      failed = false;
      return { ...stats };
    } finally {
      if (fio) fio.child.kill("SIGKILL");
      if (failed) ctx.state("daemon log", w.daemonLog().split("\n").slice(-20).join("\n"));
      await w.killDaemon("SIGTERM");
      await w.killDaemon("SIGKILL");
      w.cleanup();
    }
  },
  figure(all) {
    return `${sum(all, "connections")} hostile connections, ${sum(all, "requests")} requests: ${sum(all, "errorReplies")} protocol errors, ${sum(all, "disconnects")} clean disconnects (${sum(all, "leftOpen")} negotiations left waiting for more bytes), out-of-range/unknown requests that succeeded 0 of ${sum(all, "mustFail")}; daemon never died; max RSS growth ${max(all, "rssMaxGrowth")} MiB; no byte written outside the request; fio unaffected`;
  },
};

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

async function ping(w: World): Promise<void> {
  const c = await DaemonClient.tryConnect(w.paths);
  assert.ok(c, "the daemon's control socket answers");
  try {
    await c.request({ op: "ping" });
  } finally {
    c.close();
  }
}

interface Stats {
  requests: number;
  /** Negotiations the server neither answered nor closed within a second (it waits for more bytes). */
  leftOpen: number;
  errorReplies: number;
  disconnects: number;
  mustFail: number;
}

const SIZE = TARGET_MIB << 20;

/**
 * A range a request may have changed, and to what: `byte`, or anything
 * (`byte` undefined: a TRIM leaves its range unspecified).
 */
interface Written {
  offset: number;
  length: number;
  byte: number | undefined;
}

async function oneConnection(w: World, kind: Kind, r: Rng, writes: Written[], st: Stats, i: number): Promise<void> {
  const sock = w.nbdSocket;
  const fill = 0x80 | (i & 0x3f);
  switch (kind) {
    case "garbage-negotiation": {
      const s = createConnection(sock);
      await new Promise<void>((res) => s.once("connect", () => res()));
      s.on("error", () => undefined);
      s.resume(); // read (and drop) the greeting, so that the server's close is seen
      if (r.chance(0.5)) s.write(encodeClientFlags(r.u32()));
      s.write(r.bytes(r.range(1, 600)));
      const closed = await closesWithin(s, 1000);
      if (closed) st.disconnects++;
      else st.leftOpen++;
      s.destroy();
      return;
    }
    case "bad-options": {
      const c = await RawNbdClient.open(sock);
      try {
        for (let k = 0; k < r.range(1, 6); k++) {
          const code = r.pick([0, 11, 99, 0xdead, r.u32()]);
          if (r.chance(0.2)) {
            // A header announcing far more data than follows.
            const h = encodeOption(code, Buffer.alloc(0));
            h.writeUInt32BE(r.pick([0xffffffff, 64 << 20, 4097]), 12);
            c.send(Buffer.concat([h, r.bytes(r.int(100))]));
            break;
          }
          const replies = await c.option(code, r.bytes(r.int(64))).catch(() => undefined);
          st.requests++;
          if (!replies) {
            st.disconnects++;
            return;
          }
          st.errorReplies++;
          assert.ok(replies.every((x) => x.replyType !== 1 || code === 3), `option ${code} was acknowledged`);
        }
        if (await c.closesWithin(300)) st.disconnects++;
      } finally {
        c.destroy();
      }
      return;
    }
    case "bad-magic": {
      const { client } = await RawNbdClient.ready(sock, { exportName: `${VG}/target` });
      const b = encodeRequest({ type: NBD_CMD_READ, cookie: 1n, offsetBytes: 0, lengthBytes: 512 });
      b.writeUInt32BE(r.u32(), 0);
      client.send(b);
      st.requests++;
      if (await client.closesWithin(1000)) st.disconnects++;
      else assert.fail("a request with a bad magic did not end the connection");
      client.destroy();
      return;
    }
    case "hostile-requests": {
      const { client } = await RawNbdClient.ready(sock, { exportName: `${VG}/target`, structured: r.chance(0.5) });
      const pending: Array<Promise<void>> = [];
      for (let k = 0; k < r.range(5, 40); k++) {
        const type = r.chance(0.25) ? r.range(8, 0xffff) : r.int(8);
        const flags = r.pick([0, 0, r.int(0x3f), r.int(0xffff)]);
        const offset = r.pick([BigInt(r.int(SIZE)), BigInt(SIZE - r.int(4096)), BigInt(SIZE), (BigInt(r.u32()) << 32n) | BigInt(r.u32()), 0xffffffffffffffffn - BigInt(r.int(4096))]);
        const length = r.pick([0, 512, r.int(70_000), 32 << 20, (32 << 20) + 1, 0xffffffff]);
        const outside = offset + BigInt(length) > BigInt(SIZE);
        const mustFail = (type === NBD_CMD_READ || type === NBD_CMD_WRITE) && outside && length > 0;
        const unknown = type > 7;
        if (type === NBD_CMD_WRITE) {
          const send = Math.min(length, 70_000);
          if (!outside && send === length) writes.push({ offset: Number(offset), length, byte: fill });
          if (send < length) {
            // A short payload, then the connection goes.
            client.send(encodeRequest({ type, flags, cookie: BigInt(k + 1), offsetBytes: offset, lengthBytes: length }, Buffer.alloc(send, fill)));
            st.requests++;
            break;
          }
          pending.push(judge(client.request({ type, flags, offsetBytes: offset, lengthBytes: length }, Buffer.alloc(length, fill)), mustFail || unknown, st));
        } else {
          const reply = client.request({ type, flags, offsetBytes: offset, lengthBytes: length });
          // An in-range WRITE_ZEROES or TRIM the server accepts changes data too (to zeroes, or to anything).
          if ((type === NBD_CMD_WRITE_ZEROES || type === NBD_CMD_TRIM) && !outside && length > 0) {
            reply.then(
              (rep) => rep.error === 0 && writes.push({ offset: Number(offset), length, byte: type === NBD_CMD_TRIM ? undefined : 0 }),
              () => writes.push({ offset: Number(offset), length, byte: type === NBD_CMD_TRIM ? undefined : 0 }), // hung up: it may have run
            );
          }
          pending.push(judge(reply, mustFail || unknown, st));
        }
        st.requests++;
      }
      if (r.chance(0.3)) client.destroy();
      else await Promise.race([Promise.allSettled(pending), sleep(5000)]);
      client.destroy();
      const bad = (await Promise.allSettled(pending)).find((x) => x.status === "rejected");
      if (bad) throw (bad as PromiseRejectedResult).reason;
      return;
    }
    case "out-of-range": {
      // One request at a time, each of which must fail (reconnecting when the server hangs up).
      let client: RawNbdClient | undefined;
      for (let k = 0; k < 12; k++) {
        if (!client || client.isClosed) {
          client?.destroy();
          client = (await RawNbdClient.ready(sock, { exportName: `${VG}/target`, structured: r.chance(0.5) })).client;
        }
        const unknown = r.chance(0.3);
        const type = unknown ? r.range(8, 0xffff) : r.pick([NBD_CMD_READ, NBD_CMD_WRITE]);
        const length = r.pick([1, 512, 4096, 65536]);
        const offset = r.pick([BigInt(SIZE - length + 1 + r.int(length)), BigInt(SIZE), BigInt(SIZE) + BigInt(r.u32()), 0xffffffffffffffffn - BigInt(r.int(length))]);
        const o = unknown ? BigInt(r.int(SIZE - length)) : offset;
        const payload = type === NBD_CMD_WRITE ? Buffer.alloc(length, fill) : undefined;
        st.requests++;
        await judge(client.request({ type, offsetBytes: o, lengthBytes: length }, payload), true, st);
      }
      client?.destroy();
      return;
    }
    case "mid-reply-disconnect": {
      const { client } = await RawNbdClient.ready(sock, { exportName: `${VG}/target`, structured: r.chance(0.5) });
      for (let k = 0; k < r.range(1, 8); k++) {
        client.sendRequest({ type: NBD_CMD_READ, offsetBytes: 0, lengthBytes: r.pick([1 << 20, 4 << 20, 8 << 20]) });
        st.requests++;
      }
      await sleep(r.int(5));
      client.destroy();
      st.disconnects++;
      return;
    }
    case "flood": {
      const { client } = await RawNbdClient.ready(sock, { exportName: `${VG}/target` });
      const count = r.range(1000, 4000);
      const cookies: bigint[] = [];
      for (let k = 0; k < count; k++) cookies.push(client.sendRequest({ type: NBD_CMD_READ, offsetBytes: r.int(SIZE / 4096) * 4096, lengthBytes: 4096 }));
      st.requests += count;
      if (r.chance(0.3)) {
        await sleep(r.int(20));
        client.destroy();
        st.disconnects++;
        return;
      }
      const replies = await Promise.all(cookies.map((c) => client.waitReply(c).catch(() => undefined)));
      for (const rep of replies) if (rep && rep.error !== 0) st.errorReplies++;
      assert.ok(replies.every((x) => x !== undefined), "every one of thousands of in-flight reads was answered");
      client.destroy();
      return;
    }
    case "short-write-close": {
      const { client } = await RawNbdClient.ready(sock, { exportName: `${VG}/target` });
      const length = r.range(1024, 1 << 20);
      const offset = r.int(SIZE - length);
      const sent = r.int(length);
      writes.push({ offset, length, byte: fill });
      client.send(encodeRequest({ type: NBD_CMD_WRITE, cookie: 1n, offsetBytes: offset, lengthBytes: length }, Buffer.alloc(sent, fill)));
      st.requests++;
      await sleep(r.int(5));
      client.destroy();
      st.disconnects++;
      return;
    }
  }
}

async function judge(p: Promise<Reply>, mustFail: boolean, st: Stats): Promise<void> {
  let rep: Reply;
  try {
    rep = await p;
  } catch {
    return; // the server hung up: allowed
  }
  if (rep.error !== 0) st.errorReplies++;
  if (mustFail) {
    st.mustFail++;
    assert.notEqual(rep.error, 0, "a request outside the export (or of an unknown command) succeeded");
  }
}

function closesWithin(s: import("node:net").Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    s.once("close", () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

