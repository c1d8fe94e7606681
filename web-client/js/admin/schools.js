// Schools of the district: list, create, delete (refused while a school has classrooms).

import { t } from '../i18n.js';
import { notify } from '../ui.js';
import { act, field, form, formatDateTime, h, input, panel, submit, submitButton, table } from './common.js';

export const id = 'schools';
export const titleKey = 'admin.tab.schools';

export async function mount(container, ctx) {
  const list = h('div');
  const load = async () => {
    const [schools, rooms] = await Promise.all([ctx.apiFetch('GET', '/api/schools'), ctx.apiFetch('GET', '/api/rooms')]);
    list.replaceChildren(table(['admin.schoolName', 'admin.colRooms', 'admin.colCreated', ''],
      schools.map((s) => row(ctx, s, rooms.filter((r) => r.school_id === s.id).length, load)), 'admin.noSchools'));
  };
  const create = form({ class: 'row', id: 'school-form' }, async (ev) => {
    const f = ev.target;
    const made = await submit(f, ctx, () => ctx.apiFetch('POST', '/api/schools', { name: f.elements.name.value }));
    if (!made) return;
    f.reset();
    notify('admin.created', { name: made.name });
    load();
  }, field('name', 'admin.schoolName', input({ required: true })), submitButton('admin.create'));
  container.append(panel('admin.newSchool', create), panel('admin.schoolsTitle', list));
  await load();
}

function row(ctx, s, roomCount, reload) {
  const remove = async () => {
    if (!confirm(t('admin.confirmDeleteNamed', { name: s.name }))) return;
    if (await act(ctx, () => ctx.apiFetch('DELETE', `/api/schools/${encodeURIComponent(s.id)}`))) reload();
  };
  return h('tr', { dataset: { id: s.id } },
    h('td', { text: s.name }),
    h('td', { class: 'num', text: String(roomCount) }),
    h('td', { text: formatDateTime(s.created_at) }),
    h('td', { class: 'actions' }, h('button', { type: 'button', class: 'danger', i18n: 'admin.delete', onclick: remove })));
}
