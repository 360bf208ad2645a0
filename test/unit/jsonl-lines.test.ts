import { Readable } from 'node:stream';
import { describe, it, expect } from 'vitest';
import { decodeUtf8Line, readJsonlLines, type JsonlLine } from '../../src/lib/jsonl-lines.ts';

async function collect(chunks: (string | Buffer)[], maxLineBytes = 1024): Promise<JsonlLine[]> {
  const out: JsonlLine[] = [];
  const buffers = chunks.map((c) => (typeof c === 'string' ? Buffer.from(c, 'utf8') : c));
  for await (const line of readJsonlLines(Readable.from(buffers), maxLineBytes)) out.push(line);
  return out;
}

/** Splits a buffer into chunks of `size` bytes. */
function chunked(buf: Buffer, size: number): Buffer[] {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return parts;
}

describe('readJsonlLines', () => {
  it('splits LF lines and numbers them from 1', async () => {
    expect(await collect(['{"a":1}\n{"b":2}\n'])).toMatchObject([
      { lineNo: 1, text: '{"a":1}', bytes: 7, start: 0 },
      { lineNo: 2, text: '{"b":2}', bytes: 7, start: 8 },
    ]);
  });

  it('yields nothing for an empty stream', async () => {
    expect(await collect([])).toEqual([]);
    expect(await collect([''])).toEqual([]);
  });

  it('strips the CR of CRLF lines', async () => {
    const lines = await collect(['{"a":1}\r\n{"b":2}\r\n']);
    expect(lines.map((l) => l.text)).toEqual(['{"a":1}', '{"b":2}']);
    expect(lines.map((l) => l.lineNo)).toEqual([1, 2]);
  });

  it('reports where each line starts, past CRLF terminators and a BOM', async () => {
    const lines = await collect(['\ufeff{"a":1}\r\n\n{"b":2}\r', '\n{"c":3}']);
    expect(lines.map((l) => [l.lineNo, l.start])).toEqual([
      [1, 3],
      [2, 12],
      [3, 13],
      [4, 22],
    ]);
  });

  it('handles a CRLF split across chunks', async () => {
    const lines = await collect(['{"a":1}\r', '\n{"b":2}\r', '\n']);
    expect(lines.map((l) => l.text)).toEqual(['{"a":1}', '{"b":2}']);
  });

  it('keeps a CR that is not at the end of the line', async () => {
    expect((await collect(['a\rb\n']))[0]?.text).toBe('a\rb');
  });

  it('yields the last line when it has no newline', async () => {
    expect(await collect(['{"a":1}\n{"b":2}'])).toMatchObject([
      { lineNo: 1, text: '{"a":1}', bytes: 7, start: 0 },
      { lineNo: 2, text: '{"b":2}', bytes: 7, start: 8 },
    ]);
    expect((await collect(['{"a":1}\r\n{"b":2}\r']))[1]?.text).toBe('{"b":2}');
  });

  it('yields blank lines (as empty text) so physical numbering is kept', async () => {
    const lines = await collect(['a\n\n  \nb\n']);
    expect(lines.map((l) => [l.lineNo, l.text])).toEqual([
      [1, 'a'],
      [2, ''],
      [3, '  '],
      [4, 'b'],
    ]);
  });

  it('joins a line spread over many chunks', async () => {
    const text = `{"custom_id":"x","body":"${'y'.repeat(300)}"}`;
    const lines = await collect(chunked(Buffer.from(`${text}\nnext\n`), 7));
    expect(lines).toMatchObject([
      { lineNo: 1, text, bytes: Buffer.byteLength(text) },
      { lineNo: 2, text: 'next', bytes: 4 },
    ]);
  });

  it('drops an oversize line (text null) but counts it, and the next line is intact', async () => {
    const big = 'x'.repeat(5000);
    const lines = await collect([`first\n${big}\nthird\n`], 2048);
    expect(lines).toMatchObject([
      { lineNo: 1, text: 'first', bytes: 5 },
      { lineNo: 2, text: null, bytes: 5000 },
      { lineNo: 3, text: 'third', bytes: 5 },
    ]);
  });

  it('drops an oversize line that arrives in small chunks, including as the last line', async () => {
    const input = Buffer.from(`ok\n${'z'.repeat(3000)}\nafter\n${'w'.repeat(2049)}`);
    const lines = await collect(chunked(input, 100), 2048);
    expect(lines).toMatchObject([
      { lineNo: 1, text: 'ok', bytes: 2 },
      { lineNo: 2, text: null, bytes: 3000 },
      { lineNo: 3, text: 'after', bytes: 5 },
      { lineNo: 4, text: null, bytes: 2049 },
    ]);
  });

  it('keeps a line of exactly maxLineBytes and drops one byte more', async () => {
    const lines = await collect([`${'a'.repeat(16)}\n${'b'.repeat(17)}\n`], 16);
    expect(lines.map((l) => l.text)).toEqual(['a'.repeat(16), null]);
  });

  it('does not count the CR of a CRLF terminator as line content', async () => {
    // `bytes` is documented as "bytes of the line without its terminator"; for CRLF files the
    // terminator is "\r\n", so a CRLF line of exactly maxLineBytes must be kept like its LF twin.
    const lines = await collect([`${'a'.repeat(16)}\r\n${'b'.repeat(3)}\r\n`], 16);
    expect(lines).toMatchObject([
      { lineNo: 1, text: 'a'.repeat(16), bytes: 16 },
      { lineNo: 2, text: 'bbb', bytes: 3 },
    ]);
  });

  it('decodes multi-byte UTF-8 characters split across chunks', async () => {
    const text = '{"content":"héllo – 日本語 👋🏽"}';
    const whole = Buffer.from(`${text}\n${text}\n`, 'utf8');
    // Split inside the 4-byte emoji and inside a 3-byte CJK character.
    const emoji = whole.indexOf(Buffer.from('👋', 'utf8'));
    const cjk = whole.indexOf(Buffer.from('本', 'utf8'));
    const parts = [
      whole.subarray(0, cjk + 1),
      whole.subarray(cjk + 1, emoji + 2),
      whole.subarray(emoji + 2),
    ];
    expect(parts.map((p) => p.length).reduce((a, b) => a + b)).toBe(whole.length);
    const lines = await collect(parts);
    expect(lines.map((l) => l.text)).toEqual([text, text]);
    expect(lines[0]?.bytes).toBe(Buffer.byteLength(text, 'utf8'));
    // One byte per chunk too.
    expect((await collect(chunked(whole, 1))).map((l) => l.text)).toEqual([text, text]);
  });

  it('decodes a line that is not valid UTF-8 to lone surrogates, never to U+FFFD', async () => {
    // 0xff and 0xfe never occur in UTF-8: U+FFFD would silently change the custom_id, whereas a
    // lone surrogate (which valid UTF-8 cannot produce) lets the validator refuse the line.
    const bad = Buffer.concat([
      Buffer.from('{"id":"a'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}'),
    ]);
    const lines = await collect([Buffer.from('{"ok":1}\n'), bad, Buffer.from('\n{"ok":2}\n')]);
    expect(lines).toMatchObject([
      { lineNo: 1, text: '{"ok":1}', bytes: 8 },
      { lineNo: 2, text: '{"id":"a\udcff\udcfe"}', bytes: bad.length },
      { lineNo: 3, text: '{"ok":2}', bytes: 8 },
    ]);
    expect(lines[1]?.text).not.toContain('\ufffd');
  });

  it('drops a UTF-8 BOM at the start of the file, and only there', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const lines = await collect([
      Buffer.concat([bom, Buffer.from('{"a":1}\n'), bom, Buffer.from('{"b":2}\n')]),
    ]);
    expect(lines.map((l) => l.text)).toEqual(['{"a":1}', '\ufeff{"b":2}']);
  });

  it('escapes each byte of a truncated, overlong, surrogate or out-of-range sequence', () => {
    const decode = (...parts: (string | number[])[]) =>
      decodeUtf8Line(
        Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p)))),
      );
    expect(decode('é', [0xc3])).toBe('é\udcc3'); // truncated é at the end
    expect(decode([0xe6, 0x97], 'a')).toBe('\udce6\udc97a'); // truncated 日 before ASCII
    expect(decode([0xc0, 0xaf])).toBe('\udcc0\udcaf'); // overlong "/"
    expect(decode([0xe0, 0x80, 0xaf])).toBe('\udce0\udc80\udcaf'); // overlong "/", 3 bytes
    expect(decode([0xed, 0xa0, 0x80])).toBe('\udced\udca0\udc80'); // encoded surrogate U+D800
    expect(decode([0xf4, 0x90, 0x80, 0x80])).toBe('\udcf4\udc90\udc80\udc80'); // > U+10FFFF
    expect(decode([0x80], 'x')).toBe('\udc80x'); // lone continuation byte
    // Valid characters around the bad bytes are kept, astral ones as surrogate pairs.
    expect(decode('日本', [0xff], '👋🏽', [0xf0, 0x9f], '€')).toBe('日本\udcff👋🏽\udcf0\udc9f€');
  });

  it('measures the limit in bytes, not characters', async () => {
    const text = 'é'.repeat(10); // 20 bytes
    const lines = await collect([`${text}\n`], 15);
    expect(lines).toEqual([{ lineNo: 1, text: null, bytes: 20, start: 0 }]);
  });
});
