/**
 * Helpers shared by the mapper's tests (not used by production code):
 * a seeded PRNG, an env over named in-memory devices that records events,
 * and byte-comparison helpers.
 */
import type { BlockDevice } from "../blockdev/block-device.js";
import type { TargetEnv } from "./target.js";
import type { MapperEvent } from "./events.js";
import { MemoryBlockDevice } from "../blockdev/memory-block-device.js";

/** mulberry32: small, fast, good enough to drive random I/O reproducibly. */
export class Prng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  /** A buffer filled with a recognisable per-write pattern (cheaper than random bytes). */
  pattern(n: number, tag: number): Uint8Array {
    const b = new Uint8Array(n);
    const v = new DataView(b.buffer);
    for (let i = 0; i + 4 <= n; i += 4) v.setUint32(i, (tag * 2654435761 + i) >>> 0, true);
    return b;
  }
}

export interface TestEnv extends TargetEnv {
  readonly devices: Map<string, BlockDevice>;
  readonly events: MapperEvent[];
  /** Set to make onEvent slow or failing; default resolves at once. */
  handler: ((e: MapperEvent) => void | Promise<void>) | undefined;
  released: string[];
}

export function testEnv(devs: Record<string, BlockDevice> = {}): TestEnv {
  const devices = new Map(Object.entries(devs));
  const env: TestEnv = {
    devices,
    events: [],
    handler: undefined,
    released: [],
    openDevice(name: string): BlockDevice {
      const d = devices.get(name);
      if (d === undefined) throw new Error(`no device ${name}`);
      return d;
    },
    releaseDevice(name: string): void {
      env.released.push(name);
    },
    onEvent(e: MapperEvent): void | Promise<void> {
      env.events.push(e);
      return env.handler?.(e);
    },
  };
  return env;
}

export function mem(name: string, sizeBytes: number): MemoryBlockDevice {
  return new MemoryBlockDevice(name, sizeBytes);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** First differing byte offset, or -1. */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

export function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
