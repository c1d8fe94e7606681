// A school day run by the timetable, with nobody touching a keyboard: two kiosk screens
// (the main classroom's teacher console and a listening classroom's TV) are opened once on
// their device links; the first period opens its class by itself, both screens join, the
// classroom decodes the teacher, the lesson records. The server is killed (-9) and restarted
// mid-period: the class is open again within 5 s and the classroom screen rejoins by itself.
// The class closes at the period's end and the screens go back to showing the next class.
// The timetable's clock is then stepped (a clock change): the second period opens, and the
// classroom's device link is revoked mid-class: its screen is refused at once and says why.
// The catalog then holds the lessons with their subjects and teachers.
//
// The server runs in UTC with its timetable clock shifted (--clock-offset-ms) so that the
// first period starts ~10 s after the server does; periods are whole minutes.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { adminCall } from './lib/admin.js';
import { launchBrowser } from './lib/browser.js';
import { counter, expectFlowing } from './lib/media.js';
import { startServer } from './lib/server.js';
import { poll } from './lib/wait.js';

process.env.TZ = 'UTC';
const DAY_MS = 86_400_000;
const LEAD_MS = 10_000;

/** Unix ms of `hh:mm` (UTC) on the day of `dayMs`. */
const at = (dayMs, hh, mm, ss = 0) => dayMs + ((hh * 60 + mm) * 60 + ss) * 1000;
const isoDate = (ms) => new Date(ms).toISOString().slice(0, 10);
const isoWeekday = (ms) => ((new Date(ms).getUTCDay() + 6) % 7) + 1;

async function device(server, token) {
  const res = await fetch(`${server.url}/api/device`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

/** The class page inside a kiosk screen (a frame whose URL names the page), once it is there. */
function classFrame(page, name, timeoutMs = 20_000) {
  return poll(async () => {
    const frame = page.frames().find((f) => f.url().includes(`/${name}`) && !f.isDetached());
    if (!frame) return null;
    const joined = await frame.evaluate(() => window.__classcast?.joined === true).catch(() => false);
    return joined ? frame : null;
  }, { timeoutMs, what: `${name} joined inside the kiosk screen` });
}

const kioskState = (page) => page.evaluate(() => ({ ...window.__kiosk, text: document.body.innerText }));

function waitKiosk(page, fn, what, timeoutMs = 15_000) {
  return poll(async () => {
    const k = await kioskState(page);
    return fn(k) ? k : null;
  }, { timeoutMs, intervalMs: 100, what });
}

describe('a school day run by the timetable', () => {
  let server;
  let teacherPc;
  let classroomPc;
  const day = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  const district = {};

  before(async () => {
    const offset = at(day, 8, 59, 60 - LEAD_MS / 1000) - Date.now();
    const args = ['--clock-offset-ms', String(offset), '--fault-injection', 'true', '--auto-export', 'false'];
    server = await startServer('schedule', { args });
    const call = (path, body) => adminCall(server, 'POST', path, body, 201);
    const school = await call('/api/schools', { name: '城关中心小学' });
    district.main = await call('/api/rooms', { school_id: school.id, name: '主讲教室 1', kind: 'main' });
    district.listening = await call('/api/rooms', { school_id: school.id, name: '龙泉教学点', kind: 'listening' });
    const term = await call('/api/terms', { name: '秋季学期', start: isoDate(day - 7 * DAY_MS), end: isoDate(day + 60 * DAY_MS), holidays: [{ date: isoDate(day + 7 * DAY_MS), name: '运动会' }] });
    const period = (start, end, subject, teacher) => call('/api/timetable', {
      term_id: term.id, weekday: isoWeekday(day), start, end, subject, teacher,
      main_classroom_id: district.main.id, listening_classroom_ids: [district.listening.id],
    });
    district.maths = await period('09:00', '09:01', '数学', '王老师');
    district.chinese = await period('09:03', '09:04', '语文', '李老师');
    teacherPc = await launchBrowser('main-room', 'schedule');
    classroomPc = await launchBrowser('listening-room', 'schedule');
  });

  after(async () => {
    await teacherPc?.close();
    await classroomPc?.close();
    await server?.stop();
  });

  test('periods open and close by themselves; a restart mid-period and a revoked screen are handled', async () => {
    const screens = {
      teacher: await teacherPc.open(district.main.device_url.replace(/^http:\/\/[^/]+/, server.url)),
      classroom: await classroomPc.open(district.listening.device_url.replace(/^http:\/\/[^/]+/, server.url)),
    };
    const idle = await waitKiosk(screens.classroom, (k) => k.state === 'idle' && k.next?.subject === '数学', 'the board shows the next class');
    assert.match(idle.text, /龙泉教学点/);
    assert.match(idle.text, /数学/);

    // 1. The period starts: the class opens, both screens join, the classroom decodes, recording runs.
    const opened = await poll(async () => (await device(server, district.listening.device_token)).body.now, { timeoutMs: LEAD_MS + 5_000, what: 'the class in session' });
    const lateMs = (await device(server, district.listening.device_token)).body.server_time_ms - opened.opens_at_ms;
    console.log(`# period 1 opened: ${opened.subject} / ${opened.teacher}, seen ${lateMs} ms after its start`);
    assert.deepEqual([opened.subject, opened.teacher], ['数学', '王老师']);
    await classFrame(screens.teacher, 'teacher.html');
    const tv = await classFrame(screens.classroom, 'classroom.html');
    const decoded = await expectFlowing(counter(tv, 'main/camera', 'framesDecoded'), 'classroom screen decodes the teacher camera');
    const recording = await poll(async () => (await adminCall(server, 'GET', `/api/lessons?class=${opened.class_id}`)).lessons.find((l) => l.state === 'recording'), { what: 'a lesson recording' });
    assert.deepEqual([recording.title, recording.teacher], ['数学', '王老师']);
    // Some lesson on disk before the power cut: 100 more frames decoded (about 5 s of camera).
    await poll(async () => (await counter(tv, 'main/camera', 'framesDecoded')()) >= decoded + 100, { timeoutMs: 20_000, what: '100 more frames before the kill' });

    // 2. Power cut mid-period: back within 5 s, and the screen rejoins by itself.
    await server.kill9();
    const restartAt = Date.now();
    await server.start();
    const healthyMs = Date.now() - restartAt;
    await poll(async () => (await (await fetch(`${server.url}/healthz`)).json()).classes_live >= 1, { timeoutMs: 5_000, intervalMs: 50, what: 'the class open again' });
    const reopenedMs = Date.now() - restartAt;
    const tvAgain = await classFrame(screens.classroom, 'classroom.html', 30_000);
    await expectFlowing(counter(tvAgain, 'main/camera', 'framesDecoded'), 'classroom screen decodes again after the restart', { startTimeoutMs: 20_000 });
    console.log(`# restart: healthy after ${healthyMs} ms, class open after ${reopenedMs} ms, screen decoding again after ${Date.now() - restartAt} ms`);
    assert.ok(reopenedMs - healthyMs <= 5_000);

    // 3. The period ends: the class closes on time and the screens show the next class.
    const back = await waitKiosk(screens.classroom, (k) => k.state === 'idle' && !k.now && k.next?.subject === '语文', 'the board after period 1', 90_000);
    const closedLateMs = (await device(server, district.listening.device_token)).body.server_time_ms - opened.closes_at_ms;
    console.log(`# period 1 closed; the board was back ${closedLateMs} ms after the period's end`);
    assert.ok(closedLateMs < 5_000, `closed ${closedLateMs} ms late`);
    assert.equal(back.now, null);
    await waitKiosk(screens.teacher, (k) => k.state === 'idle', 'the teacher screen after period 1');

    // 4. A clock change: step to just before period 2; it opens, and the screens join.
    await adminCall(server, 'POST', '/api/debug/clock', { now_ms: at(day, 9, 2, 57) });
    const second = await poll(async () => (await device(server, district.listening.device_token)).body.now, { timeoutMs: 10_000, what: 'period 2 in session' });
    assert.deepEqual([second.subject, second.teacher], ['语文', '李老师']);
    const tv2 = await classFrame(screens.classroom, 'classroom.html');
    await expectFlowing(counter(tv2, 'main/camera', 'framesDecoded'), 'classroom screen decodes in period 2');

    // 5. The classroom's device link is revoked mid-class: refused at once, and the screen says why.
    const revokedAt = Date.now();
    await adminCall(server, 'POST', `/api/rooms/${district.listening.id}/revoke`);
    const refused = await device(server, district.listening.device_token);
    assert.equal(refused.status, 401);
    assert.match(refused.body.message, /revoked/);
    const ws = await fetch(`${server.url}/api/device`, { headers: { authorization: `Bearer ${district.listening.device_token}` } });
    assert.equal(ws.status, 401);
    const shown = await waitKiosk(screens.classroom, (k) => k.state === 'revoked', 'the revoked screen');
    console.log(`# revoked: API 401 at once; the screen showed why after ${Date.now() - revokedAt} ms`);
    assert.match(shown.text, /撤销|revoked/);
    assert.equal(screens.classroom.frames().filter((f) => f.url().includes('classroom.html')).length, 0, 'the class frame is gone');

    // 6. Step to the end of period 2; the catalog holds both subjects with their teachers.
    await adminCall(server, 'POST', '/api/debug/clock', { now_ms: at(day, 9, 3, 58) });
    await waitKiosk(screens.teacher, (k) => k.state === 'idle', 'the teacher screen after period 2');
    const lessons = await poll(async () => {
      const { lessons: all } = await adminCall(server, 'GET', '/api/lessons');
      return all.some((l) => l.state === 'recording') ? null : all;
    }, { timeoutMs: 20_000, what: 'every lesson finished' });
    const summary = lessons.map((l) => `${l.title}/${l.teacher}/${l.state}${l.ended_at_ms ? `/${l.ended_at_ms - l.started_at_ms}ms` : ""}`);
    console.log(`# catalog: ${summary.join(', ')}`);
    const finished = (title) => lessons.filter((l) => l.title === title && l.state === 'finished');
    assert.equal(finished('数学').length, 1, 'the maths lesson after the restart finished');
    assert.equal(finished('语文').length, 1);
    assert.equal(finished('语文')[0].teacher, '李老师');
    assert.equal(lessons.filter((l) => l.title === '数学' && l.state === 'interrupted').length, 1, 'the lesson cut by the kill is kept, marked interrupted');
  });
});
