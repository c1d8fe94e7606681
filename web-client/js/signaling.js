// Room signaling client: one WebSocket to /ws speaking the classcast room
// protocol (docs/protocol.md). Joins with the token from the page link,
// keeps the connection alive with pings, and reconnects with backoff
// (0.5 s doubling to 5 s) until a fatal error. Messages are dispatched as
// DOM events named after their `type`; connection changes as `state` events.

// 2: the client may send `receive_report`; 3: `restart_ice`.
export const PROTOCOL_VERSION = 3;

const PING_INTERVAL_MS = 10_000;
// Longer than a short network cut: a stalled WebSocket delivers once the link is back,
// and the media connections ride the cut out with an ICE restart over it (room.js).
const PONG_TIMEOUT_MS = 12_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 5_000;
const JOIN_TIMEOUT_MS = 8_000; // socket open + `joined`, or try again

// WebSocket close codes of the server (src/rooms/scheduled.rs).
const CLASS_OVER = 4010;
const UNAUTHORIZED = 4401;

// Error codes that make retrying pointless when they answer a join.
const FATAL_JOIN_CODES = new Set([
  'unauthorized', 'forbidden', 'not_found', 'unsupported_version', 'bad_message',
]);

/** Reads `token` from a `#token=...` fragment (or `?token=` as a fallback). */
export function tokenFromLocation(loc = location) {
  const hash = new URLSearchParams(loc.hash.replace(/^#/, ''));
  return hash.get('token') || new URLSearchParams(loc.search).get('token') || '';
}

/** Decodes a JWT payload without verifying it (display and routing only). */
export function peekToken(token) {
  try {
    const part = token.split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

function defaultUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

/**
 * States: `idle`, `connecting`, `joined`, `reconnecting`, `failed` (fatal,
 * `fatal` holds `{code, message}`), `closed` (left on purpose).
 */
export class Signaling extends EventTarget {
  constructor({ token, url = defaultUrl() }) {
    super();
    this.token = token;
    this.url = url;
    this.ws = null;
    this.state = 'idle';
    this.fatal = null;
    this.joinedOnce = false;
    this.backoff = BACKOFF_MIN_MS;
    this.retryTimer = 0;
    this.pingTimer = 0;
    this.watchdog = 0;
    this.pongTimer = 0;
  }

  get joined() {
    return this.state === 'joined';
  }

  connect() {
    if (this.state === 'failed' || this.state === 'closed') return;
    this.clearTimers();
    this.dropSocket();
    this.setState(this.joinedOnce ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    this.watchdog = setTimeout(() => this.onJoinTimeout(ws), JOIN_TIMEOUT_MS);
    ws.onopen = () => this.onOpen(ws);
    ws.onmessage = (ev) => this.onFrame(ws, ev);
    ws.onclose = (ev) => this.onClose(ws, ev);
  }

  /** Drops the current connection and rejoins now (e.g. media went dead). */
  reconnectNow() {
    if (this.state === 'failed' || this.state === 'closed') return;
    this.backoff = BACKOFF_MIN_MS;
    this.connect();
  }

  /** Sends `leave` and stops for good. */
  leave() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.send('leave');
    this.clearTimers();
    this.dropSocket();
    this.setState('closed');
  }

  /** Sends one protocol message; returns false when not connected. */
  send(type, fields = {}) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify({ type, ...fields }));
    return true;
  }

  publish(sdp, sources) { return this.send('publish', { sdp, sources }); }
  subscribeAnswer(sdp) { return this.send('subscribe_answer', { sdp }); }
  subscribe(keys) { return this.send('subscribe', { keys }); }
  unsubscribe(keys) { return this.send('unsubscribe', { keys }); }
  raiseHand(raised) { return this.send('raise_hand', { raised: !!raised }); }
  callOn(participant) { return this.send('call_on', { participant: participant ?? null }); }
  restartIce() { return this.send('restart_ice'); }

  onOpen(ws) {
    if (ws !== this.ws) return;
    this.send('join', { v: PROTOCOL_VERSION, token: this.token });
    this.pingTimer = setInterval(() => this.keepAlive(), PING_INTERVAL_MS);
  }

  onJoinTimeout(ws) {
    if (ws !== this.ws || this.state === 'joined') return;
    this.clearTimers();
    this.dropSocket();
    this.scheduleRetry();
  }

  /** Pings; a connection that stays silent for PONG_TIMEOUT_MS after it is dead. */
  keepAlive() {
    if (!this.send('ping')) return;
    clearTimeout(this.pongTimer);
    this.pongTimer = setTimeout(() => this.connect(), PONG_TIMEOUT_MS);
  }

  onFrame(ws, ev) {
    if (ws !== this.ws) return;
    clearTimeout(this.pongTimer);
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!msg || typeof msg.type !== 'string') return;
    if (msg.type === 'joined') this.onJoined();
    if (msg.type === 'error') this.onServerError(msg);
    this.dispatchEvent(new CustomEvent('message', { detail: msg }));
    this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
  }

  onJoined() {
    clearTimeout(this.watchdog);
    this.joinedOnce = true;
    this.backoff = BACKOFF_MIN_MS;
    this.setState('joined');
  }

  onServerError(msg) {
    const beforeJoin = this.state !== 'joined';
    if (msg.code === 'replaced' || (beforeJoin && FATAL_JOIN_CODES.has(msg.code))) {
      this.fail(msg.code, msg.message || '');
    }
  }

  onClose(ws, ev) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.clearTimers();
    if (this.state === 'failed' || this.state === 'closed') return;
    // The class ended on schedule, or this link was revoked: rejoining cannot help.
    if (ev.code === CLASS_OVER || ev.code === UNAUTHORIZED) {
      this.fail(ev.code === CLASS_OVER ? 'class_over' : 'unauthorized', ev.reason || '');
      return;
    }
    const policy = ev.code === 1008 || ev.code === 1009;
    if (policy && this.state !== 'joined') {
      this.fail('closed_by_server', ev.reason || `close ${ev.code}`);
      return;
    }
    this.scheduleRetry();
  }

  scheduleRetry() {
    this.setState(this.joinedOnce ? 'reconnecting' : 'connecting');
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  fail(code, message) {
    this.fatal = { code, message };
    this.clearTimers();
    this.dropSocket();
    this.setState('failed');
  }

  dropSocket() {
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try { ws.close(1000); } catch { /* already closing */ }
  }

  clearTimers() {
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.watchdog);
    clearTimeout(this.pongTimer);
    this.retryTimer = 0;
    this.pingTimer = 0;
    this.watchdog = 0;
    this.pongTimer = 0;
  }

  setState(state) {
    const prev = this.state;
    this.state = state;
    if (prev !== state) {
      this.dispatchEvent(new CustomEvent('state', { detail: { state, prev, fatal: this.fatal } }));
    }
  }
}
