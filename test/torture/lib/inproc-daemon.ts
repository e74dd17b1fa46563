import { Daemon } from "../../../src/daemon/daemon.js";
import { FileBlockDevice } from "../../../src/blockdev/file-block-device.js";
import { FaultBlockDevice, type IoRecorder } from "../../../src/blockdev/fault-block-device.js";
import type { BlockDevice, WriteOptions } from "../../../src/blockdev/block-device.js";
import { IoError } from "../../../src/errors/errors.js";
import type { World } from "./world.js";

/**
 * The ulvm daemon running inside the torture process, with every PV it opens
 * wrapped in a FaultBlockDevice (and an observer that notes each injected
 * write error), so a scenario can fail, delay or pull a leg under the whole
 * stack: mirror target, failure policy, metadata commit, NBD server. The CLI
 * (child processes) finds it on the world's control socket as usual.
 */
export interface FailedWrite {
  readonly path: string;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

export class InProcessDaemon {
  readonly faults = new Map<string, FaultBlockDevice>();
  readonly failedWrites: FailedWrite[] = [];
  readonly log: string[] = [];
  private constructor(readonly daemon: Daemon) {}

  static async start(w: World, opts: { recorder?: IoRecorder } = {}): Promise<InProcessDaemon> {
    let self: InProcessDaemon | undefined;
    const openPv = async (path: string): Promise<BlockDevice> => {
      const inner = await FileBlockDevice.open(path);
      // A device reopened (after its PV came back) starts without scripted faults.
      const f = new FaultBlockDevice(inner, { name: path, ...(opts.recorder ? { recorder: opts.recorder } : {}) });
      self!.faults.set(path, f);
      return new ObservedDevice(f, (off, len) => self!.failedWrites.push({ path, offsetBytes: off, lengthBytes: len }));
    };
    const d = new Daemon(w.paths, { openPv });
    self = new InProcessDaemon(d);
    d.log = (line) => self!.log.push(`${new Date().toISOString()} ${line}`);
    await d.start();
    return self;
  }

  fault(path: string): FaultBlockDevice {
    const f = this.faults.get(path);
    if (!f) throw new Error(`the daemon has not opened ${path}`);
    return f;
  }

  async stop(): Promise<void> {
    await this.daemon.stop();
  }
}

/** Passes everything through; reports writes that failed with an IoError. */
class ObservedDevice implements BlockDevice {
  constructor(
    private readonly inner: BlockDevice,
    private readonly onWriteError: (offsetBytes: number, lengthBytes: number) => void,
  ) {}
  get name(): string {
    return this.inner.name;
  }
  get sizeBytes(): number {
    return this.inner.sizeBytes;
  }
  get caps() {
    return this.inner.caps;
  }
  read(offsetBytes: number, into: Uint8Array): Promise<void> {
    return this.inner.read(offsetBytes, into);
  }
  async write(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    try {
      await this.inner.write(offsetBytes, data, opts);
    } catch (e) {
      if (e instanceof IoError) this.onWriteError(offsetBytes, data.length);
      throw e;
    }
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
