// Bad input at every door: WHIP/WHEP/admin over HTTP, the room protocol over WebSocket,
// and junk UDP on the media port, while a class (teacher + 1 classroom in Chromium) runs.
// Each refusal must be the documented one, and the class must not notice.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { addClassroom, adminCall, mintLink } from './lib/admin.js';
import { startLiveClass } from './lib/class.js';
import { sendJunk } from './lib/fuzz.js';
import { deleteSession, expectJsonError, postOffer } from './lib/http.js';
import { counter, expectFlowing } from './lib/media.js';
import { sumMetric } from './lib/metrics.js';
import { AV1, PCMU, offerSdp, validPlayOffer, validPublishOffer } from './lib/sdp.js';
import { claims, signToken } from './lib/tokens.js';
import { poll, sleep } from './lib/wait.js';
import { closedWithin, openWs } from './lib/ws.js';

const DROPS = 'classcast_dropped_packets_total';
const JUNK = 10000;

describe('bad input', () => {
  let live, server, cls;
  let whipRoom, wsRoom; // classrooms with no browser: one for WHIP requests, one for WS
  before(async () => {
    live = await startLiveClass('bad_input', { classrooms: 1 });
    ({ server, cls } = live);
    for (const name of ['WHIP room', 'WS room']) {
      const room = await addClassroom(server, cls.id, name);
      const { token } = await mintLink(server, cls.id, 'classroom', { classroomId: room.id });
      if (!whipRoom) whipRoom = { ...room, token };
      else wsRoom = { ...room, token };
    }
  });
  after(async () => {
    await live?.close();
  });

  const sign = (over) => signToken(server.tokenSecret, claims({ cls: cls.id, ...over }));

  /** POST a WHIP offer that must be accepted, then DELETE it. */
  async function whipAccepted(token, what) {
    const res = await postOffer(server, 'whip', cls.id, validPublishOffer(), token);
    const body = await res.text();
    assert.equal(res.status, 201, `${what}: WHIP POST (body: ${body})`);
    const location = res.headers.get('location');
    assert.match(location ?? '', new RegExp(`/whip/${cls.id}/[^/]+$`), `${what}: Location header`);
    assert.match(body, /^v=0/, `${what}: answer is SDP`);
    assert.equal((await deleteSession(server, location, token)).status, 204, `${what}: DELETE`);
  }

  describe('HTTP', () => {
    test('control: a hand-made H.264 + Opus offer is accepted (minted and self-signed tokens)', async () => {
      await whipAccepted(whipRoom.token, 'minted classroom token');
      await whipAccepted(sign({ sub: whipRoom.id, role: 'classroom' }), 'self-signed classroom token');
    });

    test('malformed SDP → 400 with a JSON error', async () => {
      for (const sdp of ['', 'hello', 'v=0\r\nm=video nonsense\r\n', validPublishOffer().slice(0, 200)]) {
        await expectJsonError(await postOffer(server, 'whip', cls.id, sdp, whipRoom.token), 400, `SDP ${JSON.stringify(sdp.slice(0, 20))}…`);
      }
    });

    test('an offer with only unsupported codecs → 400 naming them', async () => {
      const pcmu = await expectJsonError(
        await postOffer(server, 'whip', cls.id, offerSdp([{ kind: 'audio', codecs: [PCMU] }]), whipRoom.token),
        400, 'PCMU-only offer');
      assert.match(pcmu.message, /PCMU/i, 'message names PCMU');
      const av1Only = await expectJsonError(
        await postOffer(server, 'whip', cls.id, offerSdp([{ kind: 'video', codecs: [AV1] }]), whipRoom.token),
        400, 'AV1-only offer');
      assert.match(av1Only.message, /AV1/i, 'message names AV1');
      const av1 = await expectJsonError(
        await postOffer(server, 'whip', cls.id, offerSdp([{ kind: 'video', codecs: [AV1] }, { kind: 'audio', codecs: [PCMU] }]), whipRoom.token),
        400, 'AV1 + PCMU offer');
      assert.match(av1.message, /AV1/i, 'message names AV1');
      assert.match(av1.message, /PCMU/i, 'message names PCMU');
    });

    test('missing, garbage, forged or expired token → 401', async () => {
      const forged = signToken('not-the-server-secret', claims({ cls: cls.id, sub: whipRoom.id, role: 'classroom' }));
      const expired = sign({ sub: whipRoom.id, role: 'classroom', expSecs: -3600 });
      const cases = { missing: undefined, garbage: 'abc.def.ghi', forged, expired };
      for (const [what, token] of Object.entries(cases)) {
        await expectJsonError(await postOffer(server, 'whip', cls.id, validPublishOffer(), token), 401, `WHIP with ${what} token`);
        await expectJsonError(await postOffer(server, 'whep', cls.id, validPlayOffer(), token), 401, `WHEP with ${what} token`);
      }
      const res = await fetch(`${server.url}/api/classes`, { headers: { authorization: 'Bearer wrong-admin-key' } });
      await expectJsonError(res, 401, 'admin API with a wrong key');
    });

    test('observer token to WHIP → 403', async () => {
      await expectJsonError(await postOffer(server, 'whip', cls.id, validPublishOffer(), cls.observer.token), 403, 'WHIP as observer');
    });

    test('unknown class → 404', async () => {
      const ghost = signToken(server.tokenSecret, claims({ cls: 'no-such-class', role: 'main' }));
      await expectJsonError(await postOffer(server, 'whip', 'no-such-class', validPublishOffer(), ghost), 404, 'WHIP to an unknown class');
      await expectJsonError(await postOffer(server, 'whep', 'no-such-class', validPlayOffer(), ghost), 404, 'WHEP to an unknown class');
      await assert.rejects(adminCall(server, 'GET', '/api/classes/no-such-class', undefined, 200), /→ 404/, 'admin GET of an unknown class');
    });
  });

  describe('WebSocket', () => {
    const join = (token) => ({ type: 'join', v: 1, token });

    test('a classroom sending call_on gets error "forbidden"', async () => {
      const c = await openWs(server);
      c.send(join(wsRoom.token));
      await c.next('joined');
      c.send({ type: 'call_on', participant: wsRoom.id });
      const err = await c.next('error');
      assert.equal(err.code, 'forbidden', `error: ${JSON.stringify(err)}`);
      c.ws.close();
    });

    test('a message over 64 KiB closes the connection with 1009', async () => {
      const c = await openWs(server);
      c.send(JSON.stringify(join('x'.repeat(70 * 1024))));
      const { code } = await closedWithin(c);
      assert.equal(code, 1009);
    });

    const policyCases = {
      'invalid JSON': [false, '{"type":"join",'],
      'a binary frame': [false, Buffer.from('{"type":"ping"}')],
      'an unknown type (after join)': [true, { type: 'hack' }],
      'an unknown field (after join)': [true, { type: 'ping', extra: 1 }],
    };
    for (const [what, [afterJoin, msg]] of Object.entries(policyCases)) {
      test(`${what} closes the connection with 1008 and a reason`, async () => {
        const c = await openWs(server);
        if (afterJoin) {
          c.send(join(cls.observer.token));
          await c.next('joined');
        }
        c.send(msg);
        const { code, reason } = await closedWithin(c);
        assert.equal(code, 1008, `close code (reason: ${reason})`);
        assert.ok(reason.length > 0, 'close frame carries a reason');
      });
    }
  });

  describe('UDP junk on the media port', () => {
    test(`${JUNK} junk datagrams are dropped and counted; the class goes on`, async (t) => {
      const room = live.rooms[0];
      const frames = counter(room.page, 'main/camera', 'framesDecoded');
      await expectFlowing(frames, 'classroom main/camera framesDecoded before the junk');
      // Background drops of the running class (e.g. awaiting a keyframe) must not count
      // towards the junk: measure their rate first, over a quiet window.
      const quiet0 = await sumMetric(server, DROPS, 'reason');
      const quietStart = Date.now();
      await sleep(3000);
      const before = await sumMetric(server, DROPS, 'reason');
      const backgroundPerMs = (before.total - quiet0.total) / (Date.now() - quietStart);

      const junkStart = Date.now();
      const kinds = await sendJunk(server.mediaPort, JUNK);
      t.diagnostic(`sent ${JUNK} datagrams in ${Date.now() - junkStart} ms: ${JSON.stringify(kinds)}`);

      let after = before;
      const junkDrops = () => after.total - before.total - backgroundPerMs * (Date.now() - junkStart);
      await poll(async () => {
        after = await sumMetric(server, DROPS, 'reason');
        return junkDrops() >= JUNK * 0.9;
      }, { timeoutMs: 10000, what: 'drop counter' }).catch(() => {});
      const per = Object.fromEntries(Object.entries(after.per).map(([k, v]) => [k, v - (before.per[k] ?? 0)]));
      t.diagnostic(`${DROPS} increase by reason: ${JSON.stringify(per)}; background ${(backgroundPerMs * 1000).toFixed(1)}/s`);
      assert.ok(junkDrops() >= JUNK * 0.9,
        `${DROPS} (sum over reasons, less background) rose by ${Math.round(junkDrops())}, expected ≥ ${JUNK * 0.9}`);

      assert.ok(server.alive(), 'server process still running');
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200, '/healthz');
      await expectFlowing(frames, 'classroom main/camera framesDecoded after the junk');
    });
  });

  test('the server is still healthy after all of it', async () => {
    assert.ok(server.alive(), 'server process still running');
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200, '/healthz');
  });
});
