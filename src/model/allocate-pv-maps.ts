import type { VolumeGroup } from "./types.js";
import { segAreaExtents, segAreas } from "./lv-info.js";

/**
 * The free space the allocator may use, as lvm2 keeps it (lib/metadata/pv_map.c):
 * one map per allocatable PV, in the order the PVs were given, each holding
 * its free areas in a list sorted by size, largest first, equal sizes in PE
 * order. The allocator walks these lists while it reorders them (an area
 * whose unreserved part shrinks is moved further down), and which areas it
 * then sees or skips decides the layout, so the list is a real linked list
 * with lvm2's insertion rule rather than an array sorted afresh.
 */
export class PvArea {
  prev: PvArea;
  next: PvArea;
  constructor(
    readonly map: PvMap,
    public start: number,
    public count: number,
    /** Extents not yet reserved during one allocation pass. */
    public unreserved: number,
  ) {
    this.prev = this;
    this.next = this;
  }
}

/** An allocatable PV as the allocator sees it. */
export interface AllocPv {
  pvId: string;
  /** Device name, for messages. */
  name: string;
  peCount: number;
  tags: readonly string[];
}

export class PvMap {
  /** Sentinel of the circular area list; `head.next` is the largest area. */
  readonly head: PvArea;
  /** Free extents in the areas of this map. */
  peCount = 0;
  constructor(readonly pv: AllocPv) {
    this.head = new PvArea(this, -1, -1, -1);
  }

  isEmpty(): boolean {
    return this.head.next === this.head;
  }

  /** Areas in list order (a snapshot; the allocator itself walks the live list). */
  areas(): PvArea[] {
    const out: PvArea[] = [];
    for (let a = this.head.next; a !== this.head; a = a.next) out.push(a);
    return out;
  }

  /**
   * Insert before the first area whose count is smaller than this one's size
   * (its unreserved part when `reduced`), so equal sizes keep arrival order.
   */
  insert(a: PvArea, reduced: boolean): void {
    const size = reduced ? a.unreserved : a.count;
    let p = this.head.next;
    while (p !== this.head && !(size > p.count)) p = p.next;
    // dm_list_add(&p->list, &a->list): a goes just before p
    a.next = p;
    a.prev = p.prev;
    p.prev.next = a;
    p.prev = a;
    this.peCount += a.count;
  }

  remove(a: PvArea): void {
    a.prev.next = a.next;
    a.next.prev = a.prev;
    this.peCount -= a.count;
  }
}

/** Take `toGo` extents from the front of an area (consume_pv_area). */
export function consumePvArea(pva: PvArea, toGo: number): void {
  pva.map.remove(pva);
  if (toGo > pva.count) throw new Error(`consumePvArea: ${toGo} > ${pva.count}`);
  if (toGo < pva.count) {
    pva.start += toGo;
    pva.count -= toGo;
    pva.unreserved = pva.count;
    pva.map.insert(pva, false);
  }
}

/** Re-sort an area after its unreserved part changed (reinsert_changed_pv_area). */
export function reinsertChangedPvArea(pva: PvArea): void {
  pva.map.remove(pva);
  pva.map.insert(pva, true);
}

export function pvMapsSize(maps: readonly PvMap[]): number {
  let n = 0;
  for (const m of maps) n += m.peCount;
  return n;
}

/** A PE range selected on the command line ("PV:first-last"). */
export interface PeRange {
  start: number;
  count: number;
}

/** One entry of the allocatable PV list: a PV and, optionally, the ranges of it to use. */
export interface PvListEntry {
  pv: AllocPv;
  /** undefined = the whole PV. */
  ranges: PeRange[] | undefined;
}

/** Free runs [start, count] of every PV of the VG, in PE order (maximal runs). */
export function vgFreeRuns(vg: VolumeGroup): Map<string, Array<{ start: number; count: number }>> {
  const used = new Map<string, Array<[number, number]>>();
  for (const pv of vg.pvs) used.set(pv.id, []);
  for (const lv of vg.lvs)
    for (const seg of lv.segments) {
      const len = segAreaExtents(seg);
      for (const a of segAreas(seg)) if (a.kind === "pv") used.get(a.pvId)?.push([a.startPe, len]);
    }
  const out = new Map<string, Array<{ start: number; count: number }>>();
  for (const pv of vg.pvs) {
    const u = used.get(pv.id)!;
    u.sort((x, y) => x[0] - y[0]);
    const runs: Array<{ start: number; count: number }> = [];
    let pe = 0;
    for (const [s, l] of u) {
      if (s > pe) runs.push({ start: pe, count: Math.min(s, pv.peCount) - pe });
      pe = Math.max(pe, s + l);
    }
    if (pe < pv.peCount) runs.push({ start: pe, count: pv.peCount - pe });
    out.set(pv.id, runs.filter((r) => r.count > 0));
  }
  return out;
}

/**
 * Build the maps (create_pv_maps): for each listed PV, the free parts of each
 * selected range, in range order; a PV listed twice shares one map.
 */
export function createPvMaps(entries: readonly PvListEntry[], freeRuns: ReadonlyMap<string, ReadonlyArray<{ start: number; count: number }>>): PvMap[] {
  const maps: PvMap[] = [];
  const byId = new Map<string, PvMap>();
  for (const e of entries) {
    let m = byId.get(e.pv.pvId);
    if (!m) {
      m = new PvMap(e.pv);
      byId.set(e.pv.pvId, m);
      maps.push(m);
    }
    const runs = freeRuns.get(e.pv.pvId) ?? [];
    const ranges = e.ranges ?? [{ start: 0, count: e.pv.peCount }];
    for (const r of ranges) {
      const end = Math.min(r.start + r.count - 1, e.pv.peCount - 1);
      for (const run of runs) {
        const runEnd = run.start + run.count - 1;
        if (runEnd < r.start) continue;
        if (run.start > end) break;
        const s = Math.max(run.start, r.start);
        const t = Math.min(runEnd, end);
        if (t >= s) m.insert(new PvArea(m, s, t - s + 1, t - s + 1), false);
      }
    }
  }
  return maps;
}

/** Free extents of the whole VG (vg->free_count), in one pass over the segments. */
export function vgFreeCount(vg: VolumeGroup): number {
  const pvs = new Set<string>();
  let total = 0;
  for (const pv of vg.pvs) {
    pvs.add(pv.id);
    total += pv.peCount;
  }
  let used = 0;
  for (const lv of vg.lvs)
    for (const seg of lv.segments) {
      const len = segAreaExtents(seg);
      for (const a of segAreas(seg)) if (a.kind === "pv" && pvs.has(a.pvId)) used += len;
    }
  return total - used;
}
