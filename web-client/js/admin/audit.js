// The audit log: every change to the district data and the admin accounts, and every
// sign-in, newest first, a page at a time.

import { formatDateTime, h, panel, table } from './common.js';

export const id = 'audit';
export const titleKey = 'admin.tab.audit';

const PAGE = 50;

export async function mount(container, ctx) {
  const view = { ctx, offset: 0, body: h('div'), pager: h('div', { class: 'row pager' }) };
  container.append(panel('admin.auditTitle', view.body, view.pager));
  await load(view);
}

async function load(view) {
  const page = await view.ctx.apiFetch('GET', `/api/audit?limit=${PAGE}&offset=${view.offset}`);
  const rows = page.entries.map((e) => h('tr', {},
    h('td', { text: formatDateTime(e.at_ms) }),
    h('td', { text: e.action }),
    h('td', { text: e.entity }),
    h('td', {}, h('code', { text: e.entity_id })),
    h('td', { text: e.summary })));
  view.body.replaceChildren(table(['admin.auditWhen', 'admin.auditAction', 'admin.auditEntity', 'admin.auditId', 'admin.auditSummary'], rows, 'admin.auditEmpty'));
  const pages = Math.max(1, Math.ceil(page.total / PAGE));
  const current = Math.floor(view.offset / PAGE) + 1;
  const go = (offset) => { view.offset = offset; load(view).catch(view.ctx.error); };
  view.pager.replaceChildren(
    h('button', { type: 'button', i18n: 'admin.prev', disabled: current <= 1, onclick: () => go(view.offset - PAGE) }),
    h('span', { i18n: 'admin.pageOf', args: { page: current, pages, total: page.total } }),
    h('button', { type: 'button', i18n: 'admin.next', disabled: current >= pages, onclick: () => go(view.offset + PAGE) }));
}
