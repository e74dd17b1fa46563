import type { BlockDevice, ExtentLease, ReadOptions, WriteOptions } from "../blockdev/block-device.js";
import { PassThroughDevice } from "../blockdev/pass-through-device.js";
import { openDataDevice } from "../commands/device-open.js";
import { IoError } from "../errors/errors.js";

/**
 * The PV devices the daemon's tables use, opened once each and shared by every
 * table that names them. Each is wrapped so the daemon can revoke it: once
 * its PV is known to be gone (label wiped, device vanished), every further
 * I/O fails at once with ENXIO, and the mirror above fails that leg through
 * its ordinary error path.
 */
export class RevocableDevice extends PassThroughDevice {
  private revokedErrno: string | undefined;
  get revoked(): boolean {
    return this.revokedErrno !== undefined;
  }
  revoke(errno = "ENXIO"): void {
    this.revokedErrno ??= errno;
  }
  private check(): void {
    if (this.revokedErrno) throw this.gone();
  }
  private gone(): IoError {
    return new IoError(`${this.inner.name}: device is gone`, this.revokedErrno!);
  }
  // Not async: every request of every LV passes here, and an async wrapper
  // around a returned promise costs three microtask turns.
  override read(offsetBytes: number, into: Uint8Array, opts?: ReadOptions): Promise<void> {
    if (this.revokedErrno) return Promise.reject(this.gone());
    return this.inner.read(offsetBytes, into, opts);
  }
  override write(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    if (this.revokedErrno) return Promise.reject(this.gone());
    return this.inner.write(offsetBytes, data, opts);
  }
  override flush(): Promise<void> {
    if (this.revokedErrno) return Promise.reject(this.gone());
    return this.inner.flush();
  }
  async writeZeroes(offsetBytes: number, lengthBytes: number, opts?: WriteOptions): Promise<void> {
    this.check();
    if (this.inner.writeZeroes) return this.inner.writeZeroes(offsetBytes, lengthBytes, opts);
    return this.inner.write(offsetBytes, new Uint8Array(lengthBytes), opts);
  }
  async discard(offsetBytes: number, lengthBytes: number): Promise<void> {
    this.check();
    if (this.inner.discard) return this.inner.discard(offsetBytes, lengthBytes);
  }
  /** Passed through; a revocation while leased shows in problem(). */
  leaseExtents(offsetBytes: number, lengthBytes: number, forWrite: boolean): ExtentLease | undefined {
    if (this.revokedErrno) return undefined;
    const inner = this.inner.leaseExtents?.(offsetBytes, lengthBytes, forWrite);
    if (inner === undefined) return undefined;
    return {
      extents: inner.extents,
      problem: () => (this.revokedErrno ? this.gone() : inner.problem()),
      release: () => inner.release(),
    };
  }
}

export class PvPool {
  /** The default opens paths with FileBlockDevice and NBD URIs with the NBD client. */
  constructor(private readonly openInner: (path: string) => Promise<BlockDevice> = openDataDevice) {}

  private readonly devices = new Map<string, { dev: RevocableDevice; refs: number }>();
  private readonly opening = new Map<string, Promise<RevocableDevice>>();

  async open(path: string): Promise<RevocableDevice> {
    const e = this.devices.get(path);
    if (e && !e.dev.revoked) {
      e.refs++;
      return e.dev;
    }
    let p = this.opening.get(path);
    if (!p) {
      p = this.openInner(path).then((d) => new RevocableDevice(d));
      this.opening.set(path, p);
    }
    try {
      const dev = await p;
      const cur = this.devices.get(path);
      if (cur && cur.dev === dev) cur.refs++;
      else this.devices.set(path, { dev, refs: 1 });
      return dev;
    } finally {
      this.opening.delete(path);
    }
  }

  async release(path: string, dev: BlockDevice): Promise<void> {
    const e = this.devices.get(path);
    if (!e || e.dev !== dev) {
      await dev.close().catch(() => undefined);
      return;
    }
    if (--e.refs > 0) return;
    this.devices.delete(path);
    await e.dev.close().catch(() => undefined);
  }

  get(path: string): RevocableDevice | undefined {
    return this.devices.get(path)?.dev;
  }

  paths(): string[] {
    return [...this.devices.keys()];
  }

  async closeAll(): Promise<void> {
    for (const [p, e] of this.devices) {
      this.devices.delete(p);
      await e.dev.close().catch(() => undefined);
    }
  }
}
