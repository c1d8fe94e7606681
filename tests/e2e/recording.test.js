// A class records itself: teacher (camera + board + mic) and one classroom run for a
// while, everyone leaves, and the lesson is in the catalog with every track, in the codecs
// that were sent (H.264 video, Opus audio). Each track lasts at least as long as every
// track was flowing and at most as long as the whole test class existed.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adminCall } from './lib/admin.js';
import { startLiveClass } from './lib/class.js';
import { counter, expectFlowing } from './lib/media.js';
import { sleep } from './lib/wait.js';

const LIVE_MS = 10_000;

describe('recording', () => {
  let live;
  let opened;
  before(async () => {
    opened = Date.now();
    live = await startLiveClass('recording', { classrooms: 1 });
  });
  after(async () => {
    await live?.close();
  });

  test('the lesson is in the catalog with every track once the class ends', async (t) => {
    const room = live.rooms[0];
    await expectFlowing(counter(room.page, 'main/camera', 'framesDecoded'), 'classroom decodes main/camera');
    const started = Date.now();
    await sleep(LIVE_MS);
    for (const b of [live.teacher.browser, room.browser]) await b.close();
    const allFlowingMs = Date.now() - started;
    const existedMs = Date.now() - opened;

    const deadline = Date.now() + 20_000;
    let lesson;
    while (Date.now() < deadline) {
      const { lessons } = await adminCall(live.server, 'GET', `/api/lessons?class=${live.cls.id}`);
      if (lessons[0]?.state === 'finished') {
        lesson = lessons[0];
        break;
      }
      await sleep(500);
    }
    assert.ok(lesson, 'a finished lesson appears in the catalog within 20 s of the class ending');
    const { tracks } = await adminCall(live.server, 'GET', `/api/lessons/${lesson.id}`);
    const keys = tracks.map((tr) => tr.key).sort();
    assert.deepEqual(keys, ['main/board', 'main/camera', 'main/mic', `${room.id}/camera`, `${room.id}/mic`].sort());
    for (const tr of tracks) {
      t.diagnostic(`${tr.key}: ${tr.codec}, ${tr.duration_ms} ms, ${tr.bytes} bytes, ${tr.parts} part(s)`);
      assert.equal(tr.codec, tr.key.endsWith('/mic') ? 'opus' : 'h264', `${tr.key} codec`);
      assert.ok(tr.duration_ms >= allFlowingMs - 500 && tr.duration_ms <= existedMs + 500,
        `${tr.key}: ${tr.duration_ms} ms, between ${allFlowingMs} ms (all flowing) and ${existedMs} ms (class existed)`);
    }
    const file = path.join(live.server.dataDir, 'recordings', live.cls.id, lesson.id, 'main.camera.part1.mp4');
    assert.ok(fs.existsSync(file), `${file} exists`);
    const discovered = execFileSync('gst-discoverer-1.0', [file], { encoding: 'utf8' });
    t.diagnostic(discovered.split('\n').filter((l) => /video|Duration/i.test(l)).join(' | '));
    assert.match(discovered, /H\.264/, 'gst-discoverer finds H.264 video');
  });
});
