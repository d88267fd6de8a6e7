#!/usr/bin/env node
/*
 * web_cors.test.mjs - `dstmc web` (the UI alone) in front of a `dstmc api` on another port.
 * Without --cors-origin the API lets the web's pages do nothing, and the page says what to do
 * (start the API with --cors-origin and the web's origin). Restarted on its port with that
 * origin, the same page loads, logs in through its dialog (the API's session cookie travels
 * with credentials:'include': the two are one site), makes writes (Pause, Run test now) that
 * reach the API, follows it live, and logs out. Saves web-cors-refused.png.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AUTH, OUT, Service, TOKEN, WAIT_MS, chartsHavePoints, check, log, run, step } from './lib.mjs';

const dir = mkdtempSync(join(tmpdir(), 'dstmc-e2e-webcors-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const db = `sqlite:${join(dir, 'dstmc.db')}`;
const closed = new Service(['api', '--listen', '127.0.0.1:0', '--db', db, '--seed-demo']);
const services = [closed];

async function main(launch) {
  mkdirSync(OUT, { recursive: true });
  const api = await step('start dstmc api (no --cors-origin)', () => closed.start());
  const web = new Service(['web', '--listen', '127.0.0.1:0', '--api', api]);
  services.push(web);
  const origin = await step('start dstmc web --api API', () => web.start());
  log(`API at ${api}, web at ${origin}`);
  const { page } = await step('launch chromium', launch);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));

  await step('without --cors-origin the page says how to allow it', async () => {
    await page.goto(`${origin}/`);
    await page.waitForSelector('#banner', { state: 'visible' });
    const text = await page.textContent('#banner-text');
    check(text.includes(`--cors-origin ${origin}`) && text.includes(api), `the banner reads "${text}"`);
    check(await page.isVisible('#login-btn'), 'no "Log in" button');
    log(`banner: ${text}`);
    await page.screenshot({ path: join(OUT, 'web-cors-refused.png') });
  });

  const open = new Service(['api', '--listen', new URL(api).host, '--db', db, '--cors-origin', origin]);
  services.push(open);
  await step('restart the API on its port with --cors-origin WEB', async () => {
    const problem = await closed.stop();
    check(!problem, problem);
    check(await open.start() === api, 'the API came back on another address');
  });

  await step('"Retry now": the page loads from the API', async () => {
    /* a click by script: the page's own retry (back-off) may have hidden the banner already */
    await page.evaluate(() => document.querySelector('#banner-retry').click());
    await page.waitForFunction(chartsHavePoints, null, { timeout: WAIT_MS });
    await page.waitForFunction(() => document.querySelector('#conn').dataset.state === 'live');
    check(await page.isHidden('#banner'), 'the banner still shows');
  });

  await step('log in through the page', async () => {
    await page.click('#login-btn');
    await page.fill('#login-token', TOKEN);
    await page.click('#login-submit');
    await page.waitForFunction(() => document.querySelector('#who-name').textContent === 'operator');
    check(await page.isVisible('#run-btn'), '"Run test now" is not shown after the login');
  });

  await step('writes from the web page reach the API', async () => {
    await page.waitForSelector('#sched-pause', { state: 'visible' });
    const paused = page.waitForResponse((r) => r.url() === `${api}/api/v1/schedules/pause`);
    await page.click('#sched-pause');
    check((await paused).status() === 200, 'POST /api/v1/schedules/pause was refused');
    await page.waitForFunction(() => document.querySelector('#sched-state').textContent.trim() === 'paused');
    const sched = await (await fetch(`${api}/api/v1/schedules`)).json();
    check(sched.paused === true, `the API's schedules: ${JSON.stringify(sched)}`);
    const ran = page.waitForResponse((r) => r.url() === `${api}/api/v1/run`);
    await page.click('#run-btn');
    check((await ran).status() === 202, 'POST /api/v1/run was refused');
    const metrics = await (await fetch(`${api}/metrics`, { headers: AUTH })).text();
    check(/^dstmc_run_requests_total 1$/m.test(metrics), 'the API counted no run request');
  });

  await step('log out through the page', async () => {
    await page.click('#logout-btn');
    await page.waitForSelector('#login-btn', { state: 'visible' });
    const s = await page.evaluate((u) => fetch(`${u}/api/v1/session`, { credentials: 'include' }).then((r) => r.json()), api);
    check(s.authenticated === false, `the API still knows the browser: ${JSON.stringify(s)}`);
    check(await page.isHidden('#run-btn'), '"Run test now" still shows');
  });
  check(errors.length === 0, `JavaScript errors in the page: ${errors.join(' | ')}`);
}

await run(60000, services, main);
