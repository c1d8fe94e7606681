// WHIP in, WHEP out: an aiortc encoder publishes H.264 + Opus over WHIP as the main
// classroom; Chromium's whep.html plays it. When the publisher DELETEs its WHIP session,
// the viewer sees the stream end.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pageUrl, setupClass } from './lib/admin.js';
import { launchBrowser, waitFor } from './lib/browser.js';
import { expectFlowing } from './lib/media.js';
import { startWhipPublisher } from './lib/peers.js';
import { startServer } from './lib/server.js';

/** Counter of `__whep.stats()[kind][field]`. */
const whepCounter = (page, kind, field) => async () =>
  page.evaluate(async ([k, f]) => (await window.__whep.stats())?.[k]?.[f], [kind, field]);

describe('WHIP publish (aiortc) → WHEP play (Chromium)', () => {
  let server, cls, publisher, viewer, page;
  before(async () => {
    server = await startServer('whep');
    cls = await setupClass(server);
  });
  after(async () => {
    await publisher?.stop();
    await viewer?.close();
    await server?.stop();
  });

  test('the WHIP publisher connects', async () => {
    publisher = startWhipPublisher(server, cls.id, cls.main.token, { logName: 'whep.publisher' });
    const location = await publisher.waitLine('LOCATION ');
    assert.match(location, new RegExp(`/whip/${cls.id}/[^/]+$`), 'Location is /whip/{class}/{session}');
    await publisher.waitLine('CONNECTED');
  });

  test('whep.html decodes the video and receives the audio', async () => {
    viewer = await launchBrowser('whep-viewer', 'whep');
    page = await viewer.open(`${server.url}/whep.html?class=${encodeURIComponent(cls.id)}#token=${encodeURIComponent(cls.observer.token)}`);
    await waitFor(page, () => window.__whep !== undefined, undefined, 10000, 'window.__whep');
    await expectFlowing(whepCounter(page, 'video', 'framesDecoded'), 'whep video framesDecoded');
    await expectFlowing(whepCounter(page, 'audio', 'packetsReceived'), 'whep audio packetsReceived');
  });

  test('deleting the WHIP session ends the stream for the viewer', async (t) => {
    assert.ok(page, 'viewer page is open');
    const code = await publisher.stop();
    assert.ok(publisher.lines.includes('DELETE 204'), `publisher DELETE answered 204 (output: ${publisher.lines.join(' | ')})`);
    assert.equal(code, 0, 'publisher exit code');

    // The server closes the WHEP connection (DTLS close_notify) once its publication
    // ended, so the player itself must show the end.
    const started = Date.now();
    await waitFor(page, () => Boolean(window.__whep.ended), undefined, 10000, 'whep.html shows the stream ended');
    const how = `__whep.ended after ${Date.now() - started} ms`;
    t.diagnostic(`viewer saw the end: ${how}`);
  });
});
