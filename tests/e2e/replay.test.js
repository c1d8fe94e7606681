// The lesson replay page (web-client/replay.html) on a real recording. A class runs with the
// teacher's camera, courseware screen and mic and one classroom, and records for ~15 s.
// While it is still running, a student opens the replay page: it plays the lesson from its
// start (time-shift) with the LIVE badge. After the class: the page plays; a seek to the
// middle plays on from there; the teacher camera (large) and the courseware (small) stay
// within 100 ms of each other in lesson time, also after swapping which one is large. No
// replay URL answers without a token or signature, and the page says so in the student's
// language.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { adminCall, mintLink } from './lib/admin.js';
import { launchBrowser } from './lib/browser.js';
import { startLiveClass, TEACHER_PARAMS } from './lib/class.js';
import { counter, expectFlowing } from './lib/media.js';
import { describeReplay, expectAdvancing, maxSpread, replayState, replayUrl, viewOf, waitReplay } from './lib/replay.js';
import { poll, sleep } from './lib/wait.js';

const RECORD_MS = 15_000; // how long the class records
const OPEN_LIVE_AFTER_MS = 5_000; // when the student opens the replay during the class
const IN_STEP_MS = 100; // main and secondary view, in lesson time

describe('replay page', () => {
  let live;
  let viewer; // the student's browser
  let page;
  let lesson;
  let student;
  let recordingSince;
  before(async () => {
    live = await startLiveClass('replay', { classrooms: 1, teacherParams: { ...TEACHER_PARAMS, second: 'screen' } });
    await expectFlowing(counter(live.rooms[0].page, 'main/screen', 'framesDecoded'), 'the classroom decodes main/screen');
    recordingSince = Date.now();
    student = (await mintLink(live.server, live.cls.id, 'student', { name: 'Xiao Ming' })).token;
    lesson = await poll(async () => (await adminCall(live.server, 'GET', `/api/lessons?class=${live.cls.id}`)).lessons[0],
      { timeoutMs: 10_000, what: 'the lesson in the catalog' });
    viewer = await launchBrowser('student', 'replay');
  });
  after(async () => {
    await viewer?.close();
    await live?.close();
  });

  test('during the class, the page plays the lesson from its start (time-shift)', async (t) => {
    await sleep(Math.max(0, recordingSince + OPEN_LIVE_AFTER_MS - Date.now()));
    page = await viewer.open(replayUrl(live.server, { lesson: lesson.id, token: student, lang: 'en' }));
    const ready = await waitReplay(page, (s) => s.ready && s.position?.live, 'the page is ready, lesson live', 20_000);
    assert.equal(await page.locator('#live-badge').isVisible(), true, 'LIVE badge shown');
    assert.equal(await page.locator('#btn-live').isVisible(), true, 'jump-to-live button shown');
    assert.ok(ready.position.lessonMs < 3000, `starts at the lesson's start: ${describeReplay(ready)}`);
    const [first, later] = await expectAdvancing(page, 'time-shift playback', { byMs: 2000, timeoutMs: 15_000 });
    t.diagnostic(`time-shift: ${describeReplay(later)}`);
    assert.ok(viewOf(first, 'main').key === 'main/camera', 'the teacher camera is the main view');
    assert.ok(later.position.live, 'still live while it played');
    // The timeline grows while the lesson is recorded.
    const grown = await waitReplay(page, (s) => s.position.durationMs > ready.position.durationMs + 2000,
      'the timeline grows', 15_000);
    t.diagnostic(`timeline ${Math.round(ready.position.durationMs)} → ${Math.round(grown.position.durationMs)} ms`);
  });

  test('after the class: plays, seeks to the middle, views stay within 100 ms, also swapped', async (t) => {
    await sleep(Math.max(0, recordingSince + RECORD_MS - Date.now()));
    await Promise.all([live.teacher.browser, ...live.rooms.map((r) => r.browser)].map((b) => b.close()));
    await poll(async () => (await adminCall(live.server, 'GET', `/api/lessons/${lesson.id}`)).lesson.state === 'finished',
      { timeoutMs: 20_000, what: 'the lesson finished' });

    page ??= await viewer.open('about:blank');
    await page.goto(replayUrl(live.server, { lesson: lesson.id, token: student, lang: 'en' }), { waitUntil: 'domcontentloaded' });
    const ready = await waitReplay(page, (s) => s.ready && s.position && !s.position.live, 'the page is ready, lesson finished', 20_000);
    assert.equal(await page.locator('#live-badge').isVisible(), false, 'no LIVE badge');
    const duration = ready.position.durationMs;
    assert.ok(duration >= RECORD_MS - 1000, `the timeline covers the lesson: ${duration} ms`);
    assert.deepEqual([viewOf(ready, 'main')?.key, viewOf(ready, 'secondary')?.key], ['main/camera', 'main/screen'],
      `teacher camera large, courseware small: ${describeReplay(ready)}`);
    await expectAdvancing(page, 'playback from the start', { byMs: 1500 });

    const mid = Math.round(duration / 2);
    await page.evaluate((ms) => window.__replay.seek(ms), mid);
    const [atMid] = await expectAdvancing(page, `playback after seeking to ${mid} ms`, { byMs: 1000 });
    const mainAtMid = viewOf(atMid, 'main');
    assert.ok(mainAtMid.lessonTimeMs >= mid - 500 && mainAtMid.lessonTimeMs <= mid + 4000,
      `after the seek the main view is at the middle: ${describeReplay(atMid)}`);
    await sleep(1500); // let the small view settle into step

    const straight = await maxSpread(page);
    t.diagnostic(`in step: worst ${Math.round(straight.worst)} ms: ${straight.notes.join(', ')}`);
    assert.ok(straight.worst <= IN_STEP_MS, `main and secondary within ${IN_STEP_MS} ms: ${straight.notes.join(', ')}`);

    await page.evaluate(() => window.__replay.swap());
    const swapped = await replayState(page);
    assert.deepEqual([viewOf(swapped, 'main')?.key, viewOf(swapped, 'secondary')?.key], ['main/screen', 'main/camera'],
      `swapped: courseware large, teacher small: ${describeReplay(swapped)}`);
    const after = await maxSpread(page);
    t.diagnostic(`swapped: worst ${Math.round(after.worst)} ms: ${after.notes.join(', ')}`);
    assert.ok(after.worst <= IN_STEP_MS, `swapped views within ${IN_STEP_MS} ms: ${after.notes.join(', ')}`);
  });

  test('no replay URL answers without a token or signature', async () => {
    const manifest = await adminCall(live.server, 'GET', `/api/replay/${lesson.id}`);
    const bare = (url) => url.split('?')[0];
    const camera = manifest.tracks.find((tr) => tr.key === 'main/camera');
    const playlist = await (await fetch(`${live.server.url}${camera.playlist}`)).text();
    const part = playlist.match(/#EXT-X-MAP:URI="([^"?]+)/)?.[1];
    assert.ok(part, `the camera playlist names its part file:\n${playlist}`);
    const urls = [
      `/api/replay/${lesson.id}`,
      `/api/replay?class=${live.cls.id}`,
      ...manifest.tracks.flatMap((tr) => [tr.playlist, tr.master].filter(Boolean).map(bare)),
      new URL(part, `${live.server.url}${bare(camera.playlist)}`).pathname,
      `/replay/${live.cls.id}/${lesson.id}/export.mp4`,
    ];
    for (const url of urls) {
      const res = await fetch(`${live.server.url}${url}`);
      assert.equal(res.status, 401, `${url} without credentials → ${res.status}`);
      const body = await res.json();
      assert.equal(body.error?.code ?? body.error, 'unauthorized', `${url}: ${JSON.stringify(body)}`);
    }

    // The page tells the student, in their language.
    page ??= await viewer.open('about:blank');
    for (const [params, code, text] of [
      [{ lesson: lesson.id, lang: 'zh' }, 'no_credentials', '链接不完整'],
      [{ lesson: lesson.id, token: 'not.a.token', lang: 'zh' }, 'unauthorized', '回放链接无效或已过期'],
      [{ lesson: lesson.id, exp: '1', sig: 'forged', lang: 'en' }, 'unauthorized', 'invalid or has expired'],
    ]) {
      await page.goto(replayUrl(live.server, params), { waitUntil: 'domcontentloaded' });
      const s = await waitReplay(page, (x) => x.error, `the page reports an error for ${JSON.stringify(params)}`);
      assert.equal(s.error, code, JSON.stringify(params));
      assert.match(await page.locator('#fatal').innerText(), new RegExp(text), `message for ${JSON.stringify(params)}`);
    }
  });
});
