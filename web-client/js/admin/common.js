// Pieces shared by the admin sections: labelled fields with an error slot, form
// submission that puts a 422's reason next to the offending input (in the page
// language), pickers for classrooms, an ordered list picker, and formatting.
//
// A field is `<label class="field" data-field="name">`; a 422 `{field, reason}` goes
// to the label whose data-field is the field, else its base name
// (`listening_classroom_ids[1]` → `listening_classroom_ids`). Reasons the server
// gives in English are mapped to string keys; an unknown one is shown as given.

import { setText, t, lang } from '../i18n.js';
import { copyText, h, notify } from '../ui.js';

export { h };

/** A labelled input with a slot for its error: `field('name', 'admin.schoolName', input)`. */
export function field(name, labelKey, input) {
  if ('name' in input && !input.name) input.name = name;
  // A picker holds several controls: a group, not a label.
  const tag = input.classList.contains('picker') ? 'div' : 'label';
  return h(tag, { class: 'field', dataset: { field: name } },
    h('span', { class: 'field-label', i18n: labelKey }),
    input,
    h('span', { class: 'field-error', role: 'alert', hidden: true }));
}

export const input = (attrs = {}) => h('input', { maxlength: '200', ...attrs });

/** `<select>` of `[value, labelKey | {text}]` options. */
export function select(options, attrs = {}) {
  return h('select', attrs, ...options.map(([value, label]) => option(value, label)));
}

export function option(value, label) {
  return typeof label === 'string' ? h('option', { value, i18n: label }) : h('option', { value, text: label.text });
}

/** The server's English reason as a string key and its arguments. */
const REASONS = [
  [/^must not be empty$/, 'admin.err.empty'],
  [/^at most (\d+) characters$/, 'admin.err.tooLong', (m) => ({ n: m[1] })],
  [/^at least (\d+) characters$/, 'admin.err.tooShort', (m) => ({ n: m[1] })],
  [/^must be a time HH:MM/, 'admin.err.time'],
  [/^(must be a date YYYY-MM-DD|not a calendar date)/, 'admin.err.date'],
  [/^(required \(1 = Monday|must be 1 \(Monday\))/, 'admin.err.weekday'],
  [/^must not be before start$/, 'admin.err.endBeforeStart'],
  [/^must be after start$/, 'admin.err.endAfterStart'],
  [/^no such classroom$/, 'admin.err.noRoom'],
  [/^no such school$/, 'admin.err.noSchool'],
  [/^no such term$/, 'admin.err.noTerm'],
  [/^is a (main|listening) classroom, not a (main|listening) one$/, 'admin.err.wrongKind', (m) => ({ want: t(`admin.kind.${m[2]}`) })],
  [/^must be "main" or "listening"$/, 'admin.err.kind'],
  [/^at least one listening classroom$/, 'admin.err.needListening'],
  [/^is the main classroom$/, 'admin.err.isMain'],
  [/^listed twice$/, 'admin.err.twice'],
  [/^already a holiday of this term$/, 'admin.err.holidayTwice'],
  [/^outside the term \((\S+) to (\S+)\)$/, 'admin.err.outsideTerm', (m) => ({ start: m[1], end: m[2] })],
  [/^classroom already has period \S+ on weekday \d at (\S+)$/, 'admin.err.overlap', (m) => ({ time: m[1] })],
  [/^already taken$/, 'admin.err.taken'],
  [/^no spaces or control characters$/, 'admin.err.spaces'],
];

export function reasonText(reason) {
  for (const [re, key, args] of REASONS) {
    const m = re.exec(reason || '');
    if (m) return { key, args: args ? args(m) : undefined };
  }
  return { key: 'admin.err.other', args: { reason: reason || '' } };
}

/** The label of `form` that a 422's field belongs to, if any. */
function labelFor(form, name) {
  const base = String(name).replace(/\[.*$/, '').replace(/\..*$/, '');
  for (const n of [name, base]) {
    const el = form.querySelector(`[data-field="${CSS.escape(n)}"]`);
    if (el) return el;
  }
  return null;
}

/** Shows a 422 next to its input; false when the form has no such field. */
export function showFieldError(form, err) {
  if (err?.status !== 422 || !err.field) return false;
  const label = labelFor(form, err.field);
  if (!label) return false;
  const slot = label.querySelector('.field-error');
  const { key, args } = reasonText(err.reason);
  setText(slot, key, args);
  slot.hidden = false;
  label.classList.add('invalid');
  label.querySelector('input, select, .picker')?.setAttribute('aria-invalid', 'true');
  label.querySelector('input, select, button')?.focus();
  return true;
}

export function clearFieldErrors(form) {
  form.querySelectorAll('.field-error').forEach((el) => { el.hidden = true; el.textContent = ''; delete el.dataset.i18n; });
  form.querySelectorAll('.invalid').forEach((el) => el.classList.remove('invalid'));
  form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
}

/**
 * Runs `task` for a submitted form: errors cleared first, the submit button disabled
 * meanwhile, a 422 shown at its field, any other failure through `ctx.error`.
 * Resolves to the task's result, or undefined when it failed.
 */
export async function submit(form, ctx, task) {
  clearFieldErrors(form);
  const button = form.querySelector('button[type="submit"]');
  if (button) button.disabled = true;
  try {
    const out = await task();
    ctx.error(null);
    return out;
  } catch (err) {
    if (!showFieldError(form, err)) ctx.error(err);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** Runs an action that is not a form (delete, revoke); failures through `ctx.error`. */
export async function act(ctx, task) {
  try {
    const out = await task();
    ctx.error(null);
    return out ?? true;
  } catch (err) {
    ctx.error(err);
    return undefined;
  }
}

/** A form whose submit runs `onSubmit(event)`; `children` are fields and buttons. */
export function form(attrs, onSubmit, ...children) {
  return h('form', { novalidate: true, ...attrs, onsubmit: (ev) => { ev.preventDefault(); onSubmit(ev); } }, ...children);
}

export const submitButton = (key) => h('button', { type: 'submit', class: 'primary', i18n: key });

export function formatDateTime(value) {
  if (value == null || value === '') return '';
  const ms = value < 1e12 ? value * 1000 : value;
  return new Date(ms).toLocaleString(lang());
}

export const weekdayName = (n) => t(`admin.weekday.${n}`);

/** A panel with a heading; `panelWithAction` puts a button beside the heading. */
export function panel(titleKey, ...children) {
  return panelWithAction(titleKey, null, ...children);
}

export function panelWithAction(titleKey, action, ...children) {
  return h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', { i18n: titleKey }), action), ...children);
}

/** A table with header keys and rows (arrays of cells), or a hint when empty. */
export function table(headKeys, rows, emptyKey) {
  if (!rows.length) return h('p', { class: 'hint', i18n: emptyKey });
  return h('table', { class: 'table' },
    h('thead', {}, h('tr', {}, ...headKeys.map((k) => h('th', k ? { i18n: k } : {})))),
    h('tbody', {}, ...rows));
}

/** Name of a classroom by id (the id itself if unknown). */
export function roomName(rooms, id) {
  return rooms.find((r) => r.id === id)?.name ?? id;
}

/** `<select>` of the classrooms of one kind, not revoked; an empty first choice. */
export function roomSelect(rooms, kind, attrs = {}) {
  const usable = rooms.filter((r) => r.kind === kind && !r.revoked);
  return h('select', attrs,
    h('option', { value: '', i18n: 'admin.choose' }),
    ...usable.map((r) => h('option', { value: r.id, text: r.name })));
}

/** A small button showing a symbol, named for screen readers in the page language. */
function iconButton(symbol, labelKey, disabled, onclick) {
  return h('button', { type: 'button', class: 'small', text: symbol, 'aria-label': t(labelKey), 'data-i18n-aria-label': labelKey, disabled, onclick });
}

/**
 * An ordered choice of listening classrooms: a picker, an Add button and the list
 * with up / down / remove. `value()` is the ids in order; `set(ids)` replaces them.
 */
export function orderedPicker(rooms) {
  let ids = [];
  const pick = roomSelect(rooms, 'listening', { 'data-i18n-aria-label': 'admin.listening' });
  const list = h('ol', { class: 'ordered' });
  const move = (i, d) => { const j = i + d; if (j < 0 || j >= ids.length) return; [ids[i], ids[j]] = [ids[j], ids[i]]; render(); };
  const render = () => {
    list.replaceChildren(...ids.map((id, i) => h('li', {},
      h('span', { class: 'p-name', text: roomName(rooms, id) }),
      iconButton('↑', 'admin.up', i === 0, () => move(i, -1)),
      iconButton('↓', 'admin.down', i === ids.length - 1, () => move(i, 1)),
      h('button', { type: 'button', class: 'small danger', i18n: 'admin.remove', onclick: () => { ids.splice(i, 1); render(); } }))));
  };
  const add = h('button', {
    type: 'button',
    i18n: 'admin.add',
    onclick: () => { if (pick.value && !ids.includes(pick.value)) { ids.push(pick.value); render(); } pick.value = ''; },
  });
  const el = h('div', { class: 'picker' }, h('div', { class: 'row' }, pick, add), list);
  return { el, value: () => [...ids], set: (next) => { ids = [...next]; render(); } };
}

/** Copies a link, saying whether it worked. */
export async function copy(url) {
  if (await copyText(url)) notify('admin.copied');
  else notify('admin.copyFailed', null, 'error');
}
