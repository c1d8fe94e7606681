// The admin page's webhooks panel in Chromium: add a hook with the form, see its
// secret once (and never again), refuse a non-http URL naming the field, send a test
// to a receiver that answers 503 then 200, and read every attempt in the delivery log.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { adminCall } from './lib/admin.js';
import { launchBrowser } from './lib/browser.js';
import { outPath, startServer } from './lib/server.js';
import { poll } from './lib/wait.js';

/** A receiver on 127.0.0.1 that checks signatures and answers 503 to the first `failFirst` requests. */
function startReceiver(failFirst) {
  const r = { secret: '', hits: [] };
  r.server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const ts = req.headers['x-classcast-timestamp'];
      const expected = `sha256=${createHmac('sha256', r.secret).update(`${ts}.${body}`).digest('hex')}`;
      const status = r.hits.length < failFirst ? 503 : 200;
      r.hits.push({ event: req.headers['x-classcast-event'], ok: req.headers['x-classcast-signature'] === expected, status });
      res.writeHead(status).end();
    });
  });
  return new Promise((resolve) => r.server.listen(0, '127.0.0.1', () => { r.url = `http://127.0.0.1:${r.server.address().port}/hook`; resolve(r); }));
}

describe('admin webhooks panel', () => {
  let server, browser, receiver, page;
  before(async () => {
    server = await startServer('admin_webhooks', { args: ['--webhook-retry-base-ms', '300'] });
    receiver = await startReceiver(1);
    browser = await launchBrowser('admin', 'admin_webhooks');
    page = await browser.open(`${server.url}/admin.html?lang=en`);
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.click('#btn-use-key');
    await page.fill('#admin-key', server.adminKey);
    await page.click('#key-form button[type=submit]');
    await page.click('#tab-webhooks');
  });
  after(async () => {
    await browser?.close();
    receiver?.server.close();
    await server?.stop();
  });

  const panel = () => page.locator('#section-webhooks');

  test('a non-http URL is refused naming the field, and the typed URL stays', async () => {
    await panel().locator('input[name=url]').fill('ftp://127.0.0.1/hook');
    await panel().getByRole('button', { name: 'Add' }).click();
    const error = panel().locator('.error');
    await error.waitFor();
    assert.match(await error.textContent(), /422 invalid_field\): url: must be an absolute http/);
    assert.equal(await panel().locator('input[name=url]').inputValue(), 'ftp://127.0.0.1/hook');
    assert.deepEqual(await adminCall(server, 'GET', '/api/webhooks'), []);
  });

  test('a hook is added with its events and its secret is shown once', async () => {
    await panel().locator('input[name=url]').fill(receiver.url);
    await panel().locator('input[name="ev-classroom_left"]').uncheck();
    await panel().getByRole('button', { name: 'Add' }).click();
    const secretInput = panel().locator('.link-card input[readonly]');
    await secretInput.waitFor();
    receiver.secret = await secretInput.inputValue();
    assert.equal(receiver.secret.length, 43);
    assert.equal(await panel().locator('.error').count(), 0);
    const [hook] = await adminCall(server, 'GET', '/api/webhooks');
    assert.deepEqual(hook.events, ['class_started', 'class_ended', 'classroom_joined', 'recording_ready']);
    assert.equal(await panel().locator('tbody tr').first().locator('td').nth(1).textContent(), 'Class started, Class ended, Classroom joined, Recording ready');
    await panel().getByRole('button', { name: 'Saved it' }).click();
    await page.reload();
    await panel().locator('tbody tr').first().waitFor();
    assert.equal(await panel().locator('.link-card input[readonly]').count(), 0, 'not shown after a reload');
    assert.ok(!(await page.content()).includes(receiver.secret));
  });

  test('send test: the log shows the 503 attempt, its retry time, then the 200', async () => {
    await panel().getByRole('button', { name: 'Send test' }).click();
    const log = panel().locator('.webhooks-log');
    await log.waitFor();
    const text = await poll(async () => {
      await log.getByRole('button', { name: 'Refresh' }).click();
      const t = await log.textContent();
      return t.includes('Delivered') && t;
    }, { timeoutMs: 15000, what: 'the ping delivered in the log' });
    assert.match(text, /Test \(ping\)/);
    const rows = await log.locator('tbody tr').allTextContents();
    console.log(`delivery log rows: ${JSON.stringify(rows)}`);
    assert.equal(rows.length, 2);
    assert.match(rows[0], /^1.*HTTP 503\d+ ms\d/, 'attempt 1: 503 with a duration and a next retry');
    assert.match(rows[1], /^2.*HTTP 200\d+ ms$/, 'attempt 2: 200, no retry');
    assert.deepEqual(receiver.hits.map((h) => [h.event, h.ok, h.status]), [['ping', true, 503], ['ping', true, 200]]);
    assert.doesNotMatch(await panel().textContent(), /null|undefined/);
    await page.screenshot({ path: outPath('admin_webhooks.png'), fullPage: true });
  });

  test('in Chinese, and delete', async () => {
    await page.goto(`${server.url}/admin.html?lang=zh#webhooks`);
    await panel().locator('tbody tr').first().waitFor();
    assert.match(await panel().locator('h2').textContent(), /事件通知/);
    await panel().getByRole('button', { name: '推送记录' }).click();
    await panel().locator('.webhooks-log tbody tr').nth(1).waitFor();
    assert.match(await panel().locator('.webhooks-log').textContent(), /测试（ping）.*已送达/);
    await page.screenshot({ path: outPath('admin_webhooks.zh.png'), fullPage: true });
    page.once('dialog', (d) => d.accept());
    await panel().getByRole('button', { name: '删除' }).click();
    await poll(async () => (await adminCall(server, 'GET', '/api/webhooks')).length === 0, { what: 'the hook deleted' });
    await panel().getByText('还没有 Webhook').waitFor();
  });
});
