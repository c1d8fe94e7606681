// The district admin pages in Chromium, in Chinese: an account made with
// `classcast admin add-user` signs in through the page, sets up a school, a main and
// a listening classroom (the device link is shown once), a pairing, a term with a
// holiday and a timetable period; an overlapping period and a period ending before it
// starts are refused with the reason next to the field, in the page language (and
// again in English after switching); the audit log shows the sign-in; signing out
// ends the session cookie.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adminCall } from './lib/admin.js';
import { launchBrowser } from './lib/browser.js';
import { REPO_ROOT, startServer } from './lib/server.js';

const BIN = process.env.CLASSCAST_BIN || path.join(REPO_ROOT, 'target/release/classcast');
const USER = 'principal';
const PASSWORD = '教务处 password 2025';

/** `classcast admin add-user` on the server's data directory, password from the environment. */
function addUser(server, username, password) {
  const env = { ...process.env, CLASSCAST_ADMIN_PASSWORD: password, RUST_LOG: 'warn' };
  return spawnSync(BIN, ['admin', 'add-user', '--username', username, '--data-dir', server.dataDir], { env, encoding: 'utf8' });
}

/** Visible text of the first element matching `selector`, once it is visible. */
async function textOf(page, selector) {
  const el = page.locator(selector).first();
  await el.waitFor({ state: 'visible', timeout: 10_000 });
  return (await el.textContent()).trim();
}

async function openTab(page, id) {
  await page.click(`#tab-${id}`);
  await page.locator(`#section-${id} .section-body`).waitFor({ state: 'attached' });
}

describe('admin pages', () => {
  let server, browser, page;
  before(async () => {
    server = await startServer('admin');
    browser = await launchBrowser('admin', 'admin');
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the CLI makes the first account; a short password is refused', () => {
    const short = addUser(server, 'other', 'short');
    assert.notEqual(short.status, 0, 'short password refused');
    assert.match(short.stderr, /password: at least 10 characters/);
    const made = addUser(server, USER, PASSWORD);
    assert.equal(made.status, 0, `add-user: ${made.stderr}`);
    assert.match(made.stdout, new RegExp(`admin account ${USER} created`));
  });

  test('a wrong password is refused on the page, the right one signs in', async () => {
    page = await browser.open(`${server.url}/admin.html?lang=zh`);
    await page.locator('#signin-form').waitFor({ state: 'visible' });
    await page.fill('#signin-user', USER);
    await page.fill('#signin-password', 'not the password');
    await page.click('#signin-form button[type="submit"]');
    assert.equal(await textOf(page, '#signin-message'), '用户名或密码不正确。');
    await page.fill('#signin-password', PASSWORD);
    await page.click('#signin-form button[type="submit"]');
    await page.locator('#app').waitFor({ state: 'visible' });
    assert.equal(await textOf(page, '#who'), `已登录：${USER}`);
    const cookies = await browser.context.cookies(server.url);
    const session = cookies.find((c) => c.name === 'classcast_session');
    assert.ok(session?.httpOnly, 'an HttpOnly session cookie');
    assert.equal(session.sameSite, 'Strict');
  });

  test('a school, a main and a listening classroom (device link shown once)', async () => {
    await openTab(page, 'schools');
    await page.fill('#school-form input[name="name"]', '县第一中学');
    await page.click('#school-form button[type="submit"]');
    assert.equal(await textOf(page, '#section-schools tbody tr td'), '县第一中学');

    await openTab(page, 'rooms');
    const links = [];
    for (const [name, kind] of [['主讲教室 1', 'main'], ['龙泉教学点', 'listening']]) {
      await page.fill('#room-form input[name="name"]', name);
      await page.selectOption('#room-form select[name="kind"]', kind);
      await page.click('#room-form button[type="submit"]');
      await page.locator('#section-rooms tbody tr', { hasText: name }).waitFor();
      assert.match(await textOf(page, '#device-link-box h2'), new RegExp(name));
      assert.match(await textOf(page, '#device-link-box .warning'), /只显示这一次/);
      const link = await page.inputValue('#device-link-box input.device-link');
      assert.match(link, new RegExp(`^${server.url}/kiosk\\.html#device=cdt_[A-Za-z0-9_-]{43}$`), 'the device link');
      links.push(link);
    }
    assert.notEqual(links[0], links[1]);
    const kinds = await page.locator('#section-rooms tbody tr td:nth-child(3)').allTextContents();
    assert.deepEqual(kinds.sort(), ['主讲教室', '听课教室']);
    await page.click('#device-link-box button:has-text("我已保存")');
    assert.equal(await page.locator('#device-link-box *').count(), 0, 'dismissed');
    await openTab(page, 'rooms');
    assert.equal(await page.locator('input.device-link').count(), 0, 'never shown again');
    const rooms = await adminCall(server, 'GET', '/api/rooms');
    assert.equal(rooms.length, 2);
    assert.ok(!JSON.stringify(rooms).includes('cdt_'), 'the list never carries a token');
  });

  test('a pairing, and a term with a holiday', async () => {
    await openTab(page, 'pairings');
    await page.fill('#pairing-form input[name="name"]', '一中 · 龙泉');
    await page.selectOption('#pairing-form select[name="main_classroom_id"]', { label: '主讲教室 1' });
    await page.selectOption('#pairing-form .picker select', { label: '龙泉教学点' });
    await page.click('#pairing-form .picker button:has-text("添加")');
    assert.equal(await textOf(page, '#pairing-form ol.ordered li .p-name'), '龙泉教学点');
    await page.click('#pairing-form button[type="submit"]');
    const row = page.locator('#section-pairings tbody tr', { hasText: '一中 · 龙泉' });
    await row.waitFor();
    assert.match(await row.textContent(), /主讲教室 1.*龙泉教学点.*一对一/);

    await openTab(page, 'terms');
    await page.fill('#term-form input[name="name"]', '2025 春季学期');
    await page.fill('#term-form input[name="start"]', '2025-02-17');
    await page.fill('#term-form input[name="end"]', '2025-07-04');
    await page.click('#term-form button[type="submit"]');
    const card = page.locator('.term-card', { hasText: '2025 春季学期' });
    await card.waitFor();
    await card.locator('input[name="date"]').fill('2025-05-01');
    await card.locator('input[name="name"]').fill('劳动节');
    await card.locator('.holiday-form button[type="submit"]').click();
    await page.locator('.term-card .holidays li', { hasText: '劳动节' }).waitFor();
    const [term] = await adminCall(server, 'GET', '/api/terms');
    assert.deepEqual(term.holidays, [{ date: '2025-05-01', name: '劳动节' }]);
  });

  test('a timetable period; an overlapping one is refused next to its field, in Chinese then English', async () => {
    await openTab(page, 'timetable');
    const form = '#period-form';
    await page.selectOption(`${form} select[name="weekday"]`, '1');
    await page.fill(`${form} input[name="start"]`, '08:00');
    await page.fill(`${form} input[name="end"]`, '08:45');
    await page.fill(`${form} input[name="subject"]`, '数学');
    await page.fill(`${form} input[name="teacher"]`, '王老师');
    await page.selectOption(`${form} label:has-text("按结对填写教室") select`, { label: '一中 · 龙泉' });
    assert.equal(await textOf(page, `${form} ol.ordered li .p-name`), '龙泉教学点', 'the pairing filled the listening classroom');
    await page.click(`${form} button[type="submit"]`);
    const monday = page.locator('.week .day[data-weekday="1"] .period');
    await monday.first().waitFor();
    assert.match(await monday.first().textContent(), /08:00–08:45.*数学.*王老师.*主讲教室 1 → 龙泉教学点/);

    // Overlapping: 08:30-09:15, same classrooms.
    await page.fill(`${form} input[name="start"]`, '08:30');
    await page.fill(`${form} input[name="end"]`, '09:15');
    await page.fill(`${form} input[name="subject"]`, '语文');
    await page.click(`${form} button[type="submit"]`);
    const mainError = `${form} [data-field="main_classroom_id"] .field-error`;
    assert.equal(await textOf(page, mainError), '时间冲突：该教室在 08:00-08:45 已有课');
    assert.equal(await page.locator(`${form} [data-field="main_classroom_id"]`).getAttribute('class'), 'field invalid');
    assert.equal(await page.locator(`${form} .field-error:visible`).count(), 1, 'only that field');
    assert.equal(await monday.count(), 1, 'nothing added');

    await page.click('.lang-switch button[data-lang="en"]');
    assert.equal(await textOf(page, mainError), 'Overlap: this classroom already has a period at 08:00-08:45');
    await page.click('.lang-switch button[data-lang="zh-CN"]');

    // An end before the start.
    await page.fill(`${form} input[name="start"]`, '10:00');
    await page.fill(`${form} input[name="end"]`, '09:00');
    await page.click(`${form} button[type="submit"]`);
    assert.equal(await textOf(page, `${form} [data-field="end"] .field-error`), '结束时间必须晚于开始时间');
    assert.equal(await page.locator(mainError).isVisible(), false, 'the earlier error is cleared');
    assert.equal((await adminCall(server, 'GET', '/api/timetable')).length, 1);
  });

  test('the audit log shows the sign-in; signing out ends the session', async () => {
    await openTab(page, 'audit');
    // The section is attached before its entries are fetched: wait for the first row.
    await page.locator('#section-audit tbody tr').first().waitFor();
    const actions = await page.locator('#section-audit tbody tr td:nth-child(2)').allTextContents();
    for (const a of ['sign_in', 'create']) assert.ok(actions.includes(a), `${a} in ${actions}`);
    const cookie = (await browser.context.cookies(server.url)).find((c) => c.name === 'classcast_session');
    const withCookie = () => fetch(`${server.url}/api/schools`, { headers: { cookie: `classcast_session=${cookie.value}` } });
    assert.equal((await withCookie()).status, 200, 'the cookie works before');

    await page.click('#btn-signout');
    await page.locator('#signin-form').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#app').isVisible(), false);
    assert.equal((await withCookie()).status, 401, 'the old cookie opens nothing');
    assert.equal(await page.evaluate(async () => (await fetch('/api/session')).status), 401);
    await page.reload();
    await page.locator('#signin-form').waitFor({ state: 'visible' });
    assert.equal((await adminCall(server, 'GET', '/api/schools')).length, 1, 'the admin key still works');
  });
});
