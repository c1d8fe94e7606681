// A WebSocket client for the room protocol (the `ws` package): send JSON, wait for the
// next message of a type, observe how the server closes the connection.

import WebSocket from 'ws';

/**
 * Open `server`'s /ws. Resolves once open to
 * { ws, messages, errors, send(obj|string|Buffer), next(type, ms) → msg, closed → Promise<{code, reason}> }.
 */
export function openWs(server) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(server.wsUrl);
    const messages = [];
    const waiters = [];
    const closed = new Promise((res) => ws.once('close', (code, reason) => res({ code, reason: reason.toString() })));
    ws.on('message', (data, isBinary) => {
      let msg;
      try {
        msg = JSON.parse(isBinary ? '' : data.toString());
      } catch {
        msg = { type: '<not json>', raw: data.toString() };
      }
      messages.push(msg);
      for (const w of [...waiters]) w();
    });
    const errors = [];
    ws.on('error', (e) => errors.push(e)); // after open, the close event tells the outcome
    ws.once('error', reject);
    ws.once('open', () =>
      resolve({
        ws,
        messages,
        errors,
        closed,
        send: (m) => ws.send(typeof m === 'string' || Buffer.isBuffer(m) ? m : JSON.stringify(m)),
        /** The first message (received so far or later) of `type`; fails after `timeoutMs` or on close. */
        next(type, timeoutMs = 5000) {
          return new Promise((res, rej) => {
            const check = () => {
              const m = messages.find((x) => x.type === type);
              if (m) {
                done();
                res(m);
              }
            };
            const timer = setTimeout(() => {
              done();
              rej(new Error(`no "${type}" within ${timeoutMs} ms; got ${JSON.stringify(messages.map((x) => x.type))}`));
            }, timeoutMs);
            const done = () => {
              clearTimeout(timer);
              const i = waiters.indexOf(check);
              if (i >= 0) waiters.splice(i, 1);
            };
            waiters.push(check);
            check();
            closed.then(({ code, reason }) => {
              if (waiters.includes(check)) {
                done();
                rej(new Error(`closed (${code} ${reason}) before "${type}"; got ${JSON.stringify(messages)}`));
              }
            });
          });
        },
      }),
    );
  });
}

/** Resolve to how the connection closed, or fail after `timeoutMs`. */
export function closedWithin(conn, timeoutMs = 5000) {
  let timer;
  const timeout = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([conn.closed, timeout]).finally(() => clearTimeout(timer));
}
