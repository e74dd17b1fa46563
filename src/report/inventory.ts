import type { ToolContext } from "../commands/toolcontext.js";
import type { DeviceScan, ScannedDevice } from "../commands/scan.js";
import { loadVg } from "../commands/vg-store.js";
import type { ActivationState } from "./activation-state.js";
import { daemonActivation } from "./daemon-activation.js";
import { PvView, VgView, orphanPvView } from "./vg-view.js";

/**
 * The VGs and orphan PVs a reporting command sees, in lvm2's processing order
 * (lvmcache's VG list: a VG found later is listed earlier; orphans last).
 * VGs are loaded on first use and their warnings (missing PVs, inconsistent
 * copies) printed once, as lvm2 prints them when it reads the VG.
 */
export class Inventory {
  private readonly views = new Map<string, VgView | null>();
  private orphanList: PvView[] | undefined;
  private readonly warned = new Set<string>();

  private constructor(
    readonly ctx: ToolContext,
    readonly scan: DeviceScan,
    readonly activation: ActivationState,
    /** VG names in processing order. */
    readonly vgNames: readonly string[],
  ) {}

  static async load(ctx: ToolContext): Promise<Inventory> {
    const scan = await ctx.scan();
    const names = discoveryOrder(scan);
    // Who knows what is active: the context's state if set (tests, the daemon itself), else the daemon.
    const activation = ctx.activation ?? (await daemonActivation(ctx.paths));
    if (activation.load) await activation.load(names);
    return new Inventory(ctx, scan, activation, names);
  }

  /** The VG, or undefined when no usable metadata names it. Prints its warnings once. */
  vg(name: string, warn = true): VgView | undefined {
    let v = this.views.get(name);
    if (v === undefined) {
      const loaded = loadVg(this.scan, name, { readOnly: true });
      v = loaded ? new VgView(loaded, this.activation) : null;
      this.views.set(name, v);
    }
    if (v && warn && !this.warned.has(name)) {
      this.warned.add(name);
      for (const w of v.loaded.warnings) this.ctx.out.warn(w);
    }
    return v ?? undefined;
  }

  /** Labelled devices no VG claims: pvcreate'd PVs, in scan order. */
  orphans(): PvView[] {
    if (!this.orphanList) {
      const claimed = new Set<string>();
      for (const n of this.vgNames) {
        const v = this.vg(n, false);
        if (v) for (const p of v.pvs) claimed.add(p.id);
      }
      this.orphanList = [];
      for (const d of this.scan.devices) {
        if (!d.label || claimed.has(d.label.pvIdRaw)) continue;
        if (this.scan.pvDevices.get(d.label.pvIdRaw) !== d) continue; // an unchosen duplicate
        this.orphanList.push(orphanPvView(d));
      }
    }
    return this.orphanList;
  }

  /** Devices without a PV label (pvs -a lists them). */
  nonPvs(): PvView[] {
    return this.scan.devices.filter((d) => !d.label).map((d) => new PvView("", d, undefined, undefined));
  }

  /** Every labelled device (lvmcache infos): for pvscan's column widths. */
  labelledDevices(): ScannedDevice[] {
    return this.scan.devices.filter((d) => d.label && this.scan.pvDevices.get(d.label.pvIdRaw) === d);
  }
}

/** lvmcache adds each newly seen VG at the head of its list: the last VG found comes first. */
function discoveryOrder(scan: DeviceScan): string[] {
  const valid = new Set(scan.vgNames());
  const seen: string[] = [];
  for (const d of scan.devices) {
    for (const m of d.mdas) {
      const n = m.vgName;
      if (n && valid.has(n) && !seen.includes(n)) seen.push(n);
    }
  }
  for (const n of valid) if (!seen.includes(n)) seen.push(n);
  return seen.reverse();
}
