// District classrooms: main (teaching) and listening, per school. Creating one
// answers with its device token, which the server never shows again: the device
// link (kiosk page + token) is shown once here, to copy onto the classroom's screen.
// Revoking a classroom makes its token open nothing.

import { t } from '../i18n.js';
import { notify } from '../ui.js';
import { act, copy, field, form, formatDateTime, h, input, panel, select, submit, submitButton, table } from './common.js';

export const id = 'rooms';
export const titleKey = 'admin.tab.rooms';

const enc = encodeURIComponent;

/** The link a classroom's screen opens: the token rides in the fragment (never logged). */
export const deviceLink = (token) => `${location.origin}/kiosk.html#device=${enc(token)}`;

export async function mount(container, ctx) {
  const view = { ctx, list: h('div'), shown: h('div', { id: 'device-link-box' }) };
  const schools = await ctx.apiFetch('GET', '/api/schools');
  view.schools = schools;
  container.append(panel('admin.newRoom', createForm(view)), view.shown, panel('admin.roomsTitle', view.list));
  await load(view);
}

function createForm(view) {
  if (!view.schools.length) return h('p', { class: 'hint', i18n: 'admin.needSchool' });
  const school = select([['', 'admin.choose'], ...view.schools.map((s) => [s.id, { text: s.name }])], { required: true });
  if (view.schools.length === 1) school.value = view.schools[0].id;
  const kind = select([['main', 'admin.kind.main'], ['listening', 'admin.kind.listening']]);
  return form({ class: 'row', id: 'room-form' }, (ev) => create(view, ev.target),
    field('school_id', 'admin.school', school),
    field('name', 'admin.roomName', input({ required: true })),
    field('kind', 'admin.kind', kind),
    submitButton('admin.create'));
}

async function create(view, f) {
  const body = { school_id: f.elements.school_id.value, name: f.elements.name.value, kind: f.elements.kind.value };
  const made = await submit(f, view.ctx, () => view.ctx.apiFetch('POST', '/api/rooms', body));
  if (!made) return;
  f.elements.name.value = '';
  showDeviceLink(view, made);
  load(view);
}

/** The one showing of a new classroom's device link. */
function showDeviceLink(view, room) {
  const url = deviceLink(room.device_token);
  const box = h('input', { type: 'text', readonly: true, value: url, class: 'device-link', 'aria-label': t('admin.deviceLink') });
  box.addEventListener('focus', () => box.select());
  view.shown.replaceChildren(h('section', { class: 'panel once', role: 'status' },
    h('h2', { i18n: 'admin.deviceLinkFor', args: { name: room.name } }),
    h('p', { class: 'warning', i18n: 'admin.deviceLinkOnce' }),
    h('div', { class: 'link-row' }, box,
      h('button', { type: 'button', class: 'primary', i18n: 'admin.copy', onclick: () => copy(url) }),
      h('button', { type: 'button', i18n: 'admin.done', onclick: () => view.shown.replaceChildren() }))));
  box.focus();
}

async function load(view) {
  const rooms = await view.ctx.apiFetch('GET', '/api/rooms');
  const schoolName = (sid) => view.schools.find((s) => s.id === sid)?.name ?? sid;
  const rows = rooms.map((r) => h('tr', { dataset: { id: r.id }, class: r.revoked ? 'revoked' : '' },
    h('td', { text: r.name }),
    h('td', { text: schoolName(r.school_id) }),
    h('td', {}, h('span', { class: `badge kind-${r.kind}`, i18n: `admin.kind.${r.kind}` })),
    h('td', {}, h('span', { class: r.revoked ? 'badge bad' : 'badge ok', i18n: r.revoked ? 'admin.revoked' : 'admin.active' })),
    h('td', { text: formatDateTime(r.created_at) }),
    h('td', { class: 'actions' },
      r.revoked ? null : h('button', { type: 'button', i18n: 'admin.revoke', onclick: () => revoke(view, r) }),
      h('button', { type: 'button', class: 'danger', i18n: 'admin.delete', onclick: () => remove(view, r) }))));
  view.list.replaceChildren(table(['admin.roomName', 'admin.school', 'admin.kind', 'admin.state', 'admin.colCreated', ''], rows, 'admin.noRooms'));
}

async function revoke(view, r) {
  if (!confirm(t('admin.confirmRevoke', { name: r.name }))) return;
  if (!await act(view.ctx, () => view.ctx.apiFetch('POST', `/api/rooms/${enc(r.id)}/revoke`))) return;
  notify('admin.revokedNotice', { name: r.name });
  load(view);
}

async function remove(view, r) {
  if (!confirm(t('admin.confirmDeleteNamed', { name: r.name }))) return;
  if (await act(view.ctx, () => view.ctx.apiFetch('DELETE', `/api/rooms/${enc(r.id)}`))) load(view);
}
