import type { ScrubSummary } from "../daemon/protocol.js";
/**
 * What the kernel side (for ulvm: the daemon that holds active LVs) knows about
 * an LV, in the terms lvm2's reports use (lib/activate/activate.c lv_info and
 * the mirror target's status line). Reports never guess: an LV the state does
 * not know is inactive, exactly as lvm2 reports an LV without a dm device.
 *
 * The daemon plugs in by implementing `ActivationState` and handing it to the
 * report commands through `ToolContext.activation` (see reportActivation()).
 */
export interface MirrorRegionStatus {
  /** dm mirror status: regions known in sync. */
  inSyncRegions: number;
  /** dm mirror status: total regions of that segment. */
  totalRegions: number;
}

export interface RaidDeviceStatus {
  /** One char per slot: A alive and in sync, a alive and recovering, D dead, - absent. */
  health: string;
  syncedSectors: number;
  totalSectors: number;
  /** idle, frozen, resync, recover, check, repair, reshape. */
  syncAction: string;
  mismatchCount: number;
  /** ulvm: the running or last check/repair, with the places of its mismatches. */
  scrub?: ScrubSummary;
}

export interface LvActivation {
  /** A live table is loaded (lvm2: info.exists && info.live_table). */
  active: boolean;
  /** Openers of the device (lvm2: info.open_count). */
  openCount: number;
  suspended: boolean;
  /** Activated read-only although the metadata allows writes (attr 'R'). */
  readOnly?: boolean;
  major?: number;
  minor?: number;
  /** Read-ahead in sectors the device currently uses. */
  readAheadSectors?: number;
  /**
   * For mirror LVs: the status of each mirror segment of the LV, in segment
   * order (one entry per dm "mirror" target). Drives Cpy%Sync and the i/I
   * attribute of the legs.
   */
  mirrorSegments?: MirrorRegionStatus[];
  /** For raid1 LVs: dm-raid's status (health char per slot, sync ratio in sectors, sync action, mismatch count). */
  raid?: RaidDeviceStatus;
  /** dmeventd-style monitoring text for lvdisplay -m ("monitored", "not monitored", ""). */
  monitoring?: string;
  /** For integrity LVs (raid1 images with --raidintegrity): dm-integrity's status. */
  integrity?: { mismatches: number; providedDataSectors: number; recalcSector: number | undefined };
}

export interface ActivationState {
  /**
   * Called once per command before any lvState() call, with the VGs about to
   * be reported: a daemon client fetches everything it needs in one request.
   */
  load?(vgNames: readonly string[]): Promise<void>;
  /** undefined = no device for this LV (inactive). */
  lvState(vgName: string, lvName: string): LvActivation | undefined;
}

/** Nothing is active: what ulvm reports until the daemon provides state. */
export const NO_ACTIVATION: ActivationState = {
  lvState: () => undefined,
};

/** A fixed map of states, for tests and for snapshots taken from the daemon. */
export class StaticActivationState implements ActivationState {
  private readonly byKey = new Map<string, LvActivation>();

  set(vgName: string, lvName: string, state: LvActivation): this {
    this.byKey.set(`${vgName}/${lvName}`, state);
    return this;
  }

  lvState(vgName: string, lvName: string): LvActivation | undefined {
    return this.byKey.get(`${vgName}/${lvName}`);
  }
}
