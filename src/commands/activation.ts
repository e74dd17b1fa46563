import { DaemonClient } from "../daemon/control-client.js";
import type { ActivationMode, ActiveLvStatus } from "../daemon/protocol.js";
import type { ToolContext } from "./toolcontext.js";
import { UsageError } from "../errors/errors.js";

/**
 * The CLI's side of activation: lvm2 asks device-mapper, ulvm asks its daemon
 * (starting it when needed). The daemon re-reads the committed metadata, so
 * these are called after a commit, with the VG lock still held.
 */
export function activationModeArg(v: string | undefined, command: string): ActivationMode {
  if (v === undefined) return "complete";
  if (v === "complete" || v === "degraded" || v === "partial") return v;
  throw new UsageError(`Invalid argument for --activationmode: ${v}`, command);
}

async function client(ctx: ToolContext, start: boolean): Promise<DaemonClient | undefined> {
  if (start) return DaemonClient.ensure(ctx.paths);
  return DaemonClient.tryConnect(ctx.paths);
}

export async function activateLv(ctx: ToolContext, vg: string, lv: string, mode: ActivationMode = "complete"): Promise<void> {
  if (ctx.opts.test) return;
  const c = await client(ctx, true);
  try {
    await c!.request({ op: "activate", vg, lv, mode, ...(ctx.opts.devices?.length ? { devices: ctx.opts.devices } : {}) });
  } finally {
    c!.close();
  }
}

export async function deactivateLv(ctx: ToolContext, vg: string, lv: string): Promise<void> {
  if (ctx.opts.test) return;
  const c = await client(ctx, false);
  if (!c) return; // no daemon: nothing is active
  try {
    await c.request({ op: "deactivate", vg, lv });
  } finally {
    c.close();
  }
}

/** After a metadata change: bring the VG's active LVs in line (no-op when nothing is active). */
export async function reloadVg(ctx: ToolContext, vg: string): Promise<void> {
  if (ctx.opts.test) return;
  const c = await client(ctx, false);
  if (!c) return;
  try {
    await c.request({ op: "reload", vg, ...(ctx.opts.devices?.length ? { devices: ctx.opts.devices } : {}) });
  } finally {
    c.close();
  }
}

/** What the daemon holds, or [] when it is not running. */
export async function daemonStatus(ctx: ToolContext): Promise<ActiveLvStatus[]> {
  const c = await client(ctx, false);
  if (!c) return [];
  try {
    const r = await c.request<{ lvs: ActiveLvStatus[] }>({ op: "status" });
    return r.lvs;
  } catch {
    return [];
  } finally {
    c.close();
  }
}

export async function isLvActive(ctx: ToolContext, vg: string, lv: string): Promise<boolean> {
  return (await daemonStatus(ctx)).some((s) => s.vg === vg && s.lv === lv);
}

/** `dmsetup message <lv> 0 <message>` through the daemon (the LV must be active). */
export async function messageLv(ctx: ToolContext, vg: string, lv: string, message: string): Promise<void> {
  if (ctx.opts.test) return;
  const c = await client(ctx, false);
  if (!c) return;
  try {
    await c.request({ op: "message", vg, lv, message });
  } finally {
    c.close();
  }
}

/** Have the daemon mark every region of an active mirror out of sync (before adding a leg). */
export async function resetActiveMirrorLog(ctx: ToolContext, vg: string, lv: string): Promise<{ active: boolean; reset: boolean }> {
  if (ctx.opts.test) return { active: false, reset: false };
  const c = await client(ctx, false);
  if (!c) return { active: false, reset: false };
  try {
    return await c.request<{ active: boolean; reset: boolean }>({ op: "reset-mirror-log", vg, lv });
  } finally {
    c.close();
  }
}
