// The live dashboard sees an impaired classroom: a class with the teacher and two
// classrooms in Chromium; 30 % packet loss is put on classroom B's UDP ports (both of its
// peer connections, both directions) with tc on the namespace's loopback (see `impair`).
// The dashboard API and the dashboard page must show B degraded, for loss, within 5 s
// while A shows no network trouble, and B must recover once the impairment is gone.
// Prints both times.
//
// On a machine whose CPU is shared with other work, every browser may really stutter
// (freezes, low frame rates) and the dashboard rightly says so; those local reasons are
// printed, and the assertions about A are about network reasons (loss, round trip, no
// media, media stopped), which CPU load does not produce on loopback.
//
// Needs CAP_NET_ADMIN in a loopback-only namespace (see docs/testing.md): the qdisc is
// on `lo` and removed at the end whatever happens.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { waitFor } from './lib/browser.js';
import { startLiveClass } from './lib/class.js';
import { counter, expectFlowing } from './lib/media.js';
import { scrape } from './lib/metrics.js';
import { poll, sleep } from './lib/wait.js';

const TC = process.env.TC_BIN || '/usr/sbin/tc';
const DEGRADED_WITHIN_MS = 5000;
const RECOVER_WITHIN_MS = 30000;
const NETWORK_REASONS = ['loss', 'rtt', 'no_media', 'media_stopped'];

function tc(...args) {
  execFileSync(TC, args, { stdio: 'pipe' });
}

/**
 * 30 % loss on UDP packets from or to one of `ports`; everything else untouched.
 *
 * This kernel has neither netem nor prio nor tc actions (only htb, tbf, pfifo and the u32
 * classifier), so the loss is made with those: an htb root sends everything to class 1:1,
 * except what the u32 filters pick for class 1:3, whose `pfifo limit 0` drops every packet.
 * The filters pick packets by one byte deep inside the SRTP payload (IP offset 88), which
 * is ciphertext and so uniformly random: values 0-76 are 77 of 256, 30.1 %. Packets of 88
 * bytes or less (some RTCP) are never picked.
 */
const RANDOM_BYTE_AT = 88;
const BELOW_77 = [['0x00', '0xc0'], ['0x40', '0xf8'], ['0x48', '0xfc'], ['0x4c', '0xff']];

function impair(ports) {
  tc('qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '1', 'r2q', '100000');
  tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '10gbit');
  tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:3', 'htb', 'rate', '10gbit');
  tc('qdisc', 'add', 'dev', 'lo', 'parent', '1:3', 'handle', '30:', 'pfifo', 'limit', '0');
  for (const port of ports) {
    for (const side of ['sport', 'dport']) {
      for (const [value, mask] of BELOW_77) {
        tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32',
          'match', 'ip', 'protocol', '17', '0xff', 'match', 'ip', side, String(port), '0xffff',
          'match', 'u8', value, mask, 'at', String(RANDOM_BYTE_AT), 'flowid', '1:3');
      }
    }
  }
}

/** Packets the impairment dropped so far. */
function dropped() {
  const out = execFileSync(TC, ['-s', 'qdisc', 'show', 'dev', 'lo'], { encoding: 'utf8' });
  return Number(/pfifo 30:[^]*?dropped (\d+)/.exec(out)?.[1] ?? 0);
}

function repair() {
  try {
    tc('qdisc', 'del', 'dev', 'lo', 'root');
  } catch {
    /* no qdisc left */
  }
}

async function dashboard(server) {
  const res = await fetch(`${server.url}/api/dashboard`, { headers: { authorization: `Bearer ${server.adminKey}` } });
  assert.equal(res.status, 200, `GET /api/dashboard: ${res.status}`);
  return res.json();
}

/** Classroom `id` of the only live class in a snapshot. */
function tileOf(snap, id) {
  return snap.classes[0]?.classrooms.find((r) => r.id === id);
}

const networkTrouble = (r) => r.reasons.filter((x) => NETWORK_REASONS.includes(x));
const brief = (r) => JSON.stringify({
  degraded: r.degraded, reasons: r.reasons, down: r.bitrate_down_kbps, up: r.bitrate_up_kbps,
  loss: [r.loss_down_pct, r.loss_up_pct], rtt: r.rtt_ms, layer: r.layer, freezes: r.freezes_last_minute,
});

/** The page's tile of a classroom: {degraded, reasons} or null. */
const pageTile = (id) => {
  const el = document.querySelector(`[data-classroom="${id}"]`);
  return el ? { degraded: el.dataset.degraded === 'true', reasons: el.dataset.reasons.split(',').filter(Boolean) } : null;
};

describe('dashboard: an impaired classroom stands out', () => {
  let live;
  let dash;
  let a;
  let b;
  before(async () => {
    repair();
    // The teacher sends its camera only: less CPU for the browsers, fewer local stutters.
    live = await startLiveClass('dashboard', { classrooms: 2, teacherParams: { autostart: '1' } });
    [a, b] = live.rooms;
    dash = await live.teacher.browser.open(`${live.server.url}/dashboard.html?lang=en`);
    await dash.fill('#admin-key', live.server.adminKey);
    await dash.click('#key-form button[type="submit"]');
  });
  after(async () => {
    repair();
    await live?.close();
  });

  test('a healthy class: teacher and both classrooms connected, flowing, no network trouble', async () => {
    for (const r of live.rooms) {
      await expectFlowing(counter(r.page, 'main/camera', 'framesDecoded'), `${r.name} main/camera framesDecoded`);
    }
    let last = null;
    const snap = await poll(async () => {
      last = await dashboard(live.server);
      const rooms = last.classes[0]?.classrooms ?? [];
      const ok = rooms.length === 3 && rooms.every((r) => r.joined && r.connected && r.video.up && r.video.down && r.layer && networkTrouble(r).length === 0);
      return ok && last;
    }, { timeoutMs: 30000, intervalMs: 500, what: 'all three connected and flowing on /api/dashboard' }).catch((e) => {
      e.message += `\nlast: ${JSON.stringify(last?.classes[0]?.classrooms.map((r) => [r.id, brief(r)]))}`;
      throw e;
    });
    for (const r of [a, b]) console.log(`# healthy ${r.name}: ${brief(tileOf(snap, r.id))}`);
    const tb = tileOf(snap, b.id);
    assert.ok(tb.bitrate_down_kbps > 0 && tb.bitrate_up_kbps > 0, 'bitrates both ways');
    assert.equal(tb.layer.key, 'main/camera');
    assert.ok(tb.layer.width > 0 && tb.layer.height > 0, 'the layer received has a size');
    assert.equal(tb.loss_down_pct, 0, 'no loss on loopback');
    await waitFor(dash, (ids) => ids.every((id) => document.querySelector(`[data-classroom="${id}"]`)), [a.id, b.id], 10000, 'the page shows A and B');
    assert.equal(await dash.evaluate(() => window.__dashboard.state), 'live');
    const samples = await scrape(live.server);
    const degraded = samples.filter((x) => x.name === 'classcast_classroom_degraded');
    assert.deepEqual(degraded.map((x) => x.labels.participant).sort(), [a.id, b.id, 'main'].sort(), 'one series per participant');
    assert.ok(samples.some((x) => x.name === 'classcast_class_participants' && x.value === 3));
  });

  test(`30 % loss on B's link: B degraded within ${DEGRADED_WITHIN_MS} ms, A not; B recovers`, async () => {
    const ports = await b.page.evaluate(() => window.__classcast.mediaPorts());
    assert.ok(ports.publish && ports.subscribe, `B's local UDP ports: ${JSON.stringify(ports)}`);
    // Timed from before the first tc command: the loss starts with the first filter.
    const t0 = Date.now();
    impair([ports.publish, ports.subscribe]);
    const apiP = poll(async () => tileOf(await dashboard(live.server), b.id)?.reasons.includes('loss') && Date.now() - t0,
      { timeoutMs: 15000, intervalMs: 100, what: 'B degraded for loss on /api/dashboard' });
    const pageP = poll(async () => {
      const tile = await dash.evaluate(pageTile, b.id);
      return tile?.degraded && tile.reasons.includes('loss') && Date.now() - t0;
    }, { timeoutMs: 15000, intervalMs: 100, what: 'B degraded for loss on the page' });
    const [apiMs, pageMs] = await Promise.all([apiP, pageP]);
    const tb = tileOf(await dashboard(live.server), b.id);
    console.log(`# B degraded after ${apiMs} ms (API), ${pageMs} ms (page): ${brief(tb)}`);
    assert.ok(apiMs <= DEGRADED_WITHIN_MS, `the API showed B degraded after ${apiMs} ms`);
    assert.ok(pageMs <= DEGRADED_WITHIN_MS, `the page showed B degraded after ${pageMs} ms`);
    assert.ok(tb.degraded);
    const first = await dash.evaluate(() => document.querySelector('.room-tile')?.dataset.classroom);
    if (!tileOf(await dashboard(live.server), a.id).degraded) assert.equal(first, b.id, 'the degraded classroom comes first on the page');
    // A shows no network trouble while B's link is impaired.
    for (let i = 0; i < 6; i++) {
      const ta = tileOf(await dashboard(live.server), a.id);
      assert.deepEqual(networkTrouble(ta), [], `A: ${brief(ta)}`);
      if (i === 5) console.log(`# A meanwhile: ${brief(ta)}\n# the teacher meanwhile: ${brief(tileOf(await dashboard(live.server), 'main'))}`);
      await sleep(500);
    }
    const pageA = await dash.evaluate(pageTile, a.id);
    assert.deepEqual(pageA.reasons.filter((x) => NETWORK_REASONS.includes(x)), [], 'the page shows no network trouble for A');
    const gauge = (await scrape(live.server)).find((x) => x.name === 'classcast_classroom_degraded' && x.labels.participant === b.id);
    assert.equal(gauge?.value, 1, 'the degraded gauge of B is 1');
    const lost = dropped();
    console.log(`# the impairment dropped ${lost} packets`);
    assert.ok(lost > 0, 'the impairment dropped packets');

    repair();
    const t1 = Date.now();
    let lastB = null;
    const recoverMs = await poll(async () => {
      lastB = tileOf(await dashboard(live.server), b.id);
      return networkTrouble(lastB).length === 0 && Date.now() - t1;
    }, { timeoutMs: RECOVER_WITHIN_MS, intervalMs: 200, what: 'B without network trouble on /api/dashboard' });
    const pageRecoverMs = await poll(async () => {
      const tile = await dash.evaluate(pageTile, b.id);
      return tile && !tile.reasons.includes('loss') && Date.now() - t1;
    }, { timeoutMs: 5000, intervalMs: 100, what: 'B recovered on the page' });
    console.log(`# B without network trouble after ${recoverMs} ms (API), ${pageRecoverMs} ms (page): ${brief(lastB)}`);
    // Freezes seen during the loss keep B degraded for 10 s more (plus the hold); local
    // stutters on a busy machine may keep it longer, so this one is reported, not asserted.
    const fullMs = await poll(async () => !tileOf(await dashboard(live.server), b.id).degraded && Date.now() - t1,
      { timeoutMs: RECOVER_WITHIN_MS, intervalMs: 200, what: 'B not degraded' }).catch(() => null);
    console.log(`# B not degraded at all after ${fullMs ?? `more than ${RECOVER_WITHIN_MS}`} ms`);
  });

  test('the page shows a lost server connection and reconnects', async () => {
    await live.server.stop();
    await waitFor(dash, () => window.__dashboard.state === 'lost', undefined, 10000, 'the page shows the connection lost');
    assert.ok(await dash.evaluate(() => document.querySelector('#live-list').classList.contains('stale')), 'figures greyed');
    const updates = await dash.evaluate(() => window.__dashboard.updates);
    await live.server.start();
    await waitFor(dash, (n) => window.__dashboard.state === 'live' && window.__dashboard.updates > n, updates, 20000, 'the page reconnects');
  });
});
