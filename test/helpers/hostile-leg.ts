import assert from "node:assert/strict";
import { closeSync, openSync, truncateSync } from "node:fs";
import { join } from "node:path";
import type { Lab } from "./lab.js";
import { HostileNbdServer } from "./hostile-nbd-server.js";
import { MiB, topStatus } from "./raid1.js";

/**
 * The set-up of the hostile-server tests (node:test and torture): a VG on a
 * local disk and a PV on a HostileNbdServer (still honest), a raid1 LV `vg/r`
 * with image 0 local and image 1 remote, in sync. `run` must run ulvm
 * asynchronously: the server answers on this process's event loop.
 */
export interface HostileLegWorld {
  readonly lab: Lab;
  readonly server: HostileNbdServer;
  readonly local: string;
  readonly nbdSocket: string;
  run(...args: string[]): Promise<string>;
}

/** A VG on a local disk and a PV on the hostile server, a raid1 LV with image 0 local and image 1 remote, in sync. */
export async function hostileLegWorld(lab: Lab, run: (...args: string[]) => Promise<string>, lvMiB: number): Promise<HostileLegWorld> {
  const local = lab.addDisk("d1", 64);
  const image = join(lab.dir, "remote.img");
  closeSync(openSync(image, "w"));
  truncateSync(image, 64 * MiB);
  const server = await HostileNbdServer.start(join(lab.dir, "run", "hostile.sock"), image, 64 * MiB);
  lab.onCleanup(() => void server.close());
  lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}", "${server.uri}" ]\n\tnbd_timeout_s = 2\n}\nactivation {\n\tdevice_path = 0\n}\n`);
  await run("pvcreate", local, server.uri);
  await run("vgcreate", "vg", local, server.uri);
  await run("lvcreate", "--type", "raid1", "-m1", "-L", `${lvMiB}M`, "-n", "r", "vg", local, server.uri);
  const w = { lab, server, local, nbdSocket: join(lab.dir, "run", "nbd.sock"), run };
  const st = await waitInSyncAsync(lab);
  assert.equal(st, "AA", "both images in sync before the server turns");
  return w;
}

async function waitInSyncAsync(lab: Lab): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const st = await topStatus(lab, "r");
    if (st.raid?.health === "AA" && st.raid.syncedSectors === st.raid.totalSectors) return "AA";
    await new Promise((r) => setTimeout(r, 50));
  }
  return (await topStatus(lab, "r")).raid?.health ?? "";
}

