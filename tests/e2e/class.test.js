// A whole class in Chromium: the teacher publishes camera + board + mic, three classrooms
// publish camera + mic. Checks who receives what, call-on (the spotlight) and raised hands.

import { after, before, describe, test } from 'node:test';
import { waitFor } from './lib/browser.js';
import { startLiveClass } from './lib/class.js';
import { counter, expectFlowing, expectNotFlowing, expectStops } from './lib/media.js';

describe('class: teacher + 3 classrooms', () => {
  let live;
  before(async () => {
    live = await startLiveClass('class', { classrooms: 3 });
  });
  after(async () => {
    await live?.close();
  });

  const callOn = (id) => live.teacher.page.evaluate((id) => window.__classcast.callOn(id), id);

  test("every classroom decodes main's camera and board and receives main's mic", async () => {
    await Promise.all(
      live.rooms.flatMap((r) => [
        expectFlowing(counter(r.page, 'main/camera', 'framesDecoded'), `${r.name} main/camera framesDecoded`),
        expectFlowing(counter(r.page, 'main/board', 'framesDecoded'), `${r.name} main/board framesDecoded`),
        expectFlowing(counter(r.page, 'main/mic', 'packetsReceived'), `${r.name} main/mic packetsReceived`),
      ]),
    );
  });

  test("the teacher decodes every classroom's camera", async () => {
    const t = live.teacher.page;
    await Promise.all(
      live.rooms.map((r) => expectFlowing(counter(t, `${r.id}/camera`, 'framesDecoded'), `teacher ${r.id}/camera framesDecoded`)),
    );
  });

  test('calling on classroom 2 puts it in the spotlight of classrooms 1 and 3 only', async () => {
    const [r1, r2, r3] = live.rooms;
    await callOn(r2.id);
    await Promise.all(
      [r1, r3].flatMap((r) => [
        expectFlowing(counter(r.page, 'spotlight/camera', 'framesDecoded'), `${r.name} spotlight/camera framesDecoded`, { startTimeoutMs: 10000 }),
        expectFlowing(counter(r.page, 'spotlight/mic', 'packetsReceived'), `${r.name} spotlight/mic packetsReceived`, { startTimeoutMs: 10000 }),
      ]),
    );
    // Classroom 2 never receives its own media back.
    await Promise.all([
      expectNotFlowing(counter(r2.page, 'spotlight/camera', 'framesDecoded'), `${r2.name} (called on) spotlight/camera framesDecoded`),
      expectNotFlowing(counter(r2.page, 'spotlight/mic', 'packetsReceived'), `${r2.name} (called on) spotlight/mic packetsReceived`),
    ]);
  });

  test('ending the call-on stops the spotlight', async () => {
    const [r1, , r3] = live.rooms;
    await callOn(null);
    await Promise.all(
      [r1, r3].map((r) => expectStops(counter(r.page, 'spotlight/camera', 'framesDecoded'), `${r.name} spotlight/camera framesDecoded`)),
    );
  });

  test("classroom 1's raised hand shows on the teacher's page, and goes down again", async () => {
    const r1 = live.rooms[0];
    const handIs = ({ id, up }) => {
      const h = window.__classcast.hands;
      const isUp = Array.isArray(h) ? h.some((x) => x === id || x?.id === id) : Boolean(h?.[id]);
      return isUp === up;
    };
    await r1.page.evaluate(() => window.__classcast.raiseHand(true));
    await waitFor(live.teacher.page, handIs, { id: r1.id, up: true }, 5000, `teacher sees ${r1.id}'s hand up`);
    await r1.page.evaluate(() => window.__classcast.raiseHand(false));
    await waitFor(live.teacher.page, handIs, { id: r1.id, up: false }, 5000, `teacher sees ${r1.id}'s hand down`);
  });
});
