/**
 * The server's name for the usage arithmetic, which is written once in protocol/token-usage.ts
 * (the SDK reads the same response bodies, and may not import domain/).
 */
// Kept as a re-export so store/ and engine/ callers need no change while they are rewritten;
// new code imports protocol/token-usage.ts directly.
export { addUsage, usageFromResponse } from '../protocol/token-usage.ts';
