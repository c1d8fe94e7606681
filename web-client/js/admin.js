// Admin pages: sign in (an account's username and password, or the admin key), then
// one tab per section.
//
// Sections are ES modules exporting `{ id, titleKey, mount(container, ctx) }`; SECTIONS
// lists them, so adding one is one line. A module that exports its mount function
// under another name is listed as `{ path, id, titleKey, mount: 'exportName' }`.
// A section is mounted afresh each time its tab opens (its data is then current).
//
// ctx = { apiFetch(method, path, body), t, lang, notify, error(err), user }:
// - apiFetch sends JSON and resolves to the parsed reply (null for 204) or throws an
//   ApiError `{status, code, message, field, reason}` (422s name `field`). With the
//   admin key it sends `Authorization: Bearer`; signed in, the session cookie goes
//   along by itself. Every request that changes something is `application/json`:
//   the server refuses cookie requests that are not (cross-site forgery).
// - error(err) shows a failure in the page's banner (null hides it); a 401 means the
//   session ended (or the key is wrong) and returns to the sign-in screen.

import { initI18n, lang, onLangChange, setText, t } from './i18n.js';
import { $, h, loadAdminKey, notify, saveAdminKey } from './ui.js';

const SECTIONS = [
  './admin/classes.js',
  './admin/schools.js',
  './admin/rooms.js',
  './admin/pairings.js',
  './admin/terms.js',
  './admin/timetable.js',
  './admin/audit.js',
  './admin/accounts.js',
  './admin-webhooks.js',
  './admin/bridges.js',
];

const auth = { mode: null, key: '', user: null };
const tabs = { list: [], active: null };

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error || '';
    this.field = body?.field;
    this.reason = body?.reason;
    this.retryAfter = retryAfter;
  }
}

/** One API request, without the sign-in bookkeeping. */
async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (auth.mode === 'key') headers.Authorization = `Bearer ${auth.key}`;
  if (!['GET', 'HEAD'].includes(method)) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, { error: 'network', message: err.message });
  }
  const text = await res.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
  if (!res.ok) throw new ApiError(res.status, parsed, Number(res.headers.get('Retry-After')) || undefined);
  return parsed;
}

async function apiFetch(method, path, body) {
  try {
    return await request(method, path, body);
  } catch (err) {
    if (err.status === 401 && auth.mode) signedOut(auth.mode === 'key' ? 'admin.badKey' : 'admin.sessionEnded');
    throw err;
  }
}

/** Shows a failure in the banner (or hides it). */
function showError(err) {
  const box = $('#admin-error');
  if (!err || err.status === 401) {
    box.hidden = true;
    return;
  }
  if (err.status === 0) setText(box, 'admin.network', { detail: err.message });
  else if (err.status === 409) setText(box, 'admin.conflict', { message: err.message });
  else if (err.status === 404) setText(box, 'admin.missing', { message: err.message });
  else setText(box, 'admin.apiError', { status: err.status, code: err.code || '-', message: err.message });
  box.hidden = false;
  box.scrollIntoView({ block: 'nearest' });
}

const ctx = { apiFetch, t, lang, notify, error: showError, user: null };

// Sign-in screen.

function showSignIn(messageKey, useKey = auth.mode === 'key') {
  auth.mode = null;
  auth.user = null;
  $('#app').hidden = true;
  $('#who').hidden = true;
  $('#btn-signout').hidden = true;
  $('#signin').hidden = false;
  showError(null);
  toggleKeyForm(useKey);
  const msg = $('#signin-message');
  msg.hidden = !messageKey;
  if (messageKey) setText(msg, messageKey);
}

function signedOut(messageKey) {
  if (auth.mode === 'key') {
    auth.key = '';
    saveAdminKey('');
  }
  showSignIn(messageKey);
}

function toggleKeyForm(useKey) {
  $('#signin-form').hidden = useKey;
  $('#key-form').hidden = !useKey;
  $('#btn-use-key').hidden = useKey;
  $('#btn-use-account').hidden = !useKey;
  (useKey ? $('#admin-key') : $('#signin-user')).focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const username = $('#signin-user').value.trim();
  const password = $('#signin-password').value;
  const button = ev.target.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    const me = await request('POST', '/api/session', { username, password });
    $('#signin-password').value = '';
    enter('session', me.user);
  } catch (err) {
    const msg = $('#signin-message');
    if (err.status === 401) setText(msg, 'admin.signInWrong');
    else if (err.status === 429) setText(msg, 'admin.signInThrottled', { secs: err.retryAfter ?? 300 });
    else if (err.status === 422 || err.status === 400) setText(msg, 'admin.signInMissing');
    else setText(msg, 'admin.apiError', { status: err.status, code: err.code || '-', message: err.message });
    msg.hidden = false;
  } finally {
    button.disabled = false;
  }
}

async function useKey(ev) {
  ev.preventDefault();
  auth.mode = 'key';
  auth.key = $('#admin-key').value.trim();
  if (await keyWorks()) {
    saveAdminKey(auth.key);
    enter('key', null);
  } else {
    showSignIn('admin.badKey', true);
  }
}

async function keyWorks() {
  try {
    await request('GET', '/api/schools');
    return true;
  } catch {
    return false;
  }
}

async function signOut() {
  if (auth.mode === 'session') {
    try { await request('DELETE', '/api/session'); } catch { /* the cookie is cleared or gone anyway */ }
  }
  const wasKey = auth.mode === 'key';
  signedOut(null);
  $('#admin-key').value = '';
  toggleKeyForm(wasKey);
  notify('admin.signedOut');
}

// The signed-in page.

function enter(mode, user) {
  auth.mode = mode;
  auth.user = user;
  ctx.user = user;
  $('#signin').hidden = true;
  $('#signin-message').hidden = true;
  $('#app').hidden = false;
  $('#btn-signout').hidden = false;
  const who = $('#who');
  who.hidden = false;
  if (user) setText(who, 'admin.signedInAs', { name: user.username });
  else setText(who, 'admin.usingKey');
  const wanted = location.hash.slice(1);
  activate(tabs.list.find((s) => s.id === wanted) || tabs.list[0]);
}

/** A SECTIONS entry as `{id, titleKey, mount}`. */
async function loadSection(entry) {
  const spec = typeof entry === 'string' ? { path: entry } : entry;
  const mod = await import(spec.path);
  const mount = typeof spec.mount === 'string' ? mod[spec.mount] : mod.mount;
  return { id: spec.id || mod.id, titleKey: spec.titleKey || mod.titleKey, mount };
}

async function loadSections() {
  const loaded = await Promise.allSettled(SECTIONS.map(loadSection));
  loaded.forEach((r, i) => {
    if (r.status === 'rejected') console.error(`admin section ${JSON.stringify(SECTIONS[i])} did not load`, r.reason);
  });
  tabs.list = loaded.filter((r) => r.status === 'fulfilled' && typeof r.value.mount === 'function').map((r) => r.value);
  $('#tabs').replaceChildren(...tabs.list.map((s) => {
    s.button = h('button', { type: 'button', role: 'tab', id: `tab-${s.id}`, 'aria-controls': `section-${s.id}`, i18n: s.titleKey, onclick: () => activate(s) });
    s.panel = h('section', { role: 'tabpanel', id: `section-${s.id}`, 'aria-labelledby': `tab-${s.id}`, class: 'tab-panel', hidden: true });
    return s.button;
  }));
  $('#sections').replaceChildren(...tabs.list.map((s) => s.panel));
}

async function activate(section) {
  if (!section) return;
  tabs.active = section;
  for (const s of tabs.list) {
    s.button.setAttribute('aria-selected', String(s === section));
    s.panel.hidden = s !== section;
  }
  history.replaceState(null, '', `#${section.id}`);
  showError(null);
  const container = h('div', { class: 'section-body' });
  section.panel.replaceChildren(container);
  try {
    await section.mount(container, ctx);
  } catch (err) {
    showError(err);
  }
}

async function main() {
  initI18n();
  $('#signin-form').addEventListener('submit', signIn);
  $('#key-form').addEventListener('submit', useKey);
  $('#btn-use-key').addEventListener('click', () => toggleKeyForm(true));
  $('#btn-use-account').addEventListener('click', () => toggleKeyForm(false));
  $('#btn-signout').addEventListener('click', signOut);
  onLangChange(() => { document.title = t('title.admin'); });
  await loadSections();
  auth.key = loadAdminKey();
  if (auth.key) {
    auth.mode = 'key';
    if (await keyWorks()) return enter('key', null);
    auth.mode = null;
    auth.key = '';
    saveAdminKey('');
  }
  try {
    const me = await request('GET', '/api/session');
    enter('session', me.user);
  } catch {
    showSignIn(null, false);
  }
}

main();
