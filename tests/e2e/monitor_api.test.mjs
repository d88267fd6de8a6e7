#!/usr/bin/env node
/*
 * monitor_api.test.mjs - the web UI through `dstmc monitor` in front of two `dstmc api` replicas.
 *
 * Starts api1 (with the original's demo rows) and api2 on one SQLite file, and the monitor in
 * front of them (api1 first); once /monitor/status sends traffic to api1, opens the dashboard at
 * the monitor's address and checks: every request of the page goes to the monitor and is
 * answered by api1 (by api2 only if the monitor's status shows it changed its mind meanwhile);
 * a result POSTed through the monitor appears live. Then api1 is SIGKILLed: the page's event stream is cut, EventSource
 * reconnects through the monitor (now to api2) without a page reload; a result POSTed right after
 * the kill appears, a later one arrives over the new stream itself, and no error banner shows.
 * Saves monitor-api-before.png and monitor-api-after.png into $DSTMC_E2E_OUT.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  LOGIN, OUT, Service, WAIT_MS, check, log, monitorChanged, monitorStatus, monitorView, run, step,
  waitMonitorSettled,
} from './lib.mjs';

const dir = mkdtempSync(join(tmpdir(), 'dstmc-e2e-monitor-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const db = `sqlite:${join(dir, 'results.db')}`;
const apiArgs = ['api', '--listen', '127.0.0.1:0', '--db', db, '--access-log=false'];
const api1 = new Service([...apiArgs, '--seed-demo']);
const api2 = new Service(apiArgs);
let monitor = null; /* its arguments need the replicas' addresses */

const rowOf = (id) => `#results tbody tr[data-id="${id}"]`;

/* A result as a probe posts it, timed now. */
function result(probe, down) {
  return {
    id: randomUUID(), time: new Date().toISOString(), status: 'ok', probe, engine: 'dummy',
    target: 'dummy:', download_bps: down, upload_bps: 23456789, ping_ms: 7, jitter_ms: 0.8,
  };
}

/* POSTs r through the monitor; resolves with the backend that stored it. */
async function post(base, r) {
  const res = await fetch(`${base}/api/v1/results`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(r),
  });
  check(res.status === 201, `POST /api/v1/results answered ${res.status}: ${await res.text()}`);
  return res.headers.get('x-dstmc-backend');
}

/* Runs in the page before its scripts: counts EventSource opens and the result events. */
function watchEvents() {
  const Native = window.EventSource;
  const seen = (window.__sse = { created: 0, opens: 0, results: [] });
  window.EventSource = class extends Native {
    constructor(...args) {
      super(...args);
      seen.created++;
      this.addEventListener('open', () => { seen.opens++; });
      this.addEventListener('result', (e) => {
        try { seen.results.push(JSON.parse(e.data).id); } catch (err) { /* not ours */ }
      });
    }
  };
}

async function main(launch) {
  mkdirSync(OUT, { recursive: true });
  const [u1, u2] = await step('start two dstmc api replicas on one SQLite file', async () => {
    const a = await api1.start(); /* creates and fills the store before api2 opens it */
    return [a, await api2.start()];
  });
  /* a killed replica refuses at once: the health check's timeout can be generous, so that a
   * busy machine's slow GET /ping never flips a replica */
  monitor = new Service(['monitor', '--backend', u1, '--backend', u2, '--listen', '127.0.0.1:0',
    '--calculate=false', '--poll-ms', '200', '--timeout-ms', '5000']);
  services.unshift(monitor);
  const base = await step('start dstmc monitor in front of them', () => monitor.start());
  log(`replicas ${u1} ${u2}, monitor at ${base}`);
  const settled = monitorView(await step('the monitor sends traffic to api1',
    () => waitMonitorSettled(base, 0)));
  /* api2 may have answered before the kill only if the monitor changed its mind meanwhile */
  const moved = async () => monitorChanged(settled, monitorView(await monitorStatus(base)));
  const { page } = await step('launch chromium', launch);

  const pageErrors = [];
  const foreign = [];
  const backends = []; /* [path, X-Dstmc-Backend, sent at] of every answer the page got */
  const sentAt = new WeakMap();
  let navigations = 0;
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('request', (r) => {
    sentAt.set(r, Date.now());
    const u = r.url();
    if (!u.startsWith(base + '/') && !u.startsWith('data:') && !u.startsWith('blob:')) {
      foreign.push(u);
    }
  });
  page.on('response', (r) => {
    backends.push([new URL(r.url()).pathname, r.headers()['x-dstmc-backend'],
      sentAt.get(r.request())]);
  });
  page.on('load', () => { navigations++; }); /* documents loaded (the login link's replaceState is none) */
  await page.addInitScript(watchEvents);

  await step('open the dashboard through the monitor, wait until it is live', async () => {
    await page.goto(`${base}/${LOGIN}`);
    await page.waitForFunction(() => window.dstmc?.isReady && window.__sse.opens === 1);
    await page.waitForFunction(() => document.querySelector('#conn').dataset.state === 'live');
    const rows = await page.$$eval('#results tbody tr:not(.empty)', (r) => r.length);
    check(rows > 0, 'the results table is empty (the demo rows did not come through)');
    const off = backends.filter(([, b]) => b !== '0');
    check(off.length === 0 || await moved(), `answers not from api1: ${JSON.stringify(off)}`);
    log(`${backends.length} answers, ${backends.length - off.length} from api1; ` +
      `${rows} rows in the table`);
  });

  await step('a result POSTed through the monitor appears live', async () => {
    const r = result('before-kill', 111111111);
    check((await post(base, r)) === '0' || await moved(), 'the POST was not stored by api1');
    const row = await page.waitForSelector(rowOf(r.id), { timeout: WAIT_MS });
    const text = await row.textContent();
    check(text.includes('before-kill') && text.includes('111.1'), `the new row reads "${text}"`);
    check(await page.evaluate((id) => window.__sse.results.includes(id), r.id), 'no result event');
    await page.screenshot({ path: join(OUT, 'monitor-api-before.png'), fullPage: true });
  });

  let t0 = 0; /* when api1 was gone: every request sent after it is api2's */
  await step('SIGKILL api1 (the replica taking traffic)', async () => {
    await page.evaluate(() => {
      const states = (window.__conn = []);
      new MutationObserver(() => states.push(document.querySelector('#conn').dataset.state))
        .observe(document.querySelector('#conn'), { attributeFilter: ['data-state'] });
    });
    const exited = new Promise((ok) => api1.proc.once('exit', ok));
    api1.proc.kill('SIGKILL');
    await exited;
    t0 = Date.now();
  });

  const r2 = result('after-kill', 222222222);
  await step('a result POSTed right after the kill appears without a reload', async () => {
    check((await post(base, r2)) === '1', 'the POST after the kill was not stored by api2');
    await page.waitForSelector(rowOf(r2.id), { timeout: WAIT_MS });
    const how = await page.evaluate((id) => window.__sse.results.includes(id), r2.id);
    const via = how ? 'its event' : 'the reload on reconnect';
    log(`row ${Date.now() - t0} ms after the kill (via ${via})`);
  });

  await step('the event stream reconnected through the monitor to api2', async () => {
    await page.waitForFunction(() => window.__sse.opens >= 2 &&
      document.querySelector('#conn').dataset.state === 'live', null, { timeout: WAIT_MS });
    const conn = await page.evaluate(() => [window.__sse.created, window.__sse.opens,
      window.__conn]);
    log(`EventSource objects ${conn[0]}, opens ${conn[1]}, #conn went ${conn[2].join(' → ')}`);
    check(conn[2].includes('reconnecting') || conn[2].includes('offline'),
      `the page never noticed the cut stream: ${conn[2].join(', ')}`);
    const events = backends.filter(([p]) => p === '/api/v1/events').map(([, b]) => b);
    check(events.length >= 2 && events[0] === '0' && events[events.length - 1] === '1',
      `event streams answered by ${events.join(', ')}`);
    const after = backends.filter(([, b, t]) => t >= t0 && b !== '1');
    check(after.length === 0, `not answered by api2 after the kill: ${JSON.stringify(after)}`);
  });

  await step('a later result arrives over the new stream', async () => {
    const r3 = result('live-again', 133333333);
    check((await post(base, r3)) === '1', 'the POST was not stored by api2');
    await page.waitForFunction((id) => window.__sse.results.includes(id), r3.id,
      { timeout: WAIT_MS });
    const row = await page.waitForSelector(rowOf(r3.id), { timeout: WAIT_MS });
    check((await row.textContent()).includes('133.3'), 'the row does not show 133.3 Mbps');
  });

  await step('no error banner, no reload, all answers in the table', async () => {
    const banner = await page.$eval('#banner', (b) => (b.hidden ? null : b.textContent.trim()));
    check(banner === null, `the error banner shows: ${banner}`);
    check(navigations === 1, `the page navigated ${navigations} times`);
    const ids = await page.$$eval('#results tbody tr', (rs) => rs.map((r) => r.dataset.id));
    check(ids.includes(r2.id), 'the row stored right after the kill is gone');
    await page.screenshot({ path: join(OUT, 'monitor-api-after.png'), fullPage: true });
    log(`screenshots in ${OUT}`);
  });

  check(pageErrors.length === 0, `JavaScript errors in the page: ${pageErrors.join(' | ')}`);
  check(foreign.length === 0, `requests outside the monitor: ${foreign.join(', ')}`);
}

/* the monitor first: it is stopped before the replica behind it */
const services = [api2, api1];
await run(150000, services, main);
