import { closeSync, openSync, readSync, writeSync } from "node:fs";

/** `lengthBytes` bytes of a file (a PV image) from `offsetBytes`, as on disk. */
export function pread(path: string, offsetBytes: number, lengthBytes: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(lengthBytes);
    readSync(fd, b, 0, lengthBytes, offsetBytes);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** Overwrite a file's bytes at `offsetBytes` (damage, or a hand-made state). */
export function pwrite(path: string, offsetBytes: number, data: Uint8Array): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, data, 0, data.length, offsetBytes);
  } finally {
    closeSync(fd);
  }
}
