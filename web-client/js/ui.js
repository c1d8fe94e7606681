// Small DOM helpers shared by every page: element builder, status banner,
// fatal-error overlay, transient notices and clipboard copy. All visible text
// goes through i18n keys so a language switch re-renders it.

import { setText, t } from './i18n.js';
import { playElement } from './media.js';

export const $ = (sel, root = document) => root.querySelector(sel);

/** `h('div', {class: 'x', i18n: 'key', onclick}, ...children)` */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'i18n') setText(el, v, attrs.args);
    else if (k === 'args') continue;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children.flat().filter((c) => c != null && c !== false));
  return el;
}

const STATUS_KEYS = {
  idle: 'status.connecting',
  connecting: 'status.connecting',
  reconnecting: 'status.reconnecting',
  joined: 'status.connected',
  failed: 'status.failed',
  closed: 'status.left',
};

/** Keeps `el` showing the signaling state (class `status-<state>`). */
export function bindStatus(el, room) {
  const render = (state) => {
    el.className = `status status-${state}`;
    el.setAttribute('role', 'status');
    setText(el, STATUS_KEYS[state] || 'status.connecting');
  };
  render(room.signaling.state);
  room.signaling.addEventListener('state', (ev) => render(ev.detail.state));
}

/** Replaces the page body's main content with a full-page error message. */
export function showFatal(key, args, extra) {
  let box = $('#fatal');
  if (!box) {
    box = h('div', { id: 'fatal', class: 'fatal', role: 'alert' });
    document.body.append(box);
  }
  box.replaceChildren(
    h('h1', { i18n: 'err.title' }),
    h('p', { class: 'fatal-msg', i18n: key, args }),
    extra || '',
  );
  document.body.classList.add('has-fatal');
}

let noticeTimer = 0;

/** Shows a transient message at the bottom of the page. */
export function notify(key, args, kind = 'info') {
  let box = $('#notice');
  if (!box) {
    box = h('div', { id: 'notice', class: 'notice', role: 'status', 'aria-live': 'polite' });
    document.body.append(box);
  }
  box.className = `notice notice-${kind} show`;
  setText(box, key, args);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => box.classList.remove('show'), kind === 'error' ? 8000 : 4000);
}

/** Copies text; works on plain http too (no Clipboard API there). */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch { /* fall through */ }
  }
  const area = h('textarea', { class: 'offscreen', readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { ok = false; }
  area.remove();
  return ok;
}

/** Query parameters of the page. */
export function params() {
  return new URLSearchParams(location.search);
}

/** Text of a role for display. */
export function roleLabel(role) {
  return t(`role.${role}`);
}

/** Autoplay refused to start `el` with sound: remember it and offer the unlock button. */
export function soundBlocked(view, el) {
  view.blockedAudio.add(el);
  $('#sound-unlock').hidden = false;
}

/** The user clicked the unlock button: start every element that was refused. */
export function unlockSound(view) {
  for (const el of view.blockedAudio) playElement(el);
  view.blockedAudio.clear();
  $('#sound-unlock').hidden = true;
}

const ADMIN_KEY_STORE = 'classcast.adminKey';

/** The admin key this browser keeps (admin and dashboard pages), or ''. */
export function loadAdminKey() {
  try { return localStorage.getItem(ADMIN_KEY_STORE) || ''; } catch { return ''; }
}

/** Keep (or, with '', forget) the admin key. */
export function saveAdminKey(key) {
  try {
    if (key) localStorage.setItem(ADMIN_KEY_STORE, key);
    else localStorage.removeItem(ADMIN_KEY_STORE);
  } catch { /* private mode: the key lives for this page only */ }
}
