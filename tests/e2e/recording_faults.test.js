// The recorder under stress, with a live class running in Chromium:
// - kill -9 of the server 20 s into a recorded class: after restart the lesson is in the
//   catalog as interrupted and at least 18 s of every track is replayable;
// - a recorder pipeline error (fault injection hook) and a full disk (a small tmpfs data
//   directory): the classroom keeps decoding without a gap, the lesson lists the fault,
//   and the alert shows in the log and in /metrics.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { adminCall } from './lib/admin.js';
import { startLiveClass } from './lib/class.js';
import { pageStats } from './lib/browser.js';
import { counter, expectFlowing } from './lib/media.js';
import { sumMetric } from './lib/metrics.js';
import { poll, sleep } from './lib/wait.js';

/** Samples a page's framesDecoded of `key` every 100 ms; reports the longest stall. */
function watchDecoding(page, key) {
  let stop = false;
  let longest = 0;
  let samples = 0;
  const loop = (async () => {
    let last = null;
    while (!stop) {
      const now = Date.now();
      const frames = (await pageStats(page).catch(() => ({})))[key]?.framesDecoded ?? 0;
      samples += 1;
      if (last === null || frames > last.frames) last = { frames, at: now };
      longest = Math.max(longest, now - last.at);
      await sleep(100);
    }
  })();
  return { stop: async () => { stop = true; await loop; return { longest, samples }; } };
}

async function lessonOf(live) {
  const { lessons } = await adminCall(live.server, 'GET', `/api/lessons?class=${live.cls.id}`);
  return lessons[0];
}

describe('recording faults', () => {
  test('kill -9 mid-class: the lesson is interrupted and 18 s of every track replays', async (t) => {
    const live = await startLiveClass('recording-kill9', { classrooms: 1 });
    try {
      const room = live.rooms[0];
      await expectFlowing(counter(room.page, 'main/board', 'framesDecoded'), 'classroom decodes main/board');
      await sleep(20_000);
      await live.server.kill9();
      await Promise.all([live.teacher.browser, room.browser].map((b) => b.close()));
      await live.server.start();
      const lesson = await lessonOf(live);
      assert.equal(lesson.state, 'interrupted', 'the lesson cut by the crash is interrupted');
      const manifest = await adminCall(live.server, 'GET', `/api/replay/${lesson.id}`);
      const keys = manifest.tracks.map((tr) => tr.key).sort();
      assert.deepEqual(keys, ['main/board', 'main/camera', 'main/mic', `${room.id}/camera`, `${room.id}/mic`].sort());
      for (const tr of manifest.tracks) {
        const res = await fetch(`${live.server.url}${tr.playlist}`);
        assert.equal(res.status, 200, `${tr.key} playlist`);
        const playlist = await res.text();
        const seconds = [...playlist.matchAll(/#EXTINF:([\d.]+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
        t.diagnostic(`${tr.key}: ${tr.start_ms}..${tr.end_ms} ms of lesson time, playlist ${seconds.toFixed(2)} s`);
        assert.ok(seconds >= 18, `${tr.key}: at least 18 s replayable (${seconds.toFixed(2)} s)`);
        assert.match(playlist, /#EXT-X-ENDLIST/, 'an interrupted lesson is a finished (VOD) playlist');
      }
    } finally {
      await live.close();
    }
  });

  test('a failing recorder pipeline restarts in a new part; the class never notices', async (t) => {
    const live = await startLiveClass('recording-fault', { classrooms: 1, server: { args: ['--fault-injection', 'true'] } });
    try {
      const room = live.rooms[0];
      await expectFlowing(counter(room.page, 'main/camera', 'framesDecoded'), 'classroom decodes main/camera');
      await sleep(3000);
      const watch = watchDecoding(room.page, 'main/camera');
      await adminCall(live.server, 'POST', '/api/debug/recorder-fault', { class_id: live.cls.id }, 202);
      const faults = await poll(async () => (await sumMetric(live.server, 'classcast_recording_faults_total')).total >= 5 &&
        (await sumMetric(live.server, 'classcast_recording_faults_total')).total, { timeoutMs: 10_000, what: 'five recorder faults in /metrics' });
      await poll(async () => (await sumMetric(live.server, 'classcast_recording_tracks')).total === 5,
        { timeoutMs: 15_000, what: 'all five tracks recording again' });
      await sleep(3000);
      const { longest, samples } = await watch.stop();
      t.diagnostic(`faults ${faults}; longest stall of main/camera at the classroom ${longest} ms over ${samples} samples`);
      assert.ok(longest < 1000, `no gap in live video (longest stall ${longest} ms)`);
      await Promise.all([live.teacher.browser, room.browser].map((b) => b.close()));
      const lesson = await poll(async () => { const l = await lessonOf(live); return l.state === 'finished' && l; },
        { timeoutMs: 20_000, what: 'the lesson finished' });
      assert.match(lesson.faults, /fault injected/, 'the lesson lists the fault');
      const { tracks } = await adminCall(live.server, 'GET', `/api/lessons/${lesson.id}`);
      for (const tr of tracks) assert.equal(tr.parts, 2, `${tr.key} continued in part 2`);
      assert.match(fs.readFileSync(live.server.logPath, 'utf8'), /recording fault/, 'the fault is in the log');
    } finally {
      await live.close();
    }
  });

  test('the teacher stops and restarts recording: one lesson, a new part per track, everyone sees it', async (t) => {
    const live = await startLiveClass('recording-switch', { classrooms: 1 });
    try {
      const room = live.rooms[0];
      const recordingOn = (page) => page.evaluate(() => window.__classcast.recording);
      await expectFlowing(counter(room.page, 'main/camera', 'framesDecoded'), 'classroom decodes main/camera');
      assert.equal(await recordingOn(room.page), true, 'the classroom shows the lesson is recorded');
      await sleep(3000);
      await live.teacher.page.evaluate(() => window.__classcast.setRecording(false));
      await poll(async () => (await recordingOn(room.page)) === false, { what: 'the classroom sees recording stop' });
      assert.equal(await room.page.locator('#rec-badge').isHidden(), true, 'the REC badge is gone');
      await poll(async () => (await sumMetric(live.server, 'classcast_recording_tracks')).total === 0, { what: 'no track recorded' });
      await sleep(2000);
      await live.teacher.page.evaluate(() => window.__classcast.setRecording(true));
      await poll(async () => (await recordingOn(room.page)) === true, { what: 'the classroom sees recording again' });
      assert.equal(await room.page.locator('#rec-badge').isVisible(), true, 'the REC badge is back');
      await sleep(3000);
      await Promise.all([live.teacher.browser, room.browser].map((b) => b.close()));
      const lesson = await poll(async () => { const l = await lessonOf(live); return l.state === 'finished' && l; },
        { timeoutMs: 20_000, what: 'the lesson finished' });
      const { lessons } = await adminCall(live.server, 'GET', `/api/lessons?class=${live.cls.id}`);
      assert.equal(lessons.length, 1, 'stopping and restarting keeps one lesson');
      const { tracks } = await adminCall(live.server, 'GET', `/api/lessons/${lesson.id}`);
      for (const tr of tracks) {
        t.diagnostic(`${tr.key}: ${tr.parts} parts, ${tr.duration_ms} ms`);
        assert.equal(tr.parts, 2, `${tr.key} has a part before and one after the pause`);
      }
    } finally {
      await live.close();
    }
  });

  test("a lone teacher's reload continues the lesson; leaving ends it at the time of leaving", async (t) => {
    const live = await startLiveClass('recording-reload', { classrooms: 0 });
    try {
      const page = live.teacher.page;
      await poll(async () => (await sumMetric(live.server, 'classcast_recording_tracks')).total === 3, { timeoutMs: 15_000, what: 'three tracks recording' });
      await sleep(2000);
      await page.reload();
      await poll(async () => (await sumMetric(live.server, 'classcast_recording_tracks')).total === 3, { timeoutMs: 15_000, what: 'recording again after the reload' });
      await sleep(2000);
      const left = Date.now();
      await live.teacher.browser.close();
      const lesson = await poll(async () => { const l = await lessonOf(live); return l.state === 'finished' && l; },
        { timeoutMs: 30_000, what: 'the lesson finished after the grace period' });
      const { lessons } = await adminCall(live.server, 'GET', `/api/lessons?class=${live.cls.id}`);
      t.diagnostic(`lessons ${lessons.length}; ended ${lesson.ended_at_ms - left} ms after the teacher left; finished ${Date.now() - left} ms after`);
      assert.equal(lessons.length, 1, 'the reload did not split the lesson');
      assert.ok(Math.abs(lesson.ended_at_ms - left) < 2000, 'the lesson ends when the class was left, not when the grace ran out');
    } finally {
      await live.close();
    }
  });

  test('a full disk pauses recording with an alert; the class goes on', async (t) => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'classcast-fulldisk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', dataDir]);
    let live;
    try {
      live = await startLiveClass('recording-fulldisk', { classrooms: 1, server: { dataDir, args: ['--recording-min-free-mb', '2'] } });
      const room = live.rooms[0];
      await expectFlowing(counter(room.page, 'main/camera', 'framesDecoded'), 'classroom decodes main/camera');
      const watch = watchDecoding(room.page, 'main/camera');
      await poll(async () => (await sumMetric(live.server, 'classcast_recording_disk_low')).total === 1,
        { timeoutMs: 90_000, intervalMs: 500, what: 'the disk-low alert in /metrics' });
      await sleep(3000);
      const { longest, samples } = await watch.stop();
      const free = execFileSync('df', ['--output=avail', '-B1', dataDir], { encoding: 'utf8' }).split('\n')[1].trim();
      t.diagnostic(`disk low with ${free} bytes free; longest stall ${longest} ms over ${samples} samples`);
      assert.ok(longest < 1000, `no gap in live video (longest stall ${longest} ms)`);
      assert.match(fs.readFileSync(live.server.logPath, 'utf8'), /disk almost full/, 'the alert is in the log');
      const lesson = await lessonOf(live);
      assert.match(lesson.faults, /disk almost full/, 'the lesson lists the fault');
      const health = await fetch(`${live.server.url}/healthz`);
      assert.equal(health.status, 200);
    } finally {
      await live?.close();
      execFileSync('umount', [dataDir]);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
