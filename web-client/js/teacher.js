// Teacher console (teacher.html, role main): chooses camera and microphone,
// publishes them when the class starts, adds a blackboard camera or a
// courseware screen share as a second source, shows every listening
// classroom as a thumbnail with its raised hand, and calls on one classroom
// so that all others see and hear it.

import { initI18n, setText, t } from './i18n.js';
import { Room } from './room.js';
import {
  attachTrack, openCapture, openCamera, openScreen, listDevices, fillDeviceSelect,
  mediaErrorKey, deviceIdOf, stopTrack, makeVideo, makeAudio,
} from './media.js';
import { $, h, bindStatus, showFatal, notify, params, soundBlocked, unlockSound, roleLabel } from './ui.js';

const SECOND_SOURCES = ['board', 'screen'];

function main() {
  initI18n();
  const room = new Room({ role: 'main', publishes: true });
  const view = {
    room,
    local: { camera: null, mic: null, board: null, screen: null },
    started: false,
    muted: false,
    pubState: { connection: 'closed', negotiated: false },
    thumbs: new Map(),
    blockedAudio: new Set(),
  };
  room.addEventListener('fatal', (ev) => renderFatal(ev.detail));
  room.addEventListener('joined', () => renderTitle(room));
  room.addEventListener('change', () => render(view));
  room.addEventListener('tracks', () => renderClassrooms(view));
  room.addEventListener('publish', (ev) => {
    view.pubState = ev.detail;
    renderPublishState(view);
  });
  room.addEventListener('notice', (ev) => notify(ev.detail.key, ev.detail.args, 'error'));
  bindStatus($('#status'), room);
  bindControls(view);
  render(view);
  if (!room.start()) return;
  boot(view);
}

function renderFatal({ key, args, link }) {
  const extra = link ? h('a', { class: 'button big', href: link, i18n: 'err.openRightPage' }) : null;
  showFatal(key, { ...args, role: args.role ? roleLabel(args.role) : '' }, extra);
}

function renderTitle(room) {
  const title = $('#class-title');
  delete title.dataset.i18n;
  title.textContent = room.classTitle;
  document.title = `${room.classTitle} · ${t('title.teacher')}`;
}

/** Opens the preview; with `autostart=1` starts the class (and `second=`). */
async function boot(view) {
  const opened = await openMain(view);
  await refreshDevices(view);
  if (params().get('autostart') !== '1' || !opened) return;
  await startClass(view);
  const second = params().get('second');
  if (SECOND_SOURCES.includes(second)) await addSecond(view, second);
}

function bindControls(view) {
  $('#btn-start').addEventListener('click', () => startClass(view));
  $('#btn-stop').addEventListener('click', () => stopClass(view));
  $('#btn-mute').addEventListener('click', () => setMuted(view, !view.muted));
  $('#btn-board').addEventListener('click', () => addSecond(view, 'board'));
  $('#btn-screen').addEventListener('click', () => addSecond(view, 'screen'));
  $('#btn-end-callon').addEventListener('click', () => view.room.setCallOn(null));
  $('#btn-record').addEventListener('click', () => view.room.setRecording(!view.room.recording));
  $('#btn-retry-media').addEventListener('click', () => openMain(view).then(() => refreshDevices(view)));
  $('#sel-camera').addEventListener('change', () => switchDevice(view, 'camera'));
  $('#sel-mic').addEventListener('change', () => switchDevice(view, 'mic'));
  $('#sound-unlock button').addEventListener('click', () => unlockSound(view));
  navigator.mediaDevices?.addEventListener?.('devicechange', () => refreshDevices(view));
}

function showMediaError(err) {
  const box = $('#media-error');
  if (!err) {
    box.hidden = true;
    $('#btn-retry-media').hidden = true;
    return;
  }
  setText(box, mediaErrorKey(err), { detail: err.message || err.name || '' });
  box.hidden = false;
  $('#btn-retry-media').hidden = false;
}

/** Opens camera and mic from the selects; returns whether it worked. */
async function openMain(view) {
  let got;
  try {
    got = await openCapture({
      camera: true, mic: true, cameraId: $('#sel-camera').value, micId: $('#sel-mic').value,
    });
  } catch (err) {
    showMediaError(err);
    return false;
  }
  showMediaError(null);
  useTrack(view, 'camera', got.video);
  useTrack(view, 'mic', got.audio);
  return true;
}

/** Makes `track` the local `source`, publishing it if the class is on. */
function useTrack(view, source, track) {
  const { local, room } = view;
  if (local[source] === track) return;
  stopTrack(local[source]);
  local[source] = track;
  if (!track) return;
  if (source === 'mic') track.enabled = !view.muted;
  track.addEventListener('ended', () => trackEnded(view, source, track));
  if (view.started) room.publish.setSource(source, track);
  if (source === 'camera') attachTrack($('#preview'), track);
  render(view);
}

function trackEnded(view, source, track) {
  if (view.local[source] !== track) return;
  view.local[source] = null;
  view.room.publish.removeSource(source);
  if (source === 'board' || source === 'screen') notify('teacher.secondStopped', { source: t(`source.${source}`) });
  else notify('media.lost', { source: t(`source.${source}`) }, 'error');
  render(view);
}

async function refreshDevices(view) {
  const devices = await listDevices().catch(() => ({ video: [], audio: [] }));
  const camId = deviceIdOf(view.local.camera);
  fillDeviceSelect($('#sel-camera'), devices.video, camId, (n) => t('dev.camera', { n }));
  fillDeviceSelect($('#sel-mic'), devices.audio, deviceIdOf(view.local.mic), (n) => t('dev.mic', { n }));
  const other = devices.video.find((d) => d.deviceId !== camId);
  fillDeviceSelect($('#sel-board'), devices.video, deviceIdOf(view.local.board) || other?.deviceId,
    (n) => t('dev.camera', { n }));
}

async function switchDevice(view, source) {
  const id = $(source === 'camera' ? '#sel-camera' : '#sel-mic').value;
  if (id && deviceIdOf(view.local[source]) === id) return;
  try {
    const got = await openCapture({ camera: source === 'camera', mic: source === 'mic', cameraId: id, micId: id });
    useTrack(view, source, source === 'camera' ? got.video : got.audio);
    showMediaError(null);
  } catch (err) {
    showMediaError(err);
  }
}

async function startClass(view) {
  if (!view.local.camera && !view.local.mic && !(await openMain(view))) return;
  view.started = true;
  for (const source of ['camera', 'mic', ...SECOND_SOURCES]) {
    if (view.local[source]) view.room.publish.setSource(source, view.local[source]);
  }
  render(view);
}

function stopClass(view) {
  view.started = false;
  for (const source of SECOND_SOURCES) {
    stopTrack(view.local[source]);
    view.local[source] = null;
  }
  for (const source of ['camera', 'mic', ...SECOND_SOURCES]) view.room.publish.removeSource(source);
  render(view);
}

function setMuted(view, muted) {
  view.muted = muted;
  if (view.local.mic) view.local.mic.enabled = !muted;
  render(view);
}

/** Adds the blackboard camera or a screen share as the second source. */
async function addSecond(view, source) {
  let track;
  try {
    track = source === 'screen' ? await openScreen() : await openCamera($('#sel-board').value);
  } catch (err) {
    if (err?.name !== 'NotAllowedError' || source !== 'screen') notify(mediaErrorKey(err), { detail: err?.message || '' }, 'error');
    else notify('media.screenCancelled', null, 'error');
    return;
  }
  useTrack(view, source, track);
  if (source === 'board') refreshDevices(view);
}

function removeSecond(view, source) {
  const track = view.local[source];
  view.local[source] = null;
  stopTrack(track);
  view.room.publish.removeSource(source);
  render(view);
}

function render(view) {
  renderSources(view);
  renderSecondList(view);
  renderClassrooms(view);
  renderParticipants(view);
}

function renderSources(view) {
  const { local, started, muted, room } = view;
  $('#btn-start').hidden = started;
  $('#btn-stop').hidden = !started;
  $('#preview-empty').hidden = !!local.camera;
  const mute = $('#btn-mute');
  setText(mute, muted ? 'teacher.unmute' : 'teacher.mute');
  mute.setAttribute('aria-pressed', String(muted));
  mute.disabled = !local.mic;
  $('#btn-board').disabled = !!local.board;
  $('#btn-screen').disabled = !!local.screen;
  document.body.classList.toggle('on-air', started && room.signaling.joined);
  renderRecording(room);
  renderPublishState(view);
}

function renderRecording(room) {
  const button = $('#btn-record');
  button.disabled = !room.signaling.joined;
  setText(button, room.recording ? 'teacher.stopRecording' : 'teacher.startRecording');
  button.setAttribute('aria-pressed', String(!!room.recording));
  $('#rec-badge').hidden = !room.recording;
}

function renderPublishState(view) {
  const { connection, negotiated } = view.pubState;
  const key = !view.started ? 'teacher.notStarted'
    : negotiated && connection === 'connected' ? 'teacher.sending'
      : connection === 'failed' || connection === 'disconnected' ? 'teacher.sendTrouble'
        : 'teacher.sendConnecting';
  setText($('#pub-state'), key);
}

function renderSecondList(view) {
  const list = $('#second-list');
  const wanted = SECOND_SOURCES.filter((s) => view.local[s]);
  for (const item of [...list.children]) {
    if (!wanted.includes(item.dataset.source)) item.remove();
  }
  for (const source of wanted) {
    let item = list.querySelector(`[data-source="${source}"]`);
    if (!item) {
      item = h('div', { class: 'second-item', dataset: { source } },
        makeVideo('second-preview'),
        h('span', { class: 'second-name', i18n: `source.${source}` }),
        h('button', { type: 'button', class: 'danger', i18n: 'teacher.stopSource', onclick: () => removeSecond(view, source) }));
      list.append(item);
    }
    attachTrack(item.querySelector('video'), view.local[source]);
  }
}

/** Participant ids of the listening classrooms, in join order. */
function classroomIds(room) {
  return [...room.participants.values()].filter((p) => p.role === 'classroom').map((p) => p.id);
}

function renderClassrooms(view) {
  const { room, thumbs } = view;
  const ids = classroomIds(room);
  for (const [id, thumb] of thumbs) {
    if (!ids.includes(id)) {
      thumb.root.remove();
      thumbs.delete(id);
    }
  }
  const grid = $('#classroom-grid');
  for (const id of ids) {
    if (!thumbs.has(id)) {
      const thumb = makeThumb(view, id);
      thumbs.set(id, thumb);
      grid.append(thumb.root);
    }
    updateThumb(view, id, thumbs.get(id));
  }
  $('#no-classrooms').hidden = ids.length > 0;
  setText($('#classroom-count'), 'teacher.count', { n: ids.length });
  renderCallOn(view);
}

function makeThumb(view, id) {
  const video = makeVideo();
  const audio = makeAudio();
  const name = h('span', { class: 'thumb-name' });
  const hand = h('span', { class: 'hand-badge', i18n: 'teacher.handUp' });
  const badge = h('span', { class: 'onair-badge', i18n: 'teacher.speaking' });
  const idle = h('span', { class: 'thumb-idle', i18n: 'teacher.noVideo' });
  const button = h('button', { type: 'button', class: 'callon' });
  button.addEventListener('click', () => {
    const current = view.room.callOnId;
    view.room.setCallOn(current === id ? null : id);
  });
  const root = h('figure', { class: 'thumb', dataset: { id } },
    h('div', { class: 'thumb-video' }, video, idle, hand, badge),
    h('figcaption', {}, name, button), audio);
  return { root, video, audio, name, hand, badge, idle, button };
}

function updateThumb(view, id, thumb) {
  const { room } = view;
  const p = room.participant(id);
  const calledOn = room.callOnId === id;
  thumb.name.textContent = p?.name || id;
  thumb.hand.hidden = !p?.hand_raised;
  thumb.badge.hidden = !calledOn;
  thumb.idle.hidden = room.isLive(`${id}/camera`);
  thumb.root.classList.toggle('called-on', calledOn);
  thumb.root.classList.toggle('hand-raised', !!p?.hand_raised);
  setText(thumb.button, calledOn ? 'teacher.endCallOn' : 'teacher.callOn');
  thumb.button.disabled = !room.signaling.joined;
  attachTrack(thumb.video, room.subscribe.get(`${id}/camera`)?.track || null);
  attachTrack(thumb.audio, room.subscribe.get(`${id}/mic`)?.track || null, (el) => soundBlocked(view, el));
  thumb.audio.muted = !calledOn;
}

function renderCallOn(view) {
  const { room } = view;
  const id = room.callOnId;
  $('#btn-end-callon').disabled = id == null || !room.signaling.joined;
  const banner = $('#callon-banner');
  if (id == null) setText(banner, 'teacher.noCallOn');
  else setText(banner, 'teacher.callOnNow', { name: room.nameOf(id) });
  banner.classList.toggle('active', id != null);
}

function renderParticipants(view) {
  const { room } = view;
  const list = $('#participant-list');
  const order = { main: 0, classroom: 1, observer: 2 };
  const people = [...room.participants.values()].sort((a, b) => order[a.role] - order[b.role]);
  const items = people.map((p) => h('li', { class: `role-${p.role}` },
    h('span', { class: 'p-name', text: p.name }),
    h('span', { class: 'p-role', i18n: `role.${p.role}` }),
    p.id === room.me?.id ? h('span', { class: 'p-you', i18n: 'teacher.you' }) : null,
    p.hand_raised ? h('span', { class: 'p-hand', i18n: 'teacher.handUp' }) : null,
    room.callOnId === p.id ? h('span', { class: 'p-onair', i18n: 'teacher.speaking' }) : null));
  list.replaceChildren(...items);
  setText($('#participant-count'), 'teacher.count', { n: items.length });
}

main();
