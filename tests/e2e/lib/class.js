// Bring up a running class for a test: server, teacher page publishing camera + board + mic,
// and N classroom pages publishing camera + mic, each in its own browser. `close()` tears
// everything down. Shared by the tests that need a live class.

import { setupClass, pageUrl } from './admin.js';
import { launchBrowser, waitJoined } from './browser.js';
import { startServer } from './server.js';

export const TEACHER_PARAMS = { autostart: '1', second: 'board' };
export const CLASSROOM_PARAMS = { autostart: '1' };

/**
 * Start a server and a class named `name` (log files out/<name>.*). `teacherParams` are
 * the teacher page's query parameters; `server` the options of startServer; `onPage(owner,
 * page)` is called as soon as each page is open (before it has joined).
 * Returns { server, cls, teacher: {browser, page, url}, rooms: [{id, name, token, browser, page, url}], close() }.
 */
export async function startLiveClass(name, { classrooms = 1, teacherParams = TEACHER_PARAMS, server: serverOpts, onPage = () => {} } = {}) {
  const server = await startServer(name, serverOpts);
  const live = { server, cls: null, teacher: null, rooms: [] };
  live.close = async () => {
    for (const b of [live.teacher?.browser, ...live.rooms.map((r) => r.browser)]) await b?.close();
    await server.stop();
  };
  try {
    live.cls = await setupClass(server, { classrooms });
    const tb = await launchBrowser('teacher', name);
    const turl = pageUrl(server, 'teacher.html', live.cls.main.token, teacherParams);
    live.teacher = { browser: tb, url: turl, page: await tb.open(turl) };
    onPage('main', live.teacher.page);
    await waitJoined(live.teacher.page);
    for (const [i, c] of live.cls.classrooms.entries()) {
      const b = await launchBrowser(`classroom${i + 1}`, name);
      const url = pageUrl(server, 'classroom.html', c.token, CLASSROOM_PARAMS);
      live.rooms.push({ ...c, browser: b, url, page: await b.open(url) });
      onPage(c.id, live.rooms.at(-1).page);
    }
    for (const r of live.rooms) await waitJoined(r.page);
  } catch (e) {
    await live.close();
    throw e;
  }
  return live;
}
