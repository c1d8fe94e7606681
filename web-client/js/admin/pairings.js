// Pairings: a main classroom and the listening classrooms it serves, in order. One
// listening classroom is a one-to-one pair, more make a group.

import { t } from '../i18n.js';
import { act, field, form, h, input, orderedPicker, panel, roomName, roomSelect, submit, submitButton, table } from './common.js';

export const id = 'pairings';
export const titleKey = 'admin.tab.pairings';

export async function mount(container, ctx) {
  const rooms = await ctx.apiFetch('GET', '/api/rooms');
  const view = { ctx, rooms, list: h('div') };
  container.append(panel('admin.newPairing', createForm(view)), panel('admin.pairingsTitle', view.list));
  await load(view);
}

function createForm(view) {
  if (!view.rooms.some((r) => r.kind === 'main') || !view.rooms.some((r) => r.kind === 'listening')) {
    return h('p', { class: 'hint', i18n: 'admin.needRooms' });
  }
  const picker = orderedPicker(view.rooms);
  const f = form({ id: 'pairing-form' }, async () => {
    const body = { name: f.elements.name.value, main_classroom_id: f.elements.main_classroom_id.value, listening_classroom_ids: picker.value() };
    if (!await submit(f, view.ctx, () => view.ctx.apiFetch('POST', '/api/pairings', body))) return;
    f.reset();
    picker.set([]);
    load(view);
  },
  h('div', { class: 'row' },
    field('name', 'admin.pairingName', input({})),
    field('main_classroom_id', 'admin.main', roomSelect(view.rooms, 'main', { required: true }))),
  field('listening_classroom_ids', 'admin.listeningOrdered', picker.el),
  submitButton('admin.create'));
  return f;
}

async function load(view) {
  const pairings = await view.ctx.apiFetch('GET', '/api/pairings');
  const rows = pairings.map((p) => h('tr', { dataset: { id: p.id } },
    h('td', { text: p.name || '—' }),
    h('td', { text: roomName(view.rooms, p.main_classroom_id) }),
    h('td', {}, h('ol', { class: 'inline-list' }, ...p.listening_classroom_ids.map((rid) => h('li', { text: roomName(view.rooms, rid) })))),
    h('td', p.listening_classroom_ids.length === 1 ? { i18n: 'admin.oneToOne' } : { i18n: 'admin.group', args: { n: p.listening_classroom_ids.length } }),
    h('td', { class: 'actions' }, h('button', { type: 'button', class: 'danger', i18n: 'admin.delete', onclick: () => remove(view, p) }))));
  view.list.replaceChildren(table(['admin.pairingName', 'admin.main', 'admin.listening', 'admin.pairingKind', ''], rows, 'admin.noPairings'));
}

async function remove(view, p) {
  const name = p.name || roomName(view.rooms, p.main_classroom_id);
  if (!confirm(t('admin.confirmDeleteNamed', { name }))) return;
  if (await act(view.ctx, () => view.ctx.apiFetch('DELETE', `/api/pairings/${encodeURIComponent(p.id)}`))) load(view);
}
