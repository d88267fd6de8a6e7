#!/usr/bin/env node
/*
 * login.test.mjs - logging in and out of the dashboard. Logged out it is read-only: charts,
 * tiles, table, probes and the schedule show, and every control that needs a credential is
 * hidden (not disabled). The "Log in" dialog takes a token (a wrong one: its error shows), the
 * top bar then names the token; the cookie is HttpOnly and SameSite=Strict and the page keeps
 * nothing in storage. A revoked login flips the page back to logged-out on its next write; read
 * and ingest tokens see no admin controls; the login link works; the 11th failure within a minute
 * shows the 429. A --private API shows a login panel (no error banner) and, logged in, loads
 * everything without a reload. Saves login-*.png.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BIN, LOGIN, OUT, Service, TOKEN, WAIT_MS, chartsHavePoints, check, log, run, step } from './lib.mjs';

const dir = mkdtempSync(join(tmpdir(), 'dstmc-e2e-login-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const db = `sqlite:${join(dir, 'dstmc.db')}`;
const up = new Service(['up', '--listen', '127.0.0.1:0', '--db', db, '--target', 'dummy:',
  '--server-http', 'off', '--server-iperf3', 'off', '--seed-demo']);
const priv = new Service(['api', '--listen', '127.0.0.1:0', '--db', 'sqlite::memory:', '--seed-demo', '--private']);

/* The admin controls; the schedule's row controls exist once per row. */
const ADMIN = ['#run-btn', '#sched-pause', '#sched-add', '#schedules [data-act="edit"]',
  '#schedules [data-act="remove"]', '#schedules [data-act="toggle"]', '#demo-remove',
  '#results [data-act="delete"]', '#results [data-act="exclude"]'];

/* `dstmc token new|revoke` on the store `up` uses; new answers the token. */
const token = (...args) => execFileSync(BIN, ['token', ...args, '--db', db], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

async function main(launch) {
  mkdirSync(OUT, { recursive: true });
  const base = await step('start dstmc up', () => up.start());
  const { context, page } = await step('launch chromium', launch);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));

  const adminShown = async (want) => {
    for (const sel of ADMIN) {
      const n = await page.locator(sel).count();
      check(n > 0, `no ${sel} in the page`);
      const shown = await page.$$eval(sel, (els) => els.map((e) => e.checkVisibility()));
      check(shown.every((v) => v === want), `${sel} is ${want ? 'hidden' : 'shown'}: ${shown}`);
    }
  };
  const loginWith = async (tok) => {
    await page.click('#login-btn');
    await page.waitForSelector('#login-dialog[open]');
    check(await page.getAttribute('#login-token', 'type') === 'password', 'the token field is not type=password');
    await page.fill('#login-token', tok);
    await page.click('#login-submit');
  };
  const loggedOut = () => page.waitForFunction(() => !document.querySelector('#login-btn').hidden &&
    document.querySelector('#who').hidden);

  await step('logged out: read-only, every admin control hidden', async () => {
    await page.goto(`${base}/`);
    await page.waitForFunction(chartsHavePoints, null, { timeout: WAIT_MS });
    await page.waitForSelector('#schedules [data-act="edit"]', { state: 'attached' });
    await page.waitForFunction(() => /vm/.test(document.querySelector('#probe-status').textContent));
    await loggedOut();
    await adminShown(false);
    check(await page.$$eval('#results tbody tr:not(.empty)', (r) => r.length) > 0, 'the table is empty');
    check(await page.isVisible('#schedule'), 'the schedule is not shown');
    check(/read-only/i.test(await page.textContent('#auth-hint')), 'no read-only hint');
    await page.screenshot({ path: join(OUT, 'login-out.png') });
  });

  await step('a wrong token: the dialog says so', async () => {
    await loginWith('dstmc_000000000000_not-a-token');
    await page.waitForFunction(() => /not a valid token/.test(document.querySelector('#login-error').textContent));
    check(await page.isVisible('#login-dialog'), 'the dialog closed');
    await page.screenshot({ path: join(OUT, 'login-dialog.png') });
    await page.click('#login-cancel');
  });

  await step('log in: the top bar names the token, the controls show', async () => {
    await loginWith(TOKEN);
    await page.waitForFunction(() => document.querySelector('#who-name').textContent === 'operator');
    check(!(await page.isVisible('#login-dialog')), 'the dialog is still open');
    check(await page.inputValue('#login-token') === '', 'the token field still holds the token');
    await adminShown(true);
    const cookie = (await context.cookies(base)).find((c) => c.name === `dstmc_session_${new URL(base).port}`);
    check(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', `cookie: ${JSON.stringify(cookie)}`);
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    check(!stored.includes(TOKEN) && !stored.includes(cookie.value.slice(0, 20)) && !/csrf/i.test(stored),
      `the page stored a secret: ${stored}`);
    await page.screenshot({ path: join(OUT, 'login-in.png') });
  });

  await step('log out: the session ends, the controls go', async () => {
    await page.click('#logout-btn');
    await loggedOut();
    await adminShown(false);
    const s = await page.evaluate(() => fetch('api/v1/session').then((r) => r.json()));
    check(s.authenticated === false, `GET /api/v1/session after logout: ${JSON.stringify(s)}`);
  });

  await step('a revoked login: the next write flips the page to logged out', async () => {
    const ops = token('new', '--name', 'ops', '--scope', 'admin');
    await loginWith(ops);
    await page.waitForFunction(() => document.querySelector('#who-name').textContent === 'ops');
    token('revoke', ops.split('_')[1]);
    const answer = page.waitForResponse((r) => r.url().endsWith('/api/v1/run'));
    await page.click('#run-btn');
    check((await answer).status() === 401, 'POST /api/v1/run after the revoke was not refused with 401');
    await loggedOut();
    await adminShown(false);
    const hint = await page.textContent('#auth-hint');
    check(/login has ended/.test(hint) && await page.getAttribute('#auth-hint', 'data-kind') === 'warn', `hint: ${hint}`);
  });

  for (const scope of ['read', 'ingest']) {
    await step(`a token with the ${scope} scope sees no admin controls`, async () => {
      await loginWith(token('new', '--name', `${scope}er`, '--scope', scope));
      await page.waitForFunction((n) => document.querySelector('#who-name').textContent === n, `${scope}er`);
      await adminShown(false);
      check(/admin scope/.test(await page.textContent('#auth-hint')), 'the hint does not say why');
      await page.click('#logout-btn');
      await loggedOut();
    });
  }

  await step('the login link logs in and leaves the address bar', async () => {
    await page.goto('about:blank'); /* from ${base}/ it would be a same-document navigation */
    await page.goto(`${base}/${LOGIN}`);
    await page.waitForFunction(() => document.querySelector('#who-name').textContent === 'operator');
    check(!page.url().includes('token'), `the address still holds the token: ${page.url()}`);
    await adminShown(true);
    await page.click('#logout-btn');
    await loggedOut();
  });

  await step('ten failures a minute: the dialog shows the 429', async () => {
    let text = '';
    for (let i = 0; i < 12 && !/too many/.test(text); i++) {
      if (!(await page.isVisible('#login-dialog'))) await page.click('#login-btn');
      await page.fill('#login-token', `dstmc_000000000000_wrong-${i}`);
      const answer = page.waitForResponse((r) => r.url().endsWith('/api/v1/session') && r.request().method() === 'POST');
      await page.click('#login-submit');
      await answer;
      await page.waitForFunction(() => !document.querySelector('#login-submit').disabled);
      text = await page.textContent('#login-error');
    }
    check(/too many failed attempts.*try again in \d+ s/.test(text), `the dialog says: ${text}`);
    log(`dialog: ${text}`);
  });

  const pbase = await step('start dstmc api --private', () => priv.start());

  await step('private, logged out: a login panel, no error banner, no data asked for', async () => {
    const asked = [];
    page.on('request', (r) => { if (/\/api\/v1\/(series|results|events)/.test(r.url())) asked.push(r.url()); });
    await page.goto(`${pbase}/`);
    await page.waitForSelector('#login-panel #login-form', { state: 'visible' });
    await page.waitForFunction(() => window.dstmcSession.who().locked);
    check(await page.isHidden('#banner'), `the error banner shows: ${await page.textContent('#banner')}`);
    check(!(await page.isVisible('#speed-chart')), 'the charts show');
    check(asked.length === 0, `the locked page asked for ${asked.join(', ')}`);
    await page.screenshot({ path: join(OUT, 'login-private.png') });
  });

  await step('private: logged in, everything loads without a reload', async () => {
    await page.evaluate(() => { window.sameDocument = true; });
    await page.fill('#login-panel #login-token', TOKEN);
    await page.click('#login-panel #login-submit');
    await page.waitForFunction(chartsHavePoints, null, { timeout: WAIT_MS });
    await page.waitForFunction(() => document.querySelector('#conn').dataset.state === 'live');
    check(await page.evaluate(() => window.sameDocument === true), 'the page was reloaded');
    check(await page.$$eval('#results tbody tr:not(.empty)', (r) => r.length) > 0, 'the table is empty');
    check(await page.isHidden('#login-panel') && await page.isHidden('#banner'), 'the panel or a banner shows');
  });

  await step('private: logged out, the panel is back', async () => {
    await page.click('#logout-btn');
    await page.waitForSelector('#login-panel', { state: 'visible' });
    check(!(await page.isVisible('#speed-chart')), 'the charts still show');
  });
  check(errors.length === 0, `JavaScript errors in the page: ${errors.join(' | ')}`);
}

await run(90000, [up, priv], main);
