// The teacher's page reloads mid-class. Every classroom must see main's camera resume within
// 3 s of the teacher publishing again, on the same subscriber track (same trackId, same
// SSRC): the server rewrites the new publication into the old stream.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pageStats, pageTracks, waitFor, waitJoined } from './lib/browser.js';
import { startLiveClass } from './lib/class.js';
import { counter, expectFlowing, timeUntilRises } from './lib/media.js';

const RESUME_LIMIT_MS = 3000;

/** True once the page's publish connection reports camera packets sent. */
const isPublishing = async () => (await window.__classcast.publishStats())?.camera?.packetsSent > 0;

async function cameraIdentity(page) {
  const track = (await pageTracks(page)).find((t) => t.key === 'main/camera');
  const stats = (await pageStats(page))['main/camera'];
  return { trackId: track?.trackId, ssrc: stats?.ssrc };
}

describe('teacher page reload', () => {
  let live;
  before(async () => {
    live = await startLiveClass('reload', { classrooms: 2 });
  });
  after(async () => {
    await live?.close();
  });

  test("classrooms resume main/camera within 3 s on the same track and SSRC", async (t) => {
    const teacher = live.teacher.page;
    const before = {};
    for (const r of live.rooms) {
      await expectFlowing(counter(r.page, 'main/camera', 'framesDecoded'), `${r.name} main/camera framesDecoded`);
      before[r.id] = await cameraIdentity(r.page);
      assert.ok(before[r.id].trackId, `${r.name}: tracks() has main/camera with a trackId`);
      assert.ok(before[r.id].ssrc, `${r.name}: stats() has main/camera with an ssrc`);
    }
    assert.ok(await teacher.evaluate(isPublishing), 'teacher publishes before the reload');

    const reloadAt = Date.now();
    await teacher.reload({ waitUntil: 'domcontentloaded' });
    await waitJoined(teacher);
    await waitFor(teacher, isPublishing, undefined, 15000, 'teacher publishing again after reload');
    const publishingAt = Date.now();
    t.diagnostic(`teacher back publishing ${publishingAt - reloadAt} ms after reload()`);

    const resumed = await Promise.all(
      live.rooms.map(async (r) => {
        const get = counter(r.page, 'main/camera', 'framesDecoded');
        const from = (await get()) ?? 0;
        await timeUntilRises(get, from, `${r.name} main/camera framesDecoded`, { timeoutMs: 15000 });
        const total = Date.now() - publishingAt;
        t.diagnostic(`${r.name}: main/camera resumed ${total} ms after the teacher was publishing again`);
        return { r, ms: total };
      }),
    );
    for (const { r, ms } of resumed) {
      assert.ok(ms <= RESUME_LIMIT_MS, `${r.name}: main/camera resumed after ${ms} ms (limit ${RESUME_LIMIT_MS} ms)`);
    }

    for (const r of live.rooms) {
      await expectFlowing(counter(r.page, 'main/camera', 'framesDecoded'), `${r.name} main/camera framesDecoded after reload`);
      const now = await cameraIdentity(r.page);
      assert.equal(now.trackId, before[r.id].trackId, `${r.name}: main/camera trackId unchanged by the reload`);
      assert.equal(now.ssrc, before[r.id].ssrc, `${r.name}: main/camera ssrc unchanged by the reload`);
    }
  });
});
