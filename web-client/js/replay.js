// Lesson replay page (replay.html).
//   ?lesson=ID&token=JWT (or #token=JWT)   one lesson, bearer token
//   ?lesson=ID&exp=S&sig=SIG               one lesson, signed link
//   ?class=ID&token=JWT                    the class's recorded lessons, then pick one
// Fetches GET /api/replay/{id}, shows the teacher camera (with the teacher's mic) large and
// the courseware / blackboard small, plays the other mics in hidden <audio>, all on one
// lesson timeline (js/replay-player.js keeps them in step). Refetches the manifest while
// the lesson is still recording, while its export renders and before the signed URLs
// expire. Exposes `window.__replay` for automation (web-client/README.md).

import { initI18n, lang, onLangChange, setText, t } from './i18n.js';
import { tokenFromLocation } from './signaling.js';
import { $, h, notify, params } from './ui.js';
import { ReplayPlayer, TrackView, hlsSupported, nativeHls } from './replay-player.js';

const SPEEDS = [0.75, 1, 1.25, 1.5, 2];
const SEEK_STEP_MS = 10_000;
const REFRESH_MS = 10_000; // manifest refetch while live or while the export renders
const RESUME_MIN_MS = 10_000; // offer to resume only past this and before the last 10 s
const CONTENT_KEYS = ['main/screen', 'main/board'];
const resumeKey = (id) => `classcast.replay.pos.${id}`;

const hook = {
  ready: false,
  error: null,
  lesson: null,
  live: false,
  views: () => [],
  position: () => null,
  seek() {},
  swap() {},
  setSpeed() {},
  play() {},
  pause() {},
};
window.__replay = hook;

class ReplayError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
}

// ---------- formatting ----------

/** 754000 → "12:34", 4354000 → "1:12:34". */
export function formatTime(ms) {
  const s = Math.max(0, Math.floor((ms || 0) / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

function formatDate(ms) {
  try {
    return new Intl.DateTimeFormat(lang(), { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(ms));
  } catch {
    return new Date(ms).toLocaleString();
  }
}

// ---------- API ----------

function credentials() {
  const q = params();
  return { token: tokenFromLocation(), exp: q.get('exp') || '', sig: q.get('sig') || '' };
}

function withAuth(path, auth) {
  if (auth.token || !auth.sig) return path;
  const sep = path.includes('?') ? '&' : '?';
  return `${path}${sep}exp=${encodeURIComponent(auth.exp)}&sig=${encodeURIComponent(auth.sig)}`;
}

async function getJson(path, auth) {
  const headers = auth.token ? { Authorization: `Bearer ${auth.token}` } : {};
  let res;
  try {
    res = await fetch(withAuth(path, auth), { headers, cache: 'no-store' });
  } catch (err) {
    throw new ReplayError(0, 'network', err.message);
  }
  if (!res.ok) {
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    const err = body?.error;
    const code = typeof err === 'string' ? err : err?.code;
    throw new ReplayError(res.status, code, (typeof err === 'object' && err?.message) || body?.message || res.statusText);
  }
  return res.json();
}

function errorKey(err) {
  if (err.status === 401 || err.status === 403) return ['replay.unauthorized'];
  if (err.status === 404) return ['replay.notFound'];
  if (err.status === 0) return ['replay.network', { detail: err.message }];
  return ['replay.failed', { status: err.status, message: err.message }];
}

/** Replaces the page with a full-page message; `code` goes to `__replay.error`. */
function fail(code, key, args) {
  hook.error = code;
  $('#replay-loading').hidden = true;
  let box = $('#fatal');
  if (!box) {
    box = h('div', { id: 'fatal', class: 'fatal', role: 'alert' });
    document.body.append(box);
  }
  box.replaceChildren(h('h1', { i18n: 'replay.errTitle' }), h('p', { class: 'fatal-msg', i18n: key, args }));
  document.body.classList.add('has-fatal');
}

/** Link to another replay page, keeping the token where this page had it. */
function replayLink(query, auth) {
  const q = new URLSearchParams(query);
  const cur = params();
  if (cur.get('lang')) q.set('lang', cur.get('lang'));
  const hashToken = new URLSearchParams(location.hash.replace(/^#/, '')).get('token');
  if (auth.token && !hashToken) q.set('token', auth.token);
  return `replay.html?${q}${hashToken ? `#token=${encodeURIComponent(hashToken)}` : ''}`;
}

// ---------- lesson list (?class=) ----------

async function openList(classId, auth) {
  const state = { page: null, first: null, perPage: 0 };
  const load = async (page) => {
    const query = `/api/replay?class=${encodeURIComponent(classId)}${page == null ? '' : `&page=${page}`}`;
    const body = await getJson(query, auth);
    state.page = body.page ?? page ?? 1;
    if (state.first == null) state.first = state.page;
    state.perPage = body.page_size || Math.max(state.perPage, body.lessons.length);
    state.body = body;
    renderList(state, auth, load);
  };
  onLangChange(() => { if (state.body) renderList(state, auth, load); });
  try {
    await load(null);
  } catch (err) {
    const [key, args] = errorKey(err);
    return fail(err.code || String(err.status), key, args);
  }
  $('#replay-loading').hidden = true;
  $('#list').hidden = false;
  hook.ready = true;
}

function renderList(state, auth, load) {
  const { body } = state;
  const rows = body.lessons.map((l) => {
    const stateKey = { recording: 'replay.stateRecording', interrupted: 'replay.stateInterrupted' }[l.state];
    const href = replayLink({ lesson: l.id }, auth);
    return h('tr', {},
      h('td', {}, h('a', { href, text: l.title || l.id }), stateKey ? h('span', { class: 'state-tag', i18n: stateKey }) : null),
      h('td', { text: l.teacher || '' }),
      h('td', { text: formatDate(l.started_at_ms) }),
      h('td', { class: 'num', text: formatTime(l.duration_ms) }),
      h('td', { class: 'actions' }, h('a', { class: 'button primary', href, i18n: 'replay.watch' })));
  });
  $('#list-body').replaceChildren(...rows);
  $('#list-empty').hidden = rows.length > 0;
  const pages = Math.max(1, Math.ceil((body.total || 0) / Math.max(1, state.perPage)));
  const index = state.page - state.first + 1;
  setText($('#page-of'), 'replay.pageOf', { page: index, pages });
  $('#btn-prev').disabled = index <= 1;
  $('#btn-next').disabled = index >= pages;
  const go = (page) => load(page).catch((err) => {
    const [key, args] = errorKey(err);
    notify(key, args, 'error');
  });
  $('#btn-prev').onclick = () => go(state.page - 1);
  $('#btn-next').onclick = () => go(state.page + 1);
}

// ---------- one lesson ----------

/** Page state of an open lesson. */
const S = {
  id: '',
  auth: null,
  manifest: null,
  player: null,
  slotA: null, // TrackView in #view-a (the leader)
  slotB: null, // TrackView in #view-b
  audio: new Map(), // key -> TrackView in a hidden <audio>
  carriedMic: null, // mic key heard through the leader's master playlist
  secondAuto: true, // slot B follows whichever content track has media
  swapped: false,
  scrubbing: false,
  urls: new Map(), // path -> freshest signed URL
  lessonDir: '',
  pairs: new Set(), // lesson-wide exp|sig pairs seen
  pair: null, // the freshest lesson-wide {exp, sig}
  refreshTimer: 0,
  refreshing: null,
  roomNumbers: new Map(),
};

async function openLesson(id, auth) {
  S.id = id;
  S.auth = auth;
  let manifest;
  try {
    manifest = await getJson(`/api/replay/${encodeURIComponent(id)}`, auth);
  } catch (err) {
    const [key, args] = errorKey(err);
    return fail(err.code || String(err.status), key, args);
  }
  if (!hlsSupported() && !nativeHls(document.createElement('video'))) return fail('no_hls', 'replay.noHls');
  applyUrls(manifest);
  S.manifest = manifest;
  hook.lesson = manifest.lesson;
  $('#replay-loading').hidden = true;
  $('#lesson').hidden = false;
  renderLesson();
  onLangChange(() => { renderLesson(); renderPicker(); });
  if (!manifest.tracks?.length) {
    hook.error = 'no_media';
    showStageMessage('replay.noMedia');
    return;
  }
  S.player = new ReplayPlayer({ durationMs: manifest.lesson.duration_ms, live: manifest.live });
  buildViews(manifest.tracks);
  bindControls();
  bindKeys();
  bindPlayerEvents();
  offerResume();
  scheduleRefresh();
  exposeHook();
  S.player.play(); // from the start (time-shift when live); a refusal shows the play button
}

function showStageMessage(key) {
  $('#player').hidden = true;
  $('#lesson').append(h('p', { class: 'error banner', role: 'alert', i18n: key }));
}

function renderLesson() {
  const { lesson, live } = S.manifest;
  const title = $('#lesson-title');
  title.textContent = lesson.title || lesson.id;
  document.title = `${lesson.title || lesson.id} · classcast`;
  setText($('#lesson-teacher'), 'replay.teacher', { name: lesson.teacher || '—' });
  const date = $('#lesson-date');
  date.textContent = formatDate(lesson.started_at_ms);
  date.dateTime = new Date(lesson.started_at_ms).toISOString();
  setText($('#lesson-duration'), 'replay.duration', { d: formatTime(lesson.duration_ms) });
  $('#live-badge').hidden = !live;
  $('#btn-live').hidden = !live;
  $('#interrupted').hidden = lesson.state !== 'interrupted';
  renderExport(S.manifest.export);
  const back = $('#back-to-list');
  if (S.auth.token && lesson.class_id) {
    back.hidden = false;
    back.querySelector('a').href = replayLink({ class: lesson.class_id }, S.auth);
  }
}

function renderExport(exp) {
  const box = $('#export');
  const state = exp?.state || 'none';
  box.hidden = state === 'none';
  if (state === 'done' && exp.url) {
    box.replaceChildren(h('a', { class: 'button primary', href: exp.url, download: `${S.manifest.lesson.title || S.id}.mp4` },
      h('span', { i18n: 'replay.exportDone' })));
  } else if (state === 'queued') {
    box.replaceChildren(h('span', { class: 'hint', i18n: 'replay.exportQueued' }));
  } else if (state === 'rendering') {
    const pct = Math.round((exp.progress || 0) * 100);
    const bar = h('progress', { max: '100', value: String(pct) });
    bar.setAttribute('aria-label', t('replay.exportRendering', { pct }));
    box.replaceChildren(h('span', { class: 'hint', i18n: 'replay.exportRendering', args: { pct } }), bar);
  } else if (state === 'failed') {
    box.replaceChildren(h('span', { class: 'error', i18n: 'replay.exportFailed', args: { error: exp.error || '' } }));
  } else {
    box.replaceChildren();
  }
}

// ---------- signed URLs ----------

/** Remembers the freshest signed URL of every playlist, and the lesson-wide pair if any. */
function applyUrls(manifest) {
  const pairs = new Set();
  for (const tr of manifest.tracks || []) {
    for (const url of [tr.playlist, tr.master]) {
      if (!url) continue;
      const u = new URL(url, location.href);
      S.urls.set(u.pathname, u.href);
      if (!S.lessonDir) S.lessonDir = u.pathname.replace(/[^/]*$/, '');
      pairs.add(`${u.searchParams.get('exp')}|${u.searchParams.get('sig')}`);
    }
  }
  if (pairs.size === 1) {
    const [pair] = pairs;
    S.pairs.add(pair);
    const [exp, sig] = pair.split('|');
    S.pair = { exp, sig };
  }
}

/**
 * hls.js asks for `url`: give the freshest signed form. Playlists by path; other files of
 * the lesson (segments, init) only when they carry a lesson-wide signature we issued.
 */
function rewriteUrl(url) {
  let u;
  try { u = new URL(url, location.href); } catch { return url; }
  if (u.origin !== location.origin) return url;
  const fresh = S.urls.get(u.pathname);
  if (fresh) return fresh;
  const old = `${u.searchParams.get('exp')}|${u.searchParams.get('sig')}`;
  if (S.pair && u.pathname.startsWith(S.lessonDir) && S.pairs.has(old)) {
    u.searchParams.set('exp', S.pair.exp);
    u.searchParams.set('sig', S.pair.sig);
    return u.href;
  }
  return url;
}

function scheduleRefresh() {
  clearTimeout(S.refreshTimer);
  const m = S.manifest;
  let delay = Infinity;
  if (m.live || ['queued', 'rendering'].includes(m.export?.state)) delay = REFRESH_MS;
  if (m.expires_at) delay = Math.min(delay, Math.max(5_000, m.expires_at * 1000 - Date.now() - 60_000));
  if (Number.isFinite(delay)) S.refreshTimer = setTimeout(() => refresh().catch(() => {}), delay);
}

/** Refetches the manifest (one at a time); returns it, or throws. */
function refresh() {
  if (S.refreshing) return S.refreshing;
  S.refreshing = (async () => {
    try {
      const m = await getJson(`/api/replay/${encodeURIComponent(S.id)}`, S.auth);
      applyUrls(m);
      S.manifest = m;
      hook.lesson = m.lesson;
      S.player.setDuration(m.lesson.duration_ms, m.live);
      renderLesson();
      addNewTracks(m.tracks || []);
      return m;
    } catch (err) {
      if (err.status === 401 || err.status === 403) notify('replay.unauthorized', null, 'error');
      throw err;
    } finally {
      S.refreshing = null;
      scheduleRefresh();
    }
  })();
  return S.refreshing;
}

/** A view was refused (expired signature): refetch the manifest and reload it. */
async function reauth(view) {
  try {
    await refresh();
  } catch {
    return;
  }
  const tr = S.manifest.tracks.find((x) => x.key === view.key);
  if (!tr) return;
  const url = view.url.includes('.master.') && tr.master ? tr.master : tr.playlist;
  view.reload(url);
}

// ---------- views ----------

function trackByKey(tracks, key) {
  return tracks.find((tr) => tr.key === key) || null;
}

function roomNumber(owner) {
  if (!S.roomNumbers.has(owner)) S.roomNumbers.set(owner, S.roomNumbers.size + 1);
  return S.roomNumbers.get(owner);
}

/** What a track is called on screen. */
function trackLabel(tr) {
  if (tr.owner === 'main') {
    const key = { camera: 'replay.teacherCamera', screen: 'tv.screen', board: 'tv.board', mic: 'source.mic' }[tr.source];
    return t(key || 'replay.teacherCamera');
  }
  const who = tr.owner_name || tr.name || t('replay.roomCamera', { n: roomNumber(tr.owner) });
  return tr.source === 'camera' ? who : `${who} · ${t(`source.${tr.source}`)}`;
}

function makeView(tr, url, el) {
  const view = new TrackView({ track: tr, url, el, startedAtMs: S.manifest.lesson.started_at_ms, rewriteUrl });
  view.addEventListener('auth', () => reauth(view));
  return view;
}

/** The leader: teacher camera (+ mic), else courseware / board, any video, the teacher's mic. */
function pickLeader(tracks) {
  const videos = tracks.filter((tr) => tr.kind === 'video');
  const mics = tracks.filter((tr) => tr.kind === 'audio');
  return trackByKey(tracks, 'main/camera') || trackByKey(tracks, 'main/screen') || trackByKey(tracks, 'main/board')
    || videos.find((tr) => tr.owner === 'main') || videos[0] || trackByKey(tracks, 'main/mic') || mics[0] || null;
}

/** Slot B by default: a content track, preferring the one with media now; else another video. */
function pickSecond(tracks, pos = 0) {
  const leader = S.slotA?.key;
  const content = CONTENT_KEYS.map((k) => trackByKey(tracks, k)).filter((tr) => tr && tr.key !== leader);
  const now = content.find((tr) => tr.start_ms <= pos && pos < (tr.end_ms ?? Infinity));
  return now || content[0] || tracks.find((tr) => tr.kind === 'video' && tr.key !== leader) || null;
}

function buildViews(tracks) {
  const leaderTrack = pickLeader(tracks);
  const figA = $('#view-a');
  if (leaderTrack.kind === 'video') {
    const url = leaderTrack.master || leaderTrack.playlist;
    if (leaderTrack.master) S.carriedMic = `${leaderTrack.owner}/mic`;
    S.slotA = makeView(leaderTrack, url, figA.querySelector('video'));
  } else {
    // Sound only: the leader is an <audio>; the large view shows a poster.
    figA.hidden = true;
    $('#audio-only').hidden = false;
    S.slotA = makeView(leaderTrack, leaderTrack.playlist, h('audio', { preload: 'auto' }));
    $('#replay-audio').append(S.slotA.el);
  }
  S.player.add(S.slotA, { leader: true });
  figA.querySelector('.rview-label').textContent = trackLabel(leaderTrack);
  if (S.carriedMic) {
    S.slotA.addEventListener('update', checkMaster);
    // A master that cannot play would take the teacher's voice with it.
    S.slotA.addEventListener('stuck', () => { if (S.carriedMic) splitMaster('it cannot play'); });
  }
  S.slotA.start();
  const second = pickSecond(tracks);
  if (second) setSecond(second.key, { auto: true });
  for (const tr of tracks) addAudio(tr);
  renderPicker();
}

const MASTER_SLACK_MS = 1000;

/**
 * hls.js lip-syncs the master's mic with the video per part (#EXT-X-DISCONTINUITY) by
 * timestamps, pairing the n-th part of one with the n-th part of the other. That holds
 * when both tracks have the same parts (camera and mic started and stopped together);
 * otherwise the sound after an unpaired gap is off by the gap, or stalls, and the mic
 * outside the video's parts is never heard. Then play the camera's own playlist and the
 * mic as a follower <audio>, like the other mics.
 */
function checkMaster() {
  const v = S.slotA;
  if (!S.carriedMic || !v?.details || !v.audioDetails) return;
  const video = v.runs();
  const audio = v.audioRuns();
  if (!video.length || !audio.length) return; // a live lesson's first segments are not there yet
  const growing = S.manifest.live;
  const paired = video.length === audio.length && video.every(([a, b], k) => {
    const [c, d] = audio[k];
    const lastGrowing = growing && k === video.length - 1;
    return Math.abs(a - c) <= MASTER_SLACK_MS && (lastGrowing || Math.abs(b - d) <= MASTER_SLACK_MS);
  });
  if (!paired) splitMaster(`different parts (${JSON.stringify(video)} / ${JSON.stringify(audio)})`);
}

function splitMaster(reason) {
  const mic = trackByKey(S.manifest.tracks, S.carriedMic);
  const tr = S.slotA.track;
  console.warn(`replay: master of ${tr.key} with ${S.carriedMic}: ${reason}; playing the mic separately`);
  S.carriedMic = null;
  const el = S.slotA.el;
  S.player.remove(S.slotA);
  S.slotA = makeView(tr, tr.playlist, el);
  S.player.add(S.slotA, { leader: true });
  S.slotA.start();
  S.player.settle();
  if (mic) addAudio(mic);
}

/** Follower <audio> for every mic not heard through the leader. */
function addAudio(tr) {
  if (tr.kind !== 'audio' || S.audio.has(tr.key) || tr.key === S.carriedMic || tr.key === S.slotA?.key) return;
  const el = h('audio', { preload: 'auto' });
  el.setAttribute('aria-label', trackLabel(tr));
  $('#replay-audio').append(el);
  const view = makeView(tr, tr.playlist, el);
  S.audio.set(tr.key, view);
  S.player.add(view);
  view.start();
}

/** Puts track `key` in slot B (replacing what was there). */
function setSecond(key, { auto = false } = {}) {
  const tr = trackByKey(S.manifest.tracks, key);
  if (!tr || tr.kind !== 'video' || tr.key === S.slotA?.key) return;
  S.secondAuto = auto;
  if (S.slotB?.key === key) return;
  if (S.slotB) S.player.remove(S.slotB);
  const fig = $('#view-b');
  const video = fig.querySelector('video');
  S.slotB = makeView(tr, tr.playlist, video);
  S.player.add(S.slotB);
  fig.hidden = false;
  fig.querySelector('.rview-label').textContent = trackLabel(tr);
  $('#stage').classList.remove('single');
  $('#btn-swap').disabled = false;
  S.slotB.start();
  $('#sel-second').value = key;
  exposeHook();
}

function renderPicker() {
  if (!S.manifest || !S.player) return;
  const options = S.manifest.tracks.filter((tr) => tr.kind === 'video' && tr.key !== S.slotA?.key);
  const sel = $('#sel-second');
  sel.replaceChildren(...options.map((tr) => h('option', { value: tr.key, text: trackLabel(tr) })));
  if (S.slotB) sel.value = S.slotB.key;
  $('#second-field').hidden = options.length < 2;
  for (const [fig, view] of [[$('#view-a'), S.slotA], [$('#view-b'), S.slotB]]) {
    if (view) fig.querySelector('.rview-label').textContent = trackLabel(view.track);
  }
}

/** Tracks that appeared while the lesson is being recorded. */
function addNewTracks(tracks) {
  for (const tr of tracks) addAudio(tr);
  if (!S.slotB) {
    const second = pickSecond(tracks, S.player.pos);
    if (second) setSecond(second.key, { auto: true });
  }
  renderPicker();
}

/** Slot B on auto: when its content track has no media now but the other one has, switch. */
function followContent() {
  if (!S.secondAuto || !S.slotB?.details || S.slotB.covered || !CONTENT_KEYS.includes(S.slotB.key)) return;
  const pos = S.player.pos;
  const other = CONTENT_KEYS.map((k) => trackByKey(S.manifest.tracks, k))
    .find((tr) => tr && tr.key !== S.slotB.key && tr.key !== S.slotA?.key && tr.start_ms <= pos && pos < (tr.end_ms ?? Infinity));
  if (other) setSecond(other.key, { auto: true });
}

function swap() {
  if (!S.slotB) return;
  S.swapped = !S.swapped;
  $('#view-a').dataset.size = S.swapped ? 'small' : 'large';
  $('#view-b').dataset.size = S.swapped ? 'large' : 'small';
  // The large view is the one heard: the leader carries the sound either way.
  $('#btn-swap').setAttribute('aria-pressed', String(S.swapped));
}

function roleOf(view) {
  if (view === S.slotA) return S.swapped && S.slotB ? 'secondary' : 'main';
  if (view === S.slotB) return S.swapped ? 'main' : 'secondary';
  return 'audio';
}

// ---------- controls ----------

function setSpeed(x) {
  const rate = SPEEDS.includes(Number(x)) ? Number(x) : 1;
  S.player.setRate(rate);
  $('#sel-speed').value = String(rate);
}

function stepSpeed(dir) {
  const i = SPEEDS.indexOf(S.player.rate);
  const next = SPEEDS[Math.min(SPEEDS.length - 1, Math.max(0, (i < 0 ? 1 : i) + dir))];
  setSpeed(next);
  notify('replay.speedNow', { x: next });
}

function seekBy(ms) {
  S.player.seek(S.player.pos + ms);
}

function jumpToLive() {
  S.player.seek(S.player.liveEdgeMs() - 6_000);
  S.player.play();
}

async function toggleFullscreen() {
  const box = $('#player');
  try {
    if (document.fullscreenElement) await document.exitFullscreen();
    else if (box.requestFullscreen) await box.requestFullscreen();
    else {
      const big = (S.swapped ? $('#view-b') : $('#view-a')).querySelector('video');
      big.webkitEnterFullscreen?.(); // iPhone: only a <video> goes full screen
    }
  } catch {
    notify('tv.fullscreenFailed', null, 'error');
  }
}

function toggleHelp(show = $('#help').hidden) {
  $('#help').hidden = !show;
  if (show) $('#btn-help-close').focus();
  else $('#btn-help').focus();
}

function bindControls() {
  $('#btn-play').addEventListener('click', () => S.player.toggle());
  $('#click-to-play button').addEventListener('click', () => S.player.play());
  $('#btn-back').addEventListener('click', () => seekBy(-SEEK_STEP_MS));
  $('#btn-fwd').addEventListener('click', () => seekBy(SEEK_STEP_MS));
  $('#sel-speed').addEventListener('change', (e) => setSpeed(e.target.value));
  $('#btn-swap').addEventListener('click', swap);
  $('#view-b').addEventListener('click', () => { if ($('#view-b').dataset.size === 'small') swap(); });
  $('#view-a').addEventListener('click', () => { if ($('#view-a').dataset.size === 'small') swap(); });
  $('#sel-second').addEventListener('change', (e) => setSecond(e.target.value));
  $('#btn-live').addEventListener('click', jumpToLive);
  $('#btn-fullscreen').addEventListener('click', toggleFullscreen);
  $('#btn-help').addEventListener('click', () => toggleHelp(true));
  $('#btn-help-close').addEventListener('click', () => toggleHelp(false));
  $('#help').addEventListener('click', (e) => { if (e.target.id === 'help') toggleHelp(false); });
  const seek = $('#seek');
  seek.addEventListener('input', () => {
    S.scrubbing = true;
    $('#time-cur').textContent = formatTime(Number(seek.value));
  });
  seek.addEventListener('change', () => {
    S.scrubbing = false;
    S.player.seek(Number(seek.value));
  });
  document.addEventListener('fullscreenchange', () => {
    document.body.classList.toggle('is-fullscreen', Boolean(document.fullscreenElement));
  });
}

function bindKeys() {
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || document.body.classList.contains('has-fatal')) return;
    const el = e.target;
    const tag = el?.tagName;
    if (tag === 'TEXTAREA' || tag === 'SELECT' || (tag === 'INPUT' && el.type !== 'range')) return;
    const helpOpen = !$('#help').hidden;
    if (helpOpen) {
      if (e.key === 'Escape' || e.key === '?') {
        e.preventDefault();
        toggleHelp(false);
      }
      return;
    }
    const onButton = tag === 'BUTTON' || tag === 'A';
    let handled = true;
    switch (e.key) {
      case ' ':
        if (onButton) return; // Space activates the focused button
        S.player.toggle();
        break;
      case 'k': case 'K': S.player.toggle(); break;
      case 'ArrowLeft': case 'j': case 'J': seekBy(-SEEK_STEP_MS); break;
      case 'ArrowRight': case 'l': case 'L': seekBy(SEEK_STEP_MS); break;
      case 'Home': S.player.seek(0); break;
      case 'End': S.player.seek(S.player.endMs()); break;
      case '[': stepSpeed(-1); break;
      case ']': stepSpeed(1); break;
      case 's': case 'S': swap(); break;
      case 'f': case 'F': toggleFullscreen(); break;
      case '?': toggleHelp(true); break;
      default: handled = false;
    }
    if (handled) e.preventDefault();
  });
}

// ---------- rendering on every tick ----------

const viewMsg = new WeakMap();

function setViewMessage(fig, key) {
  if (viewMsg.get(fig) === key) return;
  viewMsg.set(fig, key);
  fig.classList.toggle('msg', Boolean(key));
  if (key) setText(fig.querySelector('.rview-msg'), key);
}

function messageFor(view) {
  if (!view) return null;
  if (!view.details && !view.error) return 'replay.viewLoading';
  if (!view.covered || view.error === 'missing') return 'replay.notRecorded';
  if (view.stuck || view.error) return 'replay.cannotPlay';
  return null;
}

function renderTick() {
  const p = S.player;
  const end = p.endMs();
  const seek = $('#seek');
  if (Number(seek.max) !== Math.round(end)) seek.max = String(Math.round(end));
  if (!S.scrubbing) {
    seek.value = String(Math.round(p.pos));
    $('#time-cur').textContent = formatTime(p.pos);
  }
  seek.setAttribute('aria-valuetext', t('replay.position', { cur: formatTime(p.pos), dur: formatTime(end) }));
  $('#time-dur').textContent = formatTime(end);
  if (S.slotA?.kind === 'video') setViewMessage($('#view-a'), messageFor(S.slotA));
  if (S.slotB) setViewMessage($('#view-b'), messageFor(S.slotB));
  // Ready once the leader has its playlist and a frame (or no media at the position); stays so.
  hook.ready ||= Boolean(S.slotA?.details && (S.slotA.el.readyState >= 2 || !S.slotA.covered));
  hook.live = p.live;
}

let stateKey = '';
function renderState() {
  const p = S.player;
  const playing = p.playing;
  const btn = $('#btn-play');
  btn.classList.toggle('playing', playing);
  setText(btn.querySelector('span'), playing ? 'replay.pause' : 'replay.play');
  let key = '';
  if (p.ended) key = 'replay.ended';
  else if (playing && p.stalled && S.slotA?.details) key = 'replay.buffering';
  if (key !== stateKey) {
    stateKey = key;
    if (key) setText($('#play-state'), key);
    else {
      delete $('#play-state').dataset.i18n;
      $('#play-state').textContent = '';
    }
  }
  if (p.ended) forgetResume();
}

let lastRuns = '';
function renderRuns() {
  // Where the small view's track has media, drawn under the seek bar.
  const view = S.slotB || S.slotA;
  const end = S.player.endMs();
  const runs = view && end > 0 ? view.runs() : [];
  const sig = JSON.stringify([runs, end]);
  if (sig === lastRuns) return;
  lastRuns = sig;
  $('#runs').replaceChildren(...runs.map(([a, b]) => {
    const span = h('span');
    span.style.left = `${(100 * Math.max(0, a)) / end}%`;
    span.style.width = `${(100 * Math.max(0, Math.min(b, end) - Math.max(0, a))) / end}%`;
    return span;
  }));
}

function bindPlayerEvents() {
  const p = S.player;
  p.addEventListener('tick', renderTick);
  p.addEventListener('state', renderState);
  p.addEventListener('blocked', () => { $('#click-to-play').hidden = false; });
  p.addEventListener('state', () => { if (p.playing) $('#click-to-play').hidden = true; });
  setInterval(() => {
    followContent();
    renderRuns();
    saveResume();
  }, 1000);
  addEventListener('pagehide', () => saveResume(true));
  document.addEventListener('visibilitychange', () => { if (document.hidden) saveResume(true); });
  renderState();
}

// ---------- resume ----------

let lastSaved = 0;
function saveResume(now = false) {
  const p = S.player;
  if (!p || p.ended || p.pos < RESUME_MIN_MS) return;
  if (!now && (!p.playing || Date.now() - lastSaved < 5_000)) return;
  lastSaved = Date.now();
  try { localStorage.setItem(resumeKey(S.id), JSON.stringify({ ms: Math.round(p.pos), at: Date.now() })); } catch { /* private mode */ }
}

function forgetResume() {
  try { localStorage.removeItem(resumeKey(S.id)); } catch { /* private mode */ }
}

function offerResume() {
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(resumeKey(S.id)) || 'null'); } catch { saved = null; }
  const ms = Number(saved?.ms);
  const end = S.manifest.live ? Infinity : S.manifest.lesson.duration_ms;
  if (!Number.isFinite(ms) || ms < RESUME_MIN_MS || ms > end - 10_000) return;
  const box = $('#resume');
  setText($('#resume-text'), 'replay.resumeAsk', { time: formatTime(ms) });
  box.hidden = false;
  $('#btn-resume').onclick = () => {
    box.hidden = true;
    S.player.seek(ms);
    S.player.play();
  };
  $('#btn-startover').onclick = () => {
    box.hidden = true;
    forgetResume();
  };
}

// ---------- automation hook ----------

function exposeHook() {
  const p = S.player;
  hook.views = () => p.views.map((v) => ({
    key: v.key,
    role: roleOf(v),
    kind: v.kind,
    leader: v === p.leader,
    covered: v.covered,
    currentTime: v.el.currentTime,
    lessonTimeMs: v.lessonMs(),
    audioLessonTimeMs: v.audioLessonMs(),
    paused: v.el.paused,
    readyState: v.el.readyState,
    playbackRate: v.el.playbackRate,
    playingDate: v.playingDateMs(),
    error: v.error,
    stuck: v.stuck,
  }));
  hook.position = () => ({
    lessonMs: p.pos, durationMs: p.endMs(), playing: p.playing, stalled: p.stalled, ended: p.ended,
    speed: p.rate, live: p.live, swapped: S.swapped, liveEdgeMs: p.liveEdgeMs(),
    teacherAudio: S.carriedMic ? 'master' : 'separate',
  });
  hook.seek = (ms) => p.seek(Number(ms));
  hook.swap = swap;
  hook.setSpeed = setSpeed;
  hook.play = () => p.play();
  hook.pause = () => p.pause();
  hook.setSecond = (key) => setSecond(key);
}

// ---------- start ----------

function main() {
  initI18n();
  const q = params();
  const auth = credentials();
  const lesson = q.get('lesson');
  const cls = q.get('class');
  if (lesson && (auth.token || (auth.exp && auth.sig))) openLesson(lesson, auth);
  else if (cls && auth.token) openList(cls, auth);
  else fail('no_credentials', 'replay.noCredentials');
}

main();
