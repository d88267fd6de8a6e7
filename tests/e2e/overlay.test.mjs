#!/usr/bin/env node
/*
 * overlay.test.mjs - "Compare probes (overlay)" in the probe selector, against a real `dstmc api`
 * with the demo rows plus results POSTed for the probes "attic" and "cellar": the download chart
 * then has a download and an upload line per probe (named in the legend), the ping chart one line
 * per probe, on one time axis; the overlay survives a range switch, takes in a new probe's result
 * live (SSE), caps at 8 probes and says so, and "All probes" brings the band view back. Saves
 * overlay.png, overlay-dark.png and overlay-cap.png into $DSTMC_E2E_OUT.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { OUT, Service, WAIT_MS, chartsHavePoints, check, log, run, step } from './lib.mjs';

const api = new Service(['api', '--listen', '127.0.0.1:0', '--db', 'sqlite::memory:', '--seed-demo']);

/* A result of `probe` `agoMin` minutes ago, speeds in Mbps. */
const result = (probe, agoMin, down, up, ping) => ({
  id: randomUUID(), time: new Date(Date.now() - agoMin * 6e4).toISOString(), status: 'ok', probe,
  engine: 'dummy', target: 'dummy:', download_bps: down * 1e6, upload_bps: up * 1e6, ping_ms: ping, jitter_ms: 1,
});

/* What the page's charts hold: series labels (without their unit, "attic ↓ (Mbps)" is
 * "attic ↓") and how many non-empty values each has. */
function chartSummary() {
  const bare = (l) => l.replace(/ \([^)]*\)$/, '');
  const sum = (u) => u && u.series.slice(1).map((s, i) => ({ label: bare(s.label),
    n: u.data[i + 1].filter((v) => v != null).length, dash: !!s.dash, stroke: s.stroke() }));
  const c = window.dstmc.charts;
  return { speed: sum(c.speed), ping: sum(c.ping), t: c.speed && c.speed.data[0].length,
    legend: [...document.querySelectorAll('#speed-legend .u-series th')].map((th) => bare(th.textContent.trim())),
    note: document.querySelector('#overlay-note').hidden ? null : document.querySelector('#overlay-note').textContent };
}

/* Waits until the speed chart has a line with points for each label. Runs in the page. */
function hasLines(labels) {
  const u = window.dstmc.charts.speed;
  return !!u && labels.every((l) => {
    const i = u.series.findIndex((s) => s.label.replace(/ \([^)]*\)$/, '') === l);
    return i > 0 && u.data[i].some((v) => v != null);
  });
}

async function main(launch) {
  mkdirSync(OUT, { recursive: true });
  const base = await step('start dstmc api', () => api.start());
  log(`API at ${base}`);
  const post = async (body) => {
    const res = await fetch(`${base}/api/v1/results`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    check(res.status === 201, `POST /api/v1/results answered ${res.status}: ${await res.text()}`);
  };

  await step('POST results for "attic" and "cellar"', async () => {
    const rows = [];
    /* attic every 30 min over 6 h; cellar every 45 min, offset, so their buckets differ */
    for (let m = 5; m < 360; m += 30) rows.push(result('attic', m, 88 + (m % 7), 21 + (m % 3), 9 + (m % 4)));
    for (let m = 20; m < 360; m += 45) rows.push(result('cellar', m, 41 + (m % 11), 7 + (m % 4), 24 + (m % 6)));
    await post(rows);
  });

  const { page } = await step('launch chromium', launch);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));

  await step('open the dashboard', async () => {
    await page.goto(`${base}/`);
    await page.waitForFunction(chartsHavePoints, null, { timeout: WAIT_MS });
    await page.waitForFunction(() => document.querySelector('#conn').dataset.state === 'live');
  });

  await step('the single view: bands, no per-probe lines', async () => {
    const s = await page.evaluate(chartSummary);
    check(s.speed.some((x) => x.label === 'Download speed'), `speed series: ${s.speed.map((x) => x.label)}`);
    check(!s.speed.some((x) => /attic/.test(x.label)), 'the single view already names attic');
    check(s.note === null, `the overlay note shows "${s.note}"`);
  });

  await step('turn on "Compare probes": a ↓ and ↑ line per probe', async () => {
    await page.selectOption('#probe', { label: 'Compare probes (overlay)' });
    await page.waitForFunction(hasLines, ['attic ↓', 'attic ↑', 'cellar ↓', 'cellar ↑'], { timeout: WAIT_MS });
    const s = await page.evaluate(chartSummary);
    log(`speed series: ${s.speed.map((x) => `${x.label}(${x.n})`).join(', ')}; ${s.t} x values`);
    for (const p of ['attic', 'cellar']) {
      const dl = s.speed.find((x) => x.label === `${p} ↓`), ul = s.speed.find((x) => x.label === `${p} ↑`);
      check(dl.n >= 6 && ul.n >= 6, `${p}: ${dl.n} download and ${ul.n} upload points`);
      check(!dl.dash && ul.dash, `${p}: upload should be dashed, download solid`);
      check(dl.stroke === ul.stroke, `${p}: download ${dl.stroke} and upload ${ul.stroke} differ in colour`);
      check(s.legend.includes(`${p} ↓`) && s.legend.includes(`${p} ↑`), `legend: ${s.legend.join(' | ')}`);
      check(s.ping.some((x) => x.label === p && x.n >= 6), `ping series: ${JSON.stringify(s.ping)}`);
    }
    const colours = new Set(s.speed.filter((x) => x.label.endsWith('↓')).map((x) => x.stroke));
    check(colours.size === s.speed.length / 2, `probes share colours: ${[...colours]}`);
    check(!s.speed.some((x) => x.label === 'Download speed'), 'the overlay still draws the all-probes line');
    check(s.note === null, `the overlay note shows "${s.note}" with only ${s.speed.length / 2} probes`);
    /* the all-probes series (tiles) are still loaded: one common time axis for all lines */
    const attic = await page.evaluate(() => window.dstmc.state.overlaySeries.probes.find((p) => p.name === 'attic'));
    check(attic.download.length === s.t - 2, `attic has ${attic.download.length} values on ${s.t - 2} x values`);
  });

  await step('screenshots (light, dark)', async () => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(OUT, 'overlay.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForFunction(() => window.dstmc.theme() === 'dark');
    await page.waitForFunction(hasLines, ['attic ↓', 'cellar ↓'], { timeout: WAIT_MS });
    await page.screenshot({ path: join(OUT, 'overlay-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.waitForFunction(() => window.dstmc.theme() === 'light');
  });

  await step('switch to 7 d: still one line per probe', async () => {
    const loads = await page.evaluate(() => window.dstmc.loads);
    await page.click('#ranges button[data-range="7d"]');
    await page.waitForFunction((n) => window.dstmc.loads > n && window.dstmc.state.view.to - window.dstmc.state.view.from > 6 * 864e5,
      loads, { timeout: WAIT_MS });
    await page.waitForFunction(hasLines, ['attic ↓', 'cellar ↓', 'teodoran ↓'], { timeout: WAIT_MS });
  });

  await step('a new probe\'s result joins the overlay live (SSE)', async () => {
    await post([result('garage', 1, 150, 40, 5)]);
    await page.waitForFunction(hasLines, ['garage ↓', 'garage ↑', 'attic ↓'], { timeout: WAIT_MS });
  });

  await step('more than 8 probes: 8 are drawn and the page says so', async () => {
    await post(Array.from({ length: 7 }, (_, i) => result(`probe-${i + 1}`, 2 + i, 20 + 10 * i, 5 + i, 10 + i)));
    await page.waitForFunction(() => !document.querySelector('#overlay-note').hidden, null, { timeout: WAIT_MS });
    const s = await page.evaluate(chartSummary);
    check(s.speed.length === 16 && s.ping.length === 8, `${s.speed.length} speed and ${s.ping.length} ping lines`);
    check(/8 of 11 probes/.test(s.note), `the note reads "${s.note}"`);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(OUT, 'overlay-cap.png') });
    log(`note: ${s.note}`);
  });

  await step('"All probes" brings back the single view', async () => {
    await page.selectOption('#probe', '');
    await page.waitForFunction(() => {
      const u = window.dstmc.charts.speed;
      return u && u.series.some((s) => /^Download speed\b/.test(s.label)) && !u.series.some((s) => / ↓( \(.*\))?$/.test(s.label));
    }, null, { timeout: WAIT_MS });
    await page.waitForFunction(chartsHavePoints, null, { timeout: WAIT_MS });
    check(await page.isHidden('#overlay-note'), 'the overlay note stays shown');
    check(await page.evaluate(() => window.dstmc.state.overlaySeries === null), 'overlay data kept after leaving');
  });

  check(pageErrors.length === 0, `JavaScript errors in the page: ${pageErrors.join(' | ')}`);
  log(`screenshots in ${OUT}`);
}

await run(150000, [api], main);
