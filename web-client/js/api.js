// Admin REST API client (docs/protocol.md, "Admin REST API"): bearer admin
// key on every request, JSON in and out, and errors turned into ApiError
// with the server's `{error, message}` body.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
}

async function errorOf(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  return new ApiError(res.status, body?.error || '', body?.message || res.statusText);
}

/** Calls the admin API; resolves to the parsed body (null for 204). */
export async function api(key, method, path, body) {
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, 'network', err.message);
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

const enc = encodeURIComponent;

export const listClasses = (key) => api(key, 'GET', '/api/classes');
export const getClass = (key, id) => api(key, 'GET', `/api/classes/${enc(id)}`);
export const createClass = (key, title, teacher) => api(key, 'POST', '/api/classes', { title, teacher });
export const deleteClass = (key, id) => api(key, 'DELETE', `/api/classes/${enc(id)}`);
export const addClassroom = (key, id, name) => api(key, 'POST', `/api/classes/${enc(id)}/classrooms`, { name });

/** `opts`: `{role, classroom_id?, name?, ttl_secs?}` (absent fields are left out). */
export function mintLink(key, id, opts) {
  const body = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined && v !== ''));
  return api(key, 'POST', `/api/classes/${enc(id)}/links`, body);
}
