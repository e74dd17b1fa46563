import type { CommandDef } from "../cli/command-def.js";
import { CommandError } from "../errors/errors.js";
import { existsSync, openSync, writeSync, closeSync } from "node:fs";
import { lvmCrc } from "../base/crc.js";
import { ascii, readU32LE, readU64LEBig } from "../base/bytes.js";

/** A u64 field as a number; garbage past 2^53 becomes Infinity (printed with big()). */
function readU64LE(buf: Uint8Array, offset: number): number {
  const v = readU64LEBig(buf, offset);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(v);
}
const big = (buf: Uint8Array, offset: number): string => readU64LEBig(buf, offset).toString();
import { openBlockDevice } from "./device-open.js";
import type { BlockDevice } from "../blockdev/block-device.js";
import { FMTT_MAGIC, MDA_HEADER_BYTES, RAW_LOCN_IGNORED } from "../format/mda.js";
import { parseConfig } from "../format/text/parser.js";
import { findSetting } from "../format/text/config-tree.js";
import type { ToolContext } from "./toolcontext.js";
import { doesNotAcceptArgument, invalidArgument, noMatchingSyntax, silentFailure } from "./vg-common.js";

/**
 * pvck (tools/pvck.c): look at the on-disk structures of a device directly,
 * without a scan. Plain `pvck PV...` reports the label and metadata areas it
 * finds ("CHECK:" lines for bad fields); `--dump headers` prints every field
 * of the label, PV header and mda headers; `--dump metadata` the current
 * metadata text; `--dump metadata_area -f FILE` saves the whole area.
 */

/** lvm2's _chars_to_str: printable characters as-is, others as '?'. */
function charsToStr(b: Uint8Array): string {
  let s = "";
  for (const c of b) s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : "?";
  return s;
}

/** lvm2's _chars_to_hexstr: each byte as %x (no zero padding). */
function charsToHex(b: Uint8Array): string {
  let s = "";
  for (const c of b) s += c.toString(16);
  return s;
}

interface HeaderInfo {
  foundLabel: boolean;
  mdas: Array<{ offsetBytes: number; sizeBytes: number }>;
  bad: boolean;
}

class Reader {
  constructor(readonly dev: BlockDevice) {}
  async bytes(offset: number, length: number): Promise<Uint8Array | undefined> {
    if (offset + length > this.dev.sizeBytes) return undefined;
    const b = new Uint8Array(length);
    await this.dev.read(offset, b);
    return b;
  }
}

/** _dump_label_and_pv_header. */
async function labelAndPvHeader(ctx: ToolContext, r: Reader, labelSector: number, print: boolean): Promise<HeaderInfo> {
  const p = (l: string): void => ctx.out.print(l);
  const info: HeaderInfo = { foundLabel: false, mdas: [], bad: false };
  const lhOffset = labelSector * 512;
  const buf = await r.bytes(lhOffset, 512);
  if (!buf) {
    p(`CHECK: failed to read label_header at ${lhOffset}`);
    info.bad = true;
    return info;
  }
  if (print) {
    p(`label_header at ${lhOffset}`);
    p(`label_header.id ${charsToStr(buf.subarray(0, 8))}`);
    p(`label_header.sector ${big(buf, 8)}`);
    p(`label_header.crc 0x${readU32LE(buf, 16).toString(16)}`);
    p(`label_header.offset ${readU32LE(buf, 20)}`);
    p(`label_header.type ${charsToStr(buf.subarray(24, 32))}`);
  }
  let goodId = true;
  let goodType = true;
  if (ascii(buf, 0, 8) !== "LABELONE") {
    p("CHECK: label_header.id expected LABELONE");
    goodId = false;
    info.bad = true;
  }
  if (readU64LE(buf, 8) !== labelSector) {
    p(`CHECK: label_header.sector expected ${labelSector}`);
    info.bad = true;
  }
  const crc = lvmCrc(buf.subarray(20, 512));
  if (crc !== readU32LE(buf, 16)) {
    p(`CHECK: label_header.crc expected 0x${crc.toString(16)}`);
    info.bad = true;
  }
  if (readU32LE(buf, 20) !== 32) {
    p("CHECK: label_header.offset expected 32");
    info.bad = true;
  }
  if (ascii(buf, 24, 32) !== "LVM2 001") {
    p("CHECK: label_header.type expected LVM2 001");
    goodType = false;
    info.bad = true;
  }
  info.foundLabel = goodId && goodType;
  const pvhOffset = lhOffset + 32;
  if (print) {
    p(`pv_header at ${pvhOffset}`);
    p(`pv_header.pv_uuid ${charsToStr(buf.subarray(32, 64))}`);
    p(`pv_header.device_size ${big(buf, 64)}`);
  }
  if (!/^[0-9a-zA-Z!#]{32}$/.test(ascii(buf, 32, 64))) {
    p("CHECK: pv_header.pv_uuid invalid format");
    info.bad = true;
  }
  // disk_locn lists: data areas, then metadata areas, each ended by an all-zero entry.
  let di = 0;
  let pos = 72;
  const locn = (what: string): void => {
    if (!print) return;
    p(`pv_header.disk_locn[${di}] at ${lhOffset + pos} # ${what}`);
    p(`pv_header.disk_locn[${di}].offset ${big(buf, pos)}`);
    p(`pv_header.disk_locn[${di}].size ${big(buf, pos + 8)}`);
  };
  const inSector = (): boolean => pos + 16 <= 512;
  while (inSector() && readU64LE(buf, pos) !== 0) {
    locn("location of data area");
    di++;
    pos += 16;
  }
  if (!inSector()) return info;
  locn("location list end");
  di++;
  pos += 16;
  while (inSector() && readU64LE(buf, pos) !== 0) {
    locn("location of metadata area");
    const off = readU64LE(buf, pos);
    if (!info.mdas.length && off !== 4096 && off !== 8192 && off !== 65536) p(`WARNING: pv_header.disk_locn[${di}].offset ${big(buf, pos)} is unexpected # for first mda`);
    info.mdas.push({ offsetBytes: off, sizeBytes: readU64LE(buf, pos + 8) });
    di++;
    pos += 16;
  }
  if (!inSector()) return info;
  locn("location list end");
  pos += 16;
  if (pos + 8 > 512) return info;
  if (print) {
    p(`pv_header_extension at ${lhOffset + pos}`);
    p(`pv_header_extension.version ${readU32LE(buf, pos)}`);
    p(`pv_header_extension.flags ${readU32LE(buf, pos + 4)}`);
  }
  pos += 8;
  di = 0;
  const ext = (what: string): void => {
    if (!print) return;
    p(`pv_header_extension.disk_locn[${di}] at ${lhOffset + pos} # ${what}`);
    p(`pv_header_extension.disk_locn[${di}].offset ${big(buf, pos)}`);
    p(`pv_header_extension.disk_locn[${di}].size ${big(buf, pos + 8)}`);
  };
  while (inSector() && readU64LE(buf, pos) !== 0) {
    ext("bootloader area");
    di++;
    pos += 16;
  }
  if (inSector()) ext("location list end");
  return info;
}

interface MdaDump {
  print: boolean;
  printMetadata: boolean;
  area: boolean;
  toFile: string | undefined;
}

/** _dump_mda_header (with _check_mda_header, _dump_raw_locn, _dump_current_text). */
async function mdaHeader(ctx: ToolContext, r: Reader, mdaOffset: number, mdaSize: number, opts: MdaDump): Promise<{ bad: boolean; foundHeader: boolean; checksum0: number }> {
  const p = (l: string): void => ctx.out.print(l);
  const n = mdaOffset === 4096 ? 1 : 2;
  const out = { bad: false, foundHeader: false, checksum0: 0 };
  const buf = await r.bytes(mdaOffset, MDA_HEADER_BYTES);
  if (!buf) {
    p(`CHECK: failed to read mda_header at ${mdaOffset}`);
    out.bad = true;
    return out;
  }
  if (opts.print) {
    p(`mda_header_${n} at ${mdaOffset} # metadata area`);
    p(`mda_header_${n}.checksum 0x${readU32LE(buf, 0).toString(16)}`);
    p(`mda_header_${n}.magic 0x${charsToHex(buf.subarray(4, 20))}`);
    p(`mda_header_${n}.version ${readU32LE(buf, 20)}`);
    p(`mda_header_${n}.start ${big(buf, 24)}`);
    p(`mda_header_${n}.size ${big(buf, 32)}`);
  }
  const crc = lvmCrc(buf.subarray(4, MDA_HEADER_BYTES));
  if (crc !== readU32LE(buf, 0)) {
    p(`CHECK: mda_header_${n}.checksum expected 0x${crc.toString(16)}`);
    out.bad = true;
  }
  if (ascii(buf, 4, 20) !== FMTT_MAGIC) {
    p(`CHECK: mda_header_${n}.magic expected 0x${charsToHex(Buffer.from(FMTT_MAGIC, "latin1"))}`);
    out.bad = true;
  } else out.foundHeader = true;
  if (readU32LE(buf, 20) !== 1) {
    p(`CHECK: mda_header_${n}.version expected 1`);
    out.bad = true;
  }
  if (readU64LE(buf, 24) !== mdaOffset) {
    p(`CHECK: mda_header_${n}.start does not match pv_header.disk_locn.offset ${mdaOffset}`);
    out.bad = true;
  }
  if (readU64LE(buf, 32) !== mdaSize) {
    p(`CHECK: mda_header_${n}.size does not match pv_header.disk_locn.size ${mdaSize}`);
    out.bad = true;
  }
  if (opts.area) {
    if (!opts.toFile) {
      out.bad = true;
      return out;
    }
    const area = await r.bytes(mdaOffset, mdaSize);
    if (!area) {
      p(`CHECK: failed to read metadata area at offset ${mdaOffset} size ${mdaSize}`);
      out.bad = true;
      return out;
    }
    writeNewFile(opts.toFile, area.subarray(0, mdaSize - 512));
    return out;
  }
  let meta: { offset: number; size: number; checksum: number } | undefined;
  for (const ri of [0, 1]) {
    const o = 40 + ri * 24;
    const offset = readU64LE(buf, o);
    let size = readU64LE(buf, o + 8);
    const checksum = readU32LE(buf, o + 16);
    const flags = readU32LE(buf, o + 20);
    const wrapped = offset + size > mdaSize;
    if (opts.print) {
      p(`mda_header_${n}.raw_locn[${ri}] at ${mdaOffset + o} # ${ri === 0 ? "commit" : "precommit"}${wrapped ? " wrapped" : ""}`);
      p(`mda_header_${n}.raw_locn[${ri}].offset ${big(buf, o)}`);
      p(`mda_header_${n}.raw_locn[${ri}].size ${big(buf, o + 8)}`);
      p(`mda_header_${n}.raw_locn[${ri}].checksum 0x${checksum.toString(16)}`);
      p(`mda_header_${n}.raw_locn[${ri}].flags 0x${flags.toString(16)}${flags & RAW_LOCN_IGNORED ? " # RAW_LOCN_IGNORED" : ""}`);
    }
    if (ri === 1 && offset) p(`CHECK: mda_header_${n}.raw_locn[${ri}] for precommit not empty`);
    if (flags & RAW_LOCN_IGNORED) continue;
    if (size > mdaSize - 512) {
      p(`CHECK: mda_header_${n}.raw_locn[${ri}].size larger than metadata area size`);
      size = mdaSize - 512;
    }
    if (ri === 0) {
      out.checksum0 = checksum;
      if (offset) meta = { offset, size, checksum };
    }
  }
  if (!meta) return out;
  // The committed text, continued at mda offset 512 when it wraps.
  const wrap = Math.max(0, meta.offset + meta.size - mdaSize);
  const a = await r.bytes(mdaOffset + meta.offset, meta.size - wrap);
  const b = wrap ? await r.bytes(mdaOffset + 512, wrap) : new Uint8Array(0);
  if (!a || !b) {
    p(`CHECK: failed to read metadata text at mda_header_${n}.raw_locn[0].offset ${meta.offset} size ${meta.size}`);
    out.bad = true;
    return out;
  }
  const text = Buffer.concat([a, b]);
  const tcrc = lvmCrc(text);
  if (tcrc !== meta.checksum) {
    p(`CHECK: metadata text at ${mdaOffset + meta.offset} crc does not match mda_header_${n}.raw_locn[0].checksum`);
    out.bad = true;
  }
  const nul = text.indexOf(0);
  const str = text.subarray(0, nul === -1 ? text.length : nul).toString("utf8");
  let vgName = "?";
  let seqno = 0;
  try {
    const root = parseConfig(str);
    const first = root.children[0];
    if (first) vgName = first.name;
    if (first && first.kind === "section") {
      const s = findSetting(first, "seqno");
      if (s && s.value.kind === "int") seqno = s.value.value;
    }
  } catch {
    p(`CHECK: failed to parse metadata text at ${mdaOffset + meta.offset} size ${meta.size}`);
    out.bad = true;
  }
  if (opts.print || opts.printMetadata) p(`metadata text at ${mdaOffset + meta.offset} crc 0x${tcrc.toString(16)} # vgname ${vgName} seqno ${seqno}`);
  if (opts.printMetadata) {
    if (!opts.toFile) {
      p("---");
      ctx.out.write(str + "\n");
      p("---");
    } else writeNewFile(opts.toFile, Buffer.from(str, "utf8"));
  }
  return out;
}

/** fopen(path, "wx"): the file must not exist yet. */
function writeNewFile(path: string, data: Uint8Array): void {
  let fd: number;
  try {
    fd = openSync(path, "wx");
  } catch {
    throw new CommandError(`Failed to create file ${path}`);
  }
  try {
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

async function withDevice<T>(ctx: ToolContext, name: string, fn: (r: Reader) => Promise<T>): Promise<T> {
  let dev: BlockDevice;
  try {
    dev = await openBlockDevice(name, { write: false });
  } catch {
    throw new CommandError(`Cannot use ${name}: device not found.`);
  }
  try {
    return await fn(new Reader(dev));
  } finally {
    await dev.close();
  }
}

export const pvck: CommandDef = {
  name: "pvck",
  summary: "Check metadata on physical volumes",
  usage: `  pvck - Check metadata on physical volumes

  Check for metadata on a device
  pvck PV ...
	[ COMMON_OPTIONS ]

  Check and print LVM headers and metadata on a device
  pvck --dump headers|metadata|metadata_all|metadata_search PV
	[ -f|--file String ]
	[    --settings String ]
	[    --pvmetadatacopies 0|1|2 ]
	[ COMMON_OPTIONS ]

  Common options for command:
	[    --labelsector Number ]
`,
  options: [
    { name: "dump", value: true },
    { name: "file", short: "f", value: true },
    { name: "settings", value: true },
    { name: "pvmetadatacopies", value: true },
    { name: "labelsector", value: true },
    { name: "repairtype", value: true },
    { name: "repair", value: false },
  ],
  async run(ctx, args) {
    if (args.has("repair") || args.has("repairtype")) throw new CommandError("pvck --repair is not supported by ulvm yet.");
    if (!args.positional.length) throw noMatchingSyntax(ctx, "pvck");
    const labelSector = Number(args.str("labelsector") ?? 1);
    const dump = args.str("dump");
    if (dump !== undefined) {
      if (!["headers", "metadata", "metadata_all", "metadata_search", "metadata_area", "backup_to_raw"].includes(dump)) throw invalidArgument("pvck", "dump", dump);
      if (args.positional.length > 1) throw doesNotAcceptArgument("pvck", args.positional[1]!);
      if (!["headers", "metadata", "metadata_area"].includes(dump)) throw new CommandError(`pvck --dump ${dump} is not supported by ulvm yet.`);
      const name = args.positional[0]!;
      if (!existsSync(name)) throw new CommandError(`Cannot access ${name}.`);
      const toFile = args.str("file");
      const mdaNum = Number(args.str("pvmetadatacopies") ?? 1);
      const bad = await withDevice(ctx, name, async (r) => {
        const h = await labelAndPvHeader(ctx, r, labelSector, dump === "headers");
        let bad = h.bad;
        if (!h.mdas.length) {
          ctx.out.print("zero metadata copies");
          return false;
        }
        if (dump === "headers") {
          const sums: number[] = [];
          for (const m of h.mdas) {
            const res = await mdaHeader(ctx, r, m.offsetBytes, m.sizeBytes, { print: true, printMetadata: false, area: false, toFile: undefined });
            bad ||= res.bad;
            sums.push(res.checksum0);
          }
          if (sums.length === 2 && sums[0] && sums[1] && sums[0] !== sums[1]) ctx.out.print("CHECK: mdas have different raw_locn[0].checksum values");
          return bad;
        }
        const m = h.mdas[mdaNum - 1];
        if (!m) {
          ctx.out.print("CHECK: second mda not found");
          return true;
        }
        const res = await mdaHeader(ctx, r, m.offsetBytes, m.sizeBytes, { print: false, printMetadata: dump === "metadata", area: dump === "metadata_area", toFile });
        return bad || res.bad;
      });
      if (bad) throw new CommandError("Found bad header or metadata values.");
      return 0;
    }
    let bad = 0;
    let errorShown = false;
    for (const name of args.positional) {
      if (!existsSync(name) || !(await ctx.findDevice(name))) {
        ctx.out.error(`Cannot use ${name}: device not found.`);
        errorShown = true;
        continue;
      }
      const ok = await withDevice(ctx, name, async (r) => {
        const h = await labelAndPvHeader(ctx, r, labelSector, false);
        let fine = !h.bad;
        const found: Array<{ offsetBytes: number; sizeBytes: number }> = [];
        if (h.foundLabel) {
          for (const m of h.mdas) {
            const res = await mdaHeader(ctx, r, m.offsetBytes, m.sizeBytes, { print: false, printMetadata: false, area: false, toFile: undefined });
            if (res.bad) fine = false;
            if (res.foundHeader) found.push(m);
          }
          ctx.out.print(`Found label on ${name}, sector ${labelSector}, type=LVM2 001`);
        } else {
          ctx.out.error(`Could not find LVM label on ${name}`);
          errorShown = true;
          return "error";
        }
        for (const m of found) ctx.out.print(`Found text metadata area: offset=${m.offsetBytes}, size=${m.sizeBytes}`);
        return fine ? "ok" : "bad";
      });
      if (ok !== "ok") bad++;
    }
    // lvm2's command loop says this when a command fails without having printed an error.
    if (bad && !errorShown) ctx.out.error("Command failed with status code 5.");
    if (bad) throw silentFailure();
    return 0;
  },
};
