import { isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';

/** One physical line of a JSONL stream. `text` is null when the line exceeded `maxLineBytes`. */
export interface JsonlLine {
  /** 1-based physical line number. */
  lineNo: number;
  /**
   * The decoded line. When its bytes are not valid UTF-8 the text holds lone surrogates (see
   * {@link decodeUtf8Line}), so it is not well-formed and per-line validation rejects it.
   */
  text: string | null;
  /** Bytes of the line without its terminator (`\n` or `\r\n`), counted even when the text was dropped. */
  bytes: number;
  /** Byte offset in the stream where the line's text starts (after a leading BOM on line 1). */
  start: number;
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
  let lineStart = 0;
  const finish = (): JsonlLine => {
    lineNo++;
    const bytes = endsWithCr ? pieceBytes - 1 : pieceBytes;
    let text =
      tooLong || bytes > maxLineBytes
        ? null
        : decodeUtf8Line(Buffer.concat(pieces, pieceBytes).subarray(0, bytes));
    let start = lineStart;
    // Editors on Windows save UTF-8 with a byte-order mark: it belongs to the file, not to line 1.
    if (lineNo === 1 && text?.charCodeAt(0) === 0xfeff) {
      text = text.slice(1);
      start += 3;
    }
    const line = { lineNo, text, bytes, start };
    lineStart += pieceBytes + 1;
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

/**
 * Decodes one line. Valid UTF-8 (checked natively, so the common case costs one fast scan)
 * decodes as usual. Invalid UTF-8 is not papered over with U+FFFD, which would silently change
 * what the user wrote: each byte outside a valid sequence becomes the lone surrogate
 * U+DC80–U+DCFF (Python's "surrogateescape"). Valid UTF-8 never decodes to a lone surrogate, so
 * the result is well-formed Unicode exactly when the bytes were valid UTF-8, and nothing is lost.
 */
export function decodeUtf8Line(bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  // Slow path, for bad lines only: decode by hand into UTF-16LE (at most 2 bytes per input byte).
  const utf16 = Buffer.allocUnsafe(bytes.length * 2);
  let out = 0;
  const put = (unit: number): void => {
    utf16[out++] = unit & 0xff;
    utf16[out++] = unit >> 8;
  };
  let i = 0;
  while (i < bytes.length) {
    const b0 = bytes[i] ?? 0;
    const size = utf8SequenceLength(bytes, i);
    if (size === 0) {
      put(0xdc00 | b0);
      i++;
      continue;
    }
    let cp = size === 1 ? b0 : b0 & (0x7f >> size);
    for (let k = 1; k < size; k++) cp = (cp << 6) | ((bytes[i + k] ?? 0) & 0x3f);
    if (cp < 0x10000) put(cp);
    else {
      put(0xd800 | ((cp - 0x10000) >> 10));
      put(0xdc00 | (cp & 0x3ff));
    }
    i += size;
  }
  return utf16.toString('utf16le', 0, out);
}

/**
 * Length of the well-formed UTF-8 sequence starting at `i`, or 0 when there is none (Unicode
 * Table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF, no truncated sequence).
 */
function utf8SequenceLength(bytes: Buffer, i: number): number {
  const b0 = bytes[i] ?? 0;
  if (b0 < 0x80) return 1;
  const size = b0 < 0xc2 ? 0 : b0 < 0xe0 ? 2 : b0 < 0xf0 ? 3 : b0 < 0xf5 ? 4 : 0;
  if (size === 0 || i + size > bytes.length) return 0;
  // The second byte's range is narrower after E0, ED, F0 and F4; the others are 80–BF.
  const lo = b0 === 0xe0 ? 0xa0 : b0 === 0xf0 ? 0x90 : 0x80;
  const hi = b0 === 0xed ? 0x9f : b0 === 0xf4 ? 0x8f : 0xbf;
  const b1 = bytes[i + 1] ?? 0;
  if (b1 < lo || b1 > hi) return 0;
  for (let k = 2; k < size; k++) {
    const b = bytes[i + k] ?? 0;
    if (b < 0x80 || b > 0xbf) return 0;
  }
  return size;
}
