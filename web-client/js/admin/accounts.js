// Admin accounts: list, add (password of at least 10 characters), delete (never one's
// own, never the last one: the server refuses both).

import { t } from '../i18n.js';
import { notify } from '../ui.js';
import { act, field, form, formatDateTime, h, input, panel, submit, submitButton, table } from './common.js';

export const id = 'accounts';
export const titleKey = 'admin.tab.accounts';

export async function mount(container, ctx) {
  const list = h('div');
  const load = async () => {
    const admins = await ctx.apiFetch('GET', '/api/admins');
    list.replaceChildren(table(['admin.username', 'admin.colCreated', ''], admins.map((a) => row(ctx, a, load)), 'admin.noAccounts'));
  };
  const create = form({ class: 'row', id: 'account-form' }, async (ev) => {
    const f = ev.target;
    const body = { username: f.elements.username.value, password: f.elements.password.value };
    const made = await submit(f, ctx, () => ctx.apiFetch('POST', '/api/admins', body));
    if (!made) return;
    f.reset();
    notify('admin.created', { name: made.username });
    load();
  },
  field('username', 'admin.username', input({ required: true, maxlength: '64', autocomplete: 'off' })),
  field('password', 'admin.newPassword', input({ type: 'password', required: true, minlength: '10', maxlength: '1024', autocomplete: 'new-password' })),
  submitButton('admin.create'));
  container.append(panel('admin.newAccount', create), panel('admin.accountsTitle', list));
  await load();
}

function row(ctx, a, reload) {
  const self = ctx.user?.id === a.id;
  const remove = async () => {
    if (!confirm(t('admin.confirmDeleteNamed', { name: a.username }))) return;
    if (await act(ctx, () => ctx.apiFetch('DELETE', `/api/admins/${encodeURIComponent(a.id)}`))) reload();
  };
  return h('tr', { dataset: { id: a.id } },
    h('td', {}, h('span', { class: 'p-name', text: a.username }), self ? h('span', { class: 'hint', i18n: 'admin.you' }) : null),
    h('td', { text: formatDateTime(a.created_at) }),
    h('td', { class: 'actions' }, self ? null : h('button', { type: 'button', class: 'danger', i18n: 'admin.delete', onclick: remove })));
}
