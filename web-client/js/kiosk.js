// Classroom screen in kiosk mode (kiosk.html#device=<device token>): left running
// on a classroom PC, it shows the room, the clock and the next class; when a
// class is in session it joins by itself (the classroom or teacher page in a
// full-screen frame, started automatically) and returns to the board when the
// class is over. This page never reloads: server restarts and network loss are
// ridden out by polling, so nobody has to touch the keyboard.
//
// Hook for tests: window.__kiosk = { state, room, now, next, framesOpened, joined }.
// state: 'starting' | 'idle' | 'in_class' | 'revoked' | 'unknown' | 'no_link'.

import { initI18n, lang, onLangChange, setText, t } from './i18n.js';
import { $ } from './ui.js';

const POLL_MS = 3_000;
const POLL_SLOW_MS = 30_000;
/** A frame that has not joined by then is replaced (with a fresh token). */
const JOIN_DEADLINE_MS = 25_000;
/** Polls in a row without a class before an open frame is taken down. */
const ABSENT_POLLS = 2;

const state = {
  device: '',
  info: null,
  offsetMs: 0,
  frame: null,
  absent: 0,
  hook: { state: 'starting', room: null, now: null, next: null, framesOpened: 0, joined: false },
};

function deviceFromLocation() {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ''));
  return hash.get('device') || new URLSearchParams(location.search).get('device') || '';
}

function setState(name) {
  state.hook.state = name;
  document.body.dataset.kiosk = name;
}

async function poll() {
  let delay = POLL_MS;
  try {
    const res = await fetch('/api/device', { headers: { Authorization: `Bearer ${state.device}` }, cache: 'no-store' });
    $('#kiosk-offline').hidden = true;
    if (res.status === 401) {
      const body = await res.json().catch(() => ({}));
      refused(/revoked/.test(body.message || '') ? 'revoked' : 'unknown');
      delay = POLL_SLOW_MS;
    } else if (res.ok) {
      applyState(await res.json());
    } else {
      $('#kiosk-offline').hidden = false;
    }
  } catch {
    $('#kiosk-offline').hidden = false;
  }
  setTimeout(poll, delay);
}

/** The link does not open anything (any more): say why, leave any class. */
function refused(kind) {
  closeFrame();
  setState(kind);
  $('#kiosk-next').hidden = true;
  $('#kiosk-none').hidden = true;
  setText($('#kiosk-error-text'), kind === 'revoked' ? 'kiosk.revoked' : 'kiosk.unknown');
  $('#kiosk-error').hidden = false;
}

function applyState(info) {
  state.info = info;
  state.offsetMs = info.server_time_ms - Date.now();
  Object.assign(state.hook, { room: info.room, now: info.now, next: info.next });
  $('#kiosk-error').hidden = true;
  const title = $('#room-name');
  delete title.dataset.i18n;
  title.textContent = info.room.name;
  document.title = `${info.room.name} · classcast`;
  syncFrame(info.now);
  renderBoard();
}

/** Join the class in session; leave it only when it is really over. */
function syncFrame(now) {
  const frame = state.frame;
  if (now) {
    state.absent = 0;
    const stale = frame && (frame.classId !== now.class_id || frame.failed || (!frame.joined && Date.now() > frame.deadline));
    if (!frame || stale) openFrame(now);
    return;
  }
  state.absent += 1;
  if (frame && (frame.over || state.absent >= ABSENT_POLLS)) closeFrame();
}

function openFrame(now) {
  closeFrame();
  const el = document.createElement('iframe');
  el.allow = 'camera; microphone; autoplay; fullscreen; display-capture';
  el.title = now.subject;
  el.src = `${now.page}?autostart=1&kiosk=1&lang=${encodeURIComponent(lang())}#token=${encodeURIComponent(now.token)}`;
  state.frame = { el, classId: now.class_id, joined: false, failed: false, over: false, deadline: Date.now() + JOIN_DEADLINE_MS };
  state.hook.framesOpened += 1;
  state.hook.joined = false;
  $('#frame-holder').replaceChildren(el);
  $('#frame-holder').hidden = false;
  setState('in_class');
}

function closeFrame() {
  if (!state.frame) return;
  state.frame.el.remove();
  state.frame = null;
  state.hook.joined = false;
  $('#frame-holder').hidden = true;
  setState('idle');
}

/** What the class page in the frame tells us (room.js posts it in kiosk mode). */
function onFrameMessage(ev) {
  const frame = state.frame;
  if (ev.origin !== location.origin || !frame || ev.source !== frame.el.contentWindow) return;
  const msg = ev.data || {};
  if (msg.source !== 'classcast') return;
  if (msg.kind === 'joined') {
    frame.joined = true;
    state.hook.joined = true;
  } else if (msg.kind === 'fatal') {
    // Class over: back to the board now. Anything else: the next poll reopens with a fresh token.
    frame.over = msg.code === 'class_over';
    frame.failed = true;
    if (frame.over || msg.code === 'unauthorized') closeFrame();
  }
}

function renderBoard() {
  const info = state.info;
  if (!info || state.frame) return;
  setState('idle');
  const next = info.next;
  $('#kiosk-next').hidden = !next;
  $('#kiosk-none').hidden = !!next;
  if (!next) return;
  $('#next-subject').textContent = next.subject;
  $('#next-teacher').textContent = next.teacher ? t('kiosk.teacher', { name: next.teacher }) : '';
  $('#next-when').textContent = formatWhen(next);
  renderCountdown();
}

function serverNow() {
  return Date.now() + state.offsetMs;
}

function formatWhen(next) {
  const opts = { hour: '2-digit', minute: '2-digit', hour12: false };
  const start = new Date(next.opens_at_ms).toLocaleTimeString(lang(), opts);
  const end = new Date(next.closes_at_ms).toLocaleTimeString(lang(), opts);
  const sameDay = new Date(next.opens_at_ms).toDateString() === new Date(serverNow()).toDateString();
  const day = sameDay ? t('kiosk.today') : new Date(next.opens_at_ms).toLocaleDateString(lang(), { weekday: 'long', month: 'long', day: 'numeric' });
  return `${day} ${start}–${end}`;
}

function renderCountdown() {
  const next = state.info?.next;
  const el = $('#next-countdown');
  if (!next) return;
  const mins = Math.ceil((next.opens_at_ms - serverNow()) / 60_000);
  if (mins <= 0) setText(el, 'kiosk.startingNow');
  else if (mins < 120) setText(el, 'kiosk.inMinutes', { n: mins });
  else el.textContent = '';
}

function tick() {
  const opts = { hour: '2-digit', minute: '2-digit', hour12: false };
  $('#clock').textContent = new Date(serverNow()).toLocaleTimeString(lang(), opts);
  renderCountdown();
}

function main() {
  initI18n();
  window.__kiosk = state.hook;
  state.device = deviceFromLocation();
  if (!state.device) {
    setState('no_link');
    setText($('#kiosk-error-text'), 'kiosk.noLink');
    $('#kiosk-error').hidden = false;
    return;
  }
  addEventListener('message', onFrameMessage);
  onLangChange(() => { renderBoard(); tick(); });
  tick();
  setInterval(tick, 1_000);
  poll();
}

main();
