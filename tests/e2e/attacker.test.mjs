#!/usr/bin/env node
/*
 * attacker.test.mjs - Cross-site requests cannot change anything.
 *
 * `dstmc up` holds a known state (two schedules, the 1345 demo results). Pages of two other
 * origins - same site (127.0.0.1 on another port: the SameSite=Strict cookie IS sent) and cross
 * site (localhost) - try every write of the API, first with the browser logged out, then logged
 * in through the real UI: no-cors fetches with text/plain JSON, fetches with credentials and
 * application/json (preflighted), HTML forms (urlencoded, and text/plain shaped as JSON),
 * sendBeacon (text, and a JSON Blob), GETs of write paths (img, script). Every attempt is waited
 * for in the API's access log (or seen blocked by the browser itself); then nothing has changed
 * (the schedules document byte for byte, the result count, no run request in the metric or as an
 * SSE event, no new probe, the same session) and the API logged each refusal.
 * The control: the same writes from the API's own page are refused without JSON (415) and without
 * the session's CSRF header (403), and succeed with both - so the test fails if a check is off.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AUTH, BIN, OUT, Service, TOKEN, WAIT_MS, check, log, run, step } from './lib.mjs';

const dir = mkdtempSync(join(tmpdir(), 'dstmc-e2e-attacker-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const db = `sqlite:${join(dir, 'dstmc.db')}`;
const up = new Service(['up', '--listen', '127.0.0.1:0', '--db', db, '--target', 'dummy:',
  '--server-http', 'off', '--server-iperf3', 'off', '--seed-demo', '--access-log',
  '--schedule', '15 4 1 1 *']);
const SCHEDULES = { paused: false, schedules: [{ cron: '15 4 1 1 *', enabled: true },
  { cron: '*/5 * * * *', target: 'dummy:', probe: 'vm', enabled: false }] };

/* The writes: POSTs a page can send without a preflight, and those that need one. */
const POSTS = ['/api/v1/results', '/SpeedTest', '/api/v1/run', '/api/v1/schedules/pause',
  '/api/v1/probes/mallory/heartbeat', '/api/v1/session'];
const PREFLIGHTED = [['PUT', '/api/v1/schedules'], ['POST', '/api/v1/run'], ['DELETE', '/api/v1/session']];
const GETS = ['/api/v1/run', '/api/v1/schedules/pause', '/api/v1/schedules/resume',
  '/api/v1/probes/mallory/heartbeat'];

/* What the API logs: access lines {method, path, status} and refusals {method, path, origin}. */
const access = [];
const refusals = [];
function watchLog(proc) {
  let partial = '';
  proc.stderr.on('data', (d) => {
    const lines = (partial + d).split('\n');
    partial = lines.pop();
    for (const l of lines) {
      let m = l.match(/ api: ([A-Z]+) (\S+) (\d{3}) /);
      if (m) access.push({ method: m[1], path: m[2], status: Number(m[3]) });
      m = l.match(/refused ([A-Z]+) (\S+) from a page of (\S+) /);
      if (m) refusals.push({ method: m[1], path: m[2], origin: m[3] });
    }
  });
}

/* Whether entries hold a distinct entry for each wanted [method ("A|B": either), path]. */
function covered(want, entries) {
  const used = new Set();
  return want.every(([m, p]) => {
    const i = entries.findIndex((e, k) => !used.has(k) && m.split('|').includes(e.method) && e.path === p);
    used.add(i);
    return i >= 0;
  });
}

/* Polls cond until it holds, at most ms. */
async function until(cond, what, ms = WAIT_MS) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    check(Date.now() < end, `no ${what} within ${ms} ms`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

/* One kind of attack, run inside the attacker's page; says what the browser made of each try. */
async function attack({ api, kind, bodies, posts, preflighted, gets }) {
  const bound = (p) => Promise.race([p, new Promise((ok) => setTimeout(() => ok('no answer in 10 s'), 10000))]);
  const out = [];
  if (kind === 'no-cors') {
    for (const p of posts) {
      const r = await fetch(api + p, { method: 'POST', mode: 'no-cors', credentials: 'include',
        headers: { 'Content-Type': 'text/plain' }, body: bodies[p] }).then((x) => x.type, (e) => `error ${e}`);
      out.push([p, r]);
    }
  } else if (kind === 'preflighted') {
    for (const [method, p] of preflighted) {
      const r = await fetch(api + p, { method, credentials: 'include', body: method === 'DELETE' ? undefined : bodies[p],
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': 'guessed' } })
        .then((x) => `answered ${x.status}`, () => 'blocked');
      out.push([`${method} ${p}`, r]);
    }
  } else if (kind.startsWith('form')) {
    const enctype = kind === 'form-text' ? 'text/plain' : 'application/x-www-form-urlencoded';
    for (const p of posts) {
      const frame = Object.assign(document.createElement('iframe'), { name: `f${Math.random()}` });
      document.body.append(frame);
      const form = Object.assign(document.createElement('form'), { method: 'POST', action: api + p, enctype, target: frame.name });
      /* text/plain sends "name=value": split so that the body reads {..., "z":"="} */
      const json = bodies[p];
      const [name, value] = enctype === 'text/plain' ? [`${json.slice(0, -1)}${json === '{}' ? '' : ','}"z":"`, '"}'] : [json, ''];
      form.append(Object.assign(document.createElement('input'), { type: 'hidden', name, value }));
      document.body.append(form);
      const loaded = new Promise((ok) => { frame.onload = () => ok('loaded'); });
      form.submit();
      out.push([p, await bound(loaded)]);
    }
  } else if (kind.startsWith('beacon')) {
    for (const p of posts) {
      const data = kind === 'beacon-json' ? new Blob([bodies[p]], { type: 'application/json' }) : bodies[p];
      let r;
      try { r = navigator.sendBeacon(api + p, data) ? 'queued' : 'refused'; } catch (e) { r = `threw ${e.name}`; }
      out.push([p, r]);
    }
  } else if (kind === 'get') {
    for (const p of gets) {
      for (const tag of ['img', 'script']) {
        const el = document.createElement(tag);
        const done = new Promise((ok) => { el.onload = () => ok('load'); el.onerror = () => ok('error'); });
        el.src = api + p;
        document.body.append(el);
        out.push([`${tag} ${p}`, await bound(done)]);
      }
    }
  }
  return out;
}

async function main(launch) {
  mkdirSync(OUT, { recursive: true });
  const base = await step('start dstmc up', () => up.start());
  watchLog(up.proc);
  const mallory = execFileSync(BIN, ['token', 'new', '--db', db, '--name', 'mallory', '--scope', 'read'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  const put = await fetch(`${base}/api/v1/schedules`, { method: 'PUT',
    headers: { 'Content-Type': 'application/json', ...AUTH }, body: JSON.stringify(SCHEDULES) });
  check(put.status === 200, `PUT /api/v1/schedules answered ${put.status}`);

  const bodies = {
    '/api/v1/results': JSON.stringify({ id: randomUUID(), time: new Date().toISOString(), status: 'ok',
      probe: 'mallory', engine: 'dummy', target: 'dummy:', download_bps: 1e9, upload_bps: 1e9, ping_ms: 1 }),
    '/SpeedTest': JSON.stringify({ sessionId: randomUUID(), user: 'mallory', device: 1, testDate: new Date().toISOString(),
      data: { speeds: { download: 999, upload: 999 },
        client: { ip: '10.6.6.6', latitude: 0, longitude: 0, isp: 'Mallory', country: 'NO' },
        server: { host: 'mallory.example', latitude: 0, longitude: 0, country: 'NO', distance: 1, ping: 1, id: 1 } } }),
    '/api/v1/run': JSON.stringify({ probe: 'mallory' }),
    '/api/v1/schedules/pause': '{}',
    '/api/v1/probes/mallory/heartbeat': JSON.stringify({ state: 'idle', location: 'attacker' }),
    '/api/v1/session': JSON.stringify({ token: mallory }),
    '/api/v1/schedules': JSON.stringify({ schedules: [] }),
  };

  const get = async (p) => (await fetch(base + p, { headers: AUTH, cache: 'no-store' }));
  async function snapshot() {
    const schedules = await (await get('/api/v1/schedules')).text();
    let results = 0, cursor = '';
    for (let i = 0; i < 20; i++) {
      const r = await (await get(`/api/v1/results?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)).json();
      results += r.results.length;
      cursor = r.next_cursor;
      if (!cursor) break;
    }
    const probes = (await (await get('/api/v1/probes')).json()).probes.map((p) => p.name).sort().join(',');
    const runs = Number(((await (await get('/metrics')).text()).match(/^dstmc_run_requests_total (\d+)$/m) || [0, 0])[1]);
    return { schedules, results, probes, runs };
  }
  const before = await snapshot();
  check(before.results === 1345 && before.schedules.includes('15 4 1 1 *') && !before.probes.includes('mallory'),
    `not the known state: ${JSON.stringify(before)}`);

  const pages = [];
  const attacker = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Cute cats</title><h1>Cute cats</h1>');
  });
  await new Promise((ok) => attacker.listen(0, '127.0.0.1', ok));
  const port = attacker.address().port;
  const origins = [`http://127.0.0.1:${port}`, `http://localhost:${port}`]; /* same site, cross site */

  try {
    const { context, page: dash } = await step('launch chromium', launch);
    const errors = [];
    dash.on('pageerror', (e) => errors.push(e.message));
    const session = () => dash.evaluate(() => fetch('api/v1/session', { cache: 'no-store' }).then((r) => r.json()));

    await step('open the dashboard, count "run" events', async () => {
      await dash.goto(`${base}/`);
      await dash.waitForFunction(() => window.dstmc?.isReady);
      await dash.evaluate((ms) => new Promise((ok, fail) => {
        const es = new EventSource('api/v1/events');
        window.runEvents = 0;
        es.addEventListener('run', () => { window.runEvents++; });
        es.onopen = ok;
        setTimeout(() => fail(new Error('the event stream did not open')), ms);
      }), WAIT_MS);
    });

    /* Every kind of attack from one origin; each waited for in the access log. */
    async function attackFrom(origin) {
      const evil = await context.newPage();
      pages.push(evil);
      await evil.goto(`${origin}/cats.html`);
      check(await evil.evaluate(() => location.origin) === origin, 'the attacker page is not where it should be');
      for (const kind of ['no-cors', 'preflighted', 'form-urlencoded', 'form-text', 'beacon-text', 'beacon-json', 'get']) {
        const mark = access.length, marked = refusals.length;
        const notes = await evil.evaluate(attack, { api: base, kind, bodies, posts: POSTS, preflighted: PREFLIGHTED, gets: GETS });
        const seen = () => access.slice(mark);
        let want = [];
        if (kind === 'preflighted') {
          check(notes.every(([, r]) => r === 'blocked'), `preflighted writes got through: ${JSON.stringify(notes)}`);
          want = PREFLIGHTED.map(([, p]) => ['OPTIONS', p]);
        } else if (kind === 'get') {
          want = GETS.flatMap((p) => [['GET', p], ['GET', p]]);
        } else if (kind === 'beacon-json') {
          /* a JSON Blob is not CORS-safelisted: Chromium refuses it, or sends a preflight first */
          want = notes.filter(([, r]) => r === 'queued').map(([p]) => ['OPTIONS|POST', p]);
        } else {
          want = POSTS.map((p) => ['POST', p]);
        }
        await until(() => covered(want, seen()), `${kind} attempts in the access log`);
        const wrote = seen().filter((e) => e.method !== 'GET' && e.method !== 'OPTIONS' && e.status < 400);
        check(wrote.length === 0, `${kind} from ${origin}: the API took ${JSON.stringify(wrote)}`);
        const posted = seen().filter((e) => e.method === 'POST' && POSTS.includes(e.path));
        check(posted.every((e) => e.status === 403), `${kind}: not all refused as foreign: ${JSON.stringify(posted)}`);
        const logged = refusals.slice(marked).filter((r) => r.origin === origin);
        check(logged.length >= posted.length, `${kind}: ${posted.length} refused, ${logged.length} logged for ${origin}`);
        check(seen().filter((e) => e.method === 'GET' && GETS.includes(e.path)).every((e) => e.status >= 400), `${kind}: a GET did something`);
        const arrived = [...new Set(seen().filter((e) => e.method !== 'GET' || kind === 'get').map((e) => `${e.method} ${e.status}`))];
        log(`  ${kind}: ${notes.map(([p, r]) => `${p} ${r}`).join(', ')}; the API saw ${arrived.join(', ')}`);
      }
      await evil.close();
    }

    const unchanged = async (what) => {
      const now = await snapshot();
      check(now.schedules === before.schedules, `${what}: the schedules changed: ${now.schedules}`);
      check(now.results === before.results, `${what}: ${now.results - before.results} results added`);
      check(now.runs === before.runs && await dash.evaluate(() => window.runEvents) === 0, `${what}: a run request was published`);
      check(now.probes === before.probes, `${what}: the probes are now ${now.probes}`);
    };

    for (const origin of origins) {
      await step(`logged out: every write from a page of ${origin}`, () => attackFrom(origin));
    }
    await step('logged out: nothing changed', () => unchanged('logged out'));

    const csrf = await step('log in through the dashboard\'s dialog', async () => {
      await dash.click('#login-btn');
      await dash.fill('#login-token', TOKEN);
      await dash.click('#login-submit');
      await dash.waitForFunction(() => document.querySelector('#who-name').textContent === 'operator');
      const s = await session();
      check(s.authenticated && s.via === 'session' && s.csrf, `GET /api/v1/session: ${JSON.stringify(s)}`);
      return s.csrf;
    });
    for (const origin of origins) {
      await step(`logged in: every write from a page of ${origin}`, () => attackFrom(origin));
    }
    await step('logged in: nothing changed, the session is the same', async () => {
      await unchanged('logged in');
      const s = await session();
      check(s.authenticated && s.name === 'operator' && s.csrf === csrf, `the session is now ${JSON.stringify(s)}`);
      check(await dash.isVisible('#logout-btn'), 'the dashboard no longer shows the login');
    });

    await step('control: from the API\'s own page, text/plain → 415, no CSRF header → 403, both → done', async () => {
      const tries = await dash.evaluate(async ({ bodies, csrf }) => {
        const send = (method, p, type, token) => fetch(p.slice(1), { method, body: bodies[p],
          headers: { 'Content-Type': type, ...(token ? { 'X-CSRF-Token': token } : {}) } }).then((r) => r.status);
        const out = {};
        const writes = [['POST', '/api/v1/results'], ['POST', '/SpeedTest'], ['POST', '/api/v1/run'],
          ['POST', '/api/v1/schedules/pause'], ['POST', '/api/v1/probes/mallory/heartbeat'], ['PUT', '/api/v1/schedules']];
        for (const [m, p] of writes) {
          out[`${m} ${p}`] = [await send(m, p, 'text/plain', csrf), await send(m, p, 'application/json', null),
            await send(m, p, 'application/json', csrf)];
        }
        out['POST /api/v1/session'] = [await send('POST', '/api/v1/session', 'text/plain', csrf), 0,
          await send('POST', '/api/v1/session', 'application/json', csrf)];
        return out;
      }, { bodies, csrf });
      log(`  ${JSON.stringify(tries)}`);
      for (const [what, [plain, nocsrf, ok]] of Object.entries(tries)) {
        check(plain === 415, `${what} as text/plain answered ${plain}`);
        check(nocsrf === 403 || what.includes('session'), `${what} without X-CSRF-Token answered ${nocsrf}`);
        check(ok >= 200 && ok < 300, `${what} with JSON and the CSRF token answered ${ok}`);
      }
      const now = await snapshot();
      check(now.results === before.results + 2, `the control stored ${now.results - before.results} results, not 2`);
      check(now.runs === before.runs + 1, `the control published ${now.runs - before.runs} run requests, not 1`);
      await dash.waitForFunction(() => window.runEvents === 1);
      check(JSON.parse(now.schedules).schedules.length === 0, `the schedules were not replaced: ${now.schedules}`);
      check(now.probes.includes('mallory'), 'the heartbeat added no probe');
      const s = await session();
      check(s.name === 'mallory', `the login did not switch to mallory: ${JSON.stringify(s)}`);
    });
    check(errors.length === 0, `JavaScript errors in the dashboard: ${errors.join(' | ')}`);
  } finally {
    for (const p of pages) await p.close().catch(() => {});
    attacker.close();
  }
}

await run(120000, [up], main);
