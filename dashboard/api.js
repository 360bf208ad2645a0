// Calls to /dashboard/api with the key kept in this tab's session storage (none is needed in
// open mode, where the server takes any caller).
import { h } from './dom.js';

export const KEY = 'openbatch.key';

/** Thrown when the server wants a key (401) or this key may not see something (403). */
export class AuthError extends Error {}

/** GET/POST /dashboard/api/…; JSON back, or the error body's message thrown. */
export async function api(path, { method = 'GET', raw = false } = {}) {
  const key = sessionStorage.getItem(KEY);
  const res = await fetch(`/dashboard/api${path}`, {
    method,
    headers: key ? { authorization: `Bearer ${key}` } : {},
  });
  if (res.status === 401) throw new AuthError('unauthenticated');
  if (!res.ok) {
    let message = `${res.status}`;
    try {
      message = (await res.json()).error.message;
    } catch {}
    throw new Error(message);
  }
  return raw ? res : res.json();
}

/** Downloads a file through the API (a plain link could not carry the key). */
export async function download(fileId, name) {
  const res = await api(`/files/${encodeURIComponent(fileId)}/content`, { raw: true });
  const url = URL.createObjectURL(await res.blob());
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
