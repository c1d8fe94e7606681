// Admin page: keeps the admin key in localStorage, lists / creates / deletes
// classes, adds listening classrooms and mints join links (teacher, each
// classroom, observer, WHEP player) with copy buttons.

import { initI18n, lang, onLangChange, setText, t } from './i18n.js';
import * as API from './api.js';
import { $, h, copyText, notify, roleLabel } from './ui.js';
import { mountWebhooks } from './admin-webhooks.js';

const KEY_STORE = 'classcast.adminKey';
const state = { key: '', classes: [], open: null, links: [] };

function loadKey() {
  try { return localStorage.getItem(KEY_STORE) || ''; } catch { return ''; }
}

function saveKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORE, key);
    else localStorage.removeItem(KEY_STORE);
  } catch { /* private mode: key lives for this page only */ }
}

/** Shows an API failure in the page's error box (or hides it). */
function showError(err) {
  const box = $('#admin-error');
  if (!err) {
    box.hidden = true;
    return;
  }
  if (err.status === 401) setText(box, 'admin.badKey');
  else if (err.status === 0) setText(box, 'admin.network', { detail: err.message });
  else if (err.status === 404) setText(box, 'admin.notFound', { message: err.message });
  else setText(box, 'admin.apiError', { status: err.status, code: err.code || '-', message: err.message });
  box.hidden = false;
  box.scrollIntoView({ block: 'nearest' });
}

async function run(task) {
  try {
    const out = await task();
    showError(null);
    return out;
  } catch (err) {
    showError(err);
    return undefined;
  }
}

function formatTime(value) {
  if (value == null || value === '') return '';
  const ms = typeof value === 'number' ? (value < 1e12 ? value * 1000 : value) : Date.parse(value);
  if (Number.isNaN(ms)) return String(value);
  return new Date(ms).toLocaleString(lang());
}

async function refreshClasses() {
  if (!state.key) return;
  const list = await run(() => API.listClasses(state.key));
  if (!list) return;
  state.classes = list;
  renderClasses();
}

function renderClasses() {
  const body = $('#class-rows');
  body.replaceChildren(...state.classes.map((c) => h('tr', { class: state.open?.id === c.id ? 'selected' : '' },
    h('td', { text: c.title }),
    h('td', { text: c.teacher }),
    h('td', { class: 'num', text: String(c.live ?? 0) }),
    h('td', { text: formatTime(c.created_at) }),
    h('td', { class: 'actions' },
      h('button', { type: 'button', i18n: 'admin.open', onclick: () => openClass(c.id) }),
      h('button', { type: 'button', class: 'danger', i18n: 'admin.delete', onclick: () => removeClass(c) })))));
  $('#no-classes').hidden = state.classes.length > 0;
}

async function openClass(id) {
  const detail = await run(() => API.getClass(state.key, id));
  if (!detail) return;
  if (state.open?.id !== id) state.links = [];
  state.open = detail;
  renderClasses();
  renderDetail();
}

async function removeClass(c) {
  if (!confirm(t('admin.confirmDelete', { title: c.title }))) return;
  const done = await run(async () => { await API.deleteClass(state.key, c.id); return true; });
  if (!done) return;
  if (state.open?.id === c.id) closeDetail();
  notify('admin.deleted', { title: c.title });
  refreshClasses();
}

function closeDetail() {
  state.open = null;
  state.links = [];
  $('#detail').hidden = true;
}

function renderDetail() {
  const c = state.open;
  $('#detail').hidden = !c;
  if (!c) return;
  $('#detail-title').textContent = c.title;
  setText($('#detail-meta'), 'admin.detailMeta', { teacher: c.teacher, id: c.id });
  const rooms = c.classrooms || [];
  $('#classroom-rows').replaceChildren(...rooms.map((r) => h('li', {},
    h('span', { class: 'p-name', text: r.name }),
    h('code', { text: r.id }),
    h('button', { type: 'button', i18n: 'admin.classroomLink', onclick: () => mint({ role: 'classroom', classroom_id: r.id }, r.name) }))));
  $('#no-classrooms').hidden = rooms.length > 0;
  const people = c.participants || [];
  $('#online-rows').replaceChildren(...people.map((p) => h('li', {},
    h('span', { class: 'p-name', text: p.name }), h('span', { class: 'p-role', text: roleLabel(p.role) }))));
  $('#no-online').hidden = people.length > 0;
  renderLinks();
}

function ttl() {
  const v = Number($('#link-ttl').value);
  return v > 0 ? v : undefined;
}

/** Mints a join link; `label` names it in the list (a classroom's name). */
async function mint(opts, label) {
  const c = state.open;
  const link = await run(() => API.mintLink(state.key, c.id, { ...opts, ttl_secs: ttl() }));
  if (!link) return;
  state.links.unshift({ ...link, label: label || '', kind: link.role });
  renderLinks();
}

async function mintWhep() {
  const c = state.open;
  const name = $('#observer-name').value.trim();
  const link = await run(() => API.mintLink(state.key, c.id, { role: 'observer', name, ttl_secs: ttl() }));
  if (!link) return;
  const origin = originOf(link.url);
  const url = `${origin}/whep.html?class=${encodeURIComponent(c.id)}#token=${encodeURIComponent(link.token)}`;
  state.links.unshift({ ...link, url, label: name, kind: 'whep' });
  renderLinks();
}

function originOf(url) {
  try { return new URL(url, location.href).origin; } catch { return location.origin; }
}

function renderLinks() {
  const list = $('#link-list');
  list.replaceChildren(...state.links.map((l) => {
    const input = h('input', { type: 'text', readonly: true, value: l.url, 'aria-label': 'URL' });
    input.addEventListener('focus', () => input.select());
    const kind = l.kind === 'whep' ? t('admin.whepLink') : roleLabel(l.role);
    return h('li', { class: 'link-card' },
      h('div', { class: 'link-head' },
        h('strong', { text: l.label ? `${kind} · ${l.label}` : kind }),
        l.expires_at != null ? h('span', { class: 'hint', i18n: 'admin.expires', args: { time: formatTime(l.expires_at) } }) : null),
      h('div', { class: 'link-row' }, input,
        h('button', { type: 'button', class: 'primary', i18n: 'admin.copy', onclick: () => copy(l.url) }),
        h('a', { class: 'button', href: l.url, target: '_blank', rel: 'noopener', i18n: 'admin.openLink' })));
  }));
  $('#no-links').hidden = state.links.length > 0;
}

async function copy(url) {
  if (await copyText(url)) notify('admin.copied');
  else notify('admin.copyFailed', null, 'error');
}

function bindForms() {
  $('#key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.key = $('#admin-key').value.trim();
    saveKey(state.key);
    renderKeyState();
    refreshClasses();
  });
  $('#btn-forget').addEventListener('click', () => {
    state.key = '';
    saveKey('');
    $('#admin-key').value = '';
    state.classes = [];
    closeDetail();
    renderClasses();
    renderKeyState();
  });
  $('#btn-refresh').addEventListener('click', refreshClasses);
  $('#create-form').addEventListener('submit', createFromForm);
  $('#classroom-form').addEventListener('submit', addClassroomFromForm);
  $('#btn-close-detail').addEventListener('click', () => { closeDetail(); renderClasses(); });
  $('#btn-main-link').addEventListener('click', () => mint({ role: 'main' }, state.open.teacher));
  $('#btn-observer-link').addEventListener('click', () => mint({ role: 'observer', name: $('#observer-name').value.trim() }, $('#observer-name').value.trim()));
  $('#btn-whep-link').addEventListener('click', mintWhep);
}

async function createFromForm(ev) {
  ev.preventDefault();
  const title = $('#new-title').value.trim();
  const teacher = $('#new-teacher').value.trim();
  const created = await run(() => API.createClass(state.key, title, teacher));
  if (!created) return;
  ev.target.reset();
  await refreshClasses();
  openClass(created.id);
}

async function addClassroomFromForm(ev) {
  ev.preventDefault();
  const name = $('#new-classroom').value.trim();
  const added = await run(() => API.addClassroom(state.key, state.open.id, name));
  if (!added) return;
  ev.target.reset();
  openClass(state.open.id);
}

function renderKeyState() {
  const has = !!state.key;
  $('#btn-forget').hidden = !has;
  $('#classes').hidden = !has;
  setText($('#key-state'), has ? 'admin.keySaved' : 'admin.keyNeeded');
}

/** The webhooks panel, last on the page (shown with the classes, once a key is set). */
function mountWebhookPanel() {
  const box = h('section', { class: 'panel', id: 'webhooks' });
  $('#classes').append(box);
  const hooks = mountWebhooks(box, { apiFetch: (method, path, body) => API.api(state.key, method, path, body), t, lang });
  $('#key-form').addEventListener('submit', () => hooks.refresh());
  onLangChange(() => hooks.render());
}

function main() {
  initI18n();
  state.key = loadKey();
  $('#admin-key').value = state.key;
  bindForms();
  renderKeyState();
  onLangChange(() => { renderClasses(); renderDetail(); });
  refreshClasses();
  mountWebhookPanel();
}

main();
