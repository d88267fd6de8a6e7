#!/usr/bin/env node
/*
 * toystore_status.test.mjs - the toy store front end's live page (/status/) in headless Chromium
 * against `dstmc toystore up`: the toys table shows the catalog's stock, a buy makes Tux's stock
 * fall and the order count rise on the page without a reload, the page shows replica 3 leading;
 * replica 3 paused (SIGSTOP) makes the page show replica 2 leading and 3 without an answer, and
 * 3 leading again once it is resumed. The theme button (live.js, shared with the monitor's page)
 * switches the theme and the choice outlives a reload. Every request of the page stays on the front end, nothing
 * breaks the Content-Security-Policy. Saves toystore-status-desktop.png (1280 px wide),
 * toystore-status-phone.png (390 px) and toystore-status-failover.png (replica 3 paused) into
 * $DSTMC_E2E_OUT.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { OUT, Service, check, log, processStopped, run, step, waitFor } from './lib.mjs';

const dir = mkdtempSync(join(tmpdir(), 'dstmc-e2e-toystore-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const up = new Service(['toystore', 'up', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'),
  '--restock-interval', '0']);

/* The pid up last named for a child ("started order-3 (pid N)"). */
function pidOf(name) {
  const all = [...up.output.matchAll(/started (\S+) \(pid (\d+)\)/g)].filter((m) => m[1] === name);
  check(all.length > 0, `up named no pid for ${name}`);
  return Number(all[all.length - 1][2]);
}

async function buy(base, name, quantity) {
  const r = await fetch(`${base}/orders`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name, quantity }),
  });
  const body = await r.text();
  check(r.status === 200, `POST /orders answered ${r.status}: ${body}`);
  return JSON.parse(body).data.order_number;
}

/* What the page shows, read in the page. */
function shown() {
  const cell = (name, i) => document.querySelector(`#toys tr[data-name="${name}"]`)?.cells[i]?.textContent;
  return {
    tux: cell('Tux', 2),
    leader: document.querySelector('#leader').textContent,
    total: document.querySelector('#st-total').textContent,
    conn: document.querySelector('#conn').dataset.state,
    roles: [...document.querySelectorAll('#replicas .replica')].map((el) =>
      `${el.dataset.id}:${el.querySelector('[data-f="role"]').textContent}`).join(' '),
  };
}

async function main(launch) {
  mkdirSync(OUT, { recursive: true });
  await step('start dstmc toystore up', () => up.start()); /* the first child listening */
  const base = await step('up prints the front end', () => waitFor(() =>
    up.output.match(/^toy store: (http:\/\/\S+)\/$/m)?.[1], 'the "toy store: URL" line'));
  log(`front end at ${base}`);
  await step('replica 3 leads, every replica caught up', () => waitFor(async () => {
    const d = (await (await fetch(`${base}/status/data`)).json()).data;
    return d.leader === 3 && d.replicas.every((r) => r.live && r.ready);
  }, 'replica 3 leading'));

  const { page } = await step('launch chromium', launch);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('request', (r) => {
    const u = r.url();
    if (u !== `${base}/status` && !u.startsWith(`${base}/status/`) && !u.startsWith('data:')) {
      problems.push(`foreign request ${u}`);
    }
  });

  const before = await step('open /status/: the toys, their stock, replica 3 leading, live', async () => {
    await page.goto(`${base}/status`); /* the redirect to /status/ */
    check(page.url() === `${base}/status/`, `the page is at ${page.url()}`);
    const s = await waitFor(async () => {
      const v = await page.evaluate(shown);
      return v.conn === 'live' && v.tux && /^Replica 3\b/.test(v.leader) ? v : null;
    }, 'the page live with Tux and the leader');
    const rows = await page.$$eval('#toys tbody tr[data-name]', (r) => r.length);
    check(rows === 10, `${rows} toys in the table, expected Lab 3's 10`);
    check(s.roles === '3:leader 2:follower 1:follower', `the replicas show ${s.roles}`);
    log(`Tux ${s.tux}, leader "${s.leader}", orders ${s.total}`);
    return s;
  });

  await step('a buy: Tux\'s stock falls and the orders rise on the page, no reload', async () => {
    await buy(base, 'Tux', 3);
    const want = String(Number(before.tux) - 3);
    const s = await waitFor(async () => {
      const v = await page.evaluate(shown);
      return v.tux === want && v.total === '1' ? v : null;
    }, `Tux at ${want} and 1 order on the page`);
    const spark = await page.getAttribute('#spark .spark-line', 'd');
    check(spark && spark.startsWith('M'), 'no orders/s sparkline');
    log(`Tux ${s.tux}, orders ${s.total}`);
  });

  await step('screenshots: desktop 1280 px and phone 390 px', async () => {
    await page.screenshot({ path: join(OUT, 'toystore-status-desktop.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= 390, `the page is ${wide} px wide at 390 px`);
    await page.screenshot({ path: join(OUT, 'toystore-status-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
    log(`screenshots in ${OUT}`);
  });

  const pid = pidOf('order-3');
  try {
    await step('replica 3 paused: the page shows replica 2 leading, 3 without an answer', async () => {
      process.kill(pid, 'SIGSTOP');
      await waitFor(() => processStopped(pid), 'replica 3 stopped');
      await waitFor(async () => {
        const v = await page.evaluate(shown);
        return /^Replica 2\b/.test(v.leader) && v.roles.startsWith('3:down 2:leader') ? v : null;
      }, 'replica 2 leading on the page');
      await page.screenshot({ path: join(OUT, 'toystore-status-failover.png'), fullPage: true });
    });
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await step('replica 3 resumed: it catches up and leads again on the page', () => waitFor(async () => {
    const v = await page.evaluate(shown);
    return /^Replica 3\b/.test(v.leader) && v.roles === '3:leader 2:follower 1:follower' ? v : null;
  }, 'replica 3 leading again on the page'));

  await step('the theme button switches the theme; the choice outlives a reload', async () => {
    const theme = () => page.evaluate(() =>
      [document.documentElement.dataset.theme, localStorage.getItem('dstmc.theme')]);
    const [was] = await theme();
    check(was === 'light' || was === 'dark', `the page's theme is ${was}`);
    const want = was === 'dark' ? 'light' : 'dark';
    await page.click('#theme-toggle');
    const [now, kept] = await theme();
    check(now === want && kept === want, `after a click the theme is ${now}, stored ${kept}`);
    await page.reload();
    await waitFor(async () => (await page.evaluate(shown)).conn === 'live', 'the page live again');
    const [again] = await theme();
    check(again === want, `after a reload the theme is ${again}, chosen ${want}`);
    log(`theme ${was} → ${want}, kept over a reload`);
  });

  check(problems.length === 0, problems.join(' | '));
}

await run(240000, [up], main);
