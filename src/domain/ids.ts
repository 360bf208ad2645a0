import { randomBytes, randomInt } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function base62(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += BASE62[randomInt(62)];
  return out;
}

// Ids are unique, not secret: they are cut from a 4 KiB pool of random bytes, refilled when spent,
// so finalizing a 100,000-line batch costs 250 calls into the CSPRNG instead of 100,000.
let pool = Buffer.alloc(0);
let poolOffset = 0;
function randomHex(bytes: number): string {
  if (poolOffset + bytes > pool.length) {
    pool = randomBytes(4096);
    poolOffset = 0;
  }
  poolOffset += bytes;
  return pool.toString('hex', poolOffset - bytes, poolOffset);
}

/** OpenAI's time-prefixed hex layout: 8 hex of unix seconds, 4 random, `8190`, 16 random. */
function timeHex(nowMs: number): string {
  const seconds = Math.floor(nowMs / 1000)
    .toString(16)
    .padStart(8, '0');
  const random = randomHex(10);
  return `${seconds}${random.slice(0, 4)}8190${random.slice(4)}`;
}

/** `file-` + 22 base62 characters. */
export const newFileId = (): string => `file-${base62(22)}`;
/** `batch_` + 32 hex whose first 8 encode the creation time. */
export const newBatchId = (nowMs: number): string => `batch_${timeHex(nowMs)}`;
/** `batch_req_` + 32 hex, one per output/error line. */
export const newBatchRequestId = (nowMs: number): string => `batch_req_${timeHex(nowMs)}`;
/** `req_` + 32 hex for the `x-request-id` response header. */
export const newRequestId = (): string => `req_${randomHex(16)}`;
/** `evt_` + 32 hex whose first 8 encode the time (a webhook event; its `webhook-id`). */
export const newEventId = (nowMs: number): string => `evt_${timeHex(nowMs)}`;
/** `whep_` + 24 base62 characters (a webhook endpoint). */
export const newWebhookEndpointId = (): string => `whep_${base62(24)}`;
/** `whsec_` + base64 of 32 random bytes: a Standard Webhooks signing secret. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;
