// Room controller shared by the teacher, classroom and observer pages: joins
// with the link's token, keeps the class state (participants, hands, call-on,
// live sources), runs the publish and subscribe connections, restarts ICE on a
// connection whose media path drops (network change or cut: same page, same
// connections), rejoins after a signaling drop, a server restart or a media path
// that stays dead (rebuilding both connections), and exposes the automation hook
// `window.__classcast`.
//
// Hook contract: joined, id, role, callOnId, hands, firstFrameMs, log, state,
// classTitle, recording, tracks(), stats(), publishStats(), setCallOn(id|null),
// setRecording(bool), stopSending() (tests: close the publish connection, returns Date.now()),
// raiseHand(bool), receiveReport() (the last receive_report sent, or null),
// mediaPorts() (local UDP ports of the publish and subscribe connections' selected pairs),
// iceRestarts ({publish, subscribe}: ICE restarts made by this page), transports() (protocol,
// local port and TCP type of each connection's selected pair). `callOn` is the call-on *function* on the teacher page
// (the only role allowed to call on) and the current called-on id elsewhere.

import { Signaling, tokenFromLocation, peekToken } from './signaling.js';
import { PublishSession, SubscribeSession } from './session.js';
import { ReceiveReporter, selectedPair } from './report.js';

const PAGE_OF_ROLE = { main: 'teacher.html', classroom: 'classroom.html', observer: 'observer.html' };
// A media connection ICE-disconnected this long gets an ICE restart (failed: at once),
// repeated while it stays down; if it is still down after DEAD_MEDIA_MS the page rejoins
// (the server closes a connection disconnected for 15 s).
const ICE_RESTART_AFTER_MS = 1_500;
const ICE_RESTART_REPEAT_MS = 5_000;
const DEAD_MEDIA_MS = 20_000;
// Server protocol version that takes `restart_ice`.
const RESTART_ICE_VERSION = 3;
const OPTIMISTIC_MS = 3_000;
const LOG_LIMIT = 2_000;

const JOIN_ERROR_KEYS = {
  unauthorized: 'err.unauthorized',
  forbidden: 'err.forbidden',
  not_found: 'err.notFound',
  unsupported_version: 'err.version',
  replaced: 'err.replaced',
  bad_message: 'err.badMessage',
  closed_by_server: 'err.closed',
  class_over: 'err.classOver',
};

/** In a kiosk screen's frame (`?kiosk=1`), tell the screen how joining went. */
function tellKiosk(kind, code) {
  if (window.parent === window || new URLSearchParams(location.search).get('kiosk') !== '1') return;
  window.parent.postMessage({ source: 'classcast', kind, code }, location.origin);
}

export class Room extends EventTarget {
  /** `role`: the role this page is for; `publishes`: whether it sends media. */
  constructor({ role, publishes }) {
    super();
    this.pageRole = role;
    this.token = tokenFromLocation();
    this.claims = this.token ? peekToken(this.token) : null;
    this.signaling = new Signaling({ token: this.token });
    this.publish = publishes ? new PublishSession(this.signaling, { simulcast: role === 'main' ? ['camera'] : [] }) : null;
    this.subscribe = new SubscribeSession(this.signaling);
    this.me = null;
    this.classId = this.claims?.cls || null;
    this.classTitle = '';
    this.participants = new Map();
    this.callOnId = null;
    this.live = new Set();
    this.deadTimers = new Map();
    this.restartTimers = new Map();
    this.revert = null;
    this.serverVersion = null;
    this.reporter = new ReceiveReporter(this);
    this.hook = this.makeHook();
    this.wire();
  }

  /** Checks the link, then connects. Returns false (after a `fatal` event) if unusable. */
  start() {
    if (!this.token) return this.fatal('err.noToken');
    const role = this.claims?.role;
    if (role && role !== this.pageRole && PAGE_OF_ROLE[role]) {
      const url = `${PAGE_OF_ROLE[role]}${location.search}${location.hash}`;
      return this.fatal('err.wrongPage', { role }, url);
    }
    this.signaling.connect();
    this.reporter.start();
    addEventListener('pagehide', () => this.signaling.leave());
    addEventListener('pageshow', (ev) => { if (ev.persisted) location.reload(); });
    addEventListener('hashchange', () => location.reload());
    return true;
  }

  fatal(key, args = {}, link = null) {
    tellKiosk('fatal', args.code || key);
    this.dispatchEvent(new CustomEvent('fatal', { detail: { key, args, link } }));
    return false;
  }

  wire() {
    const s = this.signaling;
    const on = (type, fn) => s.addEventListener(type, (ev) => fn.call(this, ev.detail));
    on('message', this.onAnyMessage);
    on('joined', this.onJoined);
    on('subscribe_offer', (msg) => this.subscribe.handleOffer(msg));
    on('participant_joined', this.onParticipantJoined);
    on('participant_left', this.onParticipantLeft);
    on('hand', this.onHand);
    on('call_on', (msg) => this.setCallOnState(msg.participant ?? null));
    on('source_state', this.onSourceState);
    on('recording', (msg) => this.setRecordingState(!!msg.on));
    on('error', this.onError);
    on('state', this.onState);
    this.subscribe.addEventListener('tracks', (ev) => this.emit('tracks', ev.detail));
    this.subscribe.addEventListener('state', (ev) => this.watchMedia('subscribe', ev.detail.connection));
    if (this.publish) {
      this.publish.addEventListener('state', (ev) => {
        this.watchMedia('publish', ev.detail.connection);
        this.emit('publish', ev.detail);
      });
      this.publish.addEventListener('error', (ev) => this.emit('notice', { key: 'err.publish', args: ev.detail }));
    }
  }

  onAnyMessage(msg) {
    const log = this.hook.log;
    log.push(msg.type);
    if (log.length > LOG_LIMIT) log.splice(0, log.length - LOG_LIMIT);
  }

  onJoined(msg) {
    tellKiosk('joined');
    this.serverVersion = msg.v;
    this.me = msg.you;
    this.classId = msg.class_id;
    this.classTitle = msg.class_title;
    this.participants = new Map(msg.participants.map((p) => [p.id, { ...p }]));
    this.participants.set(msg.you.id, { ...msg.you });
    this.live = new Set(msg.live);
    this.callOnId = msg.call_on ?? null;
    this.subscribe.reset();
    if (this.publish) this.publish.restart();
    this.syncHook();
    this.emit('joined', msg);
    this.emit('change');
  }

  onParticipantJoined({ participant }) {
    this.participants.set(participant.id, { ...participant });
    this.syncHook();
    this.emit('change');
  }

  onParticipantLeft({ id }) {
    this.participants.delete(id);
    this.syncHook();
    this.emit('change');
  }

  onHand({ id, raised }) {
    const p = this.participants.get(id);
    if (p) p.hand_raised = raised;
    if (this.revert?.kind === 'hand' && id === this.me?.id) this.clearRevert();
    this.syncHook();
    this.emit('change');
  }

  onSourceState({ key, live }) {
    if (live) this.live.add(key);
    else this.live.delete(key);
    this.emit('live', { key, live });
    this.emit('change');
  }

  onError(msg) {
    if (!this.signaling.joined) return;
    if (this.revert && ['forbidden', 'not_found', 'bad_message'].includes(msg.code)) {
      this.revert.undo();
      this.clearRevert();
    }
    this.emit('notice', { key: 'err.server', args: { code: msg.code, message: msg.message || '' } });
  }

  onState({ state, fatal }) {
    if (state === 'failed' && fatal) {
      this.fatal(JOIN_ERROR_KEYS[fatal.code] || 'err.generic', { code: fatal.code, message: fatal.message });
    }
    if (state !== 'joined') this.clearDeadTimers();
    this.syncHook();
    this.emit('status', { state });
  }

  setCallOnState(id) {
    this.callOnId = id;
    if (this.revert?.kind === 'call_on') this.clearRevert();
    this.syncHook();
    this.emit('callon', { id });
    this.emit('change');
  }

  /**
   * A media connection lost its path: restart ICE (after a short wait; at once when
   * failed), again while it stays down; rejoin if it stays down for DEAD_MEDIA_MS.
   * Back to connected (or closed, or not joined): stop watching.
   */
  watchMedia(which, connection) {
    console.info(`${which} connection ${connection}`);
    const down = connection === 'disconnected' || connection === 'failed';
    const trouble = this.deadTimers.has(which);
    if (!this.signaling.joined || !(down || (trouble && connection === 'connecting'))) {
      this.stopWatching(which);
      return;
    }
    if (!trouble) {
      this.deadTimers.set(which, setTimeout(() => this.signaling.reconnectNow(), DEAD_MEDIA_MS));
    }
    if (connection === 'failed') this.restartIce(which);
    else if (!this.restartTimers.has(which)) {
      this.restartTimers.set(which, setTimeout(() => this.restartIce(which), ICE_RESTART_AFTER_MS));
    }
  }

  restartIce(which) {
    clearTimeout(this.restartTimers.get(which));
    this.restartTimers.set(which, setTimeout(() => this.restartIce(which), ICE_RESTART_REPEAT_MS));
    if (!this.signaling.joined) return;
    if (which === 'subscribe' && !(this.serverVersion >= RESTART_ICE_VERSION)) {
      this.signaling.reconnectNow();
      return;
    }
    this.hook.iceRestarts[which] += 1;
    console.info(`ICE restart of the ${which} connection`);
    if (which === 'publish') this.publish?.restartIce();
    else this.signaling.restartIce();
  }

  stopWatching(which) {
    clearTimeout(this.deadTimers.get(which));
    clearTimeout(this.restartTimers.get(which));
    this.deadTimers.delete(which);
    this.restartTimers.delete(which);
  }

  clearDeadTimers() {
    for (const which of [...this.deadTimers.keys(), ...this.restartTimers.keys()]) this.stopWatching(which);
  }

  /** Classroom: raise or lower the hand (shown at once, undone if refused). */
  raiseHand(raised) {
    const me = this.me && this.participants.get(this.me.id);
    if (!this.signaling.raiseHand(raised)) return false;
    if (me) {
      const before = me.hand_raised;
      me.hand_raised = !!raised;
      this.expectReply('hand', () => { me.hand_raised = before; });
    }
    this.syncHook();
    this.emit('change');
    return true;
  }

  setRecordingState(on) {
    this.recording = on;
    this.syncHook();
    this.emit('change');
  }

  /** Teacher: start or stop recording the lesson (the server answers with `recording`). */
  setRecording(on) {
    return this.signaling.send('set_recording', { on: !!on });
  }

  /** Teacher: call on a classroom, or end the call-on with null. */
  setCallOn(id) {
    if (!this.signaling.callOn(id ?? null)) return false;
    const before = this.callOnId;
    this.callOnId = id ?? null;
    this.expectReply('call_on', () => { this.callOnId = before; });
    this.syncHook();
    this.emit('callon', { id: this.callOnId });
    this.emit('change');
    return true;
  }

  expectReply(kind, undo) {
    this.clearRevert();
    const timer = setTimeout(() => { this.revert = null; }, OPTIMISTIC_MS);
    this.revert = {
      kind, timer,
      undo: () => { undo(); this.syncHook(); this.emit('change'); },
    };
  }

  clearRevert() {
    if (this.revert) clearTimeout(this.revert.timer);
    this.revert = null;
  }

  participant(id) {
    return this.participants.get(id) || null;
  }

  /** Display name of a participant id, or the id itself. */
  nameOf(id) {
    return this.participants.get(id)?.name || id;
  }

  isLive(key) {
    return this.live.has(key);
  }

  /** Whether a received track carries media now (spotlight: while another classroom is called on). */
  isReceiving(key) {
    const cut = key.lastIndexOf('/');
    const owner = key.slice(0, cut);
    if (owner !== 'spotlight') return this.live.has(key);
    const id = this.callOnId;
    return id != null && id !== this.me?.id && this.live.has(`${id}/${key.slice(cut + 1)}`);
  }

  handsObject() {
    const out = {};
    for (const [id, p] of this.participants) out[id] = !!p.hand_raised;
    return out;
  }

  /** Records the first decoded frame of main/camera for the hook. */
  markFirstFrame(ms) {
    if (this.hook.firstFrameMs == null) this.hook.firstFrameMs = ms;
  }

  makeHook() {
    const room = this;
    const hook = {
      joined: false,
      id: null,
      role: this.claims?.role || this.pageRole,
      callOnId: null,
      hands: {},
      firstFrameMs: null,
      iceRestarts: { publish: 0, subscribe: 0 },
      log: [],
      state: 'idle',
      classTitle: '',
      tracks: () => room.subscribe.list().map((t) => ({ key: t.key, kind: t.kind, mid: t.mid, trackId: t.track.id })),
      stats: () => room.subscribe.stats(),
      publishStats: async () => (room.publish ? room.publish.stats() : {}),
      publishing: () => (room.publish ? room.publish.activeSources() : []),
      publishLayers: () => (room.publish ? room.publish.layerStats() : []),
      live: () => [...room.live],
      participants: () => [...room.participants.values()].map((p) => ({ ...p })),
      setCallOn: (id) => room.setCallOn(id),
      raiseHand: (raised) => room.raiseHand(raised),
      setRecording: (on) => room.setRecording(on),
      receiveReport: () => room.reporter.last,
      subscribeSdp: () => room.subscribe.pc?.localDescription?.sdp ?? null,
      mediaPorts: async () => ({ publish: await localPort(room.publish?.pc), subscribe: await localPort(room.subscribe.pc) }),
      transports: async () => ({ publish: await transportOf(room.publish?.pc), subscribe: await transportOf(room.subscribe.pc) }),
      // Tests: stop sending media now (closes the publish connection); returns when.
      stopSending: () => { room.publish?.closePc(); return Date.now(); },
    };
    if (this.pageRole === 'main') hook.callOn = (id) => room.setCallOn(id);
    else hook.callOn = null;
    window.__classcast = hook;
    return hook;
  }

  syncHook() {
    const hook = this.hook;
    hook.state = this.signaling.state;
    hook.joined = this.signaling.joined;
    hook.id = this.me?.id ?? null;
    hook.role = this.me?.role ?? hook.role;
    hook.callOnId = this.callOnId;
    if (this.pageRole !== 'main') hook.callOn = this.callOnId;
    hook.hands = this.handsObject();
    hook.classTitle = this.classTitle;
    hook.recording = !!this.recording;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** Protocol (udp / tcp), local port and TCP type of a connection's selected pair, or null. */
async function transportOf(pc) {
  if (!pc) return null;
  const local = selectedPair(await pc.getStats())?.local;
  return local ? { protocol: local.protocol, port: local.port, tcpType: local.tcpType ?? null } : null;
}

/** The local UDP port of a connection's selected candidate pair, or null. */
async function localPort(pc) {
  if (!pc) return null;
  return selectedPair(await pc.getStats())?.local?.port ?? null;
}
