// Launch Debian's Chromium through playwright-core (never a downloaded browser), with the
// flags that make WebRTC work on loopback with fake camera and microphone, a fresh profile
// directory per browser, and console output of every page appended to out/<log>.browser.log.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { outPath } from './server.js';
import { poll } from './wait.js';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
];

/**
 * Launch one browser (think: one classroom's PC). `label` prefixes its console lines in
 * out/<logName>.browser.log. `executablePath` replaces Chromium (netem.js passes a wrapper
 * that runs it in another network namespace). Returns { label, context, open(url), close() }.
 */
export async function launchBrowser(label, logName, { executablePath = CHROMIUM } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), `classcast-chromium-${label}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 960, height: 540 },
  });
  const logFile = outPath(`${logName}.browser.log`);
  const write = (line) => fs.appendFileSync(logFile, `${new Date().toISOString()} [${label}] ${line}\n`);

  return {
    label,
    context,
    /**
     * Open `url` in a new tab and wait for DOMContentLoaded. Not `load`: a <video> whose
     * srcObject track never sends (whep.html's screen slot) delays the load event forever.
     */
    async open(url) {
      const page = await context.newPage();
      page.on('console', (m) => write(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => write(`pageerror: ${e.message}`));
      page.on('crash', () => write('page crashed'));
      write(`open ${url.replace(/#token=.*/, '#token=…')}`);
      await page.goto(url, { waitUntil: 'domcontentloaded' });
      return page;
    },
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Poll `fn(arg)` inside the page until it returns something truthy; return it. */
export function waitFor(page, fn, arg, timeoutMs = 10000, what = fn.toString()) {
  return poll(() => page.evaluate(fn, arg), { timeoutMs, intervalMs: 100, what });
}

/** Wait until the page's client reports it joined the class. */
export function waitJoined(page, timeoutMs = 15000) {
  return waitFor(page, () => window.__classcast?.joined === true, undefined, timeoutMs, 'window.__classcast.joined');
}

/** The page's receive stats keyed by track key (see the page automation contract). */
export const pageStats = (page) => page.evaluate(() => window.__classcast.stats());

/** The page's subscribed tracks: [{key, kind, mid, trackId}]. */
export const pageTracks = (page) => page.evaluate(() => window.__classcast.tracks());

/** A snapshot of a classcast page for failure messages: state, last messages, tracks, stats. */
export async function describePage(page) {
  try {
    return await page.evaluate(async () => {
      const c = window.__classcast;
      if (!c) return 'no window.__classcast';
      const tracks = c.tracks();
      const stats = await c.stats();
      return JSON.stringify({ state: c.state, joined: c.joined, id: c.id, log: c.log.slice(-15), tracks, stats });
    });
  } catch (e) {
    return `page not readable: ${e.message}`;
  }
}
