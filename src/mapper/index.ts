/**
 * The mapper layer: device-mapper's role, in userspace. Public API for the
 * activation layer and the daemon; nothing here knows PVs, VGs or LVs.
 */
export { Table, formatTableLine } from "./table.js";
export type { TableLine } from "./table.js";
export { TableError } from "./table-error.js";
export { MappedDevice } from "./mapped-device.js";
export type { MappedDeviceInfo, MappedDeviceOptions, TargetStatusLine } from "./mapped-device.js";
export { MapperRegistry } from "./mapper-registry.js";
export type { DeviceUse, Target, TargetContext, TargetEnv, TargetType, TargetWriteOptions } from "./target.js";
export type { LegOp, MapperEvent, MapperEventHandler } from "./events.js";
export { formatStatusInfo } from "./status.js";
export type { LegHealth, LogHealth, MirrorStatus, RaidDeviceHealth, RaidStatus, RaidSyncAction, StripedStatus, TargetStatus } from "./status.js";
export { defaultTargetTypes } from "./target-types.js";
export type { TargetTypes } from "./target-types.js";
export { MirrorTarget, DEFAULT_MIRROR_OPTIONS } from "./targets/mirror/mirror-target.js";
export type { MirrorOptions } from "./targets/mirror/mirror-target.js";
export { createMirrorTargetType } from "./targets/mirror/mirror-type.js";
export { parseMirrorArgs, formatMirrorArgs } from "./targets/mirror/mirror-args.js";
export type { MirrorArgs } from "./targets/mirror/mirror-args.js";
export { Raid1Target } from "./targets/raid1/raid1-target.js";
export { createRaid1TargetType } from "./targets/raid1/raid1-type.js";
export { parseRaid1Args, formatRaid1Args } from "./targets/raid1/raid1-args.js";
export type { Raid1Args, Raid1Device } from "./targets/raid1/raid1-args.js";
export { planRaid1 } from "./targets/raid1/raid1-plan.js";
export type { Raid1Plan, SlotPlan } from "./targets/raid1/raid1-plan.js";
export { stripeMapSector } from "./targets/striped.js";
