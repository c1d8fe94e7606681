// Peer connections of one participant (docs/protocol.md, "Room protocol"):
// - PublishSession: the client-offered, sendonly connection carrying this
//   participant's sources (camera, board, screen, mic). Sends `publish` with
//   the mid of each source and applies `publish_answer`.
// - SubscribeSession: the server-offered connection. Answers every
//   `subscribe_offer` and maps each received track to its key by mid.
// Neither waits for ICE gathering: the server is ICE-lite and learns the
// client's address from its connectivity checks, so candidates in the client's
// SDP are not needed (waiting for them cost up to 2 s per join).

const ICE_GATHER_CAP_MS = 2_000;
const ANSWER_TIMEOUT_MS = 10_000;
// Default bundle policy on purpose: with max-bundle, Firefox offers every
// m-line but the first with port 0 and bundle-only.
const RTC_CONFIG = { iceServers: [] };

// Per-source sending limits: bits per second and what to keep under pressure.
const ENCODING = {
  camera: { maxBitrate: 1_200_000, degradation: 'balanced', hint: 'motion' },
  board: { maxBitrate: 1_800_000, degradation: 'maintain-resolution', hint: 'detail' },
  screen: { maxBitrate: 1_800_000, degradation: 'maintain-resolution', hint: 'detail' },
  mic: { maxBitrate: 64_000, hint: 'speech' },
};

// The teacher camera goes out as three simulcast layers (rids the server knows:
// q, h, f), so each classroom gets the one its link carries (docs/protocol.md,
// "Simulcast and congestion control").
const SIMULCAST_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_200_000 },
];

/** Resolves when ICE gathering is complete, or after `capMs` regardless. */
export function waitForIceGathering(pc, capMs = ICE_GATHER_CAP_MS) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const timer = setTimeout(done, capMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

function codecRank(kind, codec) {
  const mime = codec.mimeType.toLowerCase();
  const fmtp = (codec.sdpFmtpLine || '').toLowerCase();
  if (kind === 'audio') return mime === 'audio/opus' ? 0 : 9;
  if (mime === 'video/h264') {
    if (!fmtp.includes('packetization-mode=1')) return -1;
    if (fmtp.includes('profile-level-id=42e0')) return 0;
    if (fmtp.includes('profile-level-id=4200')) return 1;
    if (fmtp.includes('profile-level-id=4d')) return 2;
    return -1;
  }
  if (mime === 'video/vp8') return 3;
  if (mime === 'video/rtx' || mime === 'video/red' || mime === 'video/ulpfec') return 4;
  return -1;
}

/**
 * H.264 (packetization-mode 1) first, then VP8, for video; Opus first for
 * audio. Null when the browser has no H.264 encoder (its own order already
 * puts VP8 first) or lacks the API.
 */
export function preferredCodecs(kind) {
  const caps = globalThis.RTCRtpSender?.getCapabilities?.(kind);
  if (!caps) return null;
  const ranked = caps.codecs
    .map((codec, i) => ({ codec, i, rank: codecRank(kind, codec) }))
    .filter((c) => c.rank >= 0)
    .sort((a, b) => a.rank - b.rank || a.i - b.i)
    .map((c) => c.codec);
  const best = ranked[0] ? codecRank(kind, ranked[0]) : 9;
  if (kind === 'video' && best > 2) return null;
  if (kind === 'audio' && best !== 0) return null;
  return ranked;
}

/**
 * Drops rtpmap / fmtp / rtcp-fb lines for payload types that their m-line no
 * longer lists (Firefox leaves some behind after setCodecPreferences, and
 * strict parsers reject them).
 */
export function pruneOrphanCodecLines(sdp) {
  let listed = null;
  return sdp.split('\r\n').filter((line) => {
    if (line.startsWith('m=')) {
      listed = new Set(line.split(' ').slice(3));
      return true;
    }
    const m = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+)[ ]/.exec(line);
    return !(m && listed && !listed.has(m[1]));
  }).join('\r\n');
}

function applyCodecPreferences(transceiver, kind) {
  const codecs = preferredCodecs(kind);
  if (!codecs || typeof transceiver.setCodecPreferences !== 'function') return;
  try {
    transceiver.setCodecPreferences(codecs);
  } catch (err) {
    console.warn('setCodecPreferences failed; using browser defaults', err);
  }
}

async function applyEncoding(sender, source) {
  const cfg = ENCODING[source];
  if (!cfg || typeof sender.getParameters !== 'function') return;
  try {
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length === 0) params.encodings = [{}];
    if (params.encodings.length > 1) {
      for (const e of params.encodings) e.maxBitrate = SIMULCAST_LAYERS.find((l) => l.rid === e.rid)?.maxBitrate ?? e.maxBitrate;
    } else {
      params.encodings[0].maxBitrate = cfg.maxBitrate;
    }
    if (cfg.degradation && 'degradationPreference' in params) params.degradationPreference = cfg.degradation;
    await sender.setParameters(params);
  } catch (err) {
    console.warn(`could not limit ${source} bitrate`, err);
  }
}

/** Waits for one server message of `type`; rejects on `error` or timeout. */
function awaitReply(signaling, type, errorCodes) {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      signaling.removeEventListener(type, onReply);
      signaling.removeEventListener('error', onError);
      signaling.removeEventListener('state', onState);
    };
    const onReply = (ev) => { cleanup(); resolve(ev.detail); };
    const onError = (ev) => {
      if (!errorCodes.includes(ev.detail.code)) return;
      cleanup();
      reject(Object.assign(new Error(ev.detail.message || ev.detail.code), { code: ev.detail.code }));
    };
    const onState = () => {
      if (signaling.joined) return;
      cleanup();
      reject(Object.assign(new Error('signaling connection lost'), { code: 'disconnected' }));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(Object.assign(new Error(`no ${type} from server`), { code: 'timeout' }));
    }, ANSWER_TIMEOUT_MS);
    signaling.addEventListener(type, onReply);
    signaling.addEventListener('error', onError);
    signaling.addEventListener('state', onState);
  });
}

/**
 * The sendonly connection. Sources are added with `setSource(source, track)`
 * and removed with `removeSource(source)`; changes made in the same tick are
 * negotiated together. After a rejoin, `restart()` rebuilds the connection
 * with the tracks still held. Events: `error` ({code, message}), `state`.
 */
export class PublishSession extends EventTarget {
  /** `simulcast`: the sources sent as simulcast layers (the teacher's camera). */
  constructor(signaling, { simulcast = [] } = {}) {
    super();
    this.signaling = signaling;
    this.simulcast = new Set(simulcast);
    signaling.addEventListener('layers', (ev) => this.setActiveLayers(ev.detail.mid, ev.detail.active));
    this.pc = null;
    this.sources = new Map(); // source -> { track, transceiver }
    this.chain = Promise.resolve();
    this.pending = null;
    this.generation = 0;
    this.negotiated = false;
  }

  activeSources() {
    return [...this.sources].filter(([, e]) => e.track).map(([s]) => s);
  }

  /** Starts sending `track` as `source`, or swaps the track of a live source. */
  setSource(source, track) {
    const entry = this.sources.get(source) || { track: null, transceiver: null };
    this.sources.set(source, entry);
    if (track.contentHint === '' && ENCODING[source]?.hint) {
      try { track.contentHint = ENCODING[source].hint; } catch { /* unsupported */ }
    }
    const wasSending = entry.track && entry.transceiver && entry.transceiver.direction === 'sendonly';
    entry.track = track;
    if (!this.pc) return this.requestNegotiation();
    if (wasSending) return entry.transceiver.sender.replaceTrack(track);
    this.attach(source, entry);
    return this.requestNegotiation();
  }

  /** Stops sending `source`: its m-line goes inactive and leaves `sources`. */
  removeSource(source) {
    const entry = this.sources.get(source);
    if (!entry || !entry.track) return Promise.resolve();
    entry.track = null;
    if (entry.transceiver && this.pc) {
      entry.transceiver.sender.replaceTrack(null).catch(() => {});
      entry.transceiver.direction = 'inactive';
    }
    return this.requestNegotiation();
  }

  /** Closes the connection and, if anything is held, negotiates a new one. */
  restart() {
    this.closePc();
    this.generation += 1;
    return this.requestNegotiation();
  }

  /** ICE restart without a new connection: a re-offer with new ICE credentials. */
  restartIce() {
    if (!this.pc) return Promise.resolve();
    this.pc.restartIce();
    return this.requestNegotiation();
  }

  closePc() {
    if (!this.pc) return;
    const pc = this.pc;
    this.pc = null;
    this.negotiated = false;
    pc.onconnectionstatechange = null;
    pc.close();
    for (const entry of this.sources.values()) entry.transceiver = null;
    this.emitState();
  }

  ensurePc() {
    if (this.pc) return;
    const pc = new RTCPeerConnection(RTC_CONFIG);
    pc.onconnectionstatechange = () => this.emitState();
    this.pc = pc;
    for (const [source, entry] of this.sources) {
      if (entry.track) this.attach(source, entry);
    }
  }

  attach(source, entry) {
    const kind = entry.track.kind;
    if (entry.transceiver) {
      entry.transceiver.direction = 'sendonly';
      entry.transceiver.sender.replaceTrack(entry.track).catch(() => {});
      return;
    }
    const stream = new MediaStream([entry.track]);
    const init = { direction: 'sendonly', streams: [stream] };
    if (kind === 'video' && this.simulcast.has(source)) init.sendEncodings = SIMULCAST_LAYERS.map((l) => ({ ...l }));
    entry.transceiver = this.pc.addTransceiver(entry.track, init);
    applyCodecPreferences(entry.transceiver, kind);
  }

  requestNegotiation() {
    if (this.pending) return this.pending;
    this.pending = this.chain = this.chain
      .then(() => { this.pending = null; return this.negotiate(this.generation); })
      .catch((err) => this.reportError(err));
    return this.pending;
  }

  async negotiate(gen) {
    if (gen !== this.generation || !this.signaling.joined) return;
    if (!this.pc && this.activeSources().length === 0) return;
    this.ensurePc();
    const pc = this.pc;
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    if (pc !== this.pc || gen !== this.generation) return;
    const sources = this.describeSources();
    const reply = awaitReply(this.signaling, 'publish_answer', ['bad_sdp', 'forbidden', 'internal']);
    this.signaling.publish(pruneOrphanCodecLines(pc.localDescription.sdp), sources);
    const { sdp } = await reply;
    if (pc !== this.pc || gen !== this.generation) return;
    await pc.setRemoteDescription({ type: 'answer', sdp });
    this.negotiated = true;
    for (const [source, entry] of this.sources) {
      if (entry.track && entry.transceiver) await applyEncoding(entry.transceiver.sender, source);
    }
    this.emitState();
  }

  describeSources() {
    const out = [];
    for (const [source, entry] of this.sources) {
      if (entry.track && entry.transceiver && entry.transceiver.mid != null) {
        out.push({ mid: entry.transceiver.mid, source });
      }
    }
    return out;
  }

  reportError(err) {
    if (err?.code === 'disconnected') return; // the rejoin restarts publishing
    console.warn(`publish failed: ${err?.name || 'Error'}: ${err?.message || err}`);
    this.dispatchEvent(new CustomEvent('error', {
      detail: { code: err?.code || 'publish_failed', message: err?.message || String(err) },
    }));
  }

  emitState() {
    this.dispatchEvent(new CustomEvent('state', {
      detail: { connection: this.pc ? this.pc.connectionState : 'closed', negotiated: this.negotiated },
    }));
  }

  /** The server asks to send only the `active` rids of m-line `mid` (nobody receives the rest). */
  async setActiveLayers(mid, active) {
    const tr = this.pc?.getTransceivers().find((t) => t.mid === mid);
    if (!tr || typeof tr.sender.getParameters !== 'function') return;
    try {
      const params = tr.sender.getParameters();
      if (!params.encodings || params.encodings.length < 2) return;
      for (const e of params.encodings) e.active = active.includes(e.rid);
      await tr.sender.setParameters(params);
    } catch (err) {
      console.warn('could not change simulcast layers', err);
    }
  }

  /** The simulcast layers being encoded: [{rid, width, height, framesEncoded}]. */
  async layerStats() {
    if (!this.pc) return [];
    const { report } = await rtpStats(this.pc, 'outbound-rtp');
    const out = [];
    report.forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid) {
        out.push({ rid: s.rid, width: s.frameWidth ?? 0, height: s.frameHeight ?? 0, framesEncoded: s.framesEncoded ?? 0, active: s.active ?? true });
      }
    });
    return out;
  }

  /**
   * Outbound RTP counters keyed by source. A simulcast source has one outbound-rtp per layer
   * (all with its mid): packets and bytes are summed over them, so the source counts as
   * sending while any layer is (the server pauses unused layers); frames are the busiest layer's.
   */
  async stats() {
    const out = {};
    const pc = this.pc;
    if (!pc) return out;
    const report = await pc.getStats();
    const layersOfMid = new Map();
    report.forEach((s) => {
      if (s.type !== 'outbound-rtp' || s.mid == null) return;
      const mid = String(s.mid);
      layersOfMid.set(mid, [...(layersOfMid.get(mid) ?? []), s]);
    });
    for (const [source, entry] of this.sources) {
      if (!entry.track || !entry.transceiver) continue;
      const layers = layersOfMid.get(String(entry.transceiver.mid));
      const found = layers
        ? { layers, codec: report.get(layers[0].codecId)?.mimeType ?? null }
        : await firstWithCodec(entry.transceiver.sender, 'outbound-rtp');
      if (found) out[source] = outboundSummary(found.layers ?? [found.s], found.codec);
    }
    return out;
  }
}

function outboundSummary(layers, codec) {
  const sum = (field) => layers.reduce((total, s) => total + (s[field] ?? 0), 0);
  return {
    packetsSent: sum('packetsSent'),
    framesEncoded: Math.max(...layers.map((s) => s.framesEncoded ?? 0)),
    bytesSent: sum('bytesSent'),
    codec,
  };
}

/** The first `type` entry of a sender's / receiver's own stats, with its codec. */
async function firstWithCodec(senderOrReceiver, type) {
  try {
    const report = await senderOrReceiver.getStats();
    let found = null;
    report.forEach((s) => { if (!found && s.type === type) found = s; });
    return found ? { s: found, codec: report.get(found.codecId)?.mimeType ?? null } : null;
  } catch {
    return null;
  }
}

/**
 * The server-offered connection. Feed it every `subscribe_offer` with
 * `handleOffer(msg)`; `reset()` drops it (a new one is built on the next
 * offer). Events: `tracks` (detail: array of received tracks), `state`.
 * A received track is `{key, kind, source, mid, track}`.
 */
export class SubscribeSession extends EventTarget {
  constructor(signaling) {
    super();
    this.signaling = signaling;
    this.pc = null;
    this.byMid = new Map(); // mid -> TrackInfo from the latest offer
    this.received = new Map(); // key -> received track
    this.chain = Promise.resolve();
    this.generation = 0;
  }

  handleOffer(msg) {
    const gen = this.generation;
    this.chain = this.chain
      .then(() => this.answer(gen, msg))
      .catch((err) => console.warn(`subscribe_offer failed: ${err?.name || 'Error'}: ${err?.message || err}`));
    return this.chain;
  }

  reset() {
    this.generation += 1;
    if (this.pc) {
      this.pc.onconnectionstatechange = null;
      this.pc.ontrack = null;
      this.pc.close();
      this.pc = null;
    }
    this.byMid.clear();
    if (this.received.size > 0) {
      this.received.clear();
      this.emitTracks();
    }
    this.emitState();
  }

  async answer(gen, { sdp, tracks }) {
    if (gen !== this.generation) return;
    if (!this.pc) this.createPc();
    const pc = this.pc;
    this.byMid = new Map((tracks || []).map((t) => [String(t.mid), t]));
    await pc.setRemoteDescription({ type: 'offer', sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    if (pc !== this.pc || gen !== this.generation) return;
    this.signaling.subscribeAnswer(pc.localDescription.sdp);
    this.collectTracks();
  }

  createPc() {
    const pc = new RTCPeerConnection({ iceServers: [] });
    pc.ontrack = () => this.collectTracks();
    pc.onconnectionstatechange = () => this.emitState();
    this.pc = pc;
  }

  collectTracks() {
    const pc = this.pc;
    if (!pc) return;
    const next = new Map();
    for (const tr of pc.getTransceivers()) {
      const info = tr.mid != null ? this.byMid.get(String(tr.mid)) : null;
      const track = tr.receiver?.track;
      if (!info || !track) continue;
      next.set(info.key, { key: info.key, kind: info.kind, source: info.source, mid: String(tr.mid), track });
    }
    const changed = next.size !== this.received.size
      || [...next].some(([k, v]) => this.received.get(k)?.track !== v.track);
    this.received = next;
    if (changed) this.emitTracks();
  }

  get(key) {
    return this.received.get(key) || null;
  }

  list() {
    return [...this.received.values()];
  }

  emitTracks() {
    this.dispatchEvent(new CustomEvent('tracks', { detail: this.list() }));
  }

  emitState() {
    this.dispatchEvent(new CustomEvent('state', {
      detail: { connection: this.pc ? this.pc.connectionState : 'closed' },
    }));
  }

  /** Inbound RTP counters keyed by track key, matched by mid. */
  async stats() {
    const out = {};
    const pc = this.pc;
    if (!pc) return out;
    const { report, byMid, byTrack } = await rtpStats(pc, 'inbound-rtp');
    for (const t of this.received.values()) {
      const s = byMid.get(t.mid) || byTrack.get(t.track.id);
      let found = s ? { s, codec: report.get(s.codecId)?.mimeType ?? null } : null;
      if (!found) {
        const tr = pc.getTransceivers().find((x) => x.mid === t.mid);
        if (tr) found = await firstWithCodec(tr.receiver, 'inbound-rtp');
      }
      out[t.key] = inboundSummary(t.kind, found?.s, found?.codec);
    }
    return out;
  }
}

/** A connection's `type` RTP stats, indexed by mid and by track identifier. */
async function rtpStats(pc, type) {
  const report = await pc.getStats();
  const byMid = new Map();
  const byTrack = new Map();
  report.forEach((s) => {
    if (s.type !== type) return;
    if (s.mid != null) byMid.set(String(s.mid), s);
    if (s.trackIdentifier) byTrack.set(s.trackIdentifier, s);
  });
  return { report, byMid, byTrack };
}

function inboundSummary(kind, s, codec) {
  return {
    kind,
    framesDecoded: s?.framesDecoded ?? 0,
    packetsReceived: s?.packetsReceived ?? 0,
    bytesReceived: s?.bytesReceived ?? 0,
    totalSamplesReceived: s?.totalSamplesReceived ?? 0,
    concealedSamples: s?.concealedSamples ?? 0,
    frameWidth: s?.frameWidth ?? 0,
    frameHeight: s?.frameHeight ?? 0,
    framesPerSecond: s?.framesPerSecond ?? 0,
    freezeCount: s?.freezeCount ?? 0,
    totalFreezesDuration: s?.totalFreezesDuration ?? 0,
    packetsLost: s?.packetsLost ?? 0,
    nackCount: s?.nackCount ?? 0,
    pliCount: s?.pliCount ?? 0,
    keyFramesDecoded: s?.keyFramesDecoded ?? 0,
    retransmittedPacketsReceived: s?.retransmittedPacketsReceived ?? 0,
    jitterBufferDelay: s?.jitterBufferDelay ?? 0,
    jitterBufferEmittedCount: s?.jitterBufferEmittedCount ?? 0,
    ssrc: s?.ssrc ?? null,
    codec: codec ?? null,
  };
}
