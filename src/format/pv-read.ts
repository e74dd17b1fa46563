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
  /** Committed text, NUL and everything after it removed (decoded from textBytes on first use). */
  readonly text: string | undefined;
  /**
   * The same text as read, CRC-checked: the parse cache compares these bytes,
   * so a report whose parse is cached never decodes the text at all (four
   * copies of a 1,000-LV VG are 1.5 MB of UTF-8).
   */
  textBytes: Uint8Array | undefined;
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

/**
 * Shared by the reads of one scan: the texts already read, by checksum and
 * size. A VG keeps the same text on every PV, and on these machines the first
 * touch of fresh memory is what a large read costs most (a 1,000-LV text is
 * ~300 KB, ~1 ms of page faults per copy). So each further copy is still read
 * whole and CRC-checked, as lvm2 does, but through a small reused buffer and
 * compared with the copy already held, which it then shares; a copy that
 * differs in any byte gets its own buffer.
 */
export class TextCopies {
  private readonly byKey = new Map<string, Promise<Uint8Array | undefined>>();
  private readonly scratch: Uint8Array[] = [];

  /** The held text for this checksum and size (awaiting a read in flight), if any. */
  held(key: string): Promise<Uint8Array | undefined> | undefined {
    return this.byKey.get(key);
  }
  hold(key: string, text: Promise<Uint8Array | undefined>): void {
    this.byKey.set(key, text);
  }
  takeScratch(): Uint8Array {
    return this.scratch.pop() ?? new Uint8Array(VERIFY_CHUNK_BYTES);
  }
  giveScratch(b: Uint8Array): void {
    this.scratch.push(b);
  }
}

const VERIFY_CHUNK_BYTES = 64 * 1024;

export async function readDevice(dev: BlockDevice, path: string, copies?: TextCopies): Promise<DeviceRead> {
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
    result.mdas.push(await readMda(dev, path, index++, locn.offsetBytes, locn.sizeBytes, copies));
  }
  return result;
}

export async function readMda(dev: BlockDevice, path: string, index: number, startBytes: number, sizeBytes: number, copies?: TextCopies): Promise<MdaRead> {
  const m = new MdaReadResult(index, startBytes, sizeBytes);
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
  const pieces = locnPieces(c, sizeBytes);
  const key = `${c.checksum}:${c.sizeBytes}`;
  const held = copies?.held(key);
  let text = held && (await sameAsHeld(dev, startBytes, pieces, await held, copies!));
  if (!text) {
    const read = readText(dev, startBytes, pieces, c.sizeBytes, c.checksum);
    if (copies && !held) copies.hold(key, read);
    text = await read;
  }
  if (!text) return bad(BAD_MDA_TEXT, `Checksum error on ${path} at offset ${startBytes + c.offsetBytes}.`);
  const nul = text.indexOf(0);
  const bytes = Buffer.from(text.buffer, text.byteOffset, nul === -1 ? text.length : nul);
  // The text on disk must begin with the VG name (lvm2 rejects anything else).
  let nameEnd = 0;
  while (nameEnd < bytes.length && !NAME_END_BYTES.has(bytes[nameEnd]!)) nameEnd++;
  const vgName = bytes.toString("latin1", 0, nameEnd);
  if (!VG_NAME_RE.test(vgName)) return bad(BAD_MDA_TEXT, `Metadata location on ${path} at offset ${startBytes + c.offsetBytes} begins with invalid name.`);
  m.textBytes = bytes;
  m.textChecksum = c.checksum;
  m.vgName = vgName;
  return m;
}

type Pieces = ReturnType<typeof locnPieces>;

/** A text read whole into its own buffer; undefined when its CRC is wrong. */
async function readText(dev: BlockDevice, startBytes: number, pieces: Pieces, sizeBytes: number, checksum: number): Promise<Uint8Array | undefined> {
  const text = new Uint8Array(sizeBytes);
  let pos = 0;
  for (const piece of pieces) {
    await dev.read(startBytes + piece.mdaOffsetBytes, text.subarray(pos, pos + piece.lengthBytes));
    pos += piece.lengthBytes;
  }
  return lvmCrc(text) === checksum ? text : undefined;
}

/**
 * Read this copy chunk by chunk and compare it with the held text (same
 * checksum and size, so the CRC holds exactly when the bytes are equal): the
 * held text when every byte matches, undefined otherwise.
 */
async function sameAsHeld(dev: BlockDevice, startBytes: number, pieces: Pieces, heldText: Uint8Array | undefined, copies: TextCopies): Promise<Uint8Array | undefined> {
  if (!heldText) return undefined;
  const scratch = copies.takeScratch();
  try {
    let pos = 0;
    for (const piece of pieces) {
      for (let done = 0; done < piece.lengthBytes; ) {
        const n = Math.min(scratch.length, piece.lengthBytes - done);
        const chunk = scratch.subarray(0, n);
        await dev.read(startBytes + piece.mdaOffsetBytes + done, chunk);
        if (Buffer.compare(chunk, heldText.subarray(pos, pos + n)) !== 0) return undefined;
        done += n;
        pos += n;
      }
    }
    return heldText;
  } finally {
    copies.giveScratch(scratch);
  }
}

/** What ends the VG name at the start of a text: "{" or whitespace (as /[\s{]/ for ASCII). */
const NAME_END_BYTES = new Set([0x7b, 0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);

class MdaReadResult implements MdaRead {
  header: MdaHeaderDisk | undefined = undefined;
  ignored = false;
  textBytes: Uint8Array | undefined = undefined;
  textChecksum: number | undefined = undefined;
  vgName: string | undefined = undefined;
  problem: string | undefined = undefined;
  problems: string[] = [];
  badFields = 0;
  private decoded: string | undefined;
  constructor(
    readonly index: number,
    readonly startBytes: number,
    readonly sizeBytes: number,
  ) {}

  get text(): string | undefined {
    if (this.decoded === undefined && this.textBytes) this.decoded = Buffer.from(this.textBytes.buffer, this.textBytes.byteOffset, this.textBytes.length).toString("utf8");
    return this.decoded;
  }
}

export function isIoError(e: unknown): e is IoError {
  return e instanceof IoError;
}
