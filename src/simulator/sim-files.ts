/** The simulator's Files API store: uploads kept in memory (multipart parsed by hand, no deps). */

export interface SimFile {
  id: string;
  purpose: string;
  filename: string;
  content: Buffer;
  createdAtMs: number;
}

export function fileObject(f: SimFile): Record<string, unknown> {
  return {
    id: f.id,
    object: 'file',
    bytes: f.content.length,
    created_at: Math.floor(f.createdAtMs / 1000),
    expires_at: null,
    filename: f.filename,
    purpose: f.purpose,
    status: 'processed',
    status_details: null,
  };
}

/** The fields and the one file of a multipart/form-data body; null when it is not one. */
export function parseMultipart(
  contentType: string | undefined,
  raw: Buffer,
): { fields: Map<string, string>; file: { filename: string; content: Buffer } | null } | null {
  const match = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType ?? '');
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) return null;
  const delimiter = Buffer.from(`--${boundary}`);
  const fields = new Map<string, string>();
  let file: { filename: string; content: Buffer } | null = null;
  let start = raw.indexOf(delimiter);
  while (start !== -1) {
    const partStart = start + delimiter.length;
    if (raw.subarray(partStart, partStart + 2).toString() === '--') break;
    const next = raw.indexOf(delimiter, partStart);
    if (next === -1) break;
    const part = raw.subarray(partStart + 2, next - 2); // CRLF after the delimiter and before the next
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd !== -1) {
      const headers = part.subarray(0, headerEnd).toString('utf8');
      const body = part.subarray(headerEnd + 4);
      const name = /name="([^"]*)"/i.exec(headers)?.[1] ?? '';
      const filename = /filename="([^"]*)"/i.exec(headers)?.[1];
      if (filename !== undefined) file = { filename, content: Buffer.from(body) };
      else fields.set(name, body.toString('utf8'));
    }
    start = next;
  }
  return { fields, file };
}
