import type { BlockDevice } from "../blockdev/block-device.js";
import { lvmCrc } from "../base/crc.js";
import { IoError } from "../errors/errors.js";
import { scanLabel, type PvLabelDisk } from "./label.js";
import { BAD_MDA_HEADER, BAD_MDA_START, BAD_MDA_TEXT, checkMdaHeader, locnPieces, MDA_HEADER_BYTES, RAW_LOCN_IGNORED, validateLocn, type MdaHeaderDisk } from "./mda.js";

/**
 * Read what a device holds in LVM2 terms: its label and, for each metadata
 * area, the header and the committed text. Never writes. Problems are recorded
 * per area, so that one bad copy does not hide the good ones.
 */
export interface MdaRead {
  /** 0 for the first area (lvm2's "mda1"), 1 for the second. */
  index: number;
  startBytes: number;
  sizeBytes: number;
  header: MdaHeaderDisk | undefined;
  ignored: boolean;
  /** Committed text, NUL and everything after it removed. */
  text: string | undefined;
  /** The raw_locn size/checksum of the text read, to tell copies apart quickly. */
  textChecksum: number | undefined;
  vgName: string | undefined;
  /** The first of `problems`, or undefined when the area is usable. */
  problem: string | undefined;
  /** What is wrong, one line each, in lvm2's words (without "WARNING: "). */
  problems: string[];
  /** lvm2's BAD_MDA_* bits (format/mda.ts); 0 when the area is usable. */
  badFields: number;
}

export interface DeviceRead {
  path: string;
  sizeBytes: number;
  label: PvLabelDisk | undefined;
  /** Why a LABELONE sector was rejected, when no valid one was found. */
  labelProblem: string | undefined;
  labelWarnings: string[];
  mdas: MdaRead[];
}

const LABEL_READ_BYTES = 4096;
const VG_NAME_RE = /^[A-Za-z0-9+_.-]+$/;

export async function readDevice(dev: BlockDevice, path: string): Promise<DeviceRead> {
  const result: DeviceRead = { path, sizeBytes: dev.sizeBytes, label: undefined, labelProblem: undefined, labelWarnings: [], mdas: [] };
  const first = new Uint8Array(Math.min(LABEL_READ_BYTES, dev.sizeBytes));
  if (first.length < 2048) return result; // too small to hold a label
  await dev.read(0, first);
  const scan = scanLabel(first);
  if (scan.kind === "bad") result.labelProblem = scan.reason;
  if (scan.kind !== "label") return result;
  result.label = scan.label;
  result.labelWarnings = scan.warnings;
  let index = 0;
  for (const locn of scan.label.metadataAreas) {
    result.mdas.push(await readMda(dev, path, index++, locn.offsetBytes, locn.sizeBytes));
  }
  return result;
}

export async function readMda(dev: BlockDevice, path: string, index: number, startBytes: number, sizeBytes: number): Promise<MdaRead> {
  const m: MdaRead = { index, startBytes, sizeBytes, header: undefined, ignored: false, text: undefined, textChecksum: undefined, vgName: undefined, problem: undefined, problems: [], badFields: 0 };
  const bad = (bits: number, ...lines: string[]): MdaRead => {
    m.badFields |= bits;
    m.problems.push(...lines);
    m.problem = m.problems[0];
    return m;
  };
  if (startBytes + MDA_HEADER_BYTES > dev.sizeBytes || sizeBytes < MDA_HEADER_BYTES * 2 || startBytes + sizeBytes > dev.sizeBytes) {
    // Not somewhere an mda can be: never "repaired" by writing there.
    return bad(BAD_MDA_HEADER | BAD_MDA_START, `metadata area at ${startBytes} (${sizeBytes} bytes) lies outside device ${path}`);
  }
  const hbuf = new Uint8Array(MDA_HEADER_BYTES);
  await dev.read(startBytes, hbuf);
  const check = checkMdaHeader(hbuf, startBytes, path);
  if (check.badFields) return bad(check.badFields | BAD_MDA_HEADER, ...check.problems);
  m.header = check.header;
  if (m.header.sizeBytes !== sizeBytes) {
    return bad(BAD_MDA_HEADER, `mda header size ${m.header.sizeBytes} does not match the PV header (${sizeBytes}) on ${path}`);
  }
  const c = m.header.committed;
  m.ignored = (c.flags & RAW_LOCN_IGNORED) !== 0;
  if (c.offsetBytes === 0) return m; // no VG: an orphan PV or a removed VG
  const badLocn = validateLocn(c, sizeBytes);
  if (badLocn) return bad(BAD_MDA_TEXT, `${badLocn} on ${path}`);
  const text = new Uint8Array(c.sizeBytes);
  let pos = 0;
  for (const piece of locnPieces(c, sizeBytes)) {
    await dev.read(startBytes + piece.mdaOffsetBytes, text.subarray(pos, pos + piece.lengthBytes));
    pos += piece.lengthBytes;
  }
  if (lvmCrc(text) !== c.checksum) return bad(BAD_MDA_TEXT, `Checksum error on ${path} at offset ${startBytes + c.offsetBytes}.`);
  const nul = text.indexOf(0);
  const str = Buffer.from(text.buffer, text.byteOffset, nul === -1 ? text.length : nul).toString("utf8");
  // The text on disk must begin with the VG name (lvm2 rejects anything else).
  const nameEnd = str.search(/[\s{]/);
  const vgName = nameEnd === -1 ? str : str.slice(0, nameEnd);
  if (!VG_NAME_RE.test(vgName)) return bad(BAD_MDA_TEXT, `Metadata location on ${path} at offset ${startBytes + c.offsetBytes} begins with invalid name.`);
  m.text = str;
  m.textChecksum = c.checksum;
  m.vgName = vgName;
  return m;
}

export function isIoError(e: unknown): e is IoError {
  return e instanceof IoError;
}
