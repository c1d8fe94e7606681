// Bridges (docs/protocol.md, "Bridges"): recording-classroom hardware brought into a
// class. Lists every bridge with its live status (refreshed every 3 s while shown),
// creates one (class, role, source, RTSP/SRT URL or an RTMP stream key), deletes one.
// An RTMP bridge shows the URL its encoder pushes to.

import { t } from '../i18n.js';
import { notify } from '../ui.js';
import { act, field, form, formatDateTime, h, input, option, panel, select, submit, submitButton, table } from './common.js';

export const id = 'bridges';
export const titleKey = 'bridges.title';

const REFRESH_MS = 3000;

export async function mount(container, ctx) {
  const list = h('div');
  const classes = await ctx.apiFetch('GET', '/api/classes');
  const load = async () => {
    const bridges = await ctx.apiFetch('GET', '/api/bridges');
    list.replaceChildren(table(['bridges.colName', 'bridges.colClass', 'bridges.colSource', 'bridges.colState', 'bridges.colPath', 'bridges.colBitrate', 'bridges.colError', ''],
      bridges.map((b) => row(ctx, b, classes, load)), 'bridges.none'));
  };
  container.append(panel('bridges.new', await createForm(ctx, classes, load)), panel('bridges.listTitle', h('p', { class: 'hint', i18n: 'bridges.intro' }), list));
  await load();
  const timer = setInterval(() => (container.isConnected ? load().catch(() => {}) : clearInterval(timer)), REFRESH_MS);
}

async function createForm(ctx, classes, reload) {
  const classSel = select(classes.map((c) => [c.id, { text: c.title }]), { name: 'class_id' });
  const roomSel = h('select', { name: 'classroom_id' });
  const fillRooms = async () => {
    const c = classSel.value ? await ctx.apiFetch('GET', `/api/classes/${encodeURIComponent(classSel.value)}`) : { classrooms: [] };
    roomSel.replaceChildren(option('', 'bridges.noClassroom'), ...c.classrooms.map((r) => option(r.id, { text: r.name })));
  };
  classSel.addEventListener('change', fillRooms);
  await fillRooms();
  const kind = select([['rtsp', { text: 'RTSP' }], ['srt', { text: 'SRT' }], ['rtmp', { text: 'RTMP' }]], { name: 'kind' });
  const audio = h('input', { type: 'checkbox', name: 'audio', checked: true });
  return form({ class: 'grid', id: 'bridge-form' }, async (ev) => {
    const f = ev.target;
    const body = {
      class_id: f.elements.class_id.value, name: f.elements.name.value, role: f.elements.role.value,
      classroom_id: f.elements.classroom_id.value || null, source: f.elements.source.value, kind: f.elements.kind.value,
      url: f.elements.kind.value === 'rtmp' ? null : f.elements.url.value, transport: f.elements.transport.value, audio: f.elements.audio.checked,
    };
    const made = await submit(f, ctx, () => ctx.apiFetch('POST', '/api/bridges', body));
    if (!made) return;
    notify('admin.created', { name: made.name });
    f.elements.url.value = '';
    reload();
  },
  field('class_id', 'bridges.class', classSel),
  field('name', 'bridges.name', input({ placeholder: t('bridges.namePlaceholder') })),
  field('role', 'bridges.role', select([['main', 'bridges.role.main'], ['classroom', 'bridges.role.classroom']], { name: 'role' })),
  field('classroom_id', 'bridges.classroom', roomSel),
  field('source', 'bridges.source', select([['board', 'bridges.source.board'], ['camera', 'bridges.source.camera'], ['screen', 'bridges.source.screen']], { name: 'source' })),
  field('kind', 'bridges.kind', kind),
  field('url', 'bridges.url', input({ maxlength: '1024', placeholder: 'rtsp://user:password@192.0.2.10/stream' })),
  field('transport', 'bridges.transport', select([['tcp', { text: 'TCP' }], ['udp', { text: 'UDP' }]], { name: 'transport' })),
  field('audio', 'bridges.audio', audio),
  submitButton('bridges.create'));
}

function row(ctx, b, classes, reload) {
  const remove = async () => {
    if (!confirm(t('admin.confirmDeleteNamed', { name: b.name }))) return;
    if (await act(ctx, () => ctx.apiFetch('DELETE', `/api/bridges/${encodeURIComponent(b.id)}`))) reload();
  };
  const s = b.status || {};
  const cls = classes.find((c) => c.id === b.class_id);
  const source = `${t(`bridges.role.${b.role}`)} · ${t(`bridges.source.${b.source}`)}${b.audio ? ` + ${t('bridges.audio')}` : ''}`;
  const path = [s.video_path && t(`bridges.path.${s.video_path}`), s.video_in].filter(Boolean).join(' · ');
  return h('tr', { dataset: { id: b.id, state: s.state || '' } },
    h('td', {}, h('div', { text: b.name }), h('div', { class: 'hint', text: `${b.kind.toUpperCase()} ${b.url || b.publish_url || ''}` }), h('div', { class: 'hint', text: formatDateTime(b.created_at) })),
    h('td', { text: cls ? cls.title : b.class_id }),
    h('td', { text: source }),
    h('td', { class: `state state-${s.state || 'unknown'}`, text: s.state ? t(`bridges.state.${s.state}`) : '' }),
    h('td', { text: path }),
    h('td', { class: 'num', text: s.bitrate_bps ? `${(s.bitrate_bps / 1000).toFixed(0)} kbps` : '' }),
    h('td', { class: 'hint', text: s.last_error || '' }),
    h('td', { class: 'actions' }, h('button', { type: 'button', class: 'danger', i18n: 'admin.delete', onclick: remove })));
}
