import type { LogHealth } from "../status.js";
import type { DeviceUse } from "../target.js";
import type { DirtyLog, SyncMode } from "./dirty-log.js";
import { bitsetBytes, clearBit, countBits, findNextZero, setBit, testBit } from "./bitset.js";

/**
 * The in-memory ("core") dirty log: nothing survives a restart, so after
 * every activation the whole mirror is out of sync unless loaded `nosync`
 * (dm-log.c create_log_context / core_*). The disk log extends it.
 */
export class CoreDirtyLog implements DirtyLog {
  readonly type: DirtyLog["type"] = "core";
  protected cleanBits: Uint8Array;
  protected syncBits: Uint8Array;
  protected syncCountValue: number;

  constructor(
    readonly regionSectors: number,
    readonly regionCount: number,
    readonly syncMode: SyncMode,
    cleanBits?: Uint8Array,
  ) {
    const bytes = bitsetBytes(regionCount);
    // Every region starts clean (nothing written yet) ...
    this.cleanBits = cleanBits ?? new Uint8Array(bytes);
    this.cleanBits.fill(0xff, 0, bytes);
    // ... but only `nosync` says the legs already agree.
    this.syncBits = new Uint8Array(bytes);
    if (syncMode === "nosync") {
      this.syncBits.fill(0xff);
      this.syncCountValue = regionCount;
    } else {
      this.syncCountValue = 0;
    }
    this.clearTail(this.syncBits);
  }

  /** Bits past regionCount up to the word end are kept 0, as the kernel does on resume. */
  protected clearTail(bits: Uint8Array): void {
    const end = bitsetBytes(this.regionCount) * 8;
    for (let i = this.regionCount; i < end; i++) clearBit(bits, i);
  }

  get persistent(): boolean {
    return false;
  }

  get health(): LogHealth {
    return "A";
  }

  get deviceName(): string | undefined {
    return undefined;
  }

  get syncCount(): number {
    return this.syncCountValue;
  }

  async resume(): Promise<void> {}

  isClean(region: number): boolean {
    return testBit(this.cleanBits, region);
  }

  isInSync(region: number): boolean {
    return testBit(this.syncBits, region);
  }

  markDirty(region: number): void {
    clearBit(this.cleanBits, region);
  }

  isMarkDurable(_region: number): boolean {
    return true;
  }

  markClean(region: number): void {
    setBit(this.cleanBits, region);
  }

  setInSync(region: number, inSync: boolean): void {
    const was = testBit(this.syncBits, region);
    if (inSync && !was) {
      setBit(this.syncBits, region);
      this.syncCountValue++;
    } else if (!inSync && was) {
      clearBit(this.syncBits, region);
      this.syncCountValue--;
    }
  }

  nextToResync(fromRegion: number): number | undefined {
    return findNextZero(this.syncBits, this.regionCount, fromRegion);
  }

  markAllOutOfSync(): void {
    this.syncBits.fill(0);
    this.syncCountValue = 0;
    this.cleanBits.fill(0, 0, bitsetBytes(this.regionCount));
  }

  /** Recount after bulk changes (resume). */
  protected recount(): void {
    this.syncCountValue = countBits(this.syncBits, this.regionCount);
  }

  async flush(): Promise<void> {}

  protected syncArgs(): string[] {
    return this.syncMode === "default" ? [] : [this.syncMode];
  }

  tableArgs(): string[] {
    const extra = this.syncArgs();
    return ["core", String(1 + extra.length), String(this.regionSectors), ...extra];
  }

  devices(): readonly DeviceUse[] {
    return [];
  }
}
