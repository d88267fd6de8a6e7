#!/usr/bin/env node
/*
 * schedule.test.mjs - the Schedule panel against `dstmc up` (whose default schedule is
 * "*\/15 * * * *"): it shows the schedule and its next run, Pause/Resume reach the API, an invalid
 * cron shows the API's own message and changes nothing, a valid edit shows the new next run, and
 * a change made through the API by someone else appears live (SSE "schedules"). Saves
 * schedule.png and schedule-dark.png. While GET /api/v1/schedules answers 404 (a dstmc without
 * the schedules API) it checks that the panel stays hidden and skips the rest.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { AUTH, LOGIN, OUT, Service, WAIT_MS, check, log, run, step, waitFor } from './lib.mjs';

const up = new Service(['up', '--listen', '127.0.0.1:0', '--db', 'sqlite::memory:',
  '--target', 'dummy:', '--server-http', 'off', '--server-iperf3', 'off', '--seed-demo']);

async function main(launch) {
  mkdirSync(OUT, { recursive: true });
  const base = await step('start dstmc up', () => up.start());
  const getSchedules = async () => {
    const res = await fetch(`${base}/api/v1/schedules`);
    return { status: res.status, body: res.status === 200 ? await res.json() : null };
  };
  const { page } = await step('launch chromium', launch);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  let pageGotSchedules = false; /* the page has had its answer to GET /api/v1/schedules */
  page.on('requestfinished', (r) => {
    if (new URL(r.url()).pathname === '/api/v1/schedules' && r.method() === 'GET') {
      pageGotSchedules = true;
    }
  });
  /* before and after the page loads them: the every-15-minutes schedule may fire (and move its
   * next run) between the page's read and ours */
  const before = await getSchedules();

  await step('open the dashboard', async () => {
    await page.goto(`${base}/${LOGIN}`);
    await page.waitForFunction(() => window.dstmc && window.dstmc.isReady);
    await page.waitForFunction(() => document.querySelector('#conn').dataset.state === 'live');
  });

  const first = await getSchedules();
  if (first.status === 404) {
    await step('no schedules API: the panel stays hidden', async () => {
      await waitFor(() => pageGotSchedules, 'the page asking for the schedules');
      await page.evaluate(() => new Promise((ok) => requestAnimationFrame(() => setTimeout(ok, 0))));
      check(await page.isHidden('#schedule'), 'the schedule panel is shown although the API answers 404');
      check(await page.isHidden('#sched-pill'), 'the "schedule paused" pill is shown');
    });
    check(errors.length === 0, `JavaScript errors in the page: ${errors.join(' | ')}`);
    log('SKIP: schedules API not available');
    return;
  }
  check(first.status === 200, `GET /api/v1/schedules answered ${first.status}`);
  check(Array.isArray(first.body.schedules) && first.body.schedules.some((s) => s.cron === '*/15 * * * *'),
    `no "*/15 * * * *" schedule in ${JSON.stringify(first.body)}`);
  const row0 = '#schedules tbody tr[data-i="0"]';

  await step('the panel shows */15 * * * * and its next run', async () => {
    await page.waitForSelector('#schedule', { state: 'visible' });
    await page.waitForFunction(() => /\*\/15 \* \* \* \*/.test(document.querySelector('#schedules tbody').textContent));
    const s = first.body.schedules.find((x) => x.cron === '*/15 * * * *');
    check(s.next_run, `the API gives no next_run: ${JSON.stringify(s)}`);
    const i = first.body.schedules.indexOf(s);
    const known = [before, first]
      .map((g) => g.body?.schedules?.find((x) => x.cron === s.cron)?.next_run);
    const shown = await page.getAttribute(`#schedules tbody tr[data-i="${i}"] td.next time`, 'datetime');
    check(known.includes(shown), `next run shown as ${shown}, the API says ${known.join(' then ')}`);
    const text = await page.textContent(`#schedules tbody tr[data-i="${i}"]`);
    check(/every 15 minutes/.test(text) && /in (< )?\d+ min|due now/.test(text), `the row reads "${text}"`);
    check((await page.textContent('#sched-state')).trim() === 'active', 'the state is not "active"');
    log(`row: ${text.replace(/\s+/g, ' ').trim()}`);
  });

  await step('Pause: the state is "paused", and so says the API', async () => {
    await page.click('#sched-pause');
    await page.waitForFunction(() => document.querySelector('#sched-state').textContent.trim() === 'paused');
    check(await page.isVisible('#sched-pill'), 'no "schedule paused" pill in the top bar');
    check((await page.textContent('#sched-pause')).trim() === 'Resume', 'the button does not offer Resume');
    const now = await getSchedules();
    check(now.body && now.body.paused === true, `the API reports ${JSON.stringify(now.body)}`);
  });

  await step('Resume: active again', async () => {
    await page.click('#sched-pause');
    await page.waitForFunction(() => document.querySelector('#sched-state').textContent.trim() === 'active');
    const now = await getSchedules();
    check(now.body && now.body.paused === false, `the API reports ${JSON.stringify(now.body)}`);
  });

  await step('an invalid cron shows the API\'s message and changes nothing', async () => {
    await page.click(`${row0} [data-act="edit"]`);
    await page.fill('#schedules [data-field="cron"]', '61 * * * *');
    const answer = page.waitForResponse((r) => r.url().endsWith('/api/v1/schedules') && r.request().method() === 'PUT');
    await page.keyboard.press('Enter');
    const r = await answer;
    check(r.status() === 400, `PUT with "61 * * * *" answered ${r.status()}`);
    const message = (await r.json()).error.message;
    await page.waitForFunction((m) => document.querySelector('#sched-msg').textContent.includes(m), message);
    check(await page.isVisible('#schedules [data-field="cron"]'), 'the edit form closed after an error');
    const now = await getSchedules();
    check(JSON.stringify(now.body.schedules.map((s) => s.cron)) === JSON.stringify(first.body.schedules.map((s) => s.cron)),
      `the schedules changed: ${JSON.stringify(now.body.schedules)}`);
    log(`message: ${message}`);
  });

  await step('a valid edit shows the new next run', async () => {
    await page.fill('#schedules [data-field="cron"]', '*/5 * * * *');
    const answer = page.waitForResponse((r) => r.url().endsWith('/api/v1/schedules') && r.request().method() === 'PUT');
    await page.click('#schedules [data-act="save"]');
    const r = await answer;
    check(r.status() === 200, `PUT with "*/5 * * * *" answered ${r.status()}: ${await r.text()}`);
    const saved = (await r.json()).schedules[0];
    check(saved.cron === '*/5 * * * *' && saved.next_run, `the API answered ${JSON.stringify(saved)}`);
    const wait = new Date(saved.next_run).getTime() - Date.now();
    check(wait > -60e3 && wait <= 5 * 60e3 + 5e3, `next run of */5 is ${saved.next_run}, ${wait} ms away`);
    /* the saved next run, or a later one if the schedule fired meanwhile */
    await waitFor(async () => {
      const shown = await page.getAttribute(`${row0} td.next time`, 'datetime').catch(() => null);
      return shown === saved.next_run ||
        shown === (await getSchedules()).body?.schedules?.[0]?.next_run;
    }, `the row showing the next run ${saved.next_run}`);
    const text = await page.textContent(row0);
    check(/every 5 minutes/.test(text) && text.includes('*/5 * * * *'), `the row reads "${text}"`);
    check(await page.isHidden('#schedules [data-field="cron"]'), 'the edit form is still open');
  });

  await step('a change through the API appears live (SSE "schedules")', async () => {
    const now = await getSchedules();
    const list = now.body.schedules.map(({ cron, target, probe, enabled }) => ({ cron, target, probe, enabled }));
    list.push({ cron: '30 6 * * 1-5', enabled: true });
    const res = await fetch(`${base}/api/v1/schedules`, { method: 'PUT',
      headers: { 'Content-Type': 'application/json', ...AUTH }, body: JSON.stringify({ schedules: list }) });
    check(res.status === 200, `PUT answered ${res.status}: ${await res.text()}`);
    await page.waitForFunction(() => /on weekdays at 06:30/.test(document.querySelector('#schedules tbody').textContent),
      null, { timeout: WAIT_MS });
  });

  await step('screenshots of the panel (light, dark)', async () => {
    const panel = page.locator('#schedule');
    await panel.scrollIntoViewIfNeeded();
    await panel.screenshot({ path: join(OUT, 'schedule.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForFunction(() => window.dstmc.theme() === 'dark');
    await panel.screenshot({ path: join(OUT, 'schedule-dark.png') });
    log(`screenshots in ${OUT}`);
  });
  check(errors.length === 0, `JavaScript errors in the page: ${errors.join(' | ')}`);
}

await run(150000, [up], main);
