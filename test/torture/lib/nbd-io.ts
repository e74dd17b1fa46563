import { createHash } from "node:crypto";
import { RawNbdClient } from "../../integration/nbd/raw-client.js";
import { xorshiftFill } from "./rng.js";
import { NBD_CMD_FLUSH, NBD_CMD_READ, NBD_CMD_WRITE } from "../../../src/nbd/protocol.js";

/** Whole-export reads and writes over the daemon's NBD socket, for set-ups and final checks. */

const CHUNK = 1 << 20;

export async function nbdSize(socketPath: string, exportName: string): Promise<number> {
  const { client, go } = await RawNbdClient.ready(socketPath, { exportName });
  client.destroy();
  return Number(go.sizeBytes);
}

/** Write `data` at 0 (in 1 MiB requests, 4 in flight), then flush. */
export async function nbdWriteAll(socketPath: string, exportName: string, data: Uint8Array): Promise<void> {
  const { client } = await RawNbdClient.ready(socketPath, { exportName });
  try {
    const offs: number[] = [];
    for (let off = 0; off < data.length; off += CHUNK) offs.push(off);
    const worker = async (): Promise<void> => {
      for (let off = offs.shift(); off !== undefined; off = offs.shift()) {
        const part = data.subarray(off, Math.min(data.length, off + CHUNK));
        const r = await client.request({ type: NBD_CMD_WRITE, offsetBytes: off, lengthBytes: part.length }, part);
        if (r.error !== 0) throw new Error(`NBD write at ${off} failed: error ${r.error}`);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    const f = await client.request({ type: NBD_CMD_FLUSH, offsetBytes: 0, lengthBytes: 0 });
    if (f.error !== 0) throw new Error(`NBD flush failed: error ${f.error}`);
  } finally {
    client.destroy();
  }
}

export async function nbdReadAll(socketPath: string, exportName: string, lengthBytes?: number): Promise<Buffer> {
  const { client, go } = await RawNbdClient.ready(socketPath, { exportName });
  try {
    const size = lengthBytes ?? Number(go.sizeBytes);
    const out = Buffer.alloc(size);
    for (let off = 0; off < size; off += CHUNK) {
      const n = Math.min(CHUNK, size - off);
      const r = await client.request({ type: NBD_CMD_READ, offsetBytes: off, lengthBytes: n });
      if (r.error !== 0 || !r.data) throw new Error(`NBD read at ${off} failed: error ${r.error}`);
      r.data.copy(out, off);
    }
    return out;
  } finally {
    client.destroy();
  }
}

/** Deterministic bytes for a seed. */
export function patternBytes(sizeBytes: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(sizeBytes);
  xorshiftFill(b, 0, sizeBytes, seed * 2654435761);
  return b;
}

export function sha(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex").slice(0, 16);
}
