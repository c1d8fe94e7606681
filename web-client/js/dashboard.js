// Live dashboard (dashboard.html): today's timetable, then every live class with
// its classrooms as tiles, degraded ones first and in red with their reasons.
// Fed by `GET /api/dashboard/events` (server-sent events, a snapshot a second),
// read with fetch + a ReadableStream so the admin key rides as a bearer header
// (EventSource cannot send one). A stream that ends, fails or stays silent for
// STALL_MS is shown as lost, its figures greyed, and reopened with backoff.
//
// Automation hook `window.__dashboard`: state ('idle', 'connecting', 'live',
// 'lost', 'unauthorized'), updates (snapshots received), last (the last snapshot).
// Each tile carries data-classroom, data-class, data-degraded and data-reasons.

import { initI18n, onLangChange, setText, t } from './i18n.js';
import { $, h, loadAdminKey, roleLabel, saveAdminKey } from './ui.js';

/** A refused or failed request to the dashboard stream: HTTP status and the server's error code. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
}

const STALL_MS = 5_000;
const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 10_000;

const state = { key: '', last: null, abort: null, backoff: BACKOFF_MIN_MS, retry: 0, watchdog: 0 };
const hook = { state: 'idle', updates: 0, last: null };
window.__dashboard = hook;

function setFeed(next) {
  hook.state = next;
  const el = $('#feed');
  el.className = `status status-${next}`;
  const age = state.last ? Math.max(0, Math.round((Date.now() - state.last.at_ms) / 1000)) : '–';
  setText(el, `dash.feed.${next}`, next === 'lost' ? { secs: age } : undefined);
  $('#live-list').classList.toggle('stale', next === 'lost' || next === 'connecting');
}

/** Splits an event-stream text into complete events; returns the unparsed rest. */
export function parseEvents(buffer, onEvent) {
  const text = buffer.replace(/\r\n?/g, '\n');
  const blocks = text.split('\n\n');
  const rest = blocks.pop();
  for (const block of blocks) {
    let type = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':') || line === '') continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length) onEvent(type, data.join('\n'));
  }
  return rest;
}

async function openStream(key, signal) {
  let res;
  try {
    // Without a key, the admin sign-in's session cookie (same origin) is the credential.
    const headers = key ? { Authorization: `Bearer ${key}` } : {};
    res = await fetch('/api/dashboard/events', { headers, signal, cache: 'no-store' });
  } catch (err) {
    throw new ApiError(0, 'network', err.message);
  }
  if (!res.ok) {
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    throw new ApiError(res.status, body?.error || '', body?.message || res.statusText);
  }
  return res.body.pipeThrough(new TextDecoderStream()).getReader();
}

/** Reads the stream until it ends; every event (and keep-alive) feeds the watchdog. */
async function follow(reader) {
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    armWatchdog();
    buffer = parseEvents(buffer + value, onEvent);
  }
}

function onEvent(type, data) {
  if (type === 'error') {
    showError(t('dash.snapshotError', { message: data }));
    return;
  }
  if (type !== 'snapshot') return;
  let snapshot;
  try { snapshot = JSON.parse(data); } catch { return; }
  state.last = snapshot;
  state.backoff = BACKOFF_MIN_MS;
  hook.last = snapshot;
  hook.updates += 1;
  if (hook.state !== 'live') setFeed('live');
  showError(null);
  render();
}

function armWatchdog() {
  clearTimeout(state.watchdog);
  state.watchdog = setTimeout(() => state.abort?.abort(), STALL_MS);
}

async function connect() {
  stop();
  const abort = new AbortController();
  state.abort = abort;
  setFeed(state.last ? 'lost' : 'connecting');
  try {
    const reader = await openStream(state.key, abort.signal);
    armWatchdog();
    await follow(reader);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      setFeed('unauthorized');
      showError(t(state.key ? 'admin.badKey' : 'dash.signInNeeded'));
      return;
    }
  }
  if (state.abort !== abort) return;
  clearTimeout(state.watchdog);
  setFeed('lost');
  state.retry = setTimeout(connect, state.backoff);
  state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX_MS);
}

function stop() {
  clearTimeout(state.retry);
  clearTimeout(state.watchdog);
  const abort = state.abort;
  state.abort = null;
  abort?.abort();
}

function showError(message) {
  const box = $('#dash-error');
  box.hidden = !message;
  box.textContent = message || '';
}

function render() {
  const snap = state.last;
  $('#board').hidden = !snap;
  if (!snap) return;
  renderToday(snap);
  const list = $('#live-list');
  list.replaceChildren(...snap.classes.map(renderClass));
  $('#no-live').hidden = snap.classes.length > 0;
}

function renderToday(snap) {
  $('#today-date').textContent = snap.date || '';
  $('#today-rows').replaceChildren(...snap.today.map((p) => h('tr', { class: p.state === 'now' ? 'period-now' : '' },
    h('td', { class: 'num', text: `${p.start}–${p.end}` }),
    h('td', { text: p.teacher ? `${p.subject} · ${p.teacher}` : p.subject }),
    h('td', { text: p.main_classroom }),
    h('td', { text: p.listening_classrooms.join('、') }),
    h('td', {}, h('span', { i18n: `dash.period.${p.state}` }), p.live ? h('span', { class: 'live-badge', i18n: 'dash.live' }) : null))));
  $('#no-today').hidden = snap.today.length > 0;
}

function renderClass(c) {
  const meta = h('span', { class: 'class-meta' },
    h('span', { i18n: 'dash.participants', args: { n: c.participants } }),
    c.degraded ? h('span', { class: 'bad', i18n: 'dash.degradedCount', args: { n: c.degraded } }) : null);
  return h('section', { class: 'panel class-card', dataset: { class: c.id } },
    h('div', { class: 'panel-head' }, h('h3', { text: c.title }), meta),
    h('div', { class: 'room-grid' }, c.classrooms.map((r) => renderRoom(c, r))));
}

const fmt = (v, unit, digits = 0) => (v == null ? '–' : `${Number(v).toFixed(digits)} ${unit}`);

function flows(flow) {
  const dir = (on, key) => h('span', { class: on ? '' : 'flow-off', i18n: key });
  return h('span', {}, dir(flow.up, 'dash.up'), ' ', dir(flow.down, 'dash.down'));
}

function stateKey(r) {
  if (!r.joined) return 'dash.notJoined';
  if (r.degraded) return 'dash.degraded';
  return r.connected ? 'dash.ok' : 'dash.connecting';
}

function renderRoom(c, r) {
  const cls = ['room-tile', r.degraded ? 'degraded' : '', r.joined ? '' : 'absent'].filter(Boolean).join(' ');
  const dataset = { classroom: r.id, class: c.id, degraded: String(!!r.degraded), reasons: (r.reasons || []).join(',') };
  const tile = h('article', { class: cls, dataset },
    h('div', { class: 'room-head' },
      h('span', { class: 'room-name', text: r.name, title: `${r.name} (${roleLabel(r.role)})` }),
      h('span', { class: 'room-state', i18n: stateKey(r) })));
  if (!r.joined) return tile;
  if (r.reasons.length) tile.append(h('ul', { class: 'reasons' }, r.reasons.map((x) => h('li', { i18n: `dash.reason.${x}` }))));
  const layer = r.layer ? `${r.layer.width}×${r.layer.height}${r.layer.fps != null ? ` @ ${Math.round(r.layer.fps)} fps` : ''}` : '–';
  const rows = [
    ['dash.audio', flows(r.audio)],
    ['dash.video', flows(r.video)],
    ['dash.bitrate', `↓ ${fmt(r.bitrate_down_kbps, 'kb/s')} · ↑ ${fmt(r.bitrate_up_kbps, 'kb/s')}`],
    ['dash.loss', `↓ ${fmt(r.loss_down_pct, '%', 1)} · ↑ ${fmt(r.loss_up_pct, '%', 1)}`],
    ['dash.rtt', fmt(r.rtt_ms, 'ms')],
    ['dash.layer', layer],
    ['dash.freezes', String(r.freezes_last_minute)],
  ];
  tile.append(h('dl', { class: 'room-figures' }, rows.flatMap(([k, v]) => [h('dt', { i18n: k }), h('dd', {}, v)])));
  return tile;
}

function renderKeyState() {
  const has = !!state.key;
  $('#btn-forget').hidden = !has;
  setText($('#key-state'), has ? 'admin.keySaved' : 'admin.keyNeeded');
}

function bindForms() {
  $('#key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.key = $('#admin-key').value.trim();
    saveAdminKey(state.key);
    renderKeyState();
    connect();
  });
  $('#btn-forget').addEventListener('click', () => {
    state.key = '';
    saveAdminKey('');
    $('#admin-key').value = '';
    stop();
    state.last = null;
    setFeed('idle');
    render();
    renderKeyState();
  });
}

function main() {
  initI18n();
  state.key = loadAdminKey();
  $('#admin-key').value = state.key;
  bindForms();
  renderKeyState();
  setFeed('idle');
  onLangChange(render);
  connect();
}

main();
