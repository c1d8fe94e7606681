// HTTP helpers for protocol-level tests: WHIP/WHEP requests and the JSON error shape
// `{"error": "<code>", "message": "<text>"}` that every HTTP error must carry.

import assert from 'node:assert/strict';

/** POST an SDP offer to `/whip/{classId}` or `/whep/{classId}` (`kind`), with an optional bearer token. */
export function postOffer(server, kind, classId, sdp, token) {
  return fetch(`${server.url}/${kind}/${encodeURIComponent(classId)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: sdp,
  });
}

/** DELETE a WHIP/WHEP session by its Location. */
export function deleteSession(server, location, token) {
  return fetch(new URL(location, server.url), { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
}

/** Assert `res` has `status` and a JSON `{error, message}` body; return the body. */
export async function expectJsonError(res, status, what) {
  const text = await res.text();
  assert.equal(res.status, status, `${what}: status (body: ${text})`);
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`${what}: body is not JSON: ${text}`);
  }
  assert.equal(typeof body.error, 'string', `${what}: body.error is a string (${text})`);
  assert.equal(typeof body.message, 'string', `${what}: body.message is a string (${text})`);
  return body;
}
