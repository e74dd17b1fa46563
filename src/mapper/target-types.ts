import type { TargetType } from "./target.js";
import type { MirrorOptions } from "./targets/mirror/mirror-target.js";
import { linearTargetType } from "./targets/linear.js";
import { stripedTargetType } from "./targets/striped.js";
import { errorTargetType, zeroTargetType } from "./targets/zero-error.js";
import { createMirrorTargetType } from "./targets/mirror/mirror-type.js";
import { createRaid1TargetType } from "./targets/raid1/raid1-type.js";
import { integrityTargetType } from "./targets/integrity.js";

/** The target types a mapped device can load, keyed by dm name. */
export type TargetTypes = ReadonlyMap<string, TargetType>;

/**
 * linear, striped, zero, error, mirror, raid (raid1) and integrity. `mirror` options set
 * defaults for every mirror (cleaner period, resync rate and I/O size), and
 * for raid1 too unless `raid` gives its own (raid1 is the mirror core);
 * `extra` adds or replaces types (e.g. a test's own target).
 */
export function defaultTargetTypes(
  opts: { mirror?: Partial<MirrorOptions>; raid?: Partial<MirrorOptions>; extra?: readonly TargetType[] } = {},
): TargetTypes {
  const m = new Map<string, TargetType>();
  const types = [
    linearTargetType,
    stripedTargetType,
    zeroTargetType,
    errorTargetType,
    createMirrorTargetType(opts.mirror ?? {}),
    createRaid1TargetType(opts.raid ?? opts.mirror ?? {}),
    integrityTargetType,
  ];
  for (const t of types) m.set(t.name, t);
  for (const t of opts.extra ?? []) m.set(t.name, t);
  return m;
}
