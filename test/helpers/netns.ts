import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { isRoot, which, type Lab } from "./lab.js";

/**
 * A second "host" for tests of remote PVs (issue 18): a network namespace
 * joined to the test's own by a veth pair, each end with an address of a
 * /30 of its own. `down()` pulls the cable (a partition: packets vanish,
 * connections stall rather than reset), `up()` plugs it back. The namespace
 * and the pair are deleted at the lab's cleanup, also when the test fails;
 * their names start with "ulvmt" and carry the test process's pid.
 */
export class NetnsPeer {
  private constructor(
    readonly ns: string,
    /** The veth end in the test's namespace. */
    readonly hostDev: string,
    readonly hostAddr: string,
    /** The address of the end inside `ns`. */
    readonly peerAddr: string,
  ) {}

  private static count = 0;

  /** Make the namespace and the pair (registered with the lab's cleanup before anything can fail). */
  static create(lab: Lab): NetnsPeer {
    const n = NetnsPeer.count++;
    const id = `${process.pid % 100000}x${n}`;
    // A /30 in 10.231.0.0/16 from the pid and the counter: parallel test files do not collide.
    const net = ((process.pid * 8 + n) % 16384) * 4;
    const base = `10.231.${net >> 8}.`;
    const peer = new NetnsPeer(`ulvmt${id}`, `ulvh${id}`, `${base}${(net & 0xff) + 1}`, `${base}${(net & 0xff) + 2}`);
    lab.onCleanup(() => peer.remove());
    const peerDev = `ulvp${id}`;
    ip("netns", "add", peer.ns);
    ip("link", "add", peer.hostDev, "type", "veth", "peer", "name", peerDev);
    ip("link", "set", peerDev, "netns", peer.ns);
    ip("addr", "add", `${peer.hostAddr}/30`, "dev", peer.hostDev);
    ip("-n", peer.ns, "addr", "add", `${peer.peerAddr}/30`, "dev", peerDev);
    ip("-n", peer.ns, "link", "set", "lo", "up");
    ip("-n", peer.ns, "link", "set", peerDev, "up");
    ip("link", "set", peer.hostDev, "up");
    return peer;
  }

  /** A partition: the host's end of the cable goes down. */
  down(): void {
    ip("link", "set", this.hostDev, "down");
  }

  up(): void {
    ip("link", "set", this.hostDev, "up");
  }

  /**
   * Start `args` inside the namespace (it dies with the test process where it supports --exit-with-parent).
   * Only the network namespace is entered (nsenter --net), not `ip netns exec`: that one also gives the
   * process a copy of the host's mounts, and a file system mounted at that moment (this test's or another
   * test's running beside it) would stay mounted in the copy after the host unmounts it, its device held
   * until the process ends ("contains a filesystem in use" on lvchange -an).
   */
  spawn(args: readonly string[]): ChildProcess {
    return spawn("nsenter", [`--net=/run/netns/${this.ns}`, "--", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  }

  /**
   * Packet loss, as netem's "loss" (this kernel has no sch_netem): nftables in the peer's namespace drops
   * `percent`% of the TCP packets in each direction, at random (numgen), and counts them. Gone with the
   * namespace at cleanup, or at once with noLoss().
   */
  lose(percent: number): void {
    nft(this.ns, "add table inet ulvmloss");
    for (const [chain, hook] of [["in", "input"], ["out", "output"]]) {
      nft(this.ns, `add chain inet ulvmloss ${chain} { type filter hook ${hook} priority 0 ; }`);
      nft(this.ns, `add rule inet ulvmloss ${chain} meta l4proto tcp numgen random mod 100 < ${percent} counter drop`);
    }
  }

  /** Packets lose() dropped so far (both directions). */
  lostPackets(): number {
    const r = spawnSync("nsenter", [`--net=/run/netns/${this.ns}`, "nft", "list table inet ulvmloss"], { encoding: "utf8" });
    return [...(r.stdout ?? "").matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  }

  noLoss(): void {
    nft(this.ns, "delete table inet ulvmloss");
  }

  remove(): void {
    // Deleting the namespace destroys the end inside it, and with it the pair.
    spawnSync("ip", ["link", "del", this.hostDev], { stdio: "ignore" });
    spawnSync("ip", ["netns", "del", this.ns], { stdio: "ignore" });
  }
}

function nft(ns: string, command: string): void {
  const r = spawnSync("nsenter", [`--net=/run/netns/${ns}`, "nft", command], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`nft ${command} in ${ns}: ${r.stderr}`);
}

function ip(...args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr}`);
}

let probed: string | undefined | null = null;
/** Why network namespaces with a veth pair cannot be made here, or undefined when they can (probed once). */
export function netnsUnavailable(): string | undefined {
  if (probed !== null) return probed;
  if (!isRoot) probed = "needs root for network namespaces";
  else if (!which("ip")) probed = "ip (iproute2) not installed";
  else {
    const ns = `ulvmt${process.pid % 100000}probe`;
    const r = spawnSync("ip", ["netns", "add", ns], { encoding: "utf8" });
    if (r.status !== 0) probed = `cannot make a network namespace: ${r.stderr.trim()}`;
    else {
      const v = spawnSync("ip", ["-n", ns, "link", "add", "a0", "type", "veth", "peer", "name", "b0"], { encoding: "utf8" });
      probed = v.status === 0 ? undefined : `cannot make a veth pair: ${v.stderr.trim()}`;
      spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
    }
  }
  return probed;
}

/** Wait until nbdkit has written its pid file (it does so once it accepts connections). */
export async function waitPidFile(pidFile: string, child: ChildProcess): Promise<void> {
  let err = "";
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  for (let i = 0; i < 500 && !(existsSync(pidFile) && readFileSync(pidFile, "utf8").endsWith("\n")); i++) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${err}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  if (!existsSync(pidFile)) throw new Error(`server did not start: ${err}`);
}
