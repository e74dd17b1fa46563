import type { IoRecord } from "../../../src/blockdev/fault-block-device.js";
import type { Rng } from "./rng.js";

/**
 * Power-cut states of a set of devices from an IoRecorder trace, built in
 * one pass over increasing crash points.
 *
 * A completed write is durable once a flush of its device that started after
 * the write completed has itself completed (or when it was FUA). At a crash
 * point c (records with seq < c completed) a device holds its durable writes
 * and any subset of the others, including writes still in flight at c
 * (started before c); one of the kept writes may be torn: its sectors before
 * a random one land, that sector is cut at a random byte, the rest do not.
 * Where `sectorAtomic` says a format relies on whole 512-byte sector writes
 * (dm-integrity's metadata: each journal sector's commit id vouches for the
 * bytes before it, so the kernel's journal cannot survive a cut sector),
 * the torn sector does not land at all instead of being cut.
 */
export interface CrashPoint {
  readonly seq: number;
  /** Keep every completed write (a clean prefix) instead of a random subset. */
  readonly prefix: boolean;
}

export interface CrashState {
  readonly seq: number;
  readonly images: Map<string, Uint8Array>;
  /** Where the torn sector is, if any: device and byte offset. */
  readonly torn: { device: string; offsetBytes: number } | undefined;
  readonly kept: number;
  readonly dropped: number;
}

export class CrashImages {
  private readonly durable = new Map<string, Uint8Array>();
  private readonly pending = new Map<string, IoRecord[]>();
  private next = 0;

  constructor(
    base: ReadonlyMap<string, Uint8Array>,
    private readonly records: readonly IoRecord[],
    /** Places (device, byte offset of a sector) that a power cut never leaves half-written. */
    private readonly sectorAtomic?: (device: string, offsetBytes: number) => boolean,
  ) {
    for (const [name, b] of base) {
      this.durable.set(name, b.slice());
      this.pending.set(name, []);
    }
  }

  /** Apply records with seq < c (crash points must not decrease). */
  private advance(c: number): void {
    while (this.next < this.records.length && this.records[this.next]!.seq < c) {
      const r = this.records[this.next++]!;
      const img = this.durable.get(r.device);
      if (!img) continue;
      const pend = this.pending.get(r.device)!;
      if (r.op === "write") {
        if (r.fua) img.set(r.data, r.offsetBytes);
        else pend.push(r);
      } else {
        // Writes completed before this flush started are durable now, in completion order.
        let k = 0;
        while (k < pend.length && pend[k]!.seq < r.startSeq) img.set(pend[k]!.data, pend[k++]!.offsetBytes);
        pend.splice(0, k);
      }
    }
  }

  state(p: CrashPoint, rng: Rng): CrashState {
    this.advance(p.seq);
    const images = new Map<string, Uint8Array>();
    let kept = 0;
    let dropped = 0;
    // Candidates: completed but not durable, and (subsets only) in flight at the cut.
    const cands: IoRecord[] = [];
    for (const pend of this.pending.values()) cands.push(...pend);
    if (!p.prefix) {
      for (let i = this.next; i < this.records.length; i++) {
        const r = this.records[i]!;
        if (r.startSeq < p.seq && r.op === "write" && this.durable.has(r.device)) cands.push(r);
      }
    }
    cands.sort((a, b) => a.seq - b.seq);
    const keep = cands.filter((r) => {
      const k = p.prefix ? r.seq < p.seq : rng.chance(0.5);
      if (k) kept++;
      else dropped++;
      return k;
    });
    let torn: CrashState["torn"];
    const tearable = keep.filter((r) => r.data.length >= 512);
    const tearIt = !p.prefix && tearable.length > 0 ? rng.pick(tearable) : undefined;
    for (const [name, img] of this.durable) images.set(name, img.slice());
    for (const r of keep) {
      const img = images.get(r.device)!;
      if (r !== tearIt) {
        img.set(r.data, r.offsetBytes);
        continue;
      }
      const sectors = Math.floor(r.data.length / 512);
      const k = rng.int(sectors);
      const cut = 1 + rng.int(511);
      const landed = this.sectorAtomic?.(r.device, r.offsetBytes + k * 512) ? 0 : cut;
      img.set(r.data.subarray(0, k * 512 + landed), r.offsetBytes);
      torn = { device: r.device, offsetBytes: r.offsetBytes + k * 512 };
    }
    return { seq: p.seq, images, torn, kept, dropped };
  }
}
