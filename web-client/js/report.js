// Receive reports (docs/protocol.md, `receive_report`, protocol version 2):
// every 2 s the page tells the server how it receives each live track of its
// subscribe connection (frames per second, frame size, freezes, concealed audio,
// jitter) and the connection's round-trip time, for the live dashboard. Only
// tracks whose source is live are reported, so a stopped source never reads as
// a frozen one; rates are computed over the interval (the first sample of a
// track has none).

export const REPORT_INTERVAL_MS = 2_000;
const MAX_TRACKS = 32;

/** The selected candidate pair of a stats report (and its local candidate), or null. */
export function selectedPair(report) {
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair;
  });
  if (!pair) {
    report.forEach((s) => {
      if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
  }
  return pair ? { pair, local: report.get(pair.localCandidateId) || null } : null;
}

const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));
const num = (x) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
const ms = (seconds) => (num(seconds) == null ? null : clamp(seconds * 1000, 0, 60_000));

/** The inbound-rtp entry of each received track, by mid or track identifier. */
function inboundByTrack(report, received) {
  const byMid = new Map();
  const byTrack = new Map();
  report.forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.mid != null) byMid.set(String(s.mid), s);
    if (s.trackIdentifier) byTrack.set(s.trackIdentifier, s);
  });
  return received.map((t) => ({ t, s: byMid.get(String(t.mid)) || byTrack.get(t.track.id) || null }));
}

function videoFields(s, prev, dtSec) {
  const frames = num(s.framesDecoded);
  const fps = prev && frames != null && prev.frames != null && dtSec > 0 ? clamp((frames - prev.frames) / dtSec, 0, 1000) : null;
  return {
    fps,
    width: num(s.frameWidth) == null ? null : clamp(Math.round(s.frameWidth), 0, 65_535),
    height: num(s.frameHeight) == null ? null : clamp(Math.round(s.frameHeight), 0, 65_535),
    freeze_count: num(s.freezeCount) == null ? null : clamp(Math.round(s.freezeCount), 0, 1e9),
    freeze_ms: num(s.totalFreezesDuration) == null ? null : clamp(s.totalFreezesDuration * 1000, 0, 1e10),
    jitter_ms: ms(s.jitter),
    sample: { frames },
  };
}

function audioFields(s, prev) {
  const concealed = num(s.concealedSamples);
  const total = num(s.totalSamplesReceived);
  let ratio = null;
  if (prev && concealed != null && total != null && total > prev.total) {
    ratio = clamp((concealed - prev.concealed) / (total - prev.total), 0, 1);
  }
  return { concealed_ratio: ratio, jitter_ms: ms(s.jitter), sample: { concealed, total } };
}

/**
 * One report from a stats report: `received` are the live tracks
 * `{key, kind, mid, track}`; `prev` maps key -> the previous sample (updated).
 */
export function buildReport(report, received, prev, dtSec) {
  const tracks = [];
  const seen = new Map();
  for (const { t, s } of inboundByTrack(report, received).slice(0, MAX_TRACKS)) {
    if (!s) continue;
    const before = prev.get(t.key);
    const { sample, ...fields } = t.kind === 'video' ? videoFields(s, before, dtSec) : audioFields(s, before);
    seen.set(t.key, sample);
    const entry = { key: t.key, kind: t.kind };
    for (const [k, v] of Object.entries(fields)) if (v != null) entry[k] = v;
    tracks.push(entry);
  }
  prev.clear();
  for (const [k, v] of seen) prev.set(k, v);
  const rtt = selectedPair(report)?.pair?.currentRoundTripTime;
  return { tracks, rtt_ms: ms(rtt) };
}

/** Sends a report every REPORT_INTERVAL_MS while the room is joined (to a v2 server). */
export class ReceiveReporter {
  constructor(room) {
    this.room = room;
    this.prev = new Map();
    this.prevAt = 0;
    this.pc = null;
    this.last = null;
    this.timer = 0;
  }

  start() {
    if (!this.timer) this.timer = setInterval(() => this.tick().catch((e) => console.warn('receive report failed', e)), REPORT_INTERVAL_MS);
  }

  async tick() {
    const { signaling, subscribe } = this.room;
    const pc = subscribe.pc;
    if (!signaling.joined || !pc || (this.room.serverVersion ?? 1) < 2) return;
    if (pc !== this.pc) {
      this.pc = pc;
      this.prev.clear();
    }
    const stats = await pc.getStats();
    const now = performance.now();
    const dtSec = this.prevAt ? (now - this.prevAt) / 1000 : 0;
    this.prevAt = now;
    const live = subscribe.list().filter((t) => this.room.isReceiving(t.key));
    this.last = buildReport(stats, live, this.prev, dtSec);
    signaling.send('receive_report', this.last);
  }
}
