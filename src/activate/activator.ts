import { Table, formatTableLine } from "../mapper/table.js";
import type { MapperRegistry } from "../mapper/mapper-registry.js";
import type { DeviceNode } from "./device-tree.js";
import { staleIntegrityReason } from "../mapper/targets/integrity.js";

/**
 * Makes a device tree live in the mapper registry, with device-mapper's
 * reload discipline: tables only change while their device is suspended.
 *
 *   1. every existing device whose table changes is suspended, parents first
 *      (a parent's flush reaches its children while they are still live);
 *   2. bottom-up, each new or changed device gets its table and is resumed,
 *      so a parent's new table is built over children already serving theirs;
 *      (and so is a stale integrity layer, see StaleIntegrityTarget);
 *   3. devices the old tree had and the new one does not are removed, top-down.
 *
 * Clients of a suspended device simply wait: an NBD connection stays up.
 */
export function tableText(lines: DeviceNode["lines"]): string {
  return lines.map((l) => formatTableLine(l)).join("\n");
}

export class Activator {
  constructor(private readonly registry: MapperRegistry) {}

  /** Apply `nodes` (sub-devices first); `previous` are the device names the LV used before. */
  async apply(nodes: readonly DeviceNode[], previous: readonly string[] = []): Promise<void> {
    const changed = nodes.filter((n) => {
      const d = this.registry.get(n.name);
      // A stale integrity layer is loaded again even with the same table: its metadata may have
      // been re-initialised meanwhile (lvconvert --repair), and only a load reads it.
      return !d || !d.info().liveTable || d.table().trim() !== tableText(n.lines).trim() || staleIntegrityReason(d) !== undefined;
    });
    const existingChanged = changed.filter((n) => this.registry.get(n.name)?.info().liveTable);
    const suspended: string[] = [];
    const created: string[] = [];
    try {
      for (const n of [...existingChanged].reverse()) {
        await this.registry.get(n.name)!.suspend({ flush: true });
        suspended.push(n.name);
      }
      for (const n of changed) {
        let d = this.registry.get(n.name);
        if (!d) {
          d = this.registry.create(n.name);
          created.push(n.name);
        }
        await d.load(Table.from(n.lines));
        await d.resume();
      }
    } catch (e) {
      // Undo: drop half-loaded tables, bring suspended devices back on their old tables, forget new ones.
      for (const name of [...suspended].reverse()) {
        const d = this.registry.get(name);
        if (!d) continue;
        await d.clearInactive().catch(() => undefined);
        await d.resume().catch(() => undefined);
      }
      for (const name of [...created].reverse()) await this.registry.remove(name).catch(() => undefined);
      throw e;
    }
    const keep = new Set(nodes.map((n) => n.name));
    for (const name of previous) if (!keep.has(name) && this.registry.get(name) && this.registry.holders(name).length === 0) await this.registry.remove(name);
  }

  /** Remove the devices of a tree, top-down; devices still used by others are kept. */
  async remove(names: readonly string[]): Promise<void> {
    for (const name of [...names].reverse()) {
      if (!this.registry.get(name)) continue;
      if (this.registry.holders(name).length) continue;
      await this.registry.remove(name);
    }
  }
}
