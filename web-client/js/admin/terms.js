// Terms: first and last day (both included) and the holidays inside them, on which
// no period runs.

import { t } from '../i18n.js';
import { act, field, form, h, input, panel, submit, submitButton } from './common.js';

export const id = 'terms';
export const titleKey = 'admin.tab.terms';

const enc = encodeURIComponent;

export async function mount(container, ctx) {
  const view = { ctx, list: h('div', { class: 'term-list' }) };
  const create = form({ class: 'row', id: 'term-form' }, async (ev) => {
    const f = ev.target;
    const body = { name: f.elements.name.value, start: f.elements.start.value, end: f.elements.end.value };
    if (!await submit(f, ctx, () => ctx.apiFetch('POST', '/api/terms', body))) return;
    f.reset();
    load(view);
  },
  field('name', 'admin.termName', input({ required: true })),
  field('start', 'admin.firstDay', input({ type: 'date', required: true })),
  field('end', 'admin.lastDay', input({ type: 'date', required: true })),
  submitButton('admin.create'));
  container.append(panel('admin.newTerm', create), panel('admin.termsTitle', view.list));
  await load(view);
}

async function load(view) {
  const terms = await view.ctx.apiFetch('GET', '/api/terms');
  if (!terms.length) {
    view.list.replaceChildren(h('p', { class: 'hint', i18n: 'admin.noTerms' }));
    return;
  }
  view.list.replaceChildren(...terms.map((term) => termCard(view, term)));
}

function termCard(view, term) {
  const holidays = term.holidays.map((d) => h('li', {},
    h('span', { class: 'p-name', text: d.date }),
    h('span', { text: d.name }),
    h('button', { type: 'button', class: 'small danger', i18n: 'admin.remove', onclick: () => removeHoliday(view, term, d) })));
  return h('article', { class: 'term-card', dataset: { id: term.id } },
    h('div', { class: 'panel-head' },
      h('h3', { text: term.name }),
      h('span', { class: 'hint', i18n: 'admin.termDates', args: { start: term.start, end: term.end } }),
      h('button', { type: 'button', class: 'danger', i18n: 'admin.delete', onclick: () => removeTerm(view, term) })),
    h('h4', { i18n: 'admin.holidays' }),
    holidays.length ? h('ul', { class: 'plain-list holidays' }, ...holidays) : h('p', { class: 'hint', i18n: 'admin.noHolidays' }),
    holidayForm(view, term));
}

function holidayForm(view, term) {
  return form({ class: 'row holiday-form' }, async (ev) => {
    const f = ev.target;
    const body = { date: f.elements.date.value, name: f.elements.name.value };
    if (!await submit(f, view.ctx, () => view.ctx.apiFetch('POST', `/api/terms/${enc(term.id)}/holidays`, body))) return;
    load(view);
  },
  field('date', 'admin.holidayDate', input({ type: 'date', required: true, min: term.start, max: term.end })),
  field('name', 'admin.holidayName', input({})),
  h('button', { type: 'submit', i18n: 'admin.addHoliday' }));
}

async function removeHoliday(view, term, d) {
  if (await act(view.ctx, () => view.ctx.apiFetch('DELETE', `/api/terms/${enc(term.id)}/holidays/${enc(d.date)}`))) load(view);
}

async function removeTerm(view, term) {
  if (!confirm(t('admin.confirmDeleteNamed', { name: term.name }))) return;
  if (await act(view.ctx, () => view.ctx.apiFetch('DELETE', `/api/terms/${enc(term.id)}`))) load(view);
}
