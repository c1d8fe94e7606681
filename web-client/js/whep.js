// Minimal WHEP player (whep.html?class=ID#token=...): POSTs a recvonly offer
// with one audio and two video transceivers to /whep/{class}, plays the
// teacher's camera (and courseware, when it sends), DELETEs the session when
// the page goes away, and shows when the stream has ended. Exposes
// `window.__whep = {state, ended, stats()}` for automation.

import { initI18n, setText } from './i18n.js';
import { tokenFromLocation } from './signaling.js';
import { waitForIceGathering } from './session.js';
import { attachTrack, playElement } from './media.js';
import { $, params } from './ui.js';

const hook = { state: 'idle', ended: false, stats: async () => emptyStats() };
window.__whep = hook;

const HTTP_ERROR_KEYS = { 400: 'whep.badRequest', 401: 'err.unauthorized', 403: 'err.forbidden', 404: 'err.notFound' };

function emptyStats() {
  return { video: { framesDecoded: 0, packetsReceived: 0 }, audio: { packetsReceived: 0 } };
}

function setState(state, key, args) {
  if (hook.state === 'error' || (hook.ended && state !== 'ended')) return;
  hook.state = state;
  if (state === 'ended') hook.ended = true;
  document.body.dataset.state = state;
  setText($('#whep-state'), key, args);
}

async function readError(res) {
  try {
    const body = await res.json();
    return body.message || body.error || res.statusText;
  } catch {
    return res.statusText;
  }
}

function createPc() {
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  return pc;
}

/** Shows the tracks; the second video only while it carries media. */
function bindTracks(pc) {
  const [audioTr, cameraTr, screenTr] = pc.getTransceivers();
  attachTrack($('#whep-audio'), audioTr.receiver.track, () => { $('#sound-unlock').hidden = false; });
  attachTrack($('#whep-camera'), cameraTr.receiver.track);
  attachTrack($('#whep-screen'), screenTr.receiver.track);
  const screenTrack = screenTr.receiver.track;
  const showScreen = () => { document.body.classList.toggle('has-screen', !screenTrack.muted); };
  screenTrack.addEventListener('mute', showScreen);
  screenTrack.addEventListener('unmute', showScreen);
  showScreen();
  for (const tr of [audioTr, cameraTr, screenTr]) {
    tr.receiver.track.addEventListener('ended', () => checkAllEnded(pc));
  }
}

function checkAllEnded(pc) {
  if (pc.getReceivers().every((r) => r.track.readyState === 'ended')) setState('ended', 'whep.ended');
}

function watchConnection(pc) {
  pc.addEventListener('connectionstatechange', () => {
    if (hook.ended) return;
    const s = pc.connectionState;
    if (s === 'connected') setState('playing', 'whep.playing');
    else if (s === 'disconnected') setState('stalled', 'whep.stalled');
    else if (s === 'failed' || s === 'closed') setState('ended', 'whep.ended');
  });
}

/** The server closing DTLS (session deleted) ends playback too. */
function watchTransport(pc) {
  const transport = pc.getReceivers()[0]?.transport;
  if (!transport) return;
  transport.addEventListener('statechange', () => {
    if (transport.state === 'closed' || transport.state === 'failed') setState('ended', 'whep.ended');
  });
}

function isCamera(s, transceiver) {
  if (s.mid != null) return String(s.mid) === String(transceiver.mid);
  return s.trackIdentifier === transceiver.receiver.track.id;
}

async function stats(pc) {
  const out = emptyStats();
  const video = pc.getTransceivers()[1];
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'audio') {
      out.audio.packetsReceived += s.packetsReceived ?? 0;
    } else if (s.kind === 'video' && isCamera(s, video)) {
      out.video.framesDecoded += s.framesDecoded ?? 0;
      out.video.packetsReceived += s.packetsReceived ?? 0;
    }
  });
  return out;
}

function endOnUnload(url, token) {
  let done = false;
  const end = () => {
    if (done) return;
    done = true;
    fetch(url, { method: 'DELETE', keepalive: true, headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  };
  addEventListener('pagehide', end);
  return end;
}

async function play() {
  const classId = params().get('class');
  const token = tokenFromLocation();
  if (!classId) return setState('error', 'whep.noClass');
  if (!token) return setState('error', 'err.noToken');
  setState('connecting', 'whep.connecting');
  const pc = createPc();
  bindTracks(pc);
  watchConnection(pc);
  hook.stats = () => stats(pc);
  await pc.setLocalDescription(await pc.createOffer());
  await waitForIceGathering(pc);
  const endpoint = `/whep/${encodeURIComponent(classId)}`;
  let res;
  try {
    res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
      body: pc.localDescription.sdp,
    });
  } catch (err) {
    pc.close();
    return setState('error', 'whep.network', { detail: err.message });
  }
  if (res.status !== 201 && res.status !== 200) {
    const message = await readError(res);
    pc.close();
    return setState('error', HTTP_ERROR_KEYS[res.status] || 'whep.failed', { status: res.status, message });
  }
  const sessionPath = res.headers.get('Location');
  const end = sessionPath ? endOnUnload(new URL(sessionPath, new URL(endpoint, location.href)).href, token) : () => {};
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  watchTransport(pc);
  $('#btn-stop').hidden = false;
  $('#btn-stop').addEventListener('click', () => {
    end();
    pc.close();
    setState('ended', 'whep.ended');
  }, { once: true });
}

function main() {
  initI18n();
  $('#sound-unlock button').addEventListener('click', () => {
    playElement($('#whep-audio'));
    $('#sound-unlock').hidden = true;
  });
  play().catch((err) => setState('error', 'whep.failed', { status: '', message: err.message }));
}

main();
