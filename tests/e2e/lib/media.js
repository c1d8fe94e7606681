// Assertions on media counters (framesDecoded, packetsReceived, ...): is a stream flowing,
// has it stopped. A counter is an async function returning a number or undefined.

import assert from 'node:assert/strict';
import { describePage, pageStats } from './browser.js';
import { poll, sleep } from './wait.js';

/** Counter of one field of one track key in a classcast page's stats (knows its page, for failure messages). */
export function counter(page, key, field) {
  const get = async () => (await pageStats(page))[key]?.[field];
  get.page = page;
  return get;
}

/** Add a snapshot of the counter's page (if it has one) to an error. */
async function withPage(get, e) {
  if (get.page) e.message += `\npage: ${await describePage(get.page)}`;
  return e;
}

/** Wait (up to `startTimeoutMs`) for the counter to be positive, then assert it rises over `gapMs`. */
export async function expectFlowing(get, what, { startTimeoutMs = 15000, gapMs = 2000 } = {}) {
  try {
    await poll(async () => (await get()) > 0, { timeoutMs: startTimeoutMs, what: `${what} > 0` });
  } catch (e) {
    throw await withPage(get, e);
  }
  const a = await get();
  await sleep(gapMs);
  const b = await get();
  assert.ok(b > a, `${what} should keep rising: ${a} then ${b} ${gapMs} ms later`);
  return b;
}

/** Assert the counter does not rise over `gapMs` (undefined counts as not rising). */
export async function expectNotFlowing(get, what, { gapMs = 2000 } = {}) {
  const a = (await get()) ?? 0;
  await sleep(gapMs);
  const b = (await get()) ?? 0;
  assert.equal(b, a, `${what} should not rise: ${a} then ${b} ${gapMs} ms later`);
}

/** Wait (up to `timeoutMs`) until two samples `gapMs` apart are equal: the stream stopped. */
export async function expectStops(get, what, { gapMs = 2000, timeoutMs = 10000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let a = (await get()) ?? 0;
  for (;;) {
    await sleep(gapMs);
    const b = (await get()) ?? 0;
    if (b === a) return b;
    assert.ok(Date.now() < deadline, `${what} should stop rising within ${timeoutMs} ms; still ${a} → ${b}`);
    a = b;
  }
}

/**
 * Poll every `intervalMs` until the counter exceeds `from`; return the ms it took.
 * Fails after `timeoutMs`.
 */
export async function timeUntilRises(get, from, what, { timeoutMs = 10000, intervalMs = 50 } = {}) {
  const t0 = Date.now();
  await poll(async () => (await get()) > from, { timeoutMs, intervalMs, what: `${what} > ${from}` });
  return Date.now() - t0;
}
