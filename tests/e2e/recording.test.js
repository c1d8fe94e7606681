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
import { sleep } from './lib/wait.js';

const LIVE_MS = 30_000;
const SAMPLE_MS = 100;
const TOLERANCE_MS = 500;

/**
 * Samples the bytesSent of every source of the publisher pages `add`ed to it:
 * spans = { key: {first, last} } in ms (Date.now()).
 */
function watchPublishers() {
  const publishers = [];
  const spans = {};
  let stop = false;
  const loop = (async () => {
    const seen = {};
    while (!stop) {
      await Promise.all(publishers.map(async ({ owner, page }) => {
        const now = Date.now();
        const stats = await page.evaluate(() => window.__classcast.publishStats()).catch(() => ({}));
        for (const [source, s] of Object.entries(stats)) {
          const key = `${owner}/${source}`;
          if (!(s.bytesSent > 0)) continue;
          spans[key] ??= { first: now, last: now };
          if (s.bytesSent > (seen[key] ?? 0)) spans[key].last = now;
          seen[key] = s.bytesSent;
        }
      }));
      await sleep(SAMPLE_MS);
    }
  })();
  return { spans, add: (owner, page) => publishers.push({ owner, page }), stop: async () => { stop = true; await loop; } };
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
    await Promise.all([live.teacher.browser, ...live.rooms.map((r) => r.browser)].map((b) => b.close()));
    await watch.stop();

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
