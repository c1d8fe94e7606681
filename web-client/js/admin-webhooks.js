// Admin UI for webhooks (docs/protocol.md, "Webhooks"): the registered hooks, a
// form to add one (URL, event checkboxes), its signing secret shown once with a
// copy button, "send test", and the delivery log of a selected hook with every
// attempt (time, HTTP status or error, duration, next retry).
//
// Self-contained: the host page passes `apiFetch(method, path, body)` (parsed
// JSON, or throws `{status, code, message}`), `t(key, args)` and `lang()`, and
// calls `render()` again when the language changes.

import { onLangChange } from './i18n.js';
import { copyText } from './ui.js';

const EVENTS = ['class_started', 'class_ended', 'classroom_joined', 'classroom_left', 'recording_ready'];
const PAGE = 20;
const enc = encodeURIComponent;

/** Mounts the webhooks panel in `container`; returns `{refresh, render}`. */
export function mountWebhooks(container, { apiFetch, t, lang }) {
  const state = { hooks: [], secret: null, selected: null, log: null, offset: 0, error: null, loaded: false };

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'text') node.textContent = v;
      else if (k === 'class') node.className = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : v);
    }
    node.append(...children.flat().filter((c) => c != null && c !== false));
    return node;
  }

  const time = (ms) => (ms == null ? '' : new Date(ms < 1e12 ? ms * 1000 : ms).toLocaleString(lang()));
  const eventLabel = (name) => (name === '*' ? t('webhooks.allEvents') : t(`webhooks.event.${name}`));

  async function call(task) {
    try {
      const out = await task();
      state.error = null;
      return out;
    } catch (err) {
      state.error = err;
      render();
      return undefined;
    }
  }

  async function refresh() {
    const hooks = await call(() => apiFetch('GET', '/api/webhooks'));
    if (!hooks) return;
    state.hooks = hooks;
    state.loaded = true;
    if (state.selected && !hooks.some((x) => x.id === state.selected.id)) state.selected = null;
    if (state.selected) await loadLog();
    render();
  }

  async function loadLog() {
    const path = `/api/webhooks/${enc(state.selected.id)}/deliveries?limit=${PAGE}&offset=${state.offset}`;
    const log = await call(() => apiFetch('GET', path));
    if (log) state.log = log;
  }

  async function select(hook) {
    state.selected = hook;
    state.offset = 0;
    state.log = null;
    await loadLog();
    render();
  }

  async function page(delta) {
    state.offset = Math.max(0, state.offset + delta * PAGE);
    await loadLog();
    render();
  }

  async function create(ev) {
    ev.preventDefault();
    const form = ev.target;
    const url = form.elements.url.value.trim();
    const all = form.elements.all.checked;
    const events = all ? ['*'] : EVENTS.filter((name) => form.elements[`ev-${name}`].checked);
    const created = await call(() => apiFetch('POST', '/api/webhooks', { url, events }));
    if (!created) return;
    state.secret = { url: created.url, value: created.secret };
    form.reset();
    await refresh();
  }

  async function test(hook) {
    const sent = await call(() => apiFetch('POST', `/api/webhooks/${enc(hook.id)}/test`));
    if (!sent) return;
    flash(t('webhooks.testSent', { url: hook.url }));
    await select(hook);
    // The dispatcher picks the ping up within a second; show its first attempt.
    setTimeout(() => { if (state.selected?.id === hook.id) loadLog().then(render); }, 1500);
  }

  async function remove(hook) {
    if (!confirm(t('webhooks.confirmDelete', { url: hook.url }))) return;
    const done = await call(async () => { await apiFetch('DELETE', `/api/webhooks/${enc(hook.id)}`); return true; });
    if (!done) return;
    if (state.selected?.id === hook.id) state.selected = null;
    flash(t('webhooks.deleted', { url: hook.url }));
    await refresh();
  }

  // Outside the re-rendered part, so a render does not cut a notice short.
  const flashBox = el('p', { class: 'hint', role: 'status', hidden: true });
  const body = el('div');
  container.replaceChildren(body, flashBox);
  let flashTimer = 0;
  function flash(text) {
    flashBox.textContent = text;
    flashBox.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { flashBox.hidden = true; }, 4000);
  }

  function errorBox() {
    const err = state.error;
    if (!err) return null;
    const text = err.status === 0
      ? t('webhooks.networkError', { message: err.message })
      : t('webhooks.error', { status: err.status, code: err.code || '-', message: err.message });
    return el('p', { class: 'error', role: 'alert', text });
  }

  function hooksTable() {
    if (!state.hooks.length) return el('p', { class: 'hint', text: state.loaded ? t('webhooks.none') : '' });
    return el('table', { class: 'table' },
      el('thead', {}, el('tr', {},
        el('th', { text: t('webhooks.colUrl') }), el('th', { text: t('webhooks.colEvents') }),
        el('th', { text: t('webhooks.colCreated') }), el('th'))),
      el('tbody', {}, state.hooks.map((hook) => el('tr', { class: state.selected?.id === hook.id ? 'selected' : '' },
        el('td', {}, el('code', { text: hook.url })),
        el('td', { text: hook.events.map(eventLabel).join(t('webhooks.listSep')) }),
        el('td', { text: time(hook.created_at) }),
        el('td', { class: 'actions', style: 'white-space: nowrap' },
          el('button', { type: 'button', text: t('webhooks.deliveries'), onclick: () => select(hook) }),
          el('button', { type: 'button', text: t('webhooks.test'), onclick: () => test(hook) }),
          el('button', { type: 'button', class: 'danger', text: t('webhooks.delete'), onclick: () => remove(hook) }))))));
  }

  function createForm() {
    const boxes = EVENTS.map((name) => el('label', { class: 'field inline' },
      el('input', { type: 'checkbox', name: `ev-${name}`, checked: true }), el('span', { text: eventLabel(name) })));
    const all = el('input', { type: 'checkbox', name: 'all' });
    all.addEventListener('change', () => boxes.forEach((b) => { b.querySelector('input').disabled = all.checked; }));
    return el('form', { class: 'webhooks-create', onsubmit: create },
      el('h3', { text: t('webhooks.createTitle') }),
      el('div', { class: 'row' },
        el('input', { name: 'url', type: 'url', required: true, maxlength: 2000, placeholder: t('webhooks.url'), 'aria-label': t('webhooks.url'), style: 'flex: 1' }),
        el('button', { type: 'submit', class: 'primary', text: t('webhooks.create') })),
      el('div', { class: 'row', role: 'group', 'aria-label': t('webhooks.events') },
        el('strong', { text: t('webhooks.events') }),
        el('label', { class: 'field inline' }, all, el('span', { text: t('webhooks.allEvents') })),
        boxes));
  }

  function secretCard() {
    const s = state.secret;
    if (!s) return null;
    const input = el('input', { type: 'text', readonly: true, value: s.value, 'aria-label': t('webhooks.secretTitle', { url: s.url }) });
    input.addEventListener('focus', () => input.select());
    const copy = async () => flash(t((await copyText(s.value)) ? 'webhooks.copied' : 'webhooks.copyFailed'));
    return el('div', { class: 'link-card', role: 'status' },
      el('strong', { text: t('webhooks.secretTitle', { url: s.url }) }),
      el('div', { class: 'link-row' }, input,
        el('button', { type: 'button', class: 'primary', text: t('webhooks.copy'), onclick: copy }),
        el('button', { type: 'button', text: t('webhooks.done'), onclick: () => { state.secret = null; render(); } })),
      el('p', { class: 'hint', text: t('webhooks.secretHint') }));
  }

  function attemptResult(a) {
    if (a.status != null) return t('webhooks.status', { status: a.status });
    return a.error || '';
  }

  function delivery(d) {
    const head = el('div', { class: 'link-head' },
      el('strong', { text: eventLabel(d.event) }),
      el('span', { class: 'state-tag', text: t(`webhooks.state.${d.state}`) }),
      el('span', { class: 'hint', text: time(d.created_at_ms) }),
      d.next_attempt_at_ms != null ? el('span', { class: 'hint', text: t('webhooks.nextRetry', { time: time(d.next_attempt_at_ms) }) }) : null,
      el('code', { text: d.id }));
    if (!d.attempts.length) return el('li', { class: 'link-card' }, head, el('p', { class: 'hint', text: t('webhooks.noAttempts') }));
    const rows = d.attempts.map((a) => el('tr', {},
      el('td', { class: 'num', text: String(a.attempt) }),
      el('td', { text: time(a.at_ms) }),
      el('td', { text: attemptResult(a) }),
      el('td', { class: 'num', text: t('webhooks.ms', { ms: a.duration_ms }) }),
      el('td', { text: a.next_attempt_at_ms != null ? time(a.next_attempt_at_ms) : '' })));
    return el('li', { class: 'link-card' }, head, el('table', { class: 'table' },
      el('thead', {}, el('tr', {}, ['colAttempt', 'colTime', 'colResult', 'colDuration', 'colNext'].map((k) => el('th', { text: t(`webhooks.${k}`) })))),
      el('tbody', {}, rows)));
  }

  function logPanel() {
    const hook = state.selected;
    if (!hook) return null;
    const log = state.log || { total: 0, deliveries: [] };
    const pages = Math.max(1, Math.ceil(log.total / PAGE));
    const current = Math.floor(state.offset / PAGE) + 1;
    return el('div', { class: 'webhooks-log' },
      el('div', { class: 'panel-head' },
        el('h3', { text: t('webhooks.logTitle', { url: hook.url }) }),
        el('div', { class: 'row' },
          el('button', { type: 'button', text: t('webhooks.refresh'), onclick: () => loadLog().then(render) }),
          el('button', { type: 'button', text: t('webhooks.close'), onclick: () => { state.selected = null; render(); } }))),
      log.deliveries.length
        ? el('ul', { class: 'link-list' }, log.deliveries.map(delivery))
        : el('p', { class: 'hint', text: t('webhooks.noDeliveries') }),
      log.total > PAGE ? el('div', { class: 'row' },
        el('button', { type: 'button', text: t('webhooks.prev'), disabled: current <= 1, onclick: () => page(-1) }),
        el('span', { class: 'hint', text: t('webhooks.pageOf', { page: current, pages }) }),
        el('button', { type: 'button', text: t('webhooks.next'), disabled: current >= pages, onclick: () => page(1) })) : null);
  }

  /** What is typed in the create form, to survive a render (a refused URL stays editable). */
  function typed() {
    const f = body.querySelector('form.webhooks-create');
    if (!f) return null;
    return { url: f.elements.url.value, all: f.elements.all.checked, on: EVENTS.map((name) => f.elements[`ev-${name}`].checked) };
  }

  function retype(f, v) {
    if (!v) return;
    f.elements.url.value = v.url;
    f.elements.all.checked = v.all;
    EVENTS.forEach((name, i) => {
      f.elements[`ev-${name}`].checked = v.on[i];
      f.elements[`ev-${name}`].disabled = v.all;
    });
  }

  function render() {
    const kept = typed();
    const form = createForm();
    body.replaceChildren(...[
      el('div', { class: 'panel-head' },
        el('h2', { text: t('webhooks.title') }),
        el('button', { type: 'button', text: t('webhooks.refresh'), onclick: refresh })),
      el('p', { class: 'hint', text: t('webhooks.intro') }),
      errorBox(),
      secretCard(),
      hooksTable(),
      form,
      logPanel(),
    ].filter(Boolean));
    retype(form, kept);
  }

  render();
  refresh();
  return { refresh, render };
}

/** Admin-page section (admin.js SECTIONS): the panel, re-rendered on a language switch while shown. */
export const id = 'webhooks';
export const titleKey = 'webhooks.title';

export function mount(container, ctx) {
  const hooks = mountWebhooks(container, ctx);
  const stop = onLangChange(() => (container.isConnected ? hooks.render() : stop()));
}
