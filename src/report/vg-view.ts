import type { MdaRead } from "../format/pv-read.js";
import { PV_EXT_USED } from "../format/label.js";
import type { ScannedDevice } from "../commands/scan.js";
import { integrityParentOf, isIntegritySeg, isMirrorSeg, isRaidSeg, raidParentOf, segAreaExtents, segAreas } from "../model/lv-info.js";
import type { Area, IntegritySegment, LogicalVolume, MirrorSegment, PhysicalVolume, RaidSegment, Segment, VolumeGroup } from "../model/types.js";
import type { ActivationState, LvActivation } from "./activation-state.js";

/**
 * Everything the reports and *display commands derive from a VG, computed
 * once per command: PV names and allocation, sub-LV relations (mirror images
 * and logs), partial LVs, PV segments. Lookups are maps, so reporting a VG of
 * N LVs costs O(N + segments), never LVs × segments.
 */
export const UNKNOWN_DEVICE = "[unknown]";

/** What a device's metadata areas add up to (lvmcache's view of a PV label). */
export interface MdaSummary {
  count: number;
  usedCount: number;
  /** Smallest area, sectors (0 when none). */
  minSizeSectors: number;
  /** Smallest free space of any area, sectors (0 when none). */
  minFreeSectors: number;
}

export function mdaFreeSectors(m: MdaRead): number {
  const h = m.header;
  if (!h) return 0;
  const max = Math.floor((h.sizeBytes - 512) / 2) - 512;
  if (h.committed.offsetBytes === 0) return Math.floor(max / 512);
  if (h.committed.sizeBytes >= max) return 0;
  return Math.floor((max - h.committed.sizeBytes) / 512);
}

export function summariseMdas(mdas: readonly MdaRead[] | undefined): MdaSummary {
  if (!mdas || mdas.length === 0) return { count: 0, usedCount: 0, minSizeSectors: 0, minFreeSectors: 0 };
  let minSize = Infinity;
  let minFree = Infinity;
  let used = 0;
  for (const m of mdas) {
    if (!m.ignored) used++;
    minSize = Math.min(minSize, Math.floor(m.sizeBytes / 512));
    minFree = Math.min(minFree, mdaFreeSectors(m));
  }
  return { count: mdas.length, usedCount: used, minSizeSectors: minSize, minFreeSectors: minFree };
}

/** A PV as reports see it: in a VG (pv set) or an orphan (pv undefined). */
export class PvView {
  /** Extents allocated to LVs. */
  allocExtents = 0;
  private segCache: PvSegView[] | undefined;

  constructor(
    readonly id: string,
    readonly device: ScannedDevice | undefined,
    readonly vgv: VgView | undefined,
    readonly pv: PhysicalVolume | undefined,
  ) {}

  /** PV segments in PE order (allocated pieces and free gaps); built on first use. */
  get segments(): PvSegView[] {
    this.segCache ??= this.vgv ? this.vgv.pvSegments(this) : [];
    return this.segCache;
  }

  get name(): string {
    return this.device?.entry.name ?? UNKNOWN_DEVICE;
  }
  get missing(): boolean {
    return !this.device || (this.pv !== undefined && (this.pv.flags.includes("MISSING") || this.pv.status.includes("MISSING")));
  }
  get orphan(): boolean {
    return this.vgv === undefined;
  }
  get allocatable(): boolean {
    return this.pv?.status.includes("ALLOCATABLE") ?? false;
  }
  get exported(): boolean {
    return this.vgv?.exported ?? false;
  }
  /** Orphan whose label says it belongs to a VG (PV_EXT_USED): lvm2's attr 'u'. */
  get used(): boolean {
    if (!this.orphan) return true;
    return ((this.device?.label?.extFlags ?? 0) & PV_EXT_USED) !== 0;
  }
  /** pv->size: the metadata's dev_size, or the label's device size for orphans. */
  get sizeSectors(): number {
    if (this.pv) return this.pv.devSizeSectors;
    return Math.floor((this.device?.label?.deviceSizeBytes ?? 0) / 512);
  }
  get peStartSectors(): number {
    if (this.pv) return this.pv.peStartSectors;
    return Math.floor((this.device?.label?.dataAreas[0]?.offsetBytes ?? 0) / 512);
  }
  get peCount(): number {
    return this.pv?.peCount ?? 0;
  }
  get peSizeSectors(): number {
    return this.vgv?.vg.extentSizeSectors ?? 0;
  }
  /** The device's real size (sectors), 0 when missing. */
  get devSizeSectors(): number {
    return this.device ? Math.floor(this.device.sizeBytes / 512) : 0;
  }
  get mdas(): MdaSummary {
    return summariseMdas(this.device?.mdas);
  }
  /** pv_size field: PE count × extent size, or the whole size for orphans. */
  get reportSizeSectors(): number {
    return this.peCount ? this.peCount * this.peSizeSectors : this.sizeSectors;
  }
  /** pv_free field. */
  get freeSectors(): number {
    if (this.orphan) return this.used ? 0 : this.sizeSectors;
    return (this.peCount - this.allocExtents) * this.peSizeSectors;
  }
}

export interface PvSegView {
  pvv: PvView;
  startPe: number;
  lengthExtents: number;
  /** undefined = free space. */
  lvv: LvView | undefined;
  seg: SegView | undefined;
  areaIndex: number;
}

export interface SegView {
  lvv: LvView;
  seg: Segment;
  index: number;
  /** lvm2 segment type name ("linear" for a one-stripe striped segment). */
  typeName: string;
  areas: Area[];
  areaExtents: number;
  stripeSizeSectors: number;
  regionSizeSectors: number;
  mirror: MirrorSegment | undefined;
}

export class LvView {
  readonly segs: SegView[];
  readonly leCount: number;
  /** lvm2's MIRROR/MIRRORED status: the LV has a mirror segment. */
  readonly isMirror: boolean;
  /** Segment type of the first segment ("striped", "mirror", an opaque type...). */
  readonly firstType: string | undefined;
  /** The mirror segment using this LV as a leg, if any. */
  imageOf: { lvv: LvView; seg: SegView; leg: number } | undefined;
  /** The mirror segment using this LV as its log, if any. */
  logOf: { lvv: LvView; seg: SegView } | undefined;
  /** Other LVs' segments using this LV as an area (any segment type). */
  usedBy: SegView[] = [];
  partial = false;
  private stateCache: LvActivation | undefined | null = null;

  constructor(readonly vgv: VgView, readonly lv: LogicalVolume) {
    let le = 0;
    let mirror = false;
    this.segs = lv.segments.map((seg, index) => {
      le += seg.extentCount;
      const sv = makeSegView(this, seg, index);
      if (sv.mirror) mirror = true;
      return sv;
    });
    this.leCount = le;
    this.isMirror = mirror;
    this.firstType = lv.segments[0]?.type;
  }

  get name(): string {
    return this.lv.name;
  }
  get visible(): boolean {
    return this.lv.status.includes("VISIBLE");
  }
  get sizeSectors(): number {
    return this.leCount * this.vgv.vg.extentSizeSectors;
  }
  get isPvmove(): boolean {
    return this.lv.status.includes("PVMOVE");
  }
  get isMirrorImage(): boolean {
    return this.imageOf !== undefined;
  }
  get isMirrorLog(): boolean {
    return this.logOf !== undefined;
  }
  get notSynced(): boolean {
    return this.lv.status.includes("NOTSYNCED");
  }
  /** lv_is_raid (raid1, the level ulvm models): the first raid segment. */
  get raidSeg(): RaidSegment | undefined {
    const s = this.lv.segments[0];
    return s && isRaidSeg(s) ? s : undefined;
  }
  /** The raid1 LV this LV is an rimage or rmeta of (RAID_IMAGE / RAID_META, derived). */
  get raidOf(): { lv: LogicalVolume; seg: RaidSegment; meta: boolean } | undefined {
    return raidParentOf(this.vgv.vg, this.lv.name);
  }
  /** lv_is_integrity: the LV's first segment is an integrity layer (a raid1 image with --raidintegrity). */
  get integritySeg(): IntegritySegment | undefined {
    const s = this.lv.segments[0];
    return s && isIntegritySeg(s) ? s : undefined;
  }
  /** The integrity LV this LV is the `_iorig` (meta false) or `_imeta` (meta true) of. */
  get integrityOf(): { lv: LogicalVolume; seg: IntegritySegment; meta: boolean } | undefined {
    return integrityParentOf(this.vgv.vg, this.lv.name);
  }
  /** lv_get_raid_integrity_settings: a raid LV's first image's integrity segment, if it has one. */
  get raidIntegritySeg(): IntegritySegment | undefined {
    const r = this.raidSeg?.raids[0];
    const img = r ? this.vgv.vg.lvs.find((l) => l.name === r.image) : undefined;
    const s = img?.segments[0];
    return s && isIntegritySeg(s) ? s : undefined;
  }
  /** lv_is_raid_type: the raid LV or one of its sub-LVs. */
  get isRaidType(): boolean {
    return this.raidSeg !== undefined || this.raidOf !== undefined;
  }
  /** The kernel-side state, or undefined when inactive. */
  get state(): LvActivation | undefined {
    if (this.stateCache === null) this.stateCache = this.vgv.activation.lvState(this.vgv.name, this.lv.name);
    return this.stateCache;
  }
  get active(): boolean {
    return this.state?.active === true;
  }
  /** Mirror log LV of the first mirror segment that has one (lv_mirror_log_lv). */
  get mirrorLog(): LvView | undefined {
    for (const s of this.segs) if (s.mirror?.mirrorLog) return this.vgv.lvByName.get(s.mirror.mirrorLog);
    return undefined;
  }
}

function makeSegView(lvv: LvView, seg: Segment, index: number): SegView {
  const areas = segAreas(seg);
  const mirror = isMirrorSeg(seg) ? seg : undefined;
  let typeName = seg.type;
  if (seg.type === "striped" && !("opaque" in seg)) typeName = areas.length === 1 ? "linear" : "striped";
  return {
    lvv,
    seg,
    index,
    typeName,
    areas,
    areaExtents: segAreaExtents(seg),
    stripeSizeSectors: seg.type === "striped" && !("opaque" in seg) ? seg.stripeSizeSectors : 0,
    regionSizeSectors: mirror ? mirror.regionSizeSectors : isRaidSeg(seg) ? seg.regionSizeSectors : 0,
    mirror,
  };
}

/** What a view needs from a loaded VG (commands/vg-store's LoadedVg fits). */
export interface VgSource {
  vg: VolumeGroup;
  /** Device of each PV id; undefined = missing. */
  devices: ReadonlyMap<string, ScannedDevice | undefined>;
  /** Lines lvm2 prints when it reads the VG (missing PVs...). */
  warnings: readonly string[];
}

export class VgView {
  readonly vg: VolumeGroup;
  readonly pvs: PvView[];
  readonly pvById = new Map<string, PvView>();
  readonly lvs: LvView[];
  readonly lvByName = new Map<string, LvView>();
  freeExtents = 0;
  extentCount = 0;

  constructor(
    readonly loaded: VgSource,
    readonly activation: ActivationState,
  ) {
    this.vg = loaded.vg;
    this.pvs = this.vg.pvs.map((pv) => new PvView(pv.id, loaded.devices.get(pv.id), this, pv));
    for (const p of this.pvs) this.pvById.set(p.id, p);
    this.lvs = this.vg.lvs.map((lv) => new LvView(this, lv));
    for (const l of this.lvs) this.lvByName.set(l.name, l);
    this.link();
    this.markPartial();
    this.countAllocations();
    for (const p of this.pvs) this.extentCount += p.peCount;
    this.freeExtents = this.extentCount - this.pvs.reduce((n, p) => n + p.allocExtents, 0);
  }

  get name(): string {
    return this.vg.name;
  }
  get exported(): boolean {
    return this.vg.status.includes("EXPORTED");
  }
  get missingPvCount(): number {
    let n = 0;
    for (const p of this.pvs) if (p.missing) n++;
    return n;
  }
  get visibleLvCount(): number {
    let n = 0;
    for (const l of this.lvs) if (l.visible) n++;
    return n;
  }

  /** Metadata areas of the VG's present PVs (lvm2's fid lists). */
  mdas(): MdaSummary & { inUseMinSizeSectors: number; inUseMinFreeSectors: number } {
    let count = 0;
    let used = 0;
    let minSize = Infinity;
    let minFree = Infinity;
    for (const p of this.pvs) {
      for (const m of p.device?.mdas ?? []) {
        count++;
        if (m.ignored) continue;
        used++;
        minSize = Math.min(minSize, Math.floor(m.sizeBytes / 512));
        minFree = Math.min(minFree, mdaFreeSectors(m));
      }
    }
    const size = minSize === Infinity ? 0 : minSize;
    const free = minFree === Infinity ? 0 : minFree;
    return { count, usedCount: used, minSizeSectors: size, minFreeSectors: free, inUseMinSizeSectors: size, inUseMinFreeSectors: free };
  }

  private link(): void {
    for (const l of this.lvs) {
      for (const s of l.segs) {
        s.areas.forEach((a, i) => {
          if (a.kind !== "lv") return;
          const sub = this.lvByName.get(a.lvName);
          if (!sub) return;
          sub.usedBy.push(s);
          if (s.mirror && !sub.imageOf) sub.imageOf = { lvv: l, seg: s, leg: i };
        });
        if (s.mirror?.mirrorLog) {
          const log = this.lvByName.get(s.mirror.mirrorLog);
          if (log && !log.logOf) log.logOf = { lvv: l, seg: s };
        }
      }
    }
  }

  /** lvm2's _lv_mark_if_partial: an LV on a missing PV, or built on a partial LV, is partial. */
  private markPartial(): void {
    if (!this.pvs.some((p) => p.missing)) return; // nothing can be partial
    const state = new Map<LvView, 0 | 1 | 2>();
    const visit = (l: LvView): boolean => {
      const st = state.get(l);
      if (st === 2) return l.partial;
      if (st === 1) return false; // a loop: stop, as lvm2's POSTORDER_OPEN_FLAG does
      state.set(l, 1);
      let partial = false;
      for (const s of l.segs) {
        for (const a of s.areas) {
          if (a.kind === "pv") {
            const p = this.pvById.get(a.pvId);
            if (!p || p.missing) partial = true;
          } else {
            const sub = this.lvByName.get(a.lvName);
            if (sub && visit(sub)) partial = true;
          }
        }
        if (s.mirror?.mirrorLog) {
          const log = this.lvByName.get(s.mirror.mirrorLog);
          if (log && visit(log)) partial = true;
        }
      }
      l.partial = partial;
      state.set(l, 2);
      return partial;
    };
    for (const l of this.lvs) visit(l);
  }

  /** Extents each PV gives to LVs (pv_pe_alloc_count); PV segments are built only when asked for. */
  private countAllocations(): void {
    for (const l of this.lvs) {
      for (const s of l.segs) {
        for (const a of s.areas) {
          if (a.kind !== "pv") continue;
          const p = this.pvById.get(a.pvId);
          if (p) p.allocExtents += s.areaExtents;
        }
      }
    }
  }

  private segsByPv: Map<PvView, PvSegView[]> | undefined;

  /** lvm2's PV segments of one PV: a piece per LV segment area on it, free gaps merged (all PVs built in one pass). */
  pvSegments(p: PvView): PvSegView[] {
    if (!this.segsByPv) {
      const used = new Map<PvView, PvSegView[]>();
      for (const l of this.lvs) {
        for (const s of l.segs) {
          s.areas.forEach((a, i) => {
            if (a.kind !== "pv") return;
            const pv = this.pvById.get(a.pvId);
            if (!pv) return;
            let list = used.get(pv);
            if (!list) used.set(pv, (list = []));
            list.push({ pvv: pv, startPe: a.startPe, lengthExtents: s.areaExtents, lvv: l, seg: s, areaIndex: i });
          });
        }
      }
      this.segsByPv = new Map();
      for (const pv of this.pvs) {
        const list = (used.get(pv) ?? []).sort((a, b) => a.startPe - b.startPe);
        const out: PvSegView[] = [];
        let pe = 0;
        for (const u of list) {
          if (u.startPe > pe) out.push({ pvv: pv, startPe: pe, lengthExtents: u.startPe - pe, lvv: undefined, seg: undefined, areaIndex: 0 });
          out.push(u);
          pe = Math.max(pe, u.startPe + u.lengthExtents);
        }
        if (pe < pv.peCount) out.push({ pvv: pv, startPe: pe, lengthExtents: pv.peCount - pe, lvv: undefined, seg: undefined, areaIndex: 0 });
        this.segsByPv.set(pv, out);
      }
    }
    return this.segsByPv.get(p) ?? [];
  }
}

/** PV segments of an orphan PV: none (lvm2 gives orphans no PE map). */
export function orphanPvView(device: ScannedDevice): PvView {
  return new PvView(device.label!.pvIdRaw, device, undefined, undefined);
}
