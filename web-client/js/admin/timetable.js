// The weekly timetable of a term: one column per weekday (Monday first), each period
// with its time, subject, teacher and main → listening classrooms. A period is added
// with pickers (a pairing can fill the classrooms); the server refuses one that
// overlaps another period of any of its classrooms, naming the field.

import { t } from '../i18n.js';
import { act, field, form, h, input, orderedPicker, panel, roomName, roomSelect, select, submit, submitButton, weekdayName } from './common.js';

export const id = 'timetable';
export const titleKey = 'admin.tab.timetable';

const DAYS = [1, 2, 3, 4, 5, 6, 7];

export async function mount(container, ctx) {
  const [terms, rooms, pairings] = await Promise.all(['/api/terms', '/api/rooms', '/api/pairings'].map((p) => ctx.apiFetch('GET', p)));
  if (!terms.length) {
    container.append(panel('admin.tab.timetable', h('p', { class: 'hint', i18n: 'admin.needTerm' })));
    return;
  }
  const view = { ctx, terms, rooms, pairings, grid: h('div', { class: 'week' }) };
  container.append(panel('admin.newPeriod', periodForm(view)), panel('admin.weekTitle', view.grid));
  await load(view);
}

function periodForm(view) {
  const term = select(view.terms.map((x) => [x.id, { text: `${x.name} (${x.start} – ${x.end})` }]));
  term.addEventListener('change', () => load(view));
  view.term = term;
  const picker = orderedPicker(view.rooms);
  const main = roomSelect(view.rooms, 'main');
  const fromPairing = pairingSelect(view, main, picker);
  const f = form({ id: 'period-form' }, () => create(view, f, picker),
    field('term_id', 'admin.term', term),
    h('div', { class: 'row' },
      field('weekday', 'admin.weekday', select(DAYS.map((d) => [String(d), `admin.weekday.${d}`]))),
      field('start', 'admin.start', input({ type: 'time', required: true })),
      field('end', 'admin.end', input({ type: 'time', required: true }))),
    h('div', { class: 'row' },
      field('subject', 'admin.subject', input({ required: true })),
      field('teacher', 'admin.teacher', input({}))),
    fromPairing,
    h('div', { class: 'row' }, field('main_classroom_id', 'admin.main', main)),
    field('listening_classroom_ids', 'admin.listeningOrdered', picker.el),
    field('record', 'admin.recordPeriod', input({ type: 'checkbox', checked: true })),
    submitButton('admin.addPeriod'));
  return f;
}

/** A pairing fills the main classroom and the listening ones. */
function pairingSelect(view, main, picker) {
  if (!view.pairings.length) return null;
  const label = (p) => p.name || `${roomName(view.rooms, p.main_classroom_id)} → ${p.listening_classroom_ids.length}`;
  const pick = select([['', 'admin.choose'], ...view.pairings.map((p) => [p.id, { text: label(p) }])]);
  pick.addEventListener('change', () => {
    const p = view.pairings.find((x) => x.id === pick.value);
    if (!p) return;
    main.value = p.main_classroom_id;
    picker.set(p.listening_classroom_ids);
  });
  return h('label', { class: 'field' }, h('span', { class: 'field-label', i18n: 'admin.fromPairing' }), pick);
}

async function create(view, f, picker) {
  const e = f.elements;
  const body = {
    term_id: e.term_id.value,
    weekday: Number(e.weekday.value),
    start: e.start.value,
    end: e.end.value,
    subject: e.subject.value,
    teacher: e.teacher.value,
    main_classroom_id: e.main_classroom_id.value,
    listening_classroom_ids: picker.value(),
    record: e.record.checked,
  };
  if (!await submit(f, view.ctx, () => view.ctx.apiFetch('POST', '/api/timetable', body))) return;
  e.subject.value = '';
  load(view);
}

async function load(view) {
  const termId = view.term.value;
  const periods = await view.ctx.apiFetch('GET', `/api/timetable?term=${encodeURIComponent(termId)}`);
  view.grid.replaceChildren(...DAYS.map((d) => h('div', { class: 'day', dataset: { weekday: String(d) } },
    h('h3', { i18n: `admin.weekday.${d}` }),
    ...periods.filter((p) => p.weekday === d).map((p) => periodCard(view, p)))));
}

function periodCard(view, p) {
  const listening = p.listening_classroom_ids.map((rid) => roomName(view.rooms, rid)).join(', ');
  return h('div', { class: 'period', dataset: { id: p.id } },
    h('div', { class: 'period-time', text: `${p.start}–${p.end}` }),
    h('div', { class: 'p-name', text: p.subject }),
    p.teacher ? h('div', { class: 'hint', text: p.teacher }) : null,
    p.record ? null : h('div', { class: 'hint', i18n: 'admin.notRecorded' }),
    h('div', { class: 'period-rooms', text: listening ? `${roomName(view.rooms, p.main_classroom_id)} → ${listening}` : roomName(view.rooms, p.main_classroom_id) }),
    h('button', { type: 'button', class: 'small danger', i18n: 'admin.delete', onclick: () => remove(view, p) }));
}

async function remove(view, p) {
  const what = `${weekdayName(p.weekday)} ${p.start}–${p.end} ${p.subject}`;
  if (!confirm(t('admin.confirmDeleteNamed', { name: what }))) return;
  if (await act(view.ctx, () => view.ctx.apiFetch('DELETE', `/api/timetable/${encodeURIComponent(p.id)}`))) load(view);
}
