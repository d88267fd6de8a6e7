#!/usr/bin/env node
/*
 * dashboard.test.mjs - the dashboard's finish (issue 16) in headless Chromium against `dstmc up`
 * (14 days of demo results, an in-process probe; en-US, whose twelve-hour times are the widest):
 *  - at 390x844 and 1366x900, light and dark, over 24 h, 7 d and 30 d: no horizontal overflow
 *    (document.scrollingElement.scrollWidth <= innerWidth) and no two x-axis labels overlapping.
 *    uPlot draws its axes on a canvas, so the labels are checked as uPlot draws them: the strings
 *    it drew (axis._values, from the dashboard's own formatter) at the positions of its ticks
 *    (valToPos of axis._splits), each as wide as the axis font measures it on a canvas, centred
 *    on its tick; two neighbours must not share a pixel;
 *  - units: a 29340.8 Mbps result shows as 29.3 Gbps (tile, table column), 3.7 GB/s in MB/s;
 *    no "1 tests", one percentage format;
 *  - the results table: pages by cursor, sorting by download, the detail view of one result;
 *  - the time zone: UTC chosen, shown and used; an unknown zone refused;
 *  - "Run test now" with the picker (a target and a probe): live progress (phase, speed,
 *    elapsed) reaching the run message and the probe line, cleared at the result.
 * Saves dashboard-{phone,desktop}-{light,dark}.png into $DSTMC_E2E_OUT (docs/screenshots/ has
 * copies).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { AUTH, LOGIN, OUT, Service, WAIT_MS, chartsHavePoints, check, log, run, step } from './lib.mjs';

const TARGET = 'dummy:?seconds=5';
const up = new Service(['up', '--listen', '127.0.0.1:0', '--db', 'sqlite::memory:',
  '--target', 'dummy:', '--server-http', 'off', '--server-iperf3', 'off',
  '--seed-demo', '--agent', 'e2e-box', '--location', 'test rack']);

const VIEWPORTS = [['phone', 390, 844], ['desktop', 1366, 900]];

/* In the page: each chart's x-axis labels that overlap a neighbour, and how many were drawn. */
function axisLabelCheck() {
  const out = { drawn: 0, overlaps: [] };
  for (const [name, u] of Object.entries(window.dstmc.charts)) {
    if (!u) continue;
    const ax = u.axes[0];
    const ctx = document.createElement('canvas').getContext('2d');
    ctx.font = ax.font[0].replace(/[0-9.]+px/, `${ax.font[2]}px`); /* the CSS-pixel font */
    const width = u.bbox.width / uPlot.pxRatio;
    const boxes = [];
    ax._splits.forEach((t, i) => {
      const text = ax._values[i];
      if (text == null || text === '') return;
      const x = u.valToPos(t, 'x');
      if (x < 0 || x > width) return;
      const w = Math.max(...String(text).split('\n').map((l) => ctx.measureText(l).width));
      boxes.push({ text: String(text), l: x - w / 2, r: x + w / 2 });
    });
    out.drawn += boxes.length;
    boxes.sort((a, b) => a.l - b.l);
    for (let i = 1; i < boxes.length; i++) {
      if (boxes[i].l < boxes[i - 1].r) {
        out.overlaps.push(`${name}: "${boxes[i - 1].text}" and "${boxes[i].text}"`);
      }
    }
  }
  return out;
}

async function main(launch) {
  mkdirSync(OUT, { recursive: true });
  const base = await step('start dstmc up', () => up.start());
  /* en-US: twelve-hour times ("08:00 AM") are the widest labels, the ones that ran together */
  const { page } = await step('launch chromium (en-US)', () => launch({ locale: 'en-US' }));
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));

  await step('open the dashboard', async () => {
    await page.goto(`${base}/${LOGIN}`);
    await page.waitForFunction(chartsHavePoints, null, { timeout: WAIT_MS });
    await page.waitForFunction(() => document.querySelector('#conn').dataset.state === 'live');
  });

  const selectRange = async (range) => {
    const loads = await page.evaluate(() => window.dstmc.loads);
    await page.click(`#ranges button[data-range="${range}"]`);
    await page.waitForFunction((n) => window.dstmc.loads > n, loads, { timeout: WAIT_MS });
    await page.waitForFunction(chartsHavePoints, null, { timeout: WAIT_MS });
  };

  for (const [name, w, h] of VIEWPORTS) {
    for (const scheme of ['light', 'dark']) {
      await step(`${name} ${w}x${h} ${scheme}: fits, axis labels apart`, async () => {
        await page.setViewportSize({ width: w, height: h });
        await page.emulateMedia({ colorScheme: scheme });
        await page.waitForFunction((s) => window.dstmc.theme() === s, scheme);
        for (const range of ['30d', '7d', '24h']) {
          await selectRange(range);
          /* the charts follow the width (ResizeObserver) */
          await page.waitForFunction(() => Object.values(window.dstmc.charts).every((u) =>
            Math.abs(u.width - Math.max(300, u.root.parentElement.clientWidth)) < 2));
          const m = await page.evaluate(() => ({ sw: document.scrollingElement.scrollWidth, iw: innerWidth }));
          check(m.sw <= m.iw, `${range}: the page is ${m.sw} px wide in a ${m.iw} px viewport`);
          const a = await page.evaluate(axisLabelCheck);
          check(a.drawn >= 4, `${range}: only ${a.drawn} x-axis labels drawn`);
          check(a.overlaps.length === 0, `${range}: overlapping x-axis labels: ${a.overlaps.join('; ')}`);
        }
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.screenshot({ path: join(OUT, `dashboard-${name}-${scheme}.png`) });
      });
    }
  }
  await page.setViewportSize({ width: 1366, height: 900 });
  await page.emulateMedia({ colorScheme: 'light' });

  await step('units: 29340.8 Mbps is 29.3 Gbps, or 3.7 GB/s', async () => {
    const res = await fetch(`${base}/api/v1/results`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', ...AUTH },
      body: JSON.stringify({ id: '6f1d1d62-5d3b-4a8e-9a43-000000000016', time: new Date().toISOString(),
        status: 'ok', probe: 'fast-box', engine: 'dummy', target: 'dummy:', download_bps: 29340.8e6,
        upload_bps: 950e6, ping_ms: 1.2, jitter_ms: 0.3, bytes_down: 3.6e9, bytes_up: 1.2e8, duration_s: 20.5,
        streams: 8, server: { id: 7, host: 'speed.example.net', name: 'Oslo', sponsor: 'Example ISP', country: 'NO' } }),
    });
    check(res.status === 201, `POST /api/v1/results answered ${res.status}`);
    await page.waitForSelector('#results tr[data-id="6f1d1d62-5d3b-4a8e-9a43-000000000016"]');
    await page.waitForFunction(() => document.querySelector('#tile-download .v').textContent === '29.3');
    const tile = await page.textContent('#tile-download .tile-value');
    check(/29\.3\s+Gbps/.test(tile), `download tile reads "${tile}"`);
    const head = await page.textContent('#col-download');
    check(/Gbps/.test(head), `download column head reads "${head}"`);
    const cell = await page.textContent('#results tr[data-id="6f1d1d62-5d3b-4a8e-9a43-000000000016"] td:nth-child(4)');
    check(cell.trim() === '29.3', `its download cell reads "${cell}"`);
    await page.click('#settings-toggle');
    await page.selectOption('#unit-select', 'byte');
    await page.waitForFunction(() => /3\.7\s+GB\/s/.test(document.querySelector('#tile-download .tile-value').textContent));
    const kept = await page.evaluate(() => localStorage.getItem('dstmc.unit'));
    check(kept === 'byte', `the unit setting is stored as ${kept}`);
    const label = await page.evaluate(() => window.dstmc.charts.speed.axes[1].label);
    check(label === 'GB/s' || label === 'MB/s', `the speed chart's axis says ${label}`);
    await page.selectOption('#unit-select', 'bit');
    await page.waitForFunction(() => /Gbps/.test(document.querySelector('#tile-download .tile-value').textContent));
    const legend = await page.textContent('#speed-legend');
    check(/(Mbps|Gbps)/.test(legend), `the speed legend has no unit: "${legend}"`);
  });

  await step('one number format: no "1 tests", every percentage as "N.N %"', async () => {
    const text = await page.evaluate(() => document.body.innerText);
    check(!/\b1 tests\b/.test(text), 'the page says "1 tests"');
    const pcts = text.match(/\d[\d.,]*\s?%/g) || [];
    check(pcts.length > 0, 'no percentage on the page');
    const odd = pcts.filter((p) => !/^\d+\.\d %$/.test(p));
    check(odd.length === 0, `percentages in another format: ${odd.join(', ')}`);
  });

  await step('results: pages by cursor', async () => {
    await page.selectOption('#page-size', '10');
    await page.waitForFunction(() => document.querySelectorAll('#results tbody tr[data-id]').length === 10);
    const first = await page.$$eval('#results tbody tr[data-id]', (rs) => rs.map((r) => r.dataset.id));
    check(!(await page.isDisabled('#page-older')), '"Older" is disabled with 14 days of results');
    await page.click('#page-older');
    await page.waitForFunction((ids) => {
      const now = [...document.querySelectorAll('#results tbody tr[data-id]')].map((r) => r.dataset.id);
      return now.length === 10 && !now.some((id) => ids.includes(id));
    }, first);
    const info = await page.textContent('#page-info');
    check(/11–20/.test(info) && /page 2/.test(info), `page info reads "${info}"`);
    const times = await page.evaluate(() => window.dstmcResults.rows().map((r) => Date.parse(r.time)));
    const firstTimes = await page.evaluate(async () => {
      const r = await fetch('api/v1/results?limit=10').then((x) => x.json());
      return r.results.map((x) => Date.parse(x.time));
    });
    check(Math.max(...times) <= Math.min(...firstTimes), 'page 2 holds results newer than page 1');
    await page.click('#page-newer');
    await page.waitForFunction((ids) => {
      const now = [...document.querySelectorAll('#results tbody tr[data-id]')].map((r) => r.dataset.id);
      return now.length === 10 && now.every((id, i) => id === ids[i]);
    }, first);
    check(await page.isDisabled('#page-newer'), '"Newer" is enabled on the first page');
  });

  await step('results: sorting by download', async () => {
    const dl = () => page.evaluate(() => [...document.querySelectorAll('#results tbody tr[data-id]')]
      .map((tr) => window.dstmcResults.rows().find((r) => r.id === tr.dataset.id).download_bps)
      .filter((v) => typeof v === 'number'));
    /* the whole list is sorted, not the page shown: the first row is the fastest of all */
    const [top, bottom] = await page.evaluate(async () => Promise.all(['desc', 'asc'].map(async (o) =>
      (await (await fetch(`api/v1/results?sort=download&order=${o}&status=ok&limit=1`)).json()).results[0].download_bps)));
    await page.click('#col-download button');
    await page.waitForFunction(() => document.querySelector('#col-download').getAttribute('aria-sort') === 'descending');
    await page.waitForFunction((t) => window.dstmcResults.rows()[0]?.download_bps === t, top, { timeout: 30000 });
    let v = await dl();
    check(v.length > 2 && v.every((x, i) => !i || v[i - 1] >= x), `not descending: ${v}`);
    await page.click('#col-download button');
    await page.waitForFunction((b) => window.dstmcResults.rows().find((r) => typeof r.download_bps === 'number')?.download_bps === b,
      bottom, { timeout: 30000 });
    v = await dl();
    check(v.every((x, i) => !i || v[i - 1] <= x), `not ascending: ${v}`);
    await page.click('#results th[data-sort="time"] button'); /* back to newest first */
    await page.waitForFunction(() => document.querySelector('#results th[data-sort="time"]').getAttribute('aria-sort') === 'descending');
  });

  await step('results: the detail view of one result', async () => {
    const id = '6f1d1d62-5d3b-4a8e-9a43-000000000016'; /* the one posted above, with a server */
    await page.click(`#results tr[data-id="${id}"] button[data-act="detail"]`);
    await page.waitForSelector('#result-dialog[open]');
    await page.waitForFunction(() => /Result id/.test(document.querySelector('#result-fields').textContent));
    const fields = await page.$$eval('#result-fields dt', (d) => d.map((x) => x.textContent));
    for (const want of ['Time', 'Probe', 'Download', 'Upload', 'Ping', 'Server', 'Data received', 'Data sent',
      'Duration', 'Streams', 'Result id']) {
      check(fields.includes(want), `the detail view has no "${want}" (has ${fields.join(', ')})`);
    }
    const text = await page.textContent('#result-fields');
    for (const want of [id, '29.3 Gbps', 'Example ISP', '3.6 GB', '20.5 s']) {
      check(text.includes(want), `the detail view does not show "${want}": ${text}`);
    }
    await page.click('#result-close');
    await page.waitForSelector('#result-dialog:not([open])', { state: 'attached' });
  });

  await step('time zone: UTC chosen, shown, used; an unknown zone refused', async () => {
    const r = await page.evaluate(() => window.dstmcResults.rows()[0]);
    await page.fill('#tz-input', 'UTC');
    await page.dispatchEvent('#tz-input', 'change');
    await page.waitForFunction(() => /Times in UTC \(UTC\+00:00\)/.test(document.querySelector('#tz').textContent));
    const want = await page.evaluate((t) => new Intl.DateTimeFormat(undefined, { timeZone: 'UTC', year: 'numeric',
      month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }).format(new Date(t)), r.time);
    const shown = await page.textContent(`#results tr[data-id="${r.id}"] td.time`);
    check(shown.trim() === want, `the row's time reads "${shown}", expected "${want}" (UTC)`);
    check(await page.evaluate(() => localStorage.getItem('dstmc.tz')) === 'UTC', 'the zone is not kept');
    /* a half-hour zone: the 24 h axis ticks still fall on its whole hours (uPlot's tzDate) */
    await page.fill('#tz-input', 'Asia/Kolkata');
    await page.dispatchEvent('#tz-input', 'change');
    await page.waitForFunction(() => /Times in Asia\/Kolkata \(UTC\+05:30\)/.test(document.querySelector('#tz').textContent));
    const labels = await page.evaluate(() => window.dstmc.charts.speed.axes[0]._values.filter(Boolean));
    check(labels.length >= 3 && labels.every((l) => /^\d\d:00( [AP]M)?(\n|$)/.test(l)),
      `24 h labels in Asia/Kolkata: ${JSON.stringify(labels)}`);
    await page.fill('#tz-input', 'UTC');
    await page.dispatchEvent('#tz-input', 'change');
    await page.waitForFunction(() => /Times in UTC/.test(document.querySelector('#tz').textContent));
    await page.fill('#tz-input', 'Mars/Olympus_Mons');
    await page.dispatchEvent('#tz-input', 'change');
    await page.waitForSelector('#tz-error:not([hidden])');
    check(/UTC/.test(await page.textContent('#tz')), 'a refused zone changed the zone shown');
    await page.fill('#tz-input', '');
    await page.dispatchEvent('#tz-input', 'change');
    await page.waitForFunction(() => /Europe\/Oslo/.test(document.querySelector('#tz').textContent));
    await page.click('#settings-toggle');
  });

  await step('run now with the picker: live progress on the run message and the probe line', async () => {
    await page.click('#run-options');
    await page.waitForSelector('#run-form:not([hidden])');
    const probes = await page.$$eval('#run-probes option', (o) => o.map((x) => x.value));
    check(probes.includes('e2e-box'), `the probe picker offers ${probes.join(', ')}`);
    const targets = await page.$$eval('#run-targets option', (o) => o.map((x) => x.value));
    check(targets.includes('dummy:'), `the target picker offers ${targets.join(', ')}`);
    await page.fill('#run-target', TARGET);
    await page.fill('#run-probe', 'e2e-box');
    const sent = page.waitForRequest((r) => r.url().endsWith('/api/v1/run') && r.method() === 'POST');
    const answer = page.waitForResponse((r) => r.url().endsWith('/api/v1/run'));
    await page.click('#run-form button[type="submit"]');
    const body = JSON.parse((await sent).postData());
    check(body.target === TARGET && body.probe === 'e2e-box', `POST /api/v1/run sent ${JSON.stringify(body)}`);
    const { request_id: rid } = await (await answer).json();
    /* a progress event: phase, a speed, elapsed seconds, on the run message and the probe line */
    await page.waitForFunction(() => /Running on e2e-box: (download|upload) · [\d.]+ (Mbps|Gbps) · \d+ s/
      .test(document.querySelector('#run-msg').textContent), null, { timeout: WAIT_MS });
    const line = await page.textContent('#probe-status');
    check(/e2e-box running · (latency|download|upload)( · [\d.]+ (Mbps|Gbps))? · \d+ s/.test(line),
      `the probe line reads "${line}"`);
    log(`during the test: "${await page.textContent('#run-msg')}" / "${line}"`);
    await page.waitForFunction(() => /done/i.test(document.querySelector('#run-msg').textContent), null,
      { timeout: WAIT_MS });
    await page.waitForFunction(() => !/running ·/.test(document.querySelector('#probe-status').textContent));
    const res = await fetch(`${base}/api/v1/results?probe=e2e-box&limit=5`).then((x) => x.json());
    const mine = res.results.find((x) => x.request_id === rid);
    check(mine && mine.target === TARGET, `the result of the run: ${JSON.stringify(mine)}`);
  });

  check(errors.length === 0, `JavaScript errors in the page: ${errors.join(' | ')}`);
}

await run(240000, [up], main);
