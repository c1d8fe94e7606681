// Who may open a recorded lesson. A short class is recorded (teacher camera + board + mic in
// Chromium); then every replay URL (manifest, lesson list, media and master playlists, part
// files, export) is tried without credentials, with a wrong, expired or foreign signature,
// with a token of another class: always 401. With the manifest's signed URLs, a student
// token of the class, or the admin key: 200, and part files answer range requests (206).
// A student token opens replays only: it cannot join a live class.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { adminCall, createClass, mintLink } from './lib/admin.js';
import { startLiveClass } from './lib/class.js';
import { sumMetric } from './lib/metrics.js';
import { openWs } from './lib/ws.js';
import { poll, sleep } from './lib/wait.js';

/** A replay signature computed as the server does (the test knows the token secret). */
function sign(server, scope, exp) {
  const key = createHmac('sha256', server.tokenSecret).update('classcast replay url key v1').digest();
  return createHmac('sha256', key).update(`${scope}\n${exp}`).digest('base64url');
}

const get = (server, path, headers = {}) => fetch(`${server.url}${path}`, { headers });
const withoutQuery = (url) => url.split('?')[0];

describe('replay access', () => {
  let live;
  let lesson;
  let manifest;
  let files;
  before(async () => {
    live = await startLiveClass('replay-access', { classrooms: 0 });
    await poll(async () => (await sumMetric(live.server, 'classcast_recording_tracks')).total === 3,
      { timeoutMs: 15_000, what: 'three tracks recording' });
    await sleep(6000);
    await live.teacher.browser.close();
    lesson = await poll(async () => {
      const { lessons } = await adminCall(live.server, 'GET', `/api/lessons?class=${live.cls.id}`);
      return lessons[0]?.state === 'finished' && lessons[0];
    }, { timeoutMs: 20_000, what: 'the lesson finished' });
    manifest = await adminCall(live.server, 'GET', `/api/replay/${lesson.id}`);
    const base = `/replay/${live.cls.id}/${lesson.id}`;
    files = [
      ...manifest.tracks.map((t) => t.playlist),
      ...manifest.tracks.filter((t) => t.master).map((t) => t.master),
      `${base}/main.camera.part1.mp4?${manifest.tracks[0].playlist.split('?')[1]}`,
      `${base}/export.mp4?${manifest.tracks[0].playlist.split('?')[1]}`,
    ];
  });
  after(async () => {
    await live?.close();
  });

  test('the manifest lists every track with signed playlists', () => {
    assert.deepEqual(manifest.tracks.map((t) => t.key).sort(), ['main/board', 'main/camera', 'main/mic']);
    for (const t of manifest.tracks) assert.match(t.playlist, /\?exp=\d+&sig=[\w-]+$/, `${t.key} playlist is signed`);
    assert.ok(manifest.tracks.find((t) => t.key === 'main/camera').master, 'the camera has a master playlist with the mic');
  });

  test('every replay URL without valid credentials is 401', async () => {
    const scope = `${live.cls.id}/${lesson.id}`;
    const past = Math.floor(Date.now() / 1000) - 10;
    const future = Math.floor(Date.now() / 1000) + 3600;
    const other = await createClass(live.server, 'Other class');
    const otherToken = (await mintLink(live.server, other.id, 'student')).token;
    const bad = [
      ['no credentials', (u) => withoutQuery(u), {}],
      ['a forged signature', (u) => `${withoutQuery(u)}?exp=${future}&sig=${'A'.repeat(43)}`, {}],
      ['an expired signature', (u) => `${withoutQuery(u)}?exp=${past}&sig=${sign(live.server, scope, past)}`, {}],
      ['a signature of another lesson', (u) => `${withoutQuery(u)}?exp=${future}&sig=${sign(live.server, `${live.cls.id}/lnotthisone0`, future)}`, {}],
      ['a changed expiry', (u) => u.replace(/exp=\d+/, `exp=${future + 1}`), {}],
      ['a token of another class', (u) => withoutQuery(u), { authorization: `Bearer ${otherToken}` }],
      ['a garbage token', (u) => withoutQuery(u), { authorization: 'Bearer not.a.token' }],
    ];
    const urls = [`/api/replay/${lesson.id}?x`, ...files];
    for (const [what, rewrite, headers] of bad) {
      for (const url of urls) {
        const res = await get(live.server, rewrite(url), headers);
        assert.equal(res.status, 401, `${what}: ${rewrite(url)} → ${res.status}`);
        assert.equal((await res.json()).error, 'unauthorized');
      }
    }
    for (const headers of [{}, { authorization: `Bearer ${otherToken}` }]) {
      const res = await get(live.server, `/api/replay?class=${live.cls.id}`, headers);
      assert.equal(res.status, 401, `lesson list with ${JSON.stringify(headers)}`);
    }
  });

  test('signed URLs, a student token of the class and the admin key open the lesson', async () => {
    for (const url of files.slice(0, -1)) {
      const res = await get(live.server, url);
      assert.equal(res.status, 200, `${url} → ${res.status}`);
    }
    const part = files.at(-2);
    const range = await get(live.server, part, { range: 'bytes=0-99' });
    assert.equal(range.status, 206, 'part files answer range requests');
    assert.equal((await range.arrayBuffer()).byteLength, 100);
    const student = (await mintLink(live.server, live.cls.id, 'student', { name: 'Xiao Ming' })).token;
    const auth = { authorization: `Bearer ${student}` };
    assert.equal((await get(live.server, `/api/replay/${lesson.id}`, auth)).status, 200, 'student token: manifest');
    assert.equal((await get(live.server, withoutQuery(manifest.tracks[0].playlist), auth)).status, 200, 'student token: playlist');
    const list = await (await get(live.server, `/api/replay?class=${live.cls.id}`, auth)).json();
    assert.equal(list.lessons[0].id, lesson.id, 'student token: the lessons of the class');
    const link = await adminCall(live.server, 'POST', `/api/lessons/${lesson.id}/links`, { ttl_secs: 600 }, 201);
    const q = new URL(link.url).search;
    assert.equal((await get(live.server, `/api/replay/${lesson.id}${q.replace(/^\?lesson=[^&]+&/, '?')}`)).status, 200, 'signed page link opens the manifest');
  });

  test('a student token cannot join the live class', async () => {
    const student = (await mintLink(live.server, live.cls.id, 'student')).token;
    const c = await openWs(live.server);
    c.send({ type: 'join', v: 1, token: student });
    const closed = await c.closed;
    assert.equal(closed.code, 4403, `join refused: ${closed.reason}`);
    const whip = await fetch(`${live.server.url}/whip/${live.cls.id}`, {
      method: 'POST', headers: { authorization: `Bearer ${student}`, 'content-type': 'application/sdp' }, body: 'v=0\r\n',
    });
    assert.equal(whip.status, 403, 'WHIP refused');
  });
});
