import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { NbdServer } from "../../../src/nbd/server.js";
import { MemoryBlockDevice } from "../../../src/blockdev/memory-block-device.js";
import { FaultBlockDevice, IoRecorder } from "../../../src/blockdev/fault-block-device.js";
import { sleep, type World } from "./world.js";

/**
 * PVs whose every write, flush and FUA is recorded, for every process that
 * touches them (CLI commands and the daemon alike): each PV is a memory
 * device in this process behind a FaultBlockDevice sharing one IoRecorder,
 * served by ulvm's own NBD server and mounted as a file with nbdfuse. ulvm
 * sees plain files; fdatasync on them reaches the recorder as a flush.
 *
 * Never read these FUSE files synchronously from this process: the NBD
 * server answering them runs on this very event loop.
 */
export class RecordingPvs {
  readonly mems = new Map<string, MemoryBlockDevice>();
  readonly devs = new Map<string, FaultBlockDevice>();
  readonly files = new Map<string, string>();
  private readonly fuse: ChildProcess[] = [];
  private recorder: IoRecorder | undefined;

  private constructor(
    readonly server: NbdServer,
    readonly socketPath: string,
  ) {}

  static async start(w: World, disks: ReadonlyArray<{ name: string; sizeMiB: number }>): Promise<RecordingPvs> {
    const socketPath = join(w.dir, "pvs.sock");
    const server = new NbdServer({});
    const r = new RecordingPvs(server, socketPath);
    for (const d of disks) {
      const mem = new MemoryBlockDevice(d.name, d.sizeMiB << 20);
      const dev = new FaultBlockDevice(mem, { name: d.name });
      r.mems.set(d.name, mem);
      r.devs.set(d.name, dev);
      server.addExport({ name: d.name, device: dev });
    }
    await server.listenUnix(socketPath);
    for (const d of disks) {
      const mnt = join(w.dir, "fuse", d.name);
      mkdirSync(mnt, { recursive: true });
      const file = join(mnt, "pv");
      r.fuse.push(spawn("nbdfuse", [file, `nbd+unix:///${d.name}?socket=${socketPath}`], { stdio: "ignore" }));
      for (let i = 0; !existsSync(file); i++) {
        if (i > 400) throw new Error(`nbdfuse did not mount ${file}`);
        await sleep(25);
      }
      r.files.set(d.name, file);
    }
    return r;
  }

  /** Start recording; returns the recorder and a copy of every PV as it is now (the base of crash images). */
  startRecording(): { recorder: IoRecorder; base: Map<string, Uint8Array> } {
    const recorder = new IoRecorder();
    const base = new Map<string, Uint8Array>();
    for (const [name, mem] of this.mems) {
      base.set(name, mem.bytes.slice());
      this.devs.get(name)!.startRecording(recorder);
    }
    this.recorder = recorder;
    return { recorder, base };
  }

  stopRecording(): void {
    for (const d of this.devs.values()) d.stopRecording();
  }

  get nextSeq(): number {
    return this.recorder?.nextSeq ?? 0;
  }

  /** Unmount (lazily: a killed daemon may still hold files), then close the server. */
  async stop(): Promise<void> {
    for (const f of this.files.values()) spawnSync("fusermount3", ["-uz", join(f, "..")]);
    for (const p of this.fuse) p.kill("SIGTERM");
    await this.server.close({ timeoutMs: 2000 }).catch(() => undefined);
  }
}
