// Bridges (issue 6): recording-classroom hardware brought into a class. A GStreamer RTSP
// server (gst-rtsp-server), an SRT encoder (srtsink) and an RTMP encoder (rtmp2sink) each
// send H.264 + AAC on 127.0.0.1; bridges publish them as main/board, main/camera and
// main/screen; a Chromium classroom decodes the video and hears the audio. Measured: the
// path each bridge took (H.264 passes through: the source's keyframe interval and size
// reach the browser), reconnection after a 10 s outage, an H.265 source transcoded (with
// the server's CPU from /proc), a wrong RTMP key refused, and the recording of a bridged track.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { adminCall, pageUrl, setupClass } from './lib/admin.js';
import { launchBrowser, pageTracks, waitJoined } from './lib/browser.js';
import { E2E_DIR, freeTcpPort, freeUdpPort, outPath, startServer } from './lib/server.js';
import { poll, sleep } from './lib/wait.js';

const RTSP_SERVER = path.join(E2E_DIR, 'tools/rtsp_server.py');
const SOURCE_GOP = 30; // keyframe interval of every H.264 test source, in frames
const children = new Set();

/** Start a helper process; its output goes to out/bridges.sources.log. */
function run(cmd, args) {
  const log = fs.openSync(outPath('bridges.sources.log'), 'a');
  fs.writeSync(log, `\n=== ${new Date().toISOString()} ${cmd} ${args.join(' ')}\n`);
  const child = spawn(cmd, args, { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

const rtspServer = (port, codec, creds) => run('/usr/bin/python3', [RTSP_SERVER, String(port), codec, ...(creds ? [creds] : [])]);

const H264 = `x264enc tune=zerolatency speed-preset=ultrafast key-int-max=${SOURCE_GOP} bitrate=800 option-string=scenecut=0 ! video/x-h264,profile=constrained-baseline ! h264parse`;
const VIDEO_IN = 'videotestsrc is-live=true pattern=smpte ! video/x-raw,width=640,height=360,framerate=30/1,format=I420';
const AAC = 'audiotestsrc is-live=true ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 ! avenc_aac bitrate=96000 ! aacparse';

const srtPush = (port) => run('gst-launch-1.0', ['-q', ...`${VIDEO_IN} ! ${H264} ! mpegtsmux name=m alignment=7 ! srtsink uri=srt://127.0.0.1:${port}?mode=caller ${AAC} ! m.`.split(' ')]);
const rtmpPush = (port, key) => run('gst-launch-1.0', ['-q', ...`${VIDEO_IN} ! ${H264} ! flvmux name=m streamable=true ! rtmp2sink location=rtmp://127.0.0.1:${port}/live/${key} ${AAC} ! m.`.split(' ')]);

/** Record every RTCPeerConnection of a page (for raw getStats). */
const RECORD_PCS = () => {
  const Orig = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = function (...a) {
    const pc = new Orig(...a);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Orig.prototype;
};

/** Inbound stats of the page's track `key`: frames, keyframes, size, audio samples. */
async function inbound(page, key) {
  const tracks = await pageTracks(page);
  const t = tracks.find((x) => x.key === key);
  if (!t) return null;
  return page.evaluate(async (trackId) => {
    for (const pc of window.__pcs) {
      const stats = await pc.getStats();
      for (const s of stats.values()) {
        if (s.type === 'inbound-rtp' && s.trackIdentifier === trackId) {
          return { framesDecoded: s.framesDecoded ?? 0, keyFramesDecoded: s.keyFramesDecoded ?? 0, frameWidth: s.frameWidth, frameHeight: s.frameHeight, totalSamplesReceived: s.totalSamplesReceived ?? 0, concealedSamples: s.concealedSamples ?? 0 };
        }
      }
    }
    return null;
  }, t.trackId);
}

/** Wait until `key` has decoded `n` more frames (video) or samples (audio) than now. */
async function flowing(page, key, n, timeoutMs = 20_000) {
  const field = key.endsWith('/mic') ? 'totalSamplesReceived' : 'framesDecoded';
  const start = (await inbound(page, key))?.[field] ?? 0;
  return poll(async () => {
    const s = await inbound(page, key);
    return s && s[field] >= start + n && s;
  }, { timeoutMs, intervalMs: 100, what: `${key} ${field} +${n}` });
}

/** Whether a UDP socket is bound to `port` (from /proc/net/udp and udp6). */
function udpBound(port) {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const local = (line) => line.trim().split(/\s+/)[1] ?? '';
  return ['/proc/net/udp', '/proc/net/udp6'].some((f) => fs.readFileSync(f, 'utf8').split('\n').some((l) => local(l).endsWith(suffix)));
}

const bridge = (server, id) => adminCall(server, 'GET', `/api/bridges/${id}`);

async function liveBridge(server, id) {
  return poll(async () => {
    const b = await bridge(server, id);
    return b.status?.state === 'live' && b.status.video_path && b;
  }, { timeoutMs: 20_000, what: `bridge ${id} live` });
}

/** CPU seconds (user + system) of a process so far, from /proc. */
function cpuSecs(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function cpuShare(pid, ms) {
  const c0 = cpuSecs(pid);
  const t0 = Date.now();
  await sleep(ms);
  return (cpuSecs(pid) - c0) / ((Date.now() - t0) / 1000);
}

/** The keyframe interval seen by the browser over a window: decoded frames per keyframe. */
async function gopSeen(page, key, ms) {
  const a = await inbound(page, key);
  await sleep(ms);
  const b = await inbound(page, key);
  const frames = b.framesDecoded - a.framesDecoded;
  const keys = b.keyFramesDecoded - a.keyFramesDecoded;
  return { frames, keys, gop: frames / Math.max(keys, 1), width: b.frameWidth, height: b.frameHeight };
}

/** Whether a window of decoded frames holds the keyframes of a `gop`-frame interval (a window can hold one more at its edges). */
const keyframesOf = (seen, gop) => Math.abs(seen.keys - seen.frames / gop) <= 1;

describe('bridges', () => {
  let server;
  let cls;
  let browser;
  let page;
  let rtspPort;
  let rtmpPort;
  let rtsp;
  before(async () => {
    rtmpPort = await freeTcpPort();
    server = await startServer('bridges', { args: ['--rtmp-listen', `127.0.0.1:${rtmpPort}`, '--empty-grace-secs', '1'] });
    cls = await setupClass(server, { classrooms: 1 });
    rtspPort = await freeTcpPort();
    rtsp = rtspServer(rtspPort, 'h264', 'cam:secret');
    browser = await launchBrowser('classroom1', 'bridges');
    await browser.context.addInitScript(RECORD_PCS);
    page = await browser.open(pageUrl(server, 'classroom.html', cls.classrooms[0].token, { autostart: '1' }));
    await waitJoined(page);
  });
  after(async () => {
    for (const c of [...children]) await stop(c);
    await browser?.close();
    await server?.stop();
  });

  let rtspBridge;
  test('RTSP (UDP, credentials in the URL): H.264 passes through as main/board, AAC is heard', async (t) => {
    const url = `rtsp://cam:secret@127.0.0.1:${rtspPort}/test`;
    rtspBridge = await adminCall(server, 'POST', '/api/bridges', { class_id: cls.id, role: 'main', source: 'board', kind: 'rtsp', url, transport: 'udp', name: '录播教室 板书' }, 201);
    const b = await liveBridge(server, rtspBridge.id);
    await flowing(page, 'main/board', 60);
    await flowing(page, 'main/mic', 48_000);
    const seen = await gopSeen(page, 'main/board', 6000);
    const cpu = await cpuShare(server.child.pid, 5000);
    const { status } = await bridge(server, rtspBridge.id);
    t.diagnostic(`path video=${status.video_path} audio=${status.audio_path}; in: ${status.video_in}, ${status.audio_in}; bitrate ${status.bitrate_bps} bps, ${status.packets_sent} packets, dropped ${status.dropped_not_connected}+${status.dropped_queue_full}; browser: ${seen.frames} frames, ${seen.keys} keyframes (1 per ${seen.gop.toFixed(1)}), ${seen.width}x${seen.height}; server CPU ${(cpu * 100).toFixed(1)}% of a core`);
    assert.equal(status.video_path, 'passthrough');
    assert.equal(status.audio_path, 'transcode');
    assert.match(status.video_in, /x-h264/);
    assert.equal(status.dropped_queue_full, 0);
    assert.deepEqual([seen.width, seen.height], [640, 360], 'the source size reaches the browser');
    assert.ok(keyframesOf(seen, SOURCE_GOP), `the source's keyframe interval (${SOURCE_GOP}) reaches the browser: ${seen.keys} keyframes in ${seen.frames} frames`);
  });

  test('admin page: the bridges tab shows the live bridge (zh-CN), a bad URL is refused next to its field; no credentials is 401', async (t) => {
    assert.equal((await fetch(`${server.url}/api/bridges`)).status, 401);
    const admin = await launchBrowser('admin', 'bridges');
    try {
      const p = await admin.open(`${server.url}/admin.html?lang=zh-CN`);
      await p.setViewportSize({ width: 1400, height: 900 });
      await p.click('#btn-use-key');
      await p.fill('#admin-key', server.adminKey);
      await p.click('#key-form button[type=submit]');
      await p.click('#tab-bridges');
      const section = p.locator('#section-bridges');
      const live = section.locator(`tr[data-id="${rtspBridge.id}"]`);
      await poll(async () => (await live.textContent().catch(() => '')).includes('直播中'), { timeoutMs: 10_000, what: 'the row says live in Chinese' });
      const rowText = await live.textContent();
      assert.match(rowText, /直接转发/);
      assert.ok(!rowText.includes('secret') && rowText.includes('cam:***@'), 'the password is not shown');
      await section.locator('select[name=kind]').selectOption('srt');
      await section.locator('input[name=url]').fill('srt://127.0.0.1');
      await section.locator('#bridge-form button[type=submit]').click();
      const err = section.locator('[data-field="url"] .field-error');
      await err.waitFor({ state: 'visible', timeout: 5000 });
      const text = await err.textContent();
      t.diagnostic(`row: ${rowText.replace(/\s+/g, ' ').slice(0, 200)}; url error: ${text}`);
      assert.match(text, /srt:\/\/host:port/);
      assert.equal((await adminCall(server, 'GET', '/api/bridges')).length, 1, 'nothing stored');
    } finally {
      await admin.close();
    }
  });

  test('the source stops for 10 s: the class shows it reconnecting, then decodes again within 5 s of its return', async (t) => {
    await stop(rtsp);
    await poll(async () => (await bridge(server, rtspBridge.id)).status.state === 'reconnecting', { timeoutMs: 10_000, what: 'reconnecting' });
    const down = await bridge(server, rtspBridge.id);
    const live = await page.evaluate(() => window.__classcast.tracks().map((x) => x.key));
    await sleep(10_000);
    const before = (await inbound(page, 'main/board')).framesDecoded;
    rtsp = rtspServer(rtspPort, 'h264', 'cam:secret');
    const back = Date.now();
    await poll(async () => (await inbound(page, 'main/board')).framesDecoded > before + 5, { timeoutMs: 20_000, intervalMs: 50, what: 'decoding again' });
    const ms = Date.now() - back;
    t.diagnostic(`while down: state=${down.status.state}, last_error=${down.status.last_error}, retry_in_ms=${down.status.retry_in_ms}; tracks ${live.join(',')}; decoding again ${ms} ms after the source came back`);
    assert.ok(ms <= 5000, `decoding again ${ms} ms after the source returned`);
  });

  test('SRT listener: an srtsink encoder pushes H.264 + AAC, passed through as main/camera', async (t) => {
    const port = await freeUdpPort();
    const b0 = await adminCall(server, 'POST', '/api/bridges', { class_id: cls.id, role: 'main', source: 'camera', kind: 'srt', url: `srt://127.0.0.1:${port}?mode=listener`, audio: false }, 201);
    await poll(() => udpBound(port), { intervalMs: 20, what: `the SRT listener bound on ${port}` });
    const encoder = srtPush(port);
    const b = await liveBridge(server, b0.id);
    await flowing(page, 'main/camera', 60);
    const seen = await gopSeen(page, 'main/camera', 6000);
    t.diagnostic(`path video=${b.status.video_path}; in: ${b.status.video_in}; browser 1 keyframe per ${seen.gop.toFixed(1)} frames, ${seen.width}x${seen.height}`);
    assert.equal(b.status.video_path, 'passthrough');
    assert.ok(keyframesOf(seen, SOURCE_GOP), `${seen.keys} keyframes in ${seen.frames} frames`);
    await adminCall(server, 'DELETE', `/api/bridges/${b0.id}`, undefined, 204);
    await stop(encoder);
  });

  test('RTMP push with a stream key as main/screen; a wrong key is refused with a logged reason', async (t) => {
    const b0 = await adminCall(server, 'POST', '/api/bridges', { class_id: cls.id, role: 'main', source: 'screen', kind: 'rtmp', audio: false }, 201);
    assert.equal(b0.publish_url, `rtmp://127.0.0.1:${rtmpPort}/live/${b0.stream_key}`);
    const wrong = rtmpPush(rtmpPort, 'not-the-key');
    await poll(async () => (await adminCall(server, 'GET', '/api/bridges/rtmp')).refused_key >= 1, { timeoutMs: 10_000, what: 'wrong key refused' });
    await stop(wrong);
    const encoder = rtmpPush(rtmpPort, b0.stream_key);
    const b = await liveBridge(server, b0.id);
    await flowing(page, 'main/screen', 60);
    const seen = await gopSeen(page, 'main/screen', 6000);
    const counters = await adminCall(server, 'GET', '/api/bridges/rtmp');
    const logged = fs.readFileSync(server.logPath, 'utf8').split('\n').find((l) => l.includes('rtmp publish refused'));
    t.diagnostic(`path video=${b.status.video_path}; browser 1 keyframe per ${seen.gop.toFixed(1)} frames; counters ${JSON.stringify(counters)}; log: ${logged?.trim()}`);
    assert.equal(b.status.video_path, 'passthrough');
    assert.equal(counters.refused_key, 1);
    assert.match(logged ?? '', /unknown stream key/);
    assert.ok(keyframesOf(seen, SOURCE_GOP), `${seen.keys} keyframes in ${seen.frames} frames`);
    await adminCall(server, 'DELETE', `/api/bridges/${b0.id}`, undefined, 204);
    await stop(encoder);
  });

  test('an H.265 source (RTSP over TCP) is transcoded to H.264 and decodes (CPU measured)', async (t) => {
    const port = await freeTcpPort();
    // The bridge retries until the RTSP server is up (backoff from 500 ms).
    const camera = rtspServer(port, 'h265');
    const b0 = await adminCall(server, 'POST', '/api/bridges', { class_id: cls.id, role: 'main', source: 'camera', kind: 'rtsp', url: `rtsp://127.0.0.1:${port}/test`, transport: 'tcp', audio: false }, 201);
    const b = await liveBridge(server, b0.id);
    await flowing(page, 'main/camera', 60, 30_000);
    const cpu = await cpuShare(server.child.pid, 5000);
    const seen = await gopSeen(page, 'main/camera', 6000);
    t.diagnostic(`path video=${b.status.video_path}; in: ${b.status.video_in}; browser ${seen.width}x${seen.height}, 1 keyframe per ${seen.gop.toFixed(1)}; server CPU during the transcode (plus the RTSP passthrough bridge) ${(cpu * 100).toFixed(1)}% of a core`);
    assert.equal(b.status.video_path, 'transcode');
    assert.match(b.status.video_in, /x-h265/);
    assert.ok(seen.frames > 60, 'frames decoded');
    assert.ok(keyframesOf(seen, 60), `the transcoder's keyframe interval (60): ${seen.keys} keyframes in ${seen.frames} frames`);
    await adminCall(server, 'DELETE', `/api/bridges/${b0.id}`, undefined, 204);
    await stop(camera);
  });

  test('a bad URL gives a clear error and leaves the class alone', async (t) => {
    const port = await freeTcpPort();
    const b0 = await adminCall(server, 'POST', '/api/bridges', { class_id: cls.id, role: 'main', source: 'camera', kind: 'rtsp', url: `rtsp://127.0.0.1:${port}/nothing`, audio: false }, 201);
    const b = await poll(async () => {
      const x = await bridge(server, b0.id);
      return x.status.last_error && x;
    }, { timeoutMs: 15_000, what: 'an error' });
    const bad = await adminCall(server, 'POST', '/api/bridges', { class_id: cls.id, role: 'main', source: 'camera', kind: 'srt', url: 'srt://127.0.0.1' }, 422);
    t.diagnostic(`state=${b.status.state}: ${b.status.last_error}; 422: ${JSON.stringify(bad)}`);
    assert.equal(b.status.state, 'reconnecting');
    assert.ok(server.alive());
    await flowing(page, 'main/board', 30);
    await adminCall(server, 'DELETE', `/api/bridges/${b0.id}`, undefined, 204);
  });

  test('the bridged board and mic are recorded like any other track', async (t) => {
    await adminCall(server, 'DELETE', `/api/bridges/${rtspBridge.id}`, undefined, 204);
    await browser.close();
    browser = null;
    const lesson = await poll(async () => {
      const { lessons } = await adminCall(server, 'GET', `/api/lessons?class=${cls.id}`);
      return lessons[0]?.state === 'finished' && lessons[0];
    }, { timeoutMs: 30_000, intervalMs: 500, what: 'the lesson is finished' });
    const { tracks } = await adminCall(server, 'GET', `/api/lessons/${lesson.id}`);
    const board = tracks.find((x) => x.key === 'main/board');
    t.diagnostic(`recorded: ${tracks.map((x) => `${x.key} ${x.codec} ${x.duration_ms} ms`).join(', ')}`);
    assert.ok(board, 'main/board recorded');
    assert.equal(board.codec, 'h264');
    assert.ok(board.duration_ms > 10_000, `board recorded ${board.duration_ms} ms`);
    const mic = tracks.find((x) => x.key === 'main/mic');
    assert.ok(mic, 'main/mic recorded');
    // The source was down for 10 s in an earlier test: the mic goes on in a new part.
    assert.ok(mic.duration_ms > 10_000, `mic recorded ${mic.duration_ms} ms in ${mic.parts} part(s)`);
  });
});
