// Driving the lesson replay page (web-client/replay.html) through its automation hook,
// `window.__replay` (see web-client/README.md): page URL, snapshots of the views, waiting
// for a condition, and how far apart in lesson time the main and secondary views are.

import assert from 'node:assert/strict';
import { poll, sleep } from './wait.js';

/** URL of the replay page: `params` in the query (e.g. {lesson, token, lang}). */
export function replayUrl(server, params) {
  return `${server.url}/replay.html?${new URLSearchParams(params)}`;
}

/** `{ready, error, position, views: [...]}` of the page, read in one task (one instant). */
export function replayState(page) {
  return page.evaluate(() => {
    const r = window.__replay;
    if (!r) return { ready: false, error: 'no window.__replay', position: null, views: [] };
    return { ready: r.ready, error: r.error, position: r.position(), views: r.views() };
  });
}

/** The view with `role` ('main' | 'secondary' | 'audio') in a state snapshot. */
export const viewOf = (state, role) => state.views.find((v) => v.role === role);

/** A short description of a state, for failure messages. */
export function describeReplay(state) {
  const p = state.position;
  const views = state.views.map((v) => `${v.key}[${v.role}${v.covered ? '' : ', no media'}${v.stuck ? ', stuck' : ''}${v.error ? `, ${v.error}` : ''}]`
    + ` t=${v.currentTime?.toFixed(3)} L=${v.lessonTimeMs == null ? '-' : Math.round(v.lessonTimeMs)}`
    + ` ${v.paused ? 'paused' : 'playing'} rs=${v.readyState} rate=${v.playbackRate?.toFixed(2)}`);
  const pos = p ? `pos=${Math.round(p.lessonMs)}/${Math.round(p.durationMs)} ms playing=${p.playing} stalled=${p.stalled} live=${p.live}` : 'no position';
  return `ready=${state.ready} error=${state.error} ${pos}; ${views.join('; ')}`;
}

/** Poll the page until `fn(state)` is truthy; return that state. */
export async function waitReplay(page, fn, what, timeoutMs = 15_000) {
  let last = null;
  try {
    return await poll(async () => {
      last = await replayState(page);
      return fn(last) ? last : null;
    }, { timeoutMs, intervalMs: 200, what });
  } catch (e) {
    e.message += `\nreplay page: ${last ? describeReplay(last) : 'no state'}`;
    throw e;
  }
}

/** Wait until the main view's lesson time advances by `byMs` while playing; returns [before, after] states. */
export async function expectAdvancing(page, what, { byMs = 1000, timeoutMs = 10_000 } = {}) {
  const first = await waitReplay(page, (s) => viewOf(s, 'main')?.lessonTimeMs != null, `${what}: main view placed`, timeoutMs);
  const from = viewOf(first, 'main').lessonTimeMs;
  const fromTime = viewOf(first, 'main').currentTime;
  const later = await waitReplay(page, (s) => {
    const v = viewOf(s, 'main');
    return v && !v.paused && v.lessonTimeMs >= from + byMs && v.currentTime > fromTime;
  }, `${what}: main view advances ${byMs} ms past ${Math.round(from)} ms`, timeoutMs);
  return [first, later];
}

/**
 * Wait (up to `timeoutMs`) until the main and secondary views both play media, then sample the
 * page `samples` times, `intervalMs` apart; return the largest |lesson time difference| seen
 * and the samples' notes.
 */
export async function maxSpread(page, { samples = 10, intervalMs = 200, timeoutMs = 10_000 } = {}) {
  const playing = (v) => v && v.covered && !v.paused && !v.stuck && !v.error;
  await waitReplay(page, (s) => playing(viewOf(s, 'main')) && playing(viewOf(s, 'secondary')),
    'the main and the secondary view both playing media', timeoutMs);
  let worst = 0;
  const notes = [];
  for (let i = 0; i < samples; i++) {
    const s = await replayState(page);
    const a = viewOf(s, 'main');
    const b = viewOf(s, 'secondary');
    assert.ok(a && b, `a main and a secondary view: ${describeReplay(s)}`);
    assert.ok(a.covered && b.covered && !a.paused && !b.paused,
      `both views play media at the position: ${describeReplay(s)}`);
    const d = Math.abs(a.lessonTimeMs - b.lessonTimeMs);
    worst = Math.max(worst, d);
    notes.push(`${a.key} ${Math.round(a.lessonTimeMs)} / ${b.key} ${Math.round(b.lessonTimeMs)} (Δ ${Math.round(d)})`);
    await sleep(intervalMs);
  }
  return { worst, notes };
}
