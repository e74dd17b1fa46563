import type { ScannedDevice } from "../commands/scan.js";
import type { MdaRead } from "../format/pv-read.js";
import { parseVgText } from "../format/vg-import.js";
import { NO_ACTIVATION, type ActivationState } from "./activation-state.js";
import { Report, type ReportFlags } from "./engine.js";
import { REPORT_FIELDS, REPORT_TYPES, type ReportEnv, type ReportObject } from "./field-values.js";
import { UNITS_R } from "../base/units.js";
import { VgView } from "./vg-view.js";

/** Test support for the report modules: VG views over fake devices, no I/O. */
export function fakeMda(sizeBytes = 1044480, textBytes = 2048, ignored = false): MdaRead {
  const m = {
    index: 0,
    startBytes: 4096,
    sizeBytes,
    header: {
      startBytes: 4096,
      sizeBytes,
      committed: { offsetBytes: 512, sizeBytes: textBytes, checksum: 1, flags: ignored ? 1 : 0 },
      precommitted: { offsetBytes: 0, sizeBytes: 0, checksum: 0, flags: 0 },
    },
    ignored,
    text: undefined,
    textBytes: undefined,
    textChecksum: undefined,
    vgName: undefined,
    problem: undefined,
    problems: [],
    badFields: 0,
  };
  return m as MdaRead;
}

export function fakeDevice(name: string, sizeBytes: number, pvIdRaw: string | undefined, mdas: MdaRead[] = [fakeMda()]): ScannedDevice {
  return {
    entry: { name, real: name, isFile: true },
    path: name,
    sizeBytes,
    label: pvIdRaw === undefined ? undefined : {
      sector: 1,
      pvIdRaw,
      deviceSizeBytes: sizeBytes,
      dataAreas: [{ offsetBytes: 1048576, sizeBytes: 0 }],
      metadataAreas: mdas.map((m) => ({ offsetBytes: m.startBytes, sizeBytes: m.sizeBytes })),
      extVersion: 2,
      extFlags: 1,
      bootloaderAreas: [],
    },
    labelProblem: undefined,
    labelWarnings: [],
    mdas: pvIdRaw === undefined ? [] : mdas,
  };
}

/** A view of VG metadata text; PVs get devices /dev/fake0... unless listed in `missing` (by pvN index). */
export function viewFromText(text: string, opts: { missing?: number[]; activation?: ActivationState } = {}): VgView {
  const { vg } = parseVgText(text);
  const devices = new Map<string, ScannedDevice | undefined>();
  vg.pvs.forEach((pv, i) => {
    devices.set(pv.id, opts.missing?.includes(i) ? undefined : fakeDevice(`/dev/fake${i}`, pv.devSizeSectors * 512, pv.id));
  });
  return new VgView({ vg, devices, warnings: [] }, opts.activation ?? NO_ACTIVATION);
}

export const TEST_ENV: ReportEnv = { units: UNITS_R, suffix: true, devDir: "/dev/", binary: false };

export function flags(over: Partial<ReportFlags> = {}): ReportFlags {
  return { aligned: true, buffered: true, headings: true, fieldPrefixes: false, quoted: true, columnsAsRows: false, separator: " ", ...over };
}

export function lvReport(fields: string, keys = "vg_name,lv_name", over: Partial<ReportFlags> = {}, selection?: string, type = 4): Report<ReportObject> {
  return new Report(REPORT_TYPES, REPORT_FIELDS, type, fields, keys, flags(over), selection);
}

export function lvObject(v: VgView, name: string, env: ReportEnv = TEST_ENV): ReportObject {
  const lvv = v.lvByName.get(name);
  if (!lvv) throw new Error(`no LV ${name}`);
  return { env, vgv: v, lvv, seg: undefined, pvv: undefined, pvseg: undefined };
}

/** A small VG: pv0/pv1 of 15 extents, a linear LV on pv0 and a 2-leg mirror with a disk log. */
export const MIRROR_VG = `vgm {
id = "aaaaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa"
seqno = 3
format = "lvm2"
status = ["RESIZEABLE", "READ", "WRITE"]
flags = []
extent_size = 2048
max_lv = 0
max_pv = 0
metadata_copies = 0
physical_volumes {
pv0 {
id = "pv0000-0000-0000-0000-0000-0000-000000"
device = "/dev/fake0"
status = ["ALLOCATABLE"]
flags = []
dev_size = 32768
pe_start = 2048
pe_count = 15
}
pv1 {
id = "pv1111-1111-1111-1111-1111-1111-111111"
device = "/dev/fake1"
status = ["ALLOCATABLE"]
flags = []
dev_size = 32768
pe_start = 2048
pe_count = 15
}
pv2 {
id = "pv2222-2222-2222-2222-2222-2222-222222"
device = "/dev/fake2"
status = ["ALLOCATABLE"]
flags = []
dev_size = 32768
pe_start = 2048
pe_count = 15
}
}
logical_volumes {
lin {
id = "lin000-0000-0000-0000-0000-0000-000000"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
tags = ["zeta", "alpha"]
creation_time = 1700000000
creation_host = "h1"
segment_count = 1
segment1 {
start_extent = 0
extent_count = 4
type = "striped"
stripe_count = 1
stripes = ["pv0", 0]
}
}
mir {
id = "mir000-0000-0000-0000-0000-0000-000000"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
creation_time = 1700000000
creation_host = "h1"
segment_count = 1
segment1 {
start_extent = 0
extent_count = 8
type = "mirror"
mirror_count = 2
mirror_log = "mir_mlog"
region_size = 1024
mirrors = ["mir_mimage_0", 0, "mir_mimage_1", 0]
}
}
mir_mlog {
id = "log000-0000-0000-0000-0000-0000-000000"
status = ["READ", "WRITE"]
flags = []
creation_time = 1700000000
creation_host = "h1"
segment_count = 1
segment1 {
start_extent = 0
extent_count = 1
type = "striped"
stripe_count = 1
stripes = ["pv2", 0]
}
}
mir_mimage_0 {
id = "img000-0000-0000-0000-0000-0000-000000"
status = ["READ", "WRITE"]
flags = []
creation_time = 1700000000
creation_host = "h1"
segment_count = 1
segment1 {
start_extent = 0
extent_count = 8
type = "striped"
stripe_count = 1
stripes = ["pv0", 4]
}
}
mir_mimage_1 {
id = "img111-1111-1111-1111-1111-1111-111111"
status = ["READ", "WRITE"]
flags = []
creation_time = 1700000000
creation_host = "h1"
segment_count = 1
segment1 {
start_extent = 0
extent_count = 8
type = "striped"
stripe_count = 1
stripes = ["pv1", 0]
}
}
}
}
contents = "Text Format Volume Group"
version = 1
description = ""
creation_host = "h1"
creation_time = 1700000000
`;
