/**
 * The workload of the mirror and raid1 differential tests (not used by
 * production code): concurrent clients doing random reads, writes (some
 * FUA, many spanning regions) and flushes against a reference buffer, and
 * the random leg faults injected between their operations.
 */
import type { MappedDevice } from "../../mapped-device.js";
import type { FaultBlockDevice } from "../../../blockdev/fault-block-device.js";
import { type Prng, equalBytes, firstDiff, tick } from "../../test-helpers.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";

export interface RandomClients {
  readonly dev: MappedDevice;
  readonly rng: Prng;
  readonly clients: number;
  readonly opsPerClient: number;
  /** Each client works in its own area of this many sectors. */
  readonly areaSectors: number;
  readonly regionSectors: number;
  /** What the device must read back; updated by every acknowledged write. */
  readonly ref: Uint8Array;
  /** Called before each operation (a chance to fail a leg). */
  readonly beforeOp: () => void;
}

/** Run the clients; returns what they saw go wrong (errors and read mismatches). */
export async function runRandomClients(o: RandomClients): Promise<unknown[]> {
  const { dev, rng, ref } = o;
  const errors: unknown[] = [];
  let opCounter = 0;
  const client = async (c: number): Promise<void> => {
    const base = c * o.areaSectors;
    for (let i = 0; i < o.opsPerClient; i++) {
      const op = opCounter++;
      o.beforeOp();
      const start = base + rng.int(o.areaSectors - 1);
      const len = 1 + rng.int(Math.min(3 * o.regionSectors, base + o.areaSectors - start) - 1 || 1);
      const kind = rng.int(10);
      try {
        if (kind < 5) {
          const data = rng.pattern(len * SECTOR_BYTES, op + 1);
          await dev.write(start * SECTOR_BYTES, data, { fua: rng.int(5) === 0 });
          ref.set(data, start * SECTOR_BYTES);
        } else if (kind < 9) {
          const into = new Uint8Array(len * SECTOR_BYTES);
          await dev.read(start * SECTOR_BYTES, into);
          const want = ref.subarray(start * SECTOR_BYTES, (start + len) * SECTOR_BYTES);
          if (!equalBytes(into, want)) errors.push(new Error(`client ${c} op ${op}: read mismatch at byte ${start * SECTOR_BYTES + firstDiff(into, want)}`));
        } else {
          await dev.flush();
        }
      } catch (e) {
        errors.push(e);
      }
      if (rng.int(4) === 0) await tick();
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  return errors;
}

/** One random kind of leg fault: the device vanishes, or writes, flushes or all I/O start failing. */
export function injectLegFault(rng: Prng, f: FaultBlockDevice): void {
  switch (rng.int(4)) {
    case 0:
      f.vanish("EIO");
      break;
    case 1:
      f.addRule({ ops: ["write"], afterCount: rng.int(5) });
      break;
    case 2:
      f.addRule({ ops: ["flush"] });
      break;
    default:
      f.addRule({ ops: ["read", "write"], afterCount: rng.int(3) });
  }
}
