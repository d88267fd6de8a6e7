#!/usr/bin/env node
/*
 * up.test.mjs - the whole loop of `dstmc up` in headless Chromium: the dashboard shows the
 * in-process probe alive, "Run test now" goes through the queue to the probe, and the result
 * lands on the page live, with the run message following it to "Done". Saves up-run.png.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { LOGIN, OUT, Service, WAIT_MS, chartsHavePoints, check, log, run, step } from './lib.mjs';

const up = new Service(['up', '--listen', '127.0.0.1:0', '--db', 'sqlite::memory:',
  '--target', 'dummy:', '--server-http', 'off', '--server-iperf3', 'off',
  '--seed-demo', '--agent', 'e2e-box', '--location', 'test rack']);

async function main(launch) {
  mkdirSync(OUT, { recursive: true });
  const base = await step('start dstmc up', () => up.start());
  const { page } = await step('launch chromium', launch);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));

  await step('open the dashboard; the probe is alive', async () => {
    await page.goto(`${base}/${LOGIN}`);
    await page.waitForFunction(chartsHavePoints, null, { timeout: WAIT_MS });
    await page.waitForFunction(() => /e2e-box/.test(document.body.textContent) &&
      document.querySelector('#conn').dataset.state === 'live');
  });

  const requestId = await step('"Run test now" is queued for the running probe', async () => {
    const answer = page.waitForResponse((r) => r.url().endsWith('/api/v1/run'));
    await page.click('#run-btn');
    const r = await answer;
    check(r.status() === 202, `POST /api/v1/run answered ${r.status()}`);
    const body = await r.json();
    check(body.probes_alive === 1, `probes_alive is ${body.probes_alive}, expected 1`);
    return body.request_id;
  });

  await step('the probe runs it and the result lands live', async () => {
    await page.waitForFunction(() => /done/i.test(document.querySelector('#run-msg').textContent));
    const res = await fetch(`${base}/api/v1/results?probe=e2e-box`);
    const { results } = await res.json();
    const mine = results.find((x) => x.request_id === requestId);
    check(mine && mine.status === 'ok' && mine.location === 'test rack',
      `no ok result of e2e-box for request ${requestId}: ${JSON.stringify(results[0])}`);
    await page.waitForSelector(`#results tbody tr[data-id="${mine.id}"]`, { timeout: WAIT_MS });
    check(!(await page.isDisabled('#run-btn')), '"Run test now" is still disabled after the result');
    log(`run message: ${await page.textContent('#run-msg')}`);
  });

  await step('screenshot', async () => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(OUT, 'up-run.png') });
  });
  check(errors.length === 0, `JavaScript errors in the page: ${errors.join(' | ')}`);
}

await run(150000, [up], main);
