import { createHash } from 'node:crypto';
import { invalidParam } from './error-bodies.ts';
import { mulberry32, seedFromHex } from './prng.ts';
import { reject } from './route-types.ts';
import type { RoutePlan, RouteRejection, SimRoute } from './route-types.ts';
import { estimateTokens } from './text-synth.ts';

/**
 * POST /v1/embeddings. Vectors are small (8 dimensions unless `dimensions` asks otherwise), unit
 * length and derived from a hash of each input, so equal inputs embed equally across requests.
 * `encoding_format: 'base64'` (what the official SDK sends by default) packs float32 little-endian.
 */
export const embeddingRoute: SimRoute = {
  defaultModel: null,
  plan: planEmbedding,
};

const DEFAULT_DIMENSIONS = 8;
const MAX_DIMENSIONS = 4096;

type EmbeddingInput = string | number[];

function planEmbedding(body: Record<string, unknown>, model: string): RoutePlan | RouteRejection {
  const inputs = normalizeInputs(body['input']);
  if (inputs === null) {
    return reject(
      400,
      invalidParam(
        'input',
        "Invalid 'input': expected a string, an array of strings or token arrays.",
      ),
    );
  }
  const dimensions = dimensionsOf(body['dimensions']);
  if (dimensions === null)
    return reject(
      400,
      invalidParam('dimensions', "Invalid 'dimensions': expected an integer 1..4096."),
    );
  const base64 = body['encoding_format'] === 'base64';
  let tokens = 0;
  for (const input of inputs)
    tokens += typeof input === 'string' ? estimateTokens(input) : input.length;
  return {
    ok: true,
    admissionTokens: tokens,
    render: () => {
      const data = inputs.map((input, index) => ({
        object: 'embedding',
        index,
        embedding: encode(vectorOf(input, dimensions), base64),
      }));
      const list = {
        object: 'list',
        data,
        model,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      };
      return { kind: 'json', body: JSON.stringify(list) };
    },
  };
}

function normalizeInputs(input: unknown): EmbeddingInput[] | null {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input) || input.length === 0) return null;
  if (input.every((x) => typeof x === 'number')) return [input];
  const inputs: EmbeddingInput[] = [];
  for (const item of input) {
    if (typeof item === 'string') inputs.push(item);
    else if (Array.isArray(item) && item.every((x) => typeof x === 'number')) inputs.push(item);
    else return null;
  }
  return inputs;
}

function dimensionsOf(value: unknown): number | null {
  if (value === undefined || value === null) return DEFAULT_DIMENSIONS;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_DIMENSIONS)
    return value;
  return null;
}

function vectorOf(input: EmbeddingInput, dimensions: number): Float32Array {
  const text = typeof input === 'string' ? input : input.join(',');
  const random = mulberry32(seedFromHex(createHash('sha256').update(text).digest('hex')));
  const vector = new Float32Array(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i += 1) {
    const value = random() * 2 - 1;
    vector[i] = value;
    norm += value * value;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 1;
  for (let i = 0; i < dimensions; i += 1) vector[i] = (vector[i] ?? 0) * scale;
  return vector;
}

function encode(vector: Float32Array, base64: boolean): number[] | string {
  if (!base64) return Array.from(vector);
  const bytes = Buffer.allocUnsafe(vector.length * 4);
  for (let i = 0; i < vector.length; i += 1) bytes.writeFloatLE(vector[i] ?? 0, i * 4);
  return bytes.toString('base64');
}
