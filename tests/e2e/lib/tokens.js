// Sign join tokens (JWT, HS256) in the test, to make expired, forged and unknown-class
// tokens that the admin API would never mint. Claims follow docs/protocol.md.

import { createHmac } from 'node:crypto';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** Sign `claims` with `secret` (the server's --token-secret, used as raw bytes). */
export function signToken(secret, claims) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64url(sig)}`;
}

/** Claims of a join token; `expSecs` may be negative for an expired token. */
export function claims({ cls, sub = 'main', role = 'main', name = 'Test', expSecs = 3600 }) {
  const now = Math.floor(Date.now() / 1000);
  return { iss: 'classcast', cls, sub, role, name, iat: now - 60, exp: now + expSecs };
}
