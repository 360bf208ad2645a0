import { isUtf8 } from 'node:buffer';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeUtf8Line, readJsonlLines } from '../../src/lib/jsonl-lines.ts';
import { validateLine, type LineContext } from '../../src/domain/line-validation.ts';

/**
 * Properties behind two chaos-fuzz findings: bytes that are not UTF-8 must not be silently
 * repaired to U+FFFD, and body numbers must never be altered on their way upstream.
 */

const ctx: LineContext = {
  endpoint: '/v1/chat/completions',
  limits: { maxLineBytes: 1_048_576, maxJsonDepth: 64 },
  routeModel: () => 'sim',
};
const RUNS = { numRuns: 500, seed: 20_240_611 };

/** Inverse of decodeUtf8Line: lone U+DC80–U+DCFF back to their byte, the rest as UTF-8. */
function encodeEscaped(text: string): Buffer {
  const parts: Buffer[] = [];
  for (const ch of text) {
    const unit = ch.charCodeAt(0);
    const lone = ch.length === 1 && unit >= 0xdc80 && unit <= 0xdcff;
    parts.push(lone ? Buffer.from([unit & 0xff]) : Buffer.from(ch, 'utf8'));
  }
  return Buffer.concat(parts);
}

const isWellFormed = (s: string): boolean => !/\p{Cs}/u.test(s);

/** Bytes that are mostly UTF-8 with some damage: random bytes, text, and cut characters. */
const damagedUtf8 = fc
  .array(
    fc.oneof(
      fc.uint8Array({ maxLength: 4 }),
      fc.string({ unit: 'grapheme', maxLength: 6 }).map((s) => new Uint8Array(Buffer.from(s))),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 2 }).chain((s) => {
        const b = Buffer.from(s);
        return fc.integer({ min: 0, max: b.length }).map((n) => new Uint8Array(b.subarray(n)));
      }),
    ),
    { maxLength: 12 },
  )
  .map((parts) => Buffer.concat(parts));

describe('decodeUtf8Line (property)', () => {
  it('is well-formed exactly when the bytes are UTF-8, decodes those as Node does, loses nothing', () => {
    fc.assert(
      fc.property(damagedUtf8, (bytes) => {
        const text = decodeUtf8Line(bytes);
        expect(isWellFormed(text)).toBe(isUtf8(bytes));
        if (isUtf8(bytes)) expect(text).toBe(bytes.toString('utf8'));
        expect(encodeEscaped(text).equals(bytes)).toBe(true);
      }),
      RUNS,
    );
  });
});

describe('readJsonlLines + validateLine (property)', () => {
  /** A chat line whose custom_id and content carry `inject` (bytes 0x80–0xff only: no JSON syntax). */
  const lineBytes = (inject: Buffer): Buffer =>
    Buffer.concat([
      Buffer.from('{"custom_id":"id-'),
      inject,
      Buffer.from(
        '","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"',
      ),
      inject,
      Buffer.from('"}]}}'),
    ]);
  const highBytes = damagedUtf8.map((b) => Buffer.from(b.filter((x) => x >= 0x80)));

  it('accepts a line exactly when its bytes are UTF-8, keeping the custom_id byte for byte', async () => {
    await fc.assert(
      fc.asyncProperty(highBytes, async (inject) => {
        const ok = Buffer.from(
          '{"custom_id":"ok","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}',
        );
        const file = Buffer.concat([ok, Buffer.from('\n'), lineBytes(inject), Buffer.from('\r\n')]);
        const verdicts = [];
        for await (const line of readJsonlLines(Readable.from([file]), 4096)) {
          verdicts.push(validateLine(line.text, line.lineNo, ctx));
        }
        expect(verdicts).toHaveLength(2);
        expect(verdicts[0]?.ok).toBe(true);
        const verdict = verdicts[1];
        if (isUtf8(inject)) {
          expect(
            verdict?.ok &&
              Buffer.from(verdict.line.custom_id).equals(
                Buffer.concat([Buffer.from('id-'), inject]),
              ),
          ).toBe(true);
        } else {
          expect(verdict).toEqual({
            ok: false,
            error: {
              code: 'invalid_json_line',
              message: 'This line is not valid UTF-8.',
              param: null,
              line: 2,
            },
          });
        }
      }),
      RUNS,
    );
  });

  /** JSON number texts: finite doubles, big integers, and mantissa/exponent forms that overflow. */
  const numberText = fc.oneof(
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => JSON.stringify(v)),
    fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
    fc
      .tuple(fc.integer({ min: -99_999, max: 99_999 }), fc.integer({ min: -400, max: 400 }))
      .map(([m, e]) => `${m}e${e}`),
    fc.constantFrom('9007199254740991', '-9007199254740991', '9007199254740992', '0.1', '1e-7'),
  );

  it('never forwards a body number altered: upstream reads the value written, or the line fails', () => {
    fc.assert(
      fc.property(numberText, fc.constantFrom('seed', 'logit_bias'), (num, key) => {
        const value = key === 'seed' ? num : `{"50256":${num}}`;
        const text = `{"custom_id":"n","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[],"${key}":${value}}}`;
        const written = JSON.parse(num) as number;
        const verdict = validateLine(text, 3, ctx);
        const exact = Math.abs(written) <= Number.MAX_SAFE_INTEGER;
        expect(verdict.ok).toBe(exact);
        if (verdict.ok) {
          const body = JSON.parse(verdict.line.body) as {
            seed?: number;
            logit_bias?: Record<string, number>;
          };
          const sent = key === 'seed' ? body.seed : body.logit_bias?.['50256'];
          // `===`: -0 goes out as 0 (and 1e-400 as 0), as any JSON parser rounds it anyway.
          expect(sent === written, `${num} sent as ${String(sent)}`).toBe(true);
          // Integers are forwarded digit for digit.
          if (/^-?\d+$/.test(num)) expect(verdict.line.body).toContain(`:${BigInt(num)}`);
        } else {
          const param = key === 'seed' ? 'body.seed' : 'body.logit_bias.50256';
          expect(verdict.error).toMatchObject({ code: 'invalid_request', param, line: 3 });
        }
      }),
      RUNS,
    );
  });
});
