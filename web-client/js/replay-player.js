// Lesson replay engine: one hls.js instance per shown track, every track placed on the ONE
// lesson timeline by its #EXT-X-PROGRAM-DATE-TIME, and one clock the views follow.
//
// Lesson time is ms since the lesson started: PDT - lesson.started_at_ms. A TrackView maps
// its element's currentTime to lesson time and back through the playlist's fragments
// (start, duration, programDateTime). Parts of a track are separate runs of fragments
// (#EXT-X-DISCONTINUITY): hls.js plays them back to back in media time while their PDT
// jumps, so a lesson time between two runs, before the first or after the last has no
// media in that track ("not recorded at this time").
//
// The ReplayPlayer keeps the lesson position `pos`:
// - While playing, where the leader (the teacher camera with the teacher's mic) has media,
//   `pos` IS the leader's lesson time; where it has none (a gap, before it starts, after it
//   ends) or cannot play it (`stuck`), `pos` runs on the wall clock times the speed.
// - After a seek, at the start, and whenever the leader runs dry, the player "settles": every
//   view is paused at `pos` until the views with media there can play (the leader at most
//   SYNC.leaderWaitMaxMs, the others SYNC.settleMaxMs); then they all start in one tick.
// - Every SYNC.tickMs each view is steered to `pos`: drift under SYNC.deadbandMs is left
//   alone, up to SYNC.seekOverMs it is corrected by changing playbackRate (proportional, at
//   most ±SYNC.maxNudge of the speed), beyond that by setting currentTime (aimed ahead by
//   the view's measured seek latency, so it lands in step). Views without media at `pos`
//   are paused and parked where their next media starts.
// - A view that should play but does not move (undecodable media, a stream that never
//   comes) is marked stuck; the lesson goes on without it and it is retried with back-off.

import '../vendor/hls/hls.min.js'; // UMD bundle: sets globalThis.Hls

const Hls = globalThis.Hls;

export const SYNC = {
  tickMs: 50,
  deadbandMs: 25, // drift left alone
  gainPerMs: 1 / 1000, // playbackRate correction per ms of drift (100 ms → 10 %)
  maxNudge: 0.1, // at most ±10 % of the speed
  seekOverMs: 1000, // drift beyond this (× speed) is fixed by seeking
  pausedSeekOverMs: 40, // paused: seek so the still frames match
  gapSnapMs: 300, // holes between fragments shorter than this count as media
  maxSeekLeadS: 1,
  resumeSeekOverMs: 150, // a paused follower this far off is placed before it resumes
  settleMaxMs: 3000, // after a seek, wait at most this long for followers
  leaderWaitMaxMs: 6000, // ... and this long for the leader, then it counts as stuck
  frozenMs: 2000, // playing, data buffered, yet the position does not move: the decoder is stuck
  starvedMs: 12_000, // playing and waiting for data this long: stuck
  stuckRetryMs: 3000, // a stuck view is sought again at most this often
  stuckRetryMaxMs: 30_000, // a dead element is rebuilt after 3 s, 6 s, ... at most every 30 s
};

export const hlsSupported = () => Boolean(Hls?.isSupported?.());
export const nativeHls = (el) => Boolean(el.canPlayType?.('application/vnd.apple.mpegurl'));

const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));

/** Index of the last element of sorted `arr` with `key(el) <= x`, or -1. */
function lastAtOrBefore(arr, x, key) {
  let lo = 0;
  let hi = arr.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (key(arr[mid]) <= x) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/**
 * How long fragment `i` lasts in media time: up to where the next one starts (parts of a
 * track follow each other in media time even where PDT jumps), at most its duration.
 */
function mediaDuration(frags, i) {
  const f = frags[i];
  const next = frags[i + 1];
  return next && next.start > f.start ? Math.min(f.duration, next.start - f.start) : f.duration;
}

/** Contiguous runs of `frags` in lesson time: [[startMs, endMs], ...]. */
function runsOf(frags, startedAtMs) {
  const out = [];
  for (const [i, f] of frags.entries()) {
    if (f.programDateTime == null) continue;
    const a = f.programDateTime - startedAtMs;
    const b = a + mediaDuration(frags, i) * 1000;
    const last = out.at(-1);
    if (last && a - last[1] <= SYNC.gapSnapMs) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/**
 * One track shown in one media element. `track` is the manifest entry, `url` the playlist
 * (or master) to load, `startedAtMs` the lesson's wall-clock start, `rewriteUrl(url)` gives
 * the freshest signed form of a URL (manifest refresh), `posNow()` the lesson position.
 */
export class TrackView extends EventTarget {
  constructor({ track, url, el, startedAtMs, rewriteUrl = (u) => u, posNow = () => 0 }) {
    super();
    this.track = track;
    this.key = track.key;
    this.url = url;
    this.el = el;
    this.kind = el.tagName === 'AUDIO' ? 'audio' : 'video';
    this.startedAtMs = startedAtMs;
    this.rewriteUrl = rewriteUrl;
    this.posNow = posNow;
    this.hls = null;
    this.details = null;
    this.audioDetails = null; // the master playlist's alternate audio, when there is one
    this.native = false;
    this.covered = false; // has media at the player's position (last tick)
    this.error = null; // 'missing' | 'media' | 'auth' | 'network' | ...
    this.seekLatencyS = 0.15; // EMA of how long a seek takes to be playable again
    this.seekStarted = 0;
    this.forceSeek = true; // next sync places the element exactly
    this.playPending = false;
    this.mediaRecoveries = 0;
    this.lastRate = NaN;
    // Progress watch: a view that should play but does not move is `stuck` (undecodable
    // media, a stream that never arrives); the lesson then goes on without it.
    this.stuck = false;
    this.lastCT = -1;
    this.movedAt = performance.now();
    this.expectSince = performance.now();
    this.lastSeekAt = 0;
    this.lastRecoverAt = 0;
    this.retryMs = SYNC.stuckRetryMs;
  }

  /** Updates `stuck`; `running`: the player wants this element playing right now. */
  watchProgress(running, now) {
    const el = this.el;
    if (el.error && now - this.lastRecoverAt > this.retryMs) {
      // A decode error leaves the element dead: rebuild its MediaSource (hls.js) and place it
      // again, less and less often while it keeps failing.
      this.lastRecoverAt = now;
      if (!this.stuck) {
        this.stuck = true;
        console.warn(`replay ${this.key}: media error ${el.error.code} ${el.error.message || ''}`);
        this.dispatchEvent(new Event('stuck'));
      }
      if (this.hls) {
        this.hls.recoverMediaError();
        this.forceSeek = true;
      }
      return;
    }
    if (el.currentTime !== this.lastCT) {
      this.lastCT = el.currentTime;
      this.movedAt = now;
      if (!el.seeking && !el.error && running && !el.paused) {
        this.stuck = false;
        this.retryMs = SYNC.stuckRetryMs;
        if (this.error === 'media') this.error = null;
      }
    }
    if (!running || el.paused || el.seeking) {
      this.expectSince = now;
      return;
    }
    const still = now - Math.max(this.movedAt, this.expectSince);
    if (still > (el.readyState >= 3 ? SYNC.frozenMs : SYNC.starvedMs) && !this.stuck) {
      this.stuck = true;
      console.warn(`replay ${this.key}: stuck at ${el.currentTime.toFixed(3)} s (readyState ${el.readyState})`);
      this.dispatchEvent(new Event('stuck'));
    }
  }

  /** Starts loading; the first fragments loaded are those at the player's position. */
  start() {
    if (hlsSupported()) this.startHls();
    else if (nativeHls(this.el)) this.startNative();
    else throw Object.assign(new Error('no HLS playback in this browser'), { code: 'no_hls' });
    this.el.addEventListener('seeked', () => this.noteSeekDone());
    this.el.addEventListener('canplay', () => this.noteSeekDone());
    return this;
  }

  startHls() {
    const hls = new Hls({
      autoStartLoad: false,
      maxBufferLength: 20,
      maxMaxBufferLength: 40,
      backBufferLength: 30,
      lowLatencyMode: false,
      xhrSetup: (xhr, url) => {
        const fresh = this.rewriteUrl(url);
        if (fresh !== url) xhr.open('GET', fresh, true);
      },
    });
    this.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => hls.startLoad(this.guessMediaTime(this.posNow())));
    hls.on(Hls.Events.LEVEL_LOADED, (_, data) => this.setDetails(data.details));
    hls.on(Hls.Events.LEVEL_UPDATED, (_, data) => this.setDetails(data.details));
    hls.on(Hls.Events.AUDIO_TRACK_LOADED, (_, data) => {
      this.audioDetails = data.details;
      this.dispatchEvent(new Event('update'));
    });
    hls.on(Hls.Events.ERROR, (_, data) => this.onHlsError(data));
    hls.loadSource(this.url);
    hls.attachMedia(this.el);
  }

  /** Safari without MSE: the element plays HLS itself; lesson time from getStartDate(). */
  startNative() {
    this.native = true;
    this.el.src = this.rewriteUrl(this.url);
    this.el.addEventListener('loadedmetadata', () => {
      this.details = { native: true };
      this.dispatchEvent(new Event('details'));
    });
    this.el.addEventListener('error', () => { this.error = 'media'; });
  }

  setDetails(details) {
    if (!details) return;
    const first = !this.details;
    this.details = details;
    if (first) this.dispatchEvent(new Event('details'));
    this.dispatchEvent(new Event('update'));
  }

  onHlsError(data) {
    if (!data.fatal) return;
    const hls = this.hls;
    const status = data.response?.code ?? data.networkDetails?.status ?? 0;
    console.warn(`replay ${this.key}: fatal ${data.type} ${data.details} (${status})`);
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      if (status === 401 || status === 403) {
        this.error = 'auth';
        this.dispatchEvent(new Event('auth'));
      } else if (status === 404 && /manifest|level|track/i.test(data.details)) {
        this.error = 'missing';
      } else {
        this.error = 'network';
        setTimeout(() => {
          if (this.hls !== hls) return;
          this.error = null;
          if (this.details) hls.startLoad(this.el.currentTime);
          else hls.loadSource(this.url);
        }, 2000);
      }
    } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR && this.mediaRecoveries++ < 3) {
      hls.recoverMediaError();
    } else {
      this.error = 'media';
      this.stuck = true;
      this.dispatchEvent(new Event('stuck'));
    }
  }

  /** Reloads from a fresh (re-signed) URL, keeping the place. */
  reload(url) {
    this.url = url;
    this.error = null;
    this.forceSeek = true;
    if (this.hls) {
      this.hls.loadSource(url);
    } else if (this.native) {
      this.el.src = this.rewriteUrl(url);
    }
  }

  destroy() {
    this.hls?.destroy();
    this.hls = null;
    if (this.native) this.el.removeAttribute('src');
    this.el.pause();
  }

  get fragments() {
    return this.details?.fragments || [];
  }

  /** PDT-less playlists (or native playback): one run of media from the track's start_ms. */
  get linear() {
    return this.native || (this.details && !this.details.hasProgramDateTime);
  }

  linearBaseMs() {
    if (this.native) {
      const d = this.el.getStartDate?.();
      const ms = d?.getTime?.();
      if (Number.isFinite(ms)) return ms - this.startedAtMs;
    }
    return this.track.start_ms || 0;
  }

  /** Media time to start loading at, before the playlist is known: ignores gaps. */
  guessMediaTime(lessonMs) {
    const at = this.details ? this.locate(lessonMs) : null;
    if (at?.time != null) return at.time;
    return Math.max(0, (lessonMs - (this.track.start_ms || 0)) / 1000);
  }

  /** Lesson ms of media time `t`, or null before the playlist is known. */
  lessonMsAt(t) {
    if (!this.details) return null;
    if (this.linear) return this.linearBaseMs() + t * 1000;
    const frags = this.fragments;
    if (!frags.length) return null;
    const i = Math.max(0, lastAtOrBefore(frags, t, (f) => f.start));
    const f = frags[i];
    if (f.programDateTime == null) return null;
    return f.programDateTime - this.startedAtMs + (t - f.start) * 1000;
  }

  /** The element's position on the lesson timeline (ms), or null. */
  lessonMs() {
    return this.lessonMsAt(this.el.currentTime);
  }

  /**
   * Where lesson time `ms` is in this track: `{covered, time, nextMs}`. Covered: `time` is the
   * media time showing it. Not covered: `time`/`nextMs` is where the track's next media
   * starts (null after its end).
   */
  locate(ms) {
    if (!this.details) return { covered: false, time: null, nextMs: null };
    if (this.linear) {
      const base = this.linearBaseMs();
      const dur = this.native ? this.el.duration : this.details.totalduration;
      const t = (ms - base) / 1000;
      if (t < 0) return { covered: false, time: 0, nextMs: base };
      if (Number.isFinite(dur) && t > dur) return { covered: false, time: null, nextMs: null };
      return { covered: true, time: t, nextMs: null };
    }
    const frags = this.fragments;
    const wall = this.startedAtMs + ms;
    const i = lastAtOrBefore(frags, wall, (f) => f.programDateTime ?? -Infinity);
    const f = frags[i];
    if (f && wall < f.programDateTime + mediaDuration(frags, i) * 1000) {
      return { covered: true, time: f.start + (wall - f.programDateTime) / 1000, nextMs: null };
    }
    const next = frags[i + 1];
    if (!next || next.programDateTime == null) return { covered: false, time: null, nextMs: null };
    // A hole inside a run (not before the track's first media) plays through.
    const hole = f ? next.programDateTime - (f.programDateTime + mediaDuration(frags, i) * 1000) : Infinity;
    if (hole <= SYNC.gapSnapMs) return { covered: true, time: next.start, nextMs: null };
    return { covered: false, time: next.start, nextMs: next.programDateTime - this.startedAtMs };
  }

  /** Lesson ms where the run of media containing lesson time `ms` ends (null if none). */
  runEndMs(ms) {
    if (!this.details || this.linear) return this.endMs();
    const frags = this.fragments;
    let i = lastAtOrBefore(frags, this.startedAtMs + ms, (f) => f.programDateTime ?? -Infinity);
    if (i < 0) return null;
    let end = frags[i].programDateTime + mediaDuration(frags, i) * 1000;
    while (frags[i + 1]?.programDateTime != null && frags[i + 1].programDateTime - end <= SYNC.gapSnapMs) {
      i += 1;
      end = frags[i].programDateTime + mediaDuration(frags, i) * 1000;
    }
    return end - this.startedAtMs;
  }

  /** Lesson ms where this track's known media ends (grows while live), or null. */
  endMs() {
    if (!this.details) return null;
    if (this.linear) {
      const dur = this.native ? this.el.duration : this.details.totalduration;
      return Number.isFinite(dur) ? this.linearBaseMs() + dur * 1000 : null;
    }
    const last = this.fragments.at(-1);
    return last?.programDateTime != null ? last.programDateTime + last.duration * 1000 - this.startedAtMs : null;
  }

  /** Lesson-time runs with media: [[startMs, endMs], ...] (for the seek bar). */
  runs() {
    if (!this.details) return [];
    if (this.linear) {
      const end = this.endMs();
      return end == null ? [] : [[this.linearBaseMs(), end]];
    }
    return runsOf(this.fragments, this.startedAtMs);
  }

  /** runs() of the master playlist's alternate audio (the owner's mic), once loaded. */
  audioRuns() {
    return this.audioDetails ? runsOf(this.audioDetails.fragments, this.startedAtMs) : [];
  }

  /**
   * Lesson ms of the alternate audio (the master's mic) at the element's position, from
   * the audio playlist as hls.js placed it; null without one. Equal to lessonMs() when
   * hls.js lip-syncs the rendition.
   */
  audioLessonMs() {
    const frags = this.audioDetails?.fragments;
    if (!frags?.length) return null;
    const t = this.el.currentTime;
    const i = lastAtOrBefore(frags, t, (f) => f.start);
    const f = frags[Math.max(0, i)];
    if (f.programDateTime == null) return null;
    return f.programDateTime - this.startedAtMs + (t - f.start) * 1000;
  }

  /** `hls.playingDate` in ms since the epoch (null without PDT). */
  playingDateMs() {
    const d = this.hls?.playingDate;
    if (d) return d.getTime();
    const ms = this.lessonMs();
    return ms == null ? null : this.startedAtMs + ms;
  }

  seekTo(t, { lead = 0 } = {}) {
    const target = Math.max(0, t + lead);
    this.seekStarted = performance.now();
    this.lastSeekAt = this.seekStarted;
    if (this.stuck) this.retryMs = Math.min(SYNC.stuckRetryMaxMs, this.retryMs * 2);
    this.forceSeek = false;
    try { this.el.currentTime = target; } catch { /* not seekable yet */ }
  }

  noteSeekDone() {
    if (!this.seekStarted || this.el.seeking || this.el.readyState < 3) return;
    const took = (performance.now() - this.seekStarted) / 1000;
    this.seekStarted = 0;
    this.seekLatencyS = clamp(this.seekLatencyS * 0.6 + took * 0.4, 0.05, SYNC.maxSeekLeadS);
  }

  setRate(rate) {
    const r = Math.round(rate * 1000) / 1000;
    if (r === this.lastRate && this.el.playbackRate === r) return;
    this.lastRate = r;
    this.el.playbackRate = r;
  }

  /** Plays the element; resolves false when the browser refused (autoplay with sound). */
  play(onBlocked) {
    if (this.playPending || !this.el.paused) return;
    this.playPending = true;
    const p = this.el.play();
    const done = () => { this.playPending = false; };
    if (p?.then) {
      p.then(done, (err) => {
        done();
        if (err?.name === 'NotAllowedError') onBlocked?.(this);
      });
    } else {
      done();
    }
  }

  pause() {
    if (!this.el.paused) this.el.pause();
  }

  /** Ready to play at the current position (not seeking, data ahead). */
  get playable() {
    return !this.el.seeking && this.el.readyState >= 3;
  }
}

/**
 * The lesson clock and the views that follow it. Events: `state` (playing / paused /
 * stalled / ended changed), `blocked` (the browser refused to start sound: call play()
 * from a user gesture), `tick` (every SYNC.tickMs while the page is shown).
 */
export class ReplayPlayer extends EventTarget {
  constructor({ durationMs, live }) {
    super();
    this.views = [];
    this.leader = null;
    this.pos = 0;
    this.playing = false;
    this.stalled = false;
    this.settling = false;
    this.settleStart = 0;
    this.ended = false;
    this.blocked = false;
    this.rate = 1;
    this.durationMs = durationMs || 0;
    this.live = Boolean(live);
    this.lastTick = performance.now();
    this.timer = setInterval(() => this.tick(), SYNC.tickMs);
  }

  add(view, { leader = false } = {}) {
    view.posNow = () => this.pos;
    this.views.push(view);
    if (leader) this.leader = view;
    view.addEventListener('details', () => this.emitState());
    return view;
  }

  remove(view) {
    this.views = this.views.filter((v) => v !== view);
    if (this.leader === view) this.leader = null;
    view.destroy();
  }

  setDuration(durationMs, live) {
    this.durationMs = Math.max(this.durationMs && live ? this.durationMs : 0, durationMs || 0);
    this.live = Boolean(live);
  }

  /** Lesson ms with media so far: the end of the furthest track (live), else the duration. */
  liveEdgeMs() {
    let edge = 0;
    for (const v of this.views) edge = Math.max(edge, v.endMs() ?? 0);
    return edge;
  }

  /** The end of the timeline: the lesson's duration, or while recording what exists of it. */
  endMs() {
    if (!this.live) return this.durationMs;
    return Math.max(this.durationMs, this.liveEdgeMs());
  }

  play() {
    if (this.ended) this.seek(0);
    this.blocked = false;
    this.playing = true;
    this.lastTick = performance.now();
    this.settle();
    // Start the elements inside the caller's user gesture, where there is one (Safari
    // lets an element play sound later only if it first played from a gesture).
    for (const v of this.views) if (v.covered && v.playable) v.play((view) => this.onBlocked(view));
    this.emitState();
  }

  pause() {
    this.playing = false;
    for (const v of this.views) v.pause();
    this.emitState();
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  seek(ms) {
    const max = this.live ? Math.max(0, this.liveEdgeMs() - 1000) : this.durationMs;
    this.pos = clamp(ms, 0, Math.max(0, max));
    this.ended = false;
    for (const v of this.views) v.forceSeek = true;
    this.settle();
    this.tick();
  }

  /** Hold the clock (every view paused) until the views with media here can play. */
  settle() {
    this.settleStart = performance.now();
    this.settling = true;
    this.stalled = true;
  }

  setRate(rate) {
    this.rate = rate;
    this.tick();
    this.emitState();
  }

  onBlocked() {
    if (this.blocked) return;
    this.blocked = true;
    this.pause();
    this.dispatchEvent(new Event('blocked'));
  }

  emitState() {
    this.dispatchEvent(new Event('state'));
  }

  /** Moves the clock, then steers every view to it. */
  tick() {
    const now = performance.now();
    const dt = now - this.lastTick;
    this.lastTick = now;
    const wasStalled = this.stalled;
    const wasEnded = this.ended;
    if (this.playing) this.advance(dt);
    for (const v of this.views) this.steer(v, v === this.leader);
    if (wasStalled !== this.stalled || wasEnded !== this.ended) this.emitState();
    this.dispatchEvent(new Event('tick'));
  }

  /** Every view with media at the position is ready (the leader: always waited for). */
  settled() {
    const leader = this.leader;
    if (leader && !leader.details && !leader.error) return false;
    const waited = performance.now() - this.settleStart;
    return this.views.every((v) => {
      if (!v.details || v.error || v.stuck || !v.locate(this.pos).covered) return true;
      if (v.playable && !v.forceSeek) return true;
      if (v !== leader) return waited > SYNC.settleMaxMs;
      if (waited <= SYNC.leaderWaitMaxMs) return false;
      v.stuck = true; // it never got ready here: go on without it
      console.warn(`replay ${v.key}: not playable after ${SYNC.leaderWaitMaxMs} ms; going on without it`);
      v.dispatchEvent(new Event('stuck'));
      return true;
    });
  }

  advance(dt) {
    if (this.settling) {
      if (!this.settled()) return;
      this.settling = false; // everyone ready: they all start in this tick's steer
      this.stalled = false;
      return;
    }
    const leader = this.leader;
    const at = leader?.details && !leader.error && !leader.stuck ? leader.locate(this.pos) : null;
    if (leader && !leader.details && !leader.error) {
      this.settle(); // the leader's playlist is not there yet
    } else if (at?.covered) {
      const cur = leader.lessonMs();
      const off = cur == null ? Infinity : cur - this.pos;
      if (Math.abs(off) <= SYNC.seekOverMs * Math.max(1, this.rate) && leader.playable && !leader.el.paused) {
        this.pos = cur; // the leader is the clock
      } else if (off > 0 && Number.isFinite(off) && leader.playable && !leader.el.paused
                 && cur > (leader.runEndMs(this.pos) ?? Infinity) + SYNC.gapSnapMs) {
        this.pos = leader.runEndMs(this.pos); // it played over the end of a part: the gap runs on the wall clock
      } else {
        this.settle(); // buffering, seeking or parked at its next part
      }
    } else {
      this.pos += dt * this.rate; // no leader media here: wall clock
    }
    if (this.live) {
      const edge = this.liveEdgeMs();
      if (edge > 0 && this.pos > edge) {
        this.pos = edge;
        this.settle();
      }
    } else {
      const end = this.endMs();
      if (end > 0 && this.pos >= end) {
        this.pos = end;
        this.ended = true;
        this.playing = false;
        for (const v of this.views) v.pause();
      }
    }
  }

  /** Brings one view to the clock. */
  steer(v, isLeader) {
    const now = performance.now();
    if (!v.details || v.error === 'missing') {
      v.covered = false;
      v.watchProgress(false, now);
      return;
    }
    const at = v.locate(this.pos);
    v.covered = at.covered;
    const el = v.el;
    if (!at.covered) {
      v.watchProgress(false, now);
      v.pause();
      // Park on the next media of this track, so it is loaded when the lesson gets there.
      if (at.time != null && !el.seeking && Math.abs(el.currentTime - at.time) > 0.5) v.seekTo(at.time);
      v.forceSeek = false;
      return;
    }
    const run = this.playing && !this.stalled;
    v.watchProgress(run, now);
    const cur = v.lessonMs();
    const drift = cur == null ? Infinity : cur - this.pos; // > 0: ahead
    const scale = Math.max(1, this.rate);
    // A stuck element (even one stuck seeking) is tried again now and then, never hammered.
    const maySeek = v.stuck ? now - v.lastSeekAt > v.retryMs : !el.seeking;
    if (v.forceSeek) {
      v.seekTo(at.time);
    } else if (!run) {
      if (maySeek && Math.abs(drift) > SYNC.pausedSeekOverMs) v.seekTo(at.time);
    } else if (Math.abs(drift) > SYNC.seekOverMs * scale) {
      if (drift > 0 && (v.runEndMs(this.pos) ?? Infinity) < cur) {
        v.pause(); // it played past the end of its part: wait there until the lesson gets to the next
        return;
      }
      if (maySeek) v.seekTo(at.time, { lead: isLeader ? 0 : v.seekLatencyS * this.rate });
    } else if (el.paused && maySeek && Math.abs(drift) > SYNC.resumeSeekOverMs * scale) {
      v.seekTo(at.time); // resuming off-step: place it first
    }
    if (!run) {
      v.pause();
      v.setRate(this.rate);
      return;
    }
    let nudge = 0;
    if (!isLeader && Number.isFinite(drift) && Math.abs(drift) > SYNC.deadbandMs) {
      nudge = clamp(-drift * SYNC.gainPerMs, -SYNC.maxNudge, SYNC.maxNudge);
    }
    v.setRate(this.rate * (1 + nudge));
    if (el.paused) v.play((view) => this.onBlocked(view));
  }

  destroy() {
    clearInterval(this.timer);
    for (const v of this.views) v.destroy();
    this.views = [];
  }
}
