// Simulcast from the teacher console: the camera goes out as three layers (q/h/f), the
// server receives all three, and a classroom on a clean link climbs to the top layer
// (1280x720) on a keyframe, without a gap the player would freeze on.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startLiveClass } from './lib/class.js';
import { pageStats, waitFor } from './lib/browser.js';
import { sumMetric } from './lib/metrics.js';

const cameraStats = async (page) => (await pageStats(page))['main/camera'] ?? {};

describe('simulcast teacher camera', () => {
  let live;
  before(async () => {
    live = await startLiveClass('simulcast', { classrooms: 1 });
  });
  after(async () => live?.close());

  test('the teacher sends three layers', async () => {
    const layers = await waitFor(live.teacher.page, async () => {
      const rids = (await window.__classcast.publishLayers()).filter((l) => l.framesEncoded > 0).map((l) => `${l.rid}:${l.width}x${l.height}`);
      return rids.length >= 3 ? rids.sort() : null;
    }, undefined, 20_000, 'three encoded layers');
    console.log(`# teacher layers: ${layers.join(' ')}`);
  });

  test('a classroom on a clean link ends on the top layer, without freezes', async () => {
    const page = live.rooms[0].page;
    const t0 = Date.now();
    const timeline = [];
    let last = null;
    while (Date.now() - t0 < 20_000) {
      const s = await cameraStats(page);
      if (s.frameWidth && s.frameWidth !== last) {
        timeline.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${s.frameWidth}x${s.frameHeight}`);
        last = s.frameWidth;
      }
      if (s.frameWidth >= 1280) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    console.log(`# classroom layer timeline: ${timeline.join(', ')}`);
    assert.equal(last, 1280, `top layer reached: ${timeline.join(', ')}`);
    const s = await cameraStats(page);
    console.log(`# freezes: ${s.freezeCount} (${s.totalFreezesDuration}s), fps ${s.framesPerSecond}`);
    const { per } = await sumMetric(live.server, 'classcast_dropped_packets_total', 'reason');
    assert.ok((per.layer_not_selected ?? 0) > 0, `the server filters the other layers: ${JSON.stringify(per)}`);
  });

  test('teacher audio reaches the classroom with RED redundancy, and plays', async () => {
    const page = live.rooms[0].page;
    const mic = async () => (await pageStats(page))['main/mic'] ?? {};
    const a = await mic();
    await new Promise((r) => setTimeout(r, 2000));
    const b = await mic();
    console.log(`# classroom audio codec ${b.codec}, samples +${b.totalSamplesReceived - a.totalSamplesReceived}, concealed +${b.concealedSamples - a.concealedSamples}`);
    const sdp = await page.evaluate(() => window.__classcast.subscribeSdp());
    const audio = sdp.split('m=').find((m) => m.startsWith('audio')) ?? '';
    assert.match(audio, /a=rtpmap:\d+ red\/48000\/2/, 'the classroom accepted RED for the teacher audio');
    assert.ok(b.concealedSamples - a.concealedSamples < 4800, 'under 5 % concealed on a clean link');
    assert.ok(b.totalSamplesReceived - a.totalSamplesReceived > 48_000, 'about 2 s of audio decoded');
  });

  test('the layer nobody receives is paused at the teacher; the others keep going', async () => {
    const t0 = Date.now();
    const layers = await waitFor(live.teacher.page, async () => {
      const l = await window.__classcast.publishLayers();
      return l.some((x) => x.rid === 'h' && x.active === false) ? l : null;
    }, undefined, 20_000, 'layer h paused');
    console.log(`# h paused ${Date.now() - t0} ms after the classroom reached the top layer: ${JSON.stringify(layers.map((l) => [l.rid, l.active]))}`);
    assert.deepEqual(layers.filter((l) => l.active).map((l) => l.rid).sort(), ['f', 'q']);
    const before = (await cameraStats(live.rooms[0].page)).framesDecoded;
    await new Promise((r) => setTimeout(r, 2000));
    const s = await cameraStats(live.rooms[0].page);
    assert.ok(s.framesDecoded > before + 20 && s.frameWidth === 1280, `the classroom keeps the top layer: ${JSON.stringify(s)}`);
  });
});
