#!/usr/bin/env node
/*
 * delete.test.mjs - deleting and excluding results from the dashboard. Logged out, no delete,
 * exclude or "Remove demo data" control shows. Logged in as admin: "Exclude" fades a result's
 * row, marks it excluded in the API and takes it out of the charts' series; "Include" undoes it;
 * "Delete" asks first (dismissed: nothing happens; accepted: the row and the result are gone);
 * "Remove demo data" asks with the count the API gave first, then leaves only real results.
 * Saves delete-*.png.
 */
import { join } from 'node:path';

import { AUTH, LOGIN, OUT, Service, WAIT_MS, chartsHavePoints, check, run, step } from './lib.mjs';

const api = new Service(['api', '--listen', '127.0.0.1:0', '--db', 'sqlite::memory:', '--seed-demo',
  '--access-log=false']);

const ADMIN = ['#demo-remove', '#results [data-act="delete"]', '#results [data-act="exclude"]'];

async function main(launch) {
  const base = await api.start();
  const now = Date.now();
  /* two real results, newest first in the table: an outlier of 40 Gbit/s, and a normal one */
  const real = [
    { id: crypto.randomUUID(), time: now - 60000, probe: 'home', engine: 'dummy', download_bps: 40e9, upload_bps: 2e7, ping_ms: 9 },
    { id: crypto.randomUUID(), time: now - 120000, probe: 'home', engine: 'dummy', download_bps: 9e7, upload_bps: 2e7, ping_ms: 9 },
  ];
  const res = await fetch(`${base}/api/v1/results`, { method: 'POST', headers: { ...AUTH, 'Content-Type': 'application/json' }, body: JSON.stringify(real) });
  check(res.status === 201, `POST /api/v1/results: ${res.status}`);
  const get = async (path) => (await fetch(`${base}${path}`)).json();
  const maxDownload = async () => Math.max(...(await get(`/api/v1/series?from=${now - 3600000}&to=${now + 60000}&probe=home`)).download_max);

  const { page } = await step('launch chromium', launch);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const row = (id) => `#results tr[data-id="${id}"]`;
  const shown = async (sel) => page.$$eval(sel, (els) => els.length > 0 && els.every((e) => e.checkVisibility()));

  await step('logged out: no delete, exclude or remove-demo control shows', async () => {
    await page.goto(`${base}/`);
    await page.waitForFunction(chartsHavePoints, null, { timeout: WAIT_MS });
    await page.waitForSelector(row(real[0].id));
    for (const sel of ADMIN) {
      check(await page.locator(sel).count() > 0, `no ${sel} in the page`);
      check(!(await page.$$eval(sel, (els) => els.some((e) => e.checkVisibility()))), `${sel} shows logged out`);
    }
  });

  await step('logged in as admin: the controls show', async () => {
    await page.goto('about:blank'); /* else only the hash changes: no new page reads the link */
    await page.goto(`${base}/${LOGIN}`);
    await page.waitForFunction(() => !document.querySelector('#who').hidden);
    await page.waitForSelector(row(real[0].id));
    for (const sel of ADMIN) check(await shown(sel), `${sel} is hidden for the admin`);
    check(await maxDownload() === 40e9, 'the outlier is not in the series to begin with');
  });

  await step('exclude the outlier: marked, faded, out of the series; include undoes it', async () => {
    await page.click(`${row(real[0].id)} [data-act="exclude"]`);
    await page.waitForSelector(`${row(real[0].id)}.excluded`);
    check(/Include/.test(await page.textContent(`${row(real[0].id)} [data-act="exclude"]`)), 'the button does not offer Include');
    check((await get(`/api/v1/results/${real[0].id}`)).excluded === true, 'the API does not say excluded');
    check(await maxDownload() === 9e7, 'the excluded result is still in the series');
    await page.screenshot({ path: join(OUT, 'delete-excluded.png') });
    await page.click(`${row(real[0].id)} [data-act="exclude"]`);
    await page.waitForSelector(`${row(real[0].id)}:not(.excluded)`);
    check((await get(`/api/v1/results/${real[0].id}`)).excluded === undefined, 'still excluded in the API');
    check(await maxDownload() === 40e9, 'the included result is not back in the series');
  });

  await step('delete asks first: dismissed, nothing goes; accepted, the result is gone', async () => {
    let asked = '';
    page.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
    await page.click(`${row(real[0].id)} [data-act="delete"]`);
    await page.waitForFunction(() => !document.querySelector('#results [data-act="delete"]:disabled'));
    check(/Delete the result of .*home.*cannot be undone/.test(asked), `the question was: ${asked}`);
    check((await fetch(`${base}/api/v1/results/${real[0].id}`)).status === 200, 'deleted though dismissed');
    page.once('dialog', (d) => d.accept());
    await page.click(`${row(real[0].id)} [data-act="delete"]`);
    await page.waitForSelector(row(real[0].id), { state: 'detached' });
    check((await fetch(`${base}/api/v1/results/${real[0].id}`)).status === 404, 'the result is still stored');
  });

  await step('remove demo data: the count first, then only real results stay', async () => {
    let asked = '';
    page.once('dialog', (d) => { asked = d.message(); d.accept(); });
    await page.click('#demo-remove');
    await page.waitForFunction(() => /Removed 1345 demo results/.test(document.querySelector('#results-msg').textContent));
    check(/Delete 1345 demo results\? Real results stay\./.test(asked), `the question was: ${asked}`);
    const left = (await get('/api/v1/results?limit=1000')).results.map((r) => r.id);
    check(left.length === 1 && left[0] === real[1].id, `left: ${left}`);
    await page.waitForFunction((id) => [...document.querySelectorAll('#results tbody tr')].length === 1 &&
      !!document.querySelector(`#results tr[data-id="${id}"]`), real[1].id);
    await page.screenshot({ path: join(OUT, 'delete-demo-removed.png') });
    /* again: nothing to remove, and no question */
    await page.click('#demo-remove');
    await page.waitForFunction(() => /no demo data/.test(document.querySelector('#results-msg').textContent));
  });
  check(errors.length === 0, `JavaScript errors in the page: ${errors.join(' | ')}`);
}

await run(90000, [api], main);
