import type { Readable } from 'node:stream';

/** One physical line of a JSONL stream. `text` is null when the line exceeded `maxLineBytes`. */
export interface JsonlLine {
  /** 1-based physical line number. */
  lineNo: number;
  text: string | null;
  /** Bytes of the line without its terminator (`\n` or `\r\n`), counted even when the text was dropped. */
  bytes: number;
}

/**
 * Splits a byte stream into lines without ever holding more than `maxLineBytes` (+1 for a CR) of
 * one line: an oversize line is counted and skipped, never buffered, so one hostile line cannot
 * exhaust memory.
 */
export async function* readJsonlLines(
  input: Readable,
  maxLineBytes: number,
): AsyncGenerator<JsonlLine> {
  let pieces: Buffer[] = [];
  let pieceBytes = 0;
  let tooLong = false;
  let endsWithCr = false;
  let lineNo = 0;
  const finish = (): JsonlLine => {
    lineNo++;
    const bytes = endsWithCr ? pieceBytes - 1 : pieceBytes;
    const text =
      tooLong || bytes > maxLineBytes
        ? null
        : Buffer.concat(pieces, pieceBytes).subarray(0, bytes).toString('utf8');
    const line = { lineNo, text, bytes };
    pieces = [];
    pieceBytes = 0;
    tooLong = false;
    endsWithCr = false;
    return line;
  };
  for await (const chunk of input) {
    const buf = chunk as Buffer;
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      append(buf.subarray(start, nl));
      yield finish();
      start = nl + 1;
    }
    if (start < buf.length) append(buf.subarray(start));
  }
  if (pieceBytes > 0) yield finish();

  function append(part: Buffer): void {
    if (part.length === 0) return;
    pieceBytes += part.length;
    endsWithCr = part[part.length - 1] === 13;
    if (tooLong) return;
    // One byte of slack so a CRLF line of exactly maxLineBytes still fits.
    if (pieceBytes > maxLineBytes + 1) {
      tooLong = true;
      pieces = [];
      return;
    }
    pieces.push(part);
  }
}
