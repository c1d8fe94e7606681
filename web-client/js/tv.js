// Classroom TV screen, shared by classroom.html (publishes its own camera and
// mic) and observer.html (watch only). Lays out the teacher camera, the
// courseware / blackboard and the called-on classroom for viewing from the
// back of a room, plays the teacher's and the spotlight's audio, and keeps
// everything running across reconnects.

import { initI18n, setText, t } from './i18n.js';
import { Room } from './room.js';
import {
  attachTrack, onFirstFrame, openCapture, listDevices, fillDeviceSelect,
  mediaErrorKey, stopTrack,
} from './media.js';
import { $, h, bindStatus, showFatal, notify, params, soundBlocked, unlockSound } from './ui.js';

const CONTENT_KEYS = ['main/screen', 'main/board'];
const VIDEO_TILES = {
  'main/camera': '#tile-teacher',
  'main/screen': '#tile-screen',
  'main/board': '#tile-board',
  'spotlight/camera': '#tile-spotlight',
};
const AUDIO_ELEMENTS = { 'main/mic': '#audio-main', 'spotlight/mic': '#audio-spotlight' };

/** Starts the TV page; `publishes` is true for a listening classroom. */
export function startTv({ role, publishes }) {
  initI18n();
  const room = new Room({ role, publishes });
  const local = { video: null, audio: null, muted: false };
  const view = { room, local, publishes, blockedAudio: new Set() };

  room.addEventListener('fatal', (ev) => renderFatal(ev.detail));
  room.addEventListener('joined', () => renderTitle(room));
  room.addEventListener('tracks', (ev) => attachRemote(view, ev.detail));
  room.addEventListener('change', () => render(view));
  room.addEventListener('change', () => { $('#rec-badge').hidden = !room.recording; });
  room.addEventListener('notice', (ev) => notify(ev.detail.key, ev.detail.args, 'error'));
  room.addEventListener('callon', (ev) => {
    if (ev.detail.id != null && ev.detail.id === room.me?.id && local.muted) notify('tv.mutedOnAir', null, 'error');
  });
  bindStatus($('#status'), room);
  onFirstFrame($('#tile-teacher video'), (ms) => room.markFirstFrame(ms));
  bindControls(view);
  render(view);
  if (!room.start()) return;
  if (publishes) preparePublishing(view);
}

function renderFatal({ key, args, link }) {
  const extra = link ? h('a', { class: 'button big', href: link, i18n: 'err.openRightPage' }) : null;
  showFatal(key, { ...args, role: args.role ? t(`role.${args.role}`) : '' }, extra);
}

function renderTitle(room) {
  const title = $('#class-title');
  delete title.dataset.i18n;
  title.textContent = room.classTitle;
  document.title = `${room.classTitle} · classcast`;
}

function attachRemote(view, tracks) {
  const byKey = new Map(tracks.map((tr) => [tr.key, tr.track]));
  for (const [key, sel] of Object.entries(VIDEO_TILES)) {
    attachTrack($(`${sel} video`), byKey.get(key) || null);
  }
  for (const [key, sel] of Object.entries(AUDIO_ELEMENTS)) {
    attachTrack($(sel), byKey.get(key) || null, (el) => soundBlocked(view, el));
  }
  render(view);
}

/** Which tiles show, and where: the stage layout for the current state. */
function planStage(view) {
  const { room } = view;
  const content = CONTENT_KEYS.filter((k) => room.isLive(k) && room.subscribe.get(k));
  const spotlight = room.callOnId != null;
  const people = ['main/camera', ...(spotlight ? ['spotlight/camera'] : [])];
  if (content.length > 0) {
    return { layout: 'focus', primary: content[0], side: [...content.slice(1), ...people] };
  }
  return { layout: people.length > 1 ? 'split' : 'single', primary: people[0], side: people.slice(1) };
}

function render(view) {
  const { room } = view;
  const plan = planStage(view);
  const stage = $('#stage');
  stage.dataset.layout = plan.layout;
  stage.style.setProperty('--sides', String(Math.max(plan.side.length, 1)));
  for (const [key, sel] of Object.entries(VIDEO_TILES)) {
    const tile = $(sel);
    const slot = key === plan.primary ? 'primary' : plan.side.includes(key) ? 'side' : 'hidden';
    tile.dataset.slot = slot;
    tile.style.order = slot === 'primary' ? 0 : 1 + plan.side.indexOf(key);
    tile.style.gridRow = plan.layout === 'focus' && slot === 'side' ? String(2 + plan.side.indexOf(key)) : '';
  }
  $('#tile-teacher').classList.toggle('waiting', !room.isLive('main/camera'));
  renderSpotlight(view);
  renderControls(view);
}

function renderSpotlight(view) {
  const { room, local } = view;
  const id = room.callOnId;
  const self = id != null && id === room.me?.id;
  const label = $('#tile-spotlight .tile-label');
  if (id == null) setText(label, 'tv.spotlight');
  else if (self) setText(label, 'tv.spotlightSelf');
  else setText(label, 'tv.spotlightName', { name: room.nameOf(id) });
  const selfVideo = $('#tile-spotlight .self-spot');
  selfVideo.hidden = !self;
  attachTrack(selfVideo, self ? local.video : null);
  $('#audio-spotlight').muted = self;
  document.body.classList.toggle('on-air', self);
}

function renderControls(view) {
  const { room, local, publishes } = view;
  if (!publishes) return;
  const me = room.me && room.participant(room.me.id);
  const raised = !!me?.hand_raised;
  const hand = $('#btn-hand');
  setText(hand.querySelector('span'), raised ? 'tv.lowerHand' : 'tv.raiseHand');
  hand.setAttribute('aria-pressed', String(raised));
  hand.disabled = !room.signaling.joined;
  const mic = $('#btn-mic');
  setText(mic.querySelector('span'), local.muted ? 'tv.micOff' : 'tv.micOn');
  mic.setAttribute('aria-pressed', String(local.muted));
  mic.disabled = !local.audio;
}

function bindControls(view) {
  $('#btn-fullscreen').addEventListener('click', toggleFullscreen);
  document.addEventListener('fullscreenchange', renderFullscreen);
  renderFullscreen();
  $('#sound-unlock button').addEventListener('click', () => unlockSound(view));
  if (!view.publishes) return;
  $('#btn-hand').addEventListener('click', () => {
    const me = view.room.me && view.room.participant(view.room.me.id);
    view.room.raiseHand(!me?.hand_raised);
  });
  $('#btn-mic').addEventListener('click', () => setMuted(view, !view.local.muted));
  navigator.mediaDevices?.addEventListener?.('devicechange', refreshDevices);
  $('#start-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    startSending(view);
  });
}

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen?.();
  else document.documentElement.requestFullscreen?.().catch(() => notify('tv.fullscreenFailed', null, 'error'));
}

function renderFullscreen() {
  setText($('#btn-fullscreen span'), document.fullscreenElement ? 'tv.exitFullscreen' : 'tv.fullscreen');
}

function setMuted(view, muted) {
  view.local.muted = muted;
  if (view.local.audio) view.local.audio.enabled = !muted;
  renderControls(view);
}

/** Autostart sends at once; otherwise the start panel asks first. */
async function preparePublishing(view) {
  const panel = $('#start-panel');
  if (params().get('autostart') === '1') {
    panel.hidden = true;
    const ok = await startSending(view);
    if (ok) return;
  }
  panel.hidden = false;
  await refreshDevices();
}

async function refreshDevices() {
  const devices = await listDevices().catch(() => ({ video: [], audio: [] }));
  fillDeviceSelect($('#sel-camera'), devices.video, '', (n) => t('dev.camera', { n }));
  fillDeviceSelect($('#sel-mic'), devices.audio, '', (n) => t('dev.mic', { n }));
}

async function startSending(view) {
  const { local, room } = view;
  const err = $('#start-error');
  err.hidden = true;
  let got;
  try {
    got = await openCapture({ camera: true, mic: true, cameraId: $('#sel-camera').value, micId: $('#sel-mic').value });
  } catch (e) {
    setText(err, mediaErrorKey(e), { detail: e?.message || '' });
    err.hidden = false;
    $('#start-panel').hidden = false;
    await refreshDevices();
    return false;
  }
  stopTrack(local.video);
  stopTrack(local.audio);
  Object.assign(local, { video: got.video, audio: got.audio });
  if (local.audio) local.audio.enabled = !local.muted;
  for (const [source, track] of [['camera', local.video], ['mic', local.audio]]) {
    if (!track) continue;
    track.addEventListener('ended', () => lostDevice(view, source));
    room.publish.setSource(source, track);
  }
  attachTrack($('#self-view'), local.video);
  $('#self-view').hidden = !local.video;
  $('#start-panel').hidden = true;
  render(view);
  return true;
}

function lostDevice(view, source) {
  view.room.publish.removeSource(source);
  if (source === 'camera') view.local.video = null;
  else view.local.audio = null;
  notify('media.lost', { source: t(`source.${source}`) }, 'error');
  $('#start-panel').hidden = false;
  refreshDevices();
  render(view);
}
