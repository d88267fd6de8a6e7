#!/usr/bin/env node
/*
 * ui.test.mjs - the web UI in headless Chromium against a real `dstmc api`.
 *
 * Starts `$DSTMC_BIN api` on a free port with the original's demo rows, opens the dashboard at
 * 1280x800 and checks: both charts hold points (24 h and 7 d), the headings, the results table,
 * a result POSTed to the API appearing live over SSE, "Run test now" saying no probe is running,
 * the thresholds form, Swagger UI, and that the page makes no request outside the API. Saves
 * ui.png (light) and ui-dark.png into $DSTMC_E2E_OUT.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { LOGIN, OUT, Service, WAIT_MS, chartsHavePoints, check, log, run, step } from './lib.mjs';

const api = new Service(['api', '--listen', '127.0.0.1:0', '--db', 'sqlite::memory:', '--seed-demo']);

async function main(launch) {
  mkdirSync(OUT, { recursive: true });
  const base = await step('start dstmc api', () => api.start());
  log(`API at ${base}`);
  const { page } = await step('launch chromium', launch);

  const pageErrors = [];
  const foreign = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(base + '/') && !u.startsWith('data:') && !u.startsWith('blob:')) foreign.push(u);
  });

  await step('open the dashboard, wait for both charts', async () => {
    await page.goto(`${base}/${LOGIN}`);
    await page.waitForFunction(chartsHavePoints, null, { timeout: WAIT_MS });
  });

  await step('title and headings', async () => {
    const title = await page.title();
    check(/dstmc/i.test(title), `page title "${title}" does not name dstmc`);
    const h2 = await page.$$eval('h2', (hs) => hs.map((h) => h.textContent.trim()));
    for (const want of ['Download vs. Upload', 'Server Ping']) {
      check(h2.includes(want), `no heading "${want}" (headings: ${h2.join(' | ')})`);
    }
  });

  await step('switch to 7 d, charts still hold points', async () => {
    const loads = await page.evaluate(() => window.dstmc.loads);
    await page.click('#ranges button[data-range="7d"]');
    await page.waitForFunction((n) => {
      const d = window.dstmc;
      return d.loads > n && d.state.view.to - d.state.view.from > 6 * 864e5;
    }, loads, { timeout: WAIT_MS });
    await page.waitForFunction(chartsHavePoints, null, { timeout: WAIT_MS });
  });

  await step('results table has rows', async () => {
    const rows = await page.$$eval('#results tbody tr:not(.empty)', (r) => r.length);
    check(rows > 0, 'the results table is empty');
    log(`${rows} rows in the table`);
  });

  await step('a POSTed result appears live (SSE)', async () => {
    await page.waitForFunction(() => document.querySelector('#conn').dataset.state === 'live');
    const id = randomUUID();
    const res = await fetch(`${base}/api/v1/results`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        id, time: new Date().toISOString(), status: 'ok', probe: 'e2e-probe', engine: 'dummy',
        target: 'dummy:', download_bps: 123456789, upload_bps: 23456789, ping_ms: 7, jitter_ms: 0.8,
      }),
    });
    check(res.status === 201, `POST /api/v1/results answered ${res.status}: ${await res.text()}`);
    const row = await page.waitForSelector(`#results tbody tr[data-id="${id}"]`, { timeout: WAIT_MS });
    const text = await row.textContent();
    check(text.includes('e2e-probe') && text.includes('123.5'), `the new row reads "${text}"`);
  });

  await step('"Run test now" says no probe is running', async () => {
    const answer = page.waitForResponse((r) => r.url().endsWith('/api/v1/run'));
    await page.click('#run-btn');
    const r = await answer;
    check(r.status() === 202, `POST /api/v1/run answered ${r.status()}`);
    const body = await r.json();
    check(body.probes_alive === 0, `probes_alive is ${body.probes_alive}, expected 0`);
    await page.waitForFunction(() => /no probe/i.test(document.querySelector('#run-msg').textContent));
    log(`run message: ${await page.textContent('#run-msg')}`);
  });

  await step('thresholds form draws and remembers the ISP promise', async () => {
    await page.click('#settings-toggle');
    await page.fill('#thr-download', '70');
    await page.fill('#thr-upload', '10');
    await page.fill('#thr-ping', '15');
    await page.click('#settings button[type="submit"]');
    const saved = await page.evaluate(() => JSON.parse(localStorage.getItem('dstmc.thresholds')));
    check(saved && saved.download === 70 && saved.ping === 15, `stored thresholds: ${JSON.stringify(saved)}`);
    await page.waitForFunction(chartsHavePoints, null, { timeout: WAIT_MS });
  });

  await step('screenshots (light, dark)', async () => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(OUT, 'ui.png') });
    await page.screenshot({ path: join(OUT, 'ui-full.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForFunction(() => window.dstmc.theme() === 'dark');
    await page.waitForFunction(chartsHavePoints, null, { timeout: WAIT_MS });
    await page.screenshot({ path: join(OUT, 'ui-dark.png') });
    log(`screenshots in ${OUT}`);
  });

  await step('Swagger UI page loads', async () => {
    const res = await page.goto(`${base}/swagger/`);
    check(res && res.status() === 200, `GET /swagger/ answered ${res && res.status()}`);
    await page.waitForFunction(() => typeof window.ui === 'object' && document.querySelector('.swagger-ui'));
  });

  check(pageErrors.length === 0, `JavaScript errors in the page: ${pageErrors.join(' | ')}`);
  check(foreign.length === 0, `requests outside the API: ${foreign.join(', ')}`);
}

await run(150000, [api], main);
