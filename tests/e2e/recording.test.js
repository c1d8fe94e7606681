// A class records itself: the teacher (camera + courseware screen + mic) and two classrooms
// (camera + mic each) run for 30 s, everyone leaves, and the lesson is in the catalog with
// every track, in the codecs that were sent (H.264 video, Opus audio). Each track's recorded
// duration is within 0.5 s of how long it was live, measured on its publisher's page
// (outbound-rtp bytesSent sampled every 100 ms: first seen sending to last increase).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adminCall } from './lib/admin.js';
import { startLiveClass, TEACHER_PARAMS } from './lib/class.js';
import { counter, expectFlowing } from './lib/media.js';
import { poll, sleep } from './lib/wait.js';

const LIVE_MS = 30_000;
const SAMPLE_MS = 100;
const TOLERANCE_MS = 500;

/**
 * Samples the bytesSent of every source of the publisher pages `add`ed to it:
 * spans = { key: {first, last} } in ms (Date.now()). A change seen between two samples is
 * placed at their midpoint, so the sampling interval does not bias the span; a source still
 * sending when sampling stops was live until its page stopped sending (`stopSending()`).
 */
function watchPublishers() {
  const publishers = [];
  const spans = {};
  let stop = false;
  let round = 0;
  const loop = (async () => {
    const seen = {};
    const prevAt = new Map();
    while (!stop) {
      round += 1;
      await Promise.all(publishers.map(async (pub) => {
        const before = prevAt.get(pub) ?? Date.now();
        const stats = await pub.page.evaluate(() => window.__classcast.publishStats()).catch(() => ({}));
        const now = Date.now();
        prevAt.set(pub, now);
        const mid = (before + now) / 2;
        for (const [source, s] of Object.entries(stats)) {
          const key = `${pub.owner}/${source}`;
          if (!(s.bytesSent > 0)) continue;
          spans[key] ??= { first: mid, last: mid, round };
          if (s.bytesSent > (seen[key] ?? 0)) Object.assign(spans[key], { last: mid, round });
          seen[key] = s.bytesSent;
        }
      }));
      await sleep(SAMPLE_MS);
    }
  })();
  /** Stop sampling, then sending: sources still sending in the last round were live until their page stopped. */
  const finish = async () => {
    stop = true;
    await loop;
    const stoppedAt = Object.fromEntries(await Promise.all(publishers.map(async ({ owner, page }) =>
      [owner, await page.evaluate(() => window.__classcast.stopSending())])));
    for (const [key, span] of Object.entries(spans)) {
      if (span.round === round) span.last = stoppedAt[key.split('/')[0]];
    }
  };
  return { spans, add: (owner, page) => publishers.push({ owner, page }), finish };
}

describe('recording', () => {
  let live;
  const watch = watchPublishers();
  before(async () => {
    live = await startLiveClass('recording', {
      classrooms: 2,
      teacherParams: { ...TEACHER_PARAMS, second: 'screen' },
      onPage: watch.add,
    });
  });
  after(async () => {
    await live?.close();
  });

  test('every track is recorded for as long as it was live, in its codec', async (t) => {
    for (const room of live.rooms) {
      await expectFlowing(counter(room.page, 'main/screen', 'framesDecoded'), `${room.id} decodes main/screen`);
    }
    await sleep(LIVE_MS);
    await watch.finish();
    await Promise.all([live.teacher.browser, ...live.rooms.map((r) => r.browser)].map((b) => b.close()));

    const lesson = await finishedLesson(live);
    const { tracks } = await adminCall(live.server, 'GET', `/api/lessons/${lesson.id}`);
    const expected = ['main/camera', 'main/screen', 'main/mic', ...live.rooms.flatMap((r) => [`${r.id}/camera`, `${r.id}/mic`])];
    assert.deepEqual(tracks.map((tr) => tr.key).sort(), expected.sort());
    for (const tr of tracks) {
      const span = watch.spans[tr.key];
      assert.ok(span, `${tr.key} was seen sending`);
      const liveMs = span.last - span.first;
      t.diagnostic(`${tr.key}: ${tr.codec}, recorded ${tr.duration_ms} ms, live ${liveMs} ms (diff ${tr.duration_ms - liveMs} ms), ${tr.bytes} bytes, ${tr.parts} part(s)`);
      assert.equal(tr.codec, tr.key.endsWith('/mic') ? 'opus' : 'h264', `${tr.key} codec`);
      assert.ok(liveMs >= LIVE_MS, `${tr.key} was live for the whole class (${liveMs} ms)`);
      assert.ok(Math.abs(tr.duration_ms - liveMs) <= TOLERANCE_MS, `${tr.key}: recorded ${tr.duration_ms} ms vs live ${liveMs} ms`);
    }
    for (const file of ['main.camera.part1.mp4', 'main.screen.part1.mp4', 'main.mic.part1.mp4']) {
      const full = path.join(live.server.dataDir, 'recordings', live.cls.id, lesson.id, file);
      assert.ok(fs.existsSync(full), `${full} exists`);
      const discovered = execFileSync('gst-discoverer-1.0', [full], { encoding: 'utf8' });
      t.diagnostic(`${file}: ${discovered.split('\n').filter((l) => /video:|audio:|Duration/i.test(l)).map((l) => l.trim()).join(' | ')}`);
      assert.match(discovered, file.includes('mic') ? /Opus/ : /H\.264/, `gst-discoverer finds the codec of ${file}`);
    }
  });

  test('the composite export plays and lasts as long as the lesson', async (t) => {
    const { lessons } = await adminCall(live.server, 'GET', `/api/lessons?class=${live.cls.id}`);
    const lesson = await poll(async () => {
      const { lesson: l } = await adminCall(live.server, 'GET', `/api/lessons/${lessons[0].id}`);
      assert.notEqual(l.export.state, 'failed', `export failed: ${l.export.error}`);
      return l.export.state === 'done' && l;
    }, { timeoutMs: 180_000, intervalMs: 1000, what: 'the export is done' });
    const lessonMs = lesson.ended_at_ms - lesson.started_at_ms;
    const file = path.join(live.server.dataDir, 'recordings', live.cls.id, lesson.id, 'export.mp4');
    const discovered = execFileSync('gst-discoverer-1.0', [file], { encoding: 'utf8' });
    const m = /Duration: (\d+):(\d+):([\d.]+)/.exec(discovered);
    const exportMs = ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000;
    const done = /lesson export done.*speed=([\d.]+)/.exec(fs.readFileSync(live.server.logPath, 'utf8'));
    t.diagnostic(`export ${exportMs.toFixed(0)} ms for a ${lessonMs} ms lesson, rendered at ${done?.[1]}x real time; ${discovered.split('\n').filter((l) => /video:|audio:/.test(l)).map((l) => l.trim()).join(' | ')}`);
    assert.match(discovered, /H\.264/, 'H.264 video');
    assert.match(discovered, /MPEG-4 AAC/, 'AAC audio');
    assert.ok(Math.abs(exportMs - lessonMs) <= 1000, `export ${exportMs} ms vs lesson ${lessonMs} ms`);
  });
});

/** The class's lesson once it is finished (within 20 s of the class ending). */
async function finishedLesson(live) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const { lessons } = await adminCall(live.server, 'GET', `/api/lessons?class=${live.cls.id}`);
    if (lessons[0]?.state === 'finished') return lessons[0];
    await sleep(500);
  }
  assert.fail('a finished lesson appears in the catalog within 20 s of the class ending');
}
