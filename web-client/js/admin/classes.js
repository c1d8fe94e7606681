// Ad-hoc classes (apart from the district timetable): list / create / delete, a
// class's listening classrooms, and join links (teacher, each classroom, observer,
// WHEP player) with copy buttons.

import { setText, t } from '../i18n.js';
import { notify, roleLabel } from '../ui.js';
import { act, copy, field, form, formatDateTime, h, input, panel, panelWithAction, submit, submitButton, table } from './common.js';

export const id = 'classes';
export const titleKey = 'admin.tab.classes';

const enc = encodeURIComponent;

export async function mount(container, ctx) {
  const view = { ctx, classes: [], open: null, links: [] };
  view.list = h('div');
  view.detail = h('section', { class: 'panel detail', hidden: true });
  const create = form({ class: 'row' }, (ev) => createClass(view, ev.target),
    field('title', 'admin.classTitle', input({ required: true })),
    field('teacher', 'admin.teacherName', input({})),
    submitButton('admin.create'));
  const refresh = h('button', { type: 'button', i18n: 'admin.refresh', onclick: () => load(view) });
  container.append(
    panel('admin.createTitle', create),
    panelWithAction('admin.listTitle', refresh, view.list),
    view.detail);
  await load(view);
}

async function load(view) {
  view.classes = await view.ctx.apiFetch('GET', '/api/classes');
  renderList(view);
}

function renderList(view) {
  const rows = view.classes.map((c) => h('tr', { class: view.open?.id === c.id ? 'selected' : '' },
    h('td', { text: c.title }),
    h('td', { text: c.teacher }),
    h('td', { class: 'num', text: String(c.live ?? 0) }),
    h('td', { text: formatDateTime(c.created_at) }),
    h('td', { class: 'actions' },
      h('button', { type: 'button', i18n: 'admin.open', onclick: () => openClass(view, c.id) }),
      h('button', { type: 'button', class: 'danger', i18n: 'admin.delete', onclick: () => removeClass(view, c) }))));
  view.list.replaceChildren(table(['admin.colTitle', 'admin.colTeacher', 'admin.colLive', 'admin.colCreated', ''], rows, 'admin.noClasses'));
}

async function createClass(view, f) {
  const title = f.elements.title.value.trim();
  const teacher = f.elements.teacher.value.trim();
  const created = await submit(f, view.ctx, () => view.ctx.apiFetch('POST', '/api/classes', { title, teacher }));
  if (!created) return;
  f.reset();
  await load(view);
  openClass(view, created.id);
}

async function removeClass(view, c) {
  if (!confirm(t('admin.confirmDelete', { title: c.title }))) return;
  if (!await act(view.ctx, () => view.ctx.apiFetch('DELETE', `/api/classes/${enc(c.id)}`))) return;
  if (view.open?.id === c.id) closeDetail(view);
  notify('admin.deleted', { title: c.title });
  load(view);
}

async function openClass(view, classId) {
  const detail = await act(view.ctx, () => view.ctx.apiFetch('GET', `/api/classes/${enc(classId)}`));
  if (!detail) return;
  if (view.open?.id !== classId) view.links = [];
  view.open = detail;
  renderList(view);
  renderDetail(view);
}

function closeDetail(view) {
  view.open = null;
  view.links = [];
  view.detail.hidden = true;
  renderList(view);
}

function renderDetail(view) {
  const c = view.open;
  view.detail.hidden = false;
  const meta = h('p', { class: 'hint' });
  setText(meta, 'admin.detailMeta', { teacher: c.teacher, id: c.id });
  view.linkList = h('ul', { class: 'link-list' });
  view.detail.replaceChildren(
    h('div', { class: 'panel-head' }, h('h2', { text: c.title }),
      h('button', { type: 'button', i18n: 'admin.close', onclick: () => closeDetail(view) })),
    meta,
    h('div', { class: 'detail-grid' }, classroomsColumn(view), linksColumn(view)));
  renderLinks(view);
}

function classroomsColumn(view) {
  const c = view.open;
  const rooms = (c.classrooms || []).map((r) => h('li', {},
    h('span', { class: 'p-name', text: r.name }),
    h('code', { text: r.id }),
    h('button', { type: 'button', i18n: 'admin.classroomLink', onclick: () => mint(view, { role: 'classroom', classroom_id: r.id }, r.name) })));
  const people = (c.participants || []).map((p) => h('li', {},
    h('span', { class: 'p-name', text: p.name }), h('span', { class: 'p-role', text: roleLabel(p.role) })));
  const add = form({ class: 'row' }, (ev) => addClassroom(view, ev.target),
    field('name', 'admin.classroomName', input({ required: true })),
    h('button', { type: 'submit', i18n: 'admin.addClassroom' }));
  return h('div', {},
    h('h3', { i18n: 'admin.classroomsTitle' }),
    rooms.length ? h('ul', { class: 'plain-list' }, ...rooms) : h('p', { class: 'hint', i18n: 'admin.noClassrooms' }),
    add,
    h('h3', { i18n: 'admin.onlineTitle' }),
    people.length ? h('ul', { class: 'plain-list' }, ...people) : h('p', { class: 'hint', i18n: 'admin.noOnline' }));
}

function linksColumn(view) {
  view.ttl = h('select', {},
    ...[['', 'admin.ttlDefault'], ['14400', 'admin.ttl4h'], ['86400', 'admin.ttl1d'], ['604800', 'admin.ttl7d'], ['2592000', 'admin.ttl30d']]
      .map(([value, key]) => h('option', { value, i18n: key })));
  view.observer = input({ 'data-i18n-placeholder': 'admin.observerName', placeholder: t('admin.observerName'), 'aria-label': t('admin.observerName') });
  const observerName = () => view.observer.value.trim();
  return h('div', {},
    h('h3', { i18n: 'admin.linksTitle' }),
    h('div', { class: 'row' }, h('label', { class: 'field inline' }, h('span', { i18n: 'admin.ttl' }), view.ttl), view.observer),
    h('div', { class: 'row' },
      h('button', { type: 'button', class: 'primary', i18n: 'admin.mainLink', onclick: () => mint(view, { role: 'main' }, view.open.teacher) }),
      h('button', { type: 'button', i18n: 'admin.observerLink', onclick: () => mint(view, { role: 'observer', name: observerName() }, observerName()) }),
      h('button', { type: 'button', i18n: 'admin.whepLinkBtn', onclick: () => mintWhep(view, observerName()) })),
    h('p', { class: 'hint', i18n: 'admin.classroomLinkHint' }),
    view.linkList);
}

async function addClassroom(view, f) {
  const name = f.elements.name.value.trim();
  const added = await submit(f, view.ctx, () => view.ctx.apiFetch('POST', `/api/classes/${enc(view.open.id)}/classrooms`, { name }));
  if (added) openClass(view, view.open.id);
}

function ttlSecs(view) {
  const v = Number(view.ttl.value);
  return v > 0 ? v : undefined;
}

/** Mints a join link; `label` names it in the list. Empty options are left out. */
async function mint(view, opts, label) {
  const body = Object.fromEntries(Object.entries({ ...opts, ttl_secs: ttlSecs(view) }).filter(([, v]) => v !== undefined && v !== ''));
  const link = await act(view.ctx, () => view.ctx.apiFetch('POST', `/api/classes/${enc(view.open.id)}/links`, body));
  if (!link) return;
  view.links.unshift({ ...link, label: label || '', kind: link.role });
  renderLinks(view);
}

async function mintWhep(view, name) {
  const c = view.open;
  const body = Object.fromEntries(Object.entries({ role: 'observer', name, ttl_secs: ttlSecs(view) }).filter(([, v]) => v !== undefined && v !== ''));
  const link = await act(view.ctx, () => view.ctx.apiFetch('POST', `/api/classes/${enc(c.id)}/links`, body));
  if (!link) return;
  const url = `${originOf(link.url)}/whep.html?class=${enc(c.id)}#token=${enc(link.token)}`;
  view.links.unshift({ ...link, url, label: name, kind: 'whep' });
  renderLinks(view);
}

function originOf(url) {
  try { return new URL(url, location.href).origin; } catch { return location.origin; }
}

function renderLinks(view) {
  if (!view.links.length) {
    view.linkList.replaceChildren(h('li', { class: 'hint', i18n: 'admin.noLinks' }));
    return;
  }
  view.linkList.replaceChildren(...view.links.map((l) => {
    const box = h('input', { type: 'text', readonly: true, value: l.url, 'aria-label': 'URL' });
    box.addEventListener('focus', () => box.select());
    const kind = l.kind === 'whep' ? t('admin.whepLink') : roleLabel(l.role);
    return h('li', { class: 'link-card' },
      h('div', { class: 'link-head' },
        h('strong', { text: l.label ? `${kind} · ${l.label}` : kind }),
        l.expires_at != null ? h('span', { class: 'hint', i18n: 'admin.expires', args: { time: formatDateTime(l.expires_at) } }) : null),
      h('div', { class: 'link-row' }, box,
        h('button', { type: 'button', class: 'primary', i18n: 'admin.copy', onclick: () => copy(l.url) }),
        h('a', { class: 'button', href: l.url, target: '_blank', rel: 'noopener', i18n: 'admin.openLink' })));
  }));
}
