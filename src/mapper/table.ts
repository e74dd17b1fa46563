import { TableError } from "./table-error.js";

/**
 * A device-mapper table: ordered lines `<start> <length> <target> <args...>`
 * that cover [0, size) sector by sector, without gaps or overlaps. This file
 * only checks the shape; target arguments are checked by each TargetType
 * when the table is loaded.
 */
export interface TableLine {
  readonly startSector: number;
  readonly lengthSectors: number;
  readonly targetType: string;
  readonly args: readonly string[];
}

export class Table {
  readonly lines: readonly TableLine[];
  readonly sizeSectors: number;

  private constructor(lines: readonly TableLine[]) {
    this.lines = lines;
    const last = lines[lines.length - 1];
    this.sizeSectors = last === undefined ? 0 : last.startSector + last.lengthSectors;
  }

  /** Validate and freeze a list of lines; throws TableError. */
  static from(lines: readonly TableLine[]): Table {
    if (lines.length === 0) throw new TableError("Table is empty: a table needs at least one line");
    let expectedStart = 0;
    const copy: TableLine[] = [];
    lines.forEach((line, i) => {
      const where = `Table line ${i + 1} (${line.targetType})`;
      if (!Number.isSafeInteger(line.startSector) || line.startSector < 0)
        throw new TableError(`${where}: invalid start sector ${line.startSector}`, { line: i, targetType: line.targetType });
      if (!Number.isSafeInteger(line.lengthSectors) || line.lengthSectors <= 0)
        throw new TableError(`${where}: invalid length ${line.lengthSectors} (must be a positive number of sectors)`, {
          line: i,
          targetType: line.targetType,
        });
      if (line.startSector > expectedStart)
        throw new TableError(
          `${where}: gap in table: line starts at sector ${line.startSector} but the previous line ends at sector ${expectedStart}`,
          { line: i, targetType: line.targetType },
        );
      if (line.startSector < expectedStart)
        throw new TableError(
          `${where}: overlap in table: line starts at sector ${line.startSector} but the previous line ends at sector ${expectedStart}`,
          { line: i, targetType: line.targetType },
        );
      if (!/^[A-Za-z0-9_-]+$/.test(line.targetType))
        throw new TableError(`${where}: invalid target type name "${line.targetType}"`, { line: i, targetType: line.targetType });
      for (const a of line.args) {
        if (a.length === 0 || /\s/.test(a))
          throw new TableError(`${where}: argument "${a}" is empty or contains white space`, { line: i, targetType: line.targetType });
      }
      copy.push(Object.freeze({ ...line, args: Object.freeze([...line.args]) }));
      expectedStart = line.startSector + line.lengthSectors;
      if (!Number.isSafeInteger(expectedStart)) throw new TableError(`${where}: table too large`, { line: i });
    });
    return new Table(Object.freeze(copy));
  }

  /** Parse `dmsetup table` text: one `<start> <length> <type> <args...>` per line. */
  static parse(text: string): Table {
    const lines: TableLine[] = [];
    text.split("\n").forEach((raw, i) => {
      const s = raw.trim();
      if (s === "" || s.startsWith("#")) return;
      const words = s.split(/\s+/);
      const [start, length, type, ...args] = words;
      if (start === undefined || length === undefined || type === undefined)
        throw new TableError(`Table text line ${i + 1}: expected "<start> <length> <target> [args...]"`);
      const num = (w: string, what: string): number => {
        if (!/^[0-9]+$/.test(w)) throw new TableError(`Table text line ${i + 1}: invalid ${what} "${w}"`);
        return Number(w);
      };
      lines.push({ startSector: num(start, "start"), lengthSectors: num(length, "length"), targetType: type, args });
    });
    return Table.from(lines);
  }

  toString(): string {
    return this.lines.map(formatTableLine).join("\n") + "\n";
  }
}

export function formatTableLine(line: TableLine): string {
  return [String(line.startSector), String(line.lengthSectors), line.targetType, ...line.args].join(" ");
}
