#!/usr/bin/env node
/*
 * ui.test.mjs - the web UI in headless Chromium against a real `dstmc api`.
 *
 * Starts `$DSTMC_BIN api` on a free port with the original's demo rows, opens the dashboard at
 * 1280x800 and checks: both charts hold points (24 h and 7 d), the headings, the results table,
 * a result POSTed to the API appearing live over SSE, "Run test now" saying no probe is running,
 * the thresholds form, Swagger UI, and that the page makes no request outside the API. Saves
 * ui.png (light) and ui-dark.png into $DSTMC_E2E_OUT. Uses Debian's /usr/bin/chromium through
 * playwright-core from web/node_modules; it never downloads a browser.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1';
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { chromium } = createRequire(join(ROOT, 'web', 'package.json'))('playwright-core');

const BIN = process.env.DSTMC_BIN;
const OUT = process.env.DSTMC_E2E_OUT || join(ROOT, 'build', 'e2e');
const TOTAL_MS = 55000;   /* the whole test, browser included */
const LISTEN_MS = 10000;  /* until the API prints its address */
const WAIT_MS = 15000;    /* any single wait in the page */

let api = null;           /* the dstmc child process */
let apiLog = '';          /* its stdout+stderr, shown when something fails */
let context = null;       /* the browser */
let profileDir = null;

function log(msg) { console.log(`[ui.test] ${msg}`); }

class CheckError extends Error {}

function check(cond, msg) { if (!cond) throw new CheckError(msg); }

/* Runs one named step, so a failure says where it happened. */
async function step(name, fn) {
  log(name);
  try {
    return await fn();
  } catch (e) {
    e.message = `${name}: ${e.message}`;
    throw e;
  }
}

/* Starts the API and resolves with its base URL, read from "listening on http://HOST:PORT". */
function startApi() {
  api = spawn(BIN, ['api', '--listen', '127.0.0.1:0', '--db', 'sqlite::memory:', '--seed-demo'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (d) => { apiLog = (apiLog + d).slice(-20000); };
  api.stdout.on('data', keep);
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no "listening on" line within ${LISTEN_MS} ms`)), LISTEN_MS);
    api.stderr.on('data', (d) => {
      keep(d);
      const m = apiLog.match(/listening on (http:\/\/[^\s]+)/);
      if (m) { clearTimeout(timer); ok(m[1].replace(/\/$/, '')); }
    });
    api.on('error', (e) => { clearTimeout(timer); fail(e); });
    api.on('exit', (code, sig) => {
      clearTimeout(timer);
      fail(new Error(`dstmc api exited (${code ?? sig}) before it listened`));
    });
  });
}

/* SIGTERM, then wait for the exit (SIGKILL after 5 s). */
async function stopApi() {
  if (!api || api.exitCode !== null || api.signalCode !== null) return;
  const exited = new Promise((ok) => api.once('exit', (code, sig) => ok(code ?? sig)));
  api.kill('SIGTERM');
  const timeout = new Promise((ok) => setTimeout(() => ok('timeout'), 5000));
  const how = await Promise.race([exited, timeout]);
  if (how === 'timeout') {
    log('dstmc api did not stop within 5 s of SIGTERM; killing it');
    api.kill('SIGKILL');
    await exited;
  } else if (how !== 0) {
    log(`dstmc api exited with ${how} after SIGTERM`);
  }
}

async function cleanup() {
  try { await context?.close(); } catch (e) { /* already gone */ }
  await stopApi();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
}

/* Both charts hold buckets, with at least one real (non-null) y value. */
function chartsHavePoints() {
  const d = window.dstmc;
  const full = (u) => !!u && u.data[0].length > 0 && u.data[1].some((v) => v != null);
  return !!d && full(d.charts.speed) && full(d.charts.ping);
}

async function main() {
  check(BIN, 'DSTMC_BIN is not set (path to the built dstmc binary)');
  mkdirSync(OUT, { recursive: true });
  const base = await step('start dstmc api', startApi);
  log(`API at ${base}`);

  profileDir = mkdtempSync(join(tmpdir(), 'dstmc-e2e-'));
  context = await step('launch chromium', () => chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
    timezoneId: 'Europe/Oslo',
    locale: 'en-GB',
  }));
  context.setDefaultTimeout(WAIT_MS);
  const page = context.pages()[0] || (await context.newPage());

  const pageErrors = [];
  const foreign = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(base + '/') && !u.startsWith('data:') && !u.startsWith('blob:')) foreign.push(u);
  });

  await step('open the dashboard, wait for both charts', async () => {
    await page.goto(`${base}/`);
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
    const row = await page.waitForSelector(`#results tbody tr[data-id="${id}"]`, { timeout: 5000 });
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

const watchdog = setTimeout(async () => {
  console.error(`[ui.test] FAIL: the test did not finish within ${TOTAL_MS / 1000} s`);
  if (apiLog) console.error(`--- dstmc api output ---\n${apiLog}`);
  await Promise.race([cleanup(), new Promise((ok) => setTimeout(ok, 3000))]);
  process.exit(1);
}, TOTAL_MS);

let failed = false;
try {
  await main();
  log('PASS');
} catch (e) {
  failed = true;
  console.error(`[ui.test] FAIL: ${e.message || e}`);
  if (!(e instanceof CheckError) && e.stack) console.error(e.stack);
  if (apiLog) console.error(`--- dstmc api output (last 20 kB) ---\n${apiLog}`);
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(failed ? 1 : 0);
