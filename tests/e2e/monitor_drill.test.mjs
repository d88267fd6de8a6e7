#!/usr/bin/env node
/*
 * monitor_drill.test.mjs - the original's failover drill against `dstmc monitor`, with network
 * namespaces in place of its docker network 1.2.3.0/24.
 *
 * Three namespaces, dstmc-drill-{m1,m2,mon}-<pid>: in mon a bridge with 1.2.3.150/24 and a veth
 * pair to m1 (1.2.3.100) and one to m2 (1.2.3.200); every interface lives in a namespace, none in
 * the root one. `dstmc machine` runs in m1 (random 1..40) and in m2 (70..100), `dstmc monitor` in
 * mon with both as backends. The test re-runs itself inside mon (`ip netns exec`), so Chromium
 * and the HTTP client reach the monitor on 127.0.0.1 there; the outer process only builds the
 * network, waits for the inner one and always removes the namespaces (and anything left in them).
 *
 * Steps, each checked in the page and saved as monitor-drill-<n>-<name>.png in $DSTMC_E2E_OUT:
 *   0 both up                   vm1 green, b1 yellow, vm2 green, b2 yellow; Calculate → VM1
 *   1 service 1 paused          SIGSTOP to machine 1 (docker pause): b1 black, vm1 green; VM2
 *   2 service 1 resumed         SIGCONT: back to VM1
 *   3 machine 1 off             its link down (docker stop): vm1 red, b1 black; VM2
 *   4 machine 1 on              link up: back to VM1
 *   5 no host                   m1's link down and m2 paused: "No host active", 503s
 *   6 restored                  link up, m2 resumed: back to VM1
 * All along a client inside mon sends GET /?first=i&second=1 every ~20 ms (keep-alive) and
 * checks each answer against the backend named by X-Dstmc-Backend, and reads /monitor/status
 * between two requests, so that it knows whether the monitor changed its mind (a health check
 * flipped, a request was moved) while a request was on its way. No request may fail while a
 * backend is up: an answer from either live backend is right, and a 503 "No host active" (or
 * another of the monitor's own 5xx) only if for a moment no backend may have been up. Who
 * answers is checked once a step's state has settled: /monitor/status has sent traffic to the
 * step's backend, unchanged, for a second; from then on every answer comes from that backend,
 * unless the status shows a change during that request (a health check of a busy machine may
 * time out), and the step goes on only after SETTLED_ANSWERS answers from it with nothing
 * changed. From step 5 until the page shows everything restored, 503 "No host active" is a
 * right answer (at least one is required) and other failures are only printed: a request
 * caught on machine 2 when it is paused has nowhere left to go. Needs root and `ip netns`;
 * otherwise it prints why and exits 77 (ctest: skipped).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

import {
  BIN, CheckError, OUT, Service, WAIT_MS, check, log, monitorChanged, monitorMayHaveBeenEmpty,
  monitorStatus, monitorView, run, sleep, step, waitFor, waitMonitorSettled,
} from './lib.mjs';

const SKIP = 77;
const INNER_MS = 200000;  /* the inner part's watchdog */
const OUTER_MS = 230000;  /* until the outer process gives up on the inner one (ctest: 300 s) */
const PACE_MS = 20;       /* the client loop's pause between two requests */
const REQ_TIMEOUT_MS = WAIT_MS;
const MAX_REQUESTS = 20000;
const SETTLE_MS = 1000;    /* the monitor's state unchanged this long: a step has settled */
const SETTLED_ANSWERS = 5; /* answers from the step's backend, nothing changed, once settled */
const CALC_TRIES = 5;      /* Calculate again when the monitor changed its mind meanwhile */
const NONE = 'No host active';
const VMS = [
  { name: 'VM1', ip: '1.2.3.100', lo: 1, hi: 40 },
  { name: 'VM2', ip: '1.2.3.200', lo: 70, hi: 100 },
];
const url = (i) => `http://${VMS[i].ip}:3000`;

/* ---------- the outer process: the network, the inner run, the clean-up ---------- */

function ip(args) {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10000 });
  return { ok: r.status === 0, out: r.stdout || '', err: (r.stderr || r.error?.message || '').trim() };
}

const namespaces = () => ip(['netns', 'list']).out.split('\n').map((l) => l.split(' ')[0])
  .filter(Boolean);

/* Stops what still runs in namespace ns (by pid) and deletes it; the pids it found. */
async function removeNamespace(ns) {
  if (!namespaces().includes(ns)) return [];
  const pids = ip(['netns', 'pids', ns]).out.split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) {
    for (const sig of ['SIGCONT', 'SIGKILL']) {
      try { process.kill(pid, sig); } catch (e) { /* gone already */ }
    }
  }
  for (let i = 0; i < 100 && pids.some((p) => alive(p)); i++) await sleep(20);
  const r = ip(['netns', 'del', ns]);
  if (!r.ok) console.error(`[e2e] cannot delete namespace ${ns}: ${r.err}`);
  return pids;
}

/* Whether pid runs (a zombie waiting for its reaper does not). */
function alive(pid) {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
  } catch (e) {
    return false;
  }
}

/* Namespaces of this run's names, or of an earlier run whose process is gone. */
async function removeLeftovers(mine) {
  for (const ns of namespaces()) {
    const m = ns.match(/^dstmc-drill-(?:m1|m2|mon)-(\d+)$/);
    if (m && (mine.includes(ns) || !alive(Number(m[1])))) {
      log(`removing ${ns}, left over by an earlier run`);
      await removeNamespace(ns);
    }
  }
}

/* Builds the drill's network; a string says why it cannot be built here. */
function buildNetwork(ns) {
  const first = ip(['netns', 'add', ns.m1]);
  if (!first.ok) return `ip netns add failed: ${first.err}`;
  const cmds = [
    ['netns', 'add', ns.m2], ['netns', 'add', ns.mon],
    ['-n', ns.mon, 'link', 'set', 'lo', 'up'],
    ['-n', ns.mon, 'link', 'add', 'br0', 'type', 'bridge', 'forward_delay', '0'],
    ['-n', ns.mon, 'addr', 'add', '1.2.3.150/24', 'dev', 'br0'],
    ['-n', ns.mon, 'link', 'set', 'br0', 'up'],
  ];
  VMS.forEach((vm, i) => {
    const m = i ? ns.m2 : ns.m1, port = `p-m${i + 1}`;
    cmds.push(['-n', ns.mon, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', m],
      ['-n', ns.mon, 'link', 'set', port, 'master', 'br0'], ['-n', ns.mon, 'link', 'set', port, 'up'],
      ['-n', m, 'addr', 'add', `${vm.ip}/24`, 'dev', 'eth0'], ['-n', m, 'link', 'set', 'eth0', 'up'],
      ['-n', m, 'link', 'set', 'lo', 'up']);
  });
  for (const c of cmds) {
    const r = ip(c);
    if (!r.ok) return `cannot build the drill's network: ip ${c.join(' ')}: ${r.err}`;
  }
  return null;
}

/* Runs this file inside mon; resolves with its exit code (1 if it had to be killed). */
function runInner(ns) {
  const child = spawn('ip', ['netns', 'exec', ns.mon, process.execPath, fileURLToPath(import.meta.url)],
    { stdio: 'inherit', env: { ...process.env, DSTMC_DRILL_NS: JSON.stringify(ns) } });
  const forward = (sig) => { try { child.kill(sig); } catch (e) { /* gone */ } };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((ok) => {
    const timer = setTimeout(() => {
      console.error(`[e2e] FAIL: the drill did not end within ${OUTER_MS / 1000} s: killing it`);
      forward('SIGKILL');
    }, OUTER_MS);
    child.on('error', (e) => { console.error(`[e2e] FAIL: ${e.message}`); });
    child.on('exit', (code, sig) => { clearTimeout(timer); ok(code ?? (sig ? 1 : 0)); });
  });
}

async function outer() {
  const t0 = Date.now();
  if (process.geteuid() !== 0) {
    log('SKIP: needs root to create network namespaces');
    process.exit(SKIP);
  }
  if (!ip(['-V']).ok) {
    log('SKIP: iproute2 (ip) is not installed');
    process.exit(SKIP);
  }
  if (!BIN) {
    console.error('[e2e] FAIL: DSTMC_BIN is not set (path to the built dstmc binary)');
    process.exit(1);
  }
  const tag = process.pid;
  const ns = { m1: `dstmc-drill-m1-${tag}`, m2: `dstmc-drill-m2-${tag}`, mon: `dstmc-drill-mon-${tag}` };
  let code = 1;
  await removeLeftovers(Object.values(ns));
  try {
    const why = buildNetwork(ns);
    if (why) {
      log(`SKIP: ${why}`);
      code = SKIP;
    } else {
      code = await runInner(ns);
    }
  } finally {
    for (const n of Object.values(ns)) {
      const left = await removeNamespace(n);
      if (left.length) log(`stopped ${left.length} process(es) left in ${n}: ${left.join(' ')}`);
    }
    const still = namespaces().filter((n) => Object.values(ns).includes(n));
    if (still.length) {
      console.error(`[e2e] FAIL: namespaces not deleted: ${still.join(', ')}`);
      code = 1;
    }
  }
  const how = code === 0 ? 'passed' : code === SKIP ? 'skipped' : 'failed';
  log(`drill ${how} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  process.exit(code);
}

/* ---------- the inner process, in mon's namespace ---------- */

/* `dstmc machine` in namespace ns, by its own pid; pause/resume (lib) as docker pause/unpause. */
class Machine extends Service {
  constructor(ns, extra) {
    super(['machine', '--listen', '0.0.0.0:3000', ...extra], { wrap: ['ip', 'netns', 'exec', ns] });
    this.ns = ns;
  }

  /* ip netns exec must have exec'd: the pid is dstmc's, in the namespace ns. */
  checkPid() {
    const pid = this.proc.pid;
    const exe = readlinkSync(`/proc/${pid}/exe`);
    check(exe === realpathSync(BIN), `pid ${pid} runs ${exe}, not ${BIN}`);
    check(statSync(`/proc/${pid}/ns/net`).ino === statSync(`/run/netns/${this.ns}`).ino,
      `pid ${pid} is not in namespace ${this.ns}`);
  }

}

/*
 * The client loop: GET /?first=i&second=1 every PACE_MS over one keep-alive connection, each
 * answer checked, and GET /monitor/status between two requests (the view after one request is
 * the view before the next). Counts go to the phase current when the request started; a request
 * started after the phase settled must be answered by phase.expect, unless the monitor changed
 * its mind while it was on its way.
 */
class Traffic {
  constructor(base) {
    this.base = base;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    this.phases = [];
    this.phase = null;
    this.stopping = false;
    this.n = 0;
    this.done = null;
    this.ended = false;
    this.reported = false;
  }

  /* A new phase; in a lenient one (no host up) answers other than 200 or 503 "No host active"
   * are counted apart (a request caught on a backend that went down may get a 502 or 504). */
  enter(name, { expect = null, lenient = false } = {}) {
    this.phase = { name, expect, lenient, settled: false, n: 0, by: [0, 0], clean: 0, excused: 0,
      noHost: 0, failed: [], worst: 0 };
    this.phases.push(this.phase);
    return this.phase;
  }

  /*
   * Waits until the monitor has sent traffic to the phase's backend, unchanged, for SETTLE_MS;
   * from then on the phase is settled: every answer must come from that backend (see judge).
   * Then waits for SETTLED_ANSWERS such answers with nothing changed while they were on their way.
   */
  async settle() {
    const p = this.phase;
    await waitMonitorSettled(this.base, p.expect, SETTLE_MS);
    p.settled = true;
    await waitFor(() => p.clean >= SETTLED_ANSWERS || this.ended,
      `${p.name}: ${SETTLED_ANSWERS} answers from ${VMS[p.expect].name} with nothing changed`);
    check(p.clean >= SETTLED_ANSWERS, `${p.name}: the client loop ended before it settled`);
  }

  /* Waits (bounded) until cond(phase) holds. */
  async until(cond, what) {
    await waitFor(() => cond(this.phase) || this.ended, `${this.phase.name}: ${what}`);
    check(cond(this.phase), `${this.phase.name}: ${what}: the client loop ended first`);
  }

  /* GET path on the loop's connection: { status, backend, body } or { error }. */
  request(path) {
    return new Promise((ok) => {
      const req = http.get(`${this.base}${path}`, { agent: this.agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { body += d; });
        const backend = res.headers['x-dstmc-backend'];
        res.on('end', () => ok({ status: res.statusCode, backend, body }));
        res.on('error', (e) => ok({ error: e.message }));
      });
      req.setTimeout(REQ_TIMEOUT_MS, () => req.destroy(new Error(`no answer in ${REQ_TIMEOUT_MS} ms`)));
      req.on('error', (e) => ok({ error: e.message }));
    });
  }

  /* The monitor's view now (see lib's monitorView), or an error text. */
  async view() {
    const r = await this.request('/monitor/status');
    if (r.error || r.status !== 200) return `GET /monitor/status: ${r.error || `HTTP ${r.status}`}`;
    try {
      return monitorView(JSON.parse(r.body));
    } catch (e) {
      return `GET /monitor/status: ${e.message}`;
    }
  }

  /* What is wrong with answer r to request i, or null; counts it in phase p. before and after
   * are the monitor's views around the request. */
  judge(p, settled, i, r, before, after) {
    if (r.error) return r.error;
    let body = null;
    try {
      body = JSON.parse(r.body);
    } catch (e) {
      return `HTTP ${r.status}, not JSON: ${r.body.slice(0, 80)}`;
    }
    const changed = monitorChanged(before, after);
    if (r.status >= 500 && body?.error?.status === r.status) { /* the monitor's own answer */
      if (r.status === 503 && p.lenient) {
        if (body.error.message !== NONE) return `503 with ${r.body}`;
        p.noHost++;
        return null;
      }
      if (!monitorMayHaveBeenEmpty(before, after)) {
        return `HTTP ${r.status} ${r.body.slice(0, 120)} while a backend was up all along`;
      }
      p.excused++;
      log(`client loop (${p.name}): #${i}: HTTP ${r.status} ${body.error.message}, while for a ` +
        `moment no backend may have been up (${JSON.stringify(before)} → ` +
        `${JSON.stringify(after)})`);
      return null;
    }
    if (r.status !== 200) return `HTTP ${r.status}: ${r.body.slice(0, 120)}`;
    const b = Number(r.backend);
    if (r.backend === undefined || !(b === 0 || b === 1)) return `X-Dstmc-Backend is "${r.backend}"`;
    const vm = VMS[b];
    if (body.err !== false || body.sum !== i + 1) return `${vm.name} answered ${r.body} to ${i}+1`;
    if (!Number.isInteger(body.random) || body.random < vm.lo || body.random > vm.hi) {
      return `random ${body.random} from ${vm.name} is outside ${vm.lo}..${vm.hi}`;
    }
    p.by[b]++;
    if (settled && p.expect !== null) {
      if (b === p.expect) {
        if (!changed) p.clean++;
      } else if (changed) {
        p.excused++;
        log(`client loop (${p.name}): #${i} answered by ${vm.name}: the monitor changed its ` +
          `mind meanwhile (${JSON.stringify(before)} → ${JSON.stringify(after)})`);
      } else {
        return `answered by ${vm.name}, expected ${VMS[p.expect].name}, and the monitor's ` +
          `state did not change (${JSON.stringify(after)})`;
      }
    }
    return null;
  }

  start() {
    const t0 = Date.now();
    this.done = (async () => {
      let before = await this.view();
      while (!this.stopping && this.n < MAX_REQUESTS && Date.now() - t0 < INNER_MS) {
        const i = ++this.n, p = this.phase, settled = p.settled, started = performance.now();
        const r = await this.request(`/?first=${i}&second=1`);
        const ms = performance.now() - started;
        const after = await this.view();
        p.n++;
        if (ms > p.worst) p.worst = ms;
        let bad = null;
        if (typeof before === 'string' || typeof after === 'string') {
          bad = typeof before === 'string' ? before : after;
        } else {
          bad = this.judge(p, settled, i, r, before, after);
        }
        if (bad) {
          p.failed.push(`#${i} after ${Math.round(ms)} ms: ${bad}`);
          log(`client loop (${p.name}${p.lenient ? ', lenient' : ''}): ${p.failed.at(-1)}`);
        }
        before = after;
        await sleep(PACE_MS);
      }
      this.ended = true;
      this.agent.destroy();
    })();
  }

  async stop() {
    this.stopping = true;
    await this.done;
  }

  report() {
    if (this.reported) return;
    this.reported = true;
    log('client loop: phase                 requests   VM1   VM2 clean moved   503  failed' +
      '  worst ms');
    for (const p of this.phases) {
      const col = (v, w) => String(v).padStart(w);
      log(`             ${p.name.padEnd(22)}${col(p.n, 8)}${col(p.by[0], 6)}${col(p.by[1], 6)}` +
        `${col(p.clean, 6)}${col(p.excused, 6)}${col(p.noHost, 6)}${col(p.failed.length, 8)}` +
        `${col(Math.round(p.worst), 10)}`);
    }
    const worst = this.phases.reduce((a, p) => (p.worst > a.worst ? p : a), { worst: 0 });
    log(`client loop: ${this.n} requests, the slowest ${Math.round(worst.worst)} ms (in ${worst.name})`);
  }
}

/* What the page shows: the bulbs' classes, the active line, the stream's state. */
function pageState() {
  const cls = (id) => document.getElementById(id)?.className ?? null;
  return { vm1: cls('vm1'), b1: cls('b1'), vm2: cls('vm2'), b2: cls('b2'),
    active: document.querySelector('#active').textContent.trim(),
    conn: document.querySelector('#conn').dataset.state };
}

const bulbs = (vm1, b1, vm2, b2) => ({
  vm1: vm1 ? 'circle_green' : 'circle_red', b1: b1 ? 'circle_yellow' : 'circle_black',
  vm2: vm2 ? 'circle_green' : 'circle_red', b2: b2 ? 'circle_yellow' : 'circle_black',
});

/* Waits until the page shows want (bulbs) and active ("VM1", "VM2" or NONE); ms it took. */
async function waitPage(page, want, active, timeout = WAIT_MS) {
  const t0 = Date.now();
  const expectActive = active === NONE ? NONE : `${active} (${url(active === 'VM1' ? 0 : 1)})`;
  try {
    await page.waitForFunction(([w, a]) => {
      const cls = (id) => document.getElementById(id)?.className;
      return Object.entries(w).every(([id, c]) => cls(id) === c) &&
        document.querySelector('#active').textContent.trim() === a &&
        document.querySelector('#conn').dataset.state === 'live';
    }, [want, expectActive], { timeout, polling: 50 });
  } catch (e) {
    const now = await page.evaluate(pageState);
    throw new CheckError(`the page did not show ${JSON.stringify(want)}, active "${expectActive}", ` +
      `live within ${timeout} ms; it shows ${JSON.stringify(now)}`);
  }
  return Date.now() - t0;
}

/* Submits a + b in the Calculate form; what the page then shows. */
async function calculate(page, a, b) {
  await page.fill('#first', String(a));
  await page.fill('#second', String(b));
  const answer = page.waitForResponse((r) => new URL(r.url()).searchParams.has('first'));
  await page.click('#calc-btn');
  const status = (await answer).status();
  await page.waitForFunction(() => !document.querySelector('#calc-btn').disabled);
  const shown = await page.evaluate(() => {
    const t = (id) => {
      const el = document.getElementById(id);
      return el.hidden ? null : el.textContent.trim();
    };
    return { sum: t('sum'), random: t('random'), by: t('answered-by'), error: t('calc-error') };
  });
  return { status, ...shown };
}

/*
 * Calculate a + b in the page must be answered by backend i; it is tried again (CALC_TRIES in
 * all) only when /monitor/status shows that the monitor changed its mind meanwhile: then the
 * other live backend's answer or a 5xx with no backend up for a moment was right too.
 */
async function calculateOn(page, base, a, b, i) {
  for (let n = 1; ; n++) {
    const before = monitorView(await monitorStatus(base));
    const r = await calculate(page, a, b);
    const after = monitorView(await monitorStatus(base));
    const other = VMS[1 - i];
    const byOther = r.status === 200 && r.by?.startsWith(`answered by ${other.name} `);
    const excused = n < CALC_TRIES && (byOther ? monitorChanged(before, after) :
      r.status >= 500 && monitorMayHaveBeenEmpty(before, after));
    if (!excused) return checkCalculated(r, a, b, i);
    log(`Calculate ${a} + ${b}: HTTP ${r.status} "${r.by ?? r.error}" while the monitor ` +
      `changed its mind (${JSON.stringify(before)} → ${JSON.stringify(after)}): once more`);
  }
}

function checkCalculated(r, a, b, i) {
  const vm = VMS[i];
  check(r.status === 200 && r.error === null,
    `Calculate ${a} + ${b}: HTTP ${r.status}, ${JSON.stringify(r)}`);
  check(r.sum === `Sum is: ${a + b}`, `Calculate ${a} + ${b} shows "${r.sum}"`);
  const n = Number((r.random || '').match(/^Random Number is: (\d+)$/)?.[1]);
  check(n >= vm.lo && n <= vm.hi,
    `Calculate shows "${r.random}", not a number in ${vm.lo}..${vm.hi} (${vm.name})`);
  check(r.by === `answered by ${vm.name} (${url(i)})`,
    `Calculate shows "${r.by}", expected ${vm.name}`);
  log(`Calculate ${a} + ${b}: "${r.sum}", "${r.random}", "${r.by}"`);
}

async function getJson(base, path) {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(REQ_TIMEOUT_MS) });
  return { status: res.status, body: await res.json() };
}

/* GET /status (the original's bulbs) shows want; a busy machine's health check may flip a bulb
 * for a moment, so it is read until it does (bounded). */
async function expectStatus(base, want) {
  let last = null;
  try {
    await waitFor(async () => {
      last = await getJson(base, '/status');
      return last.status === 200 && isDeepStrictEqual(last.body, want);
    }, `GET /status showing ${JSON.stringify(want)}`);
  } catch (e) {
    throw new CheckError(`${e.message}: it answers HTTP ${last?.status} ` +
      `${JSON.stringify(last?.body)}`);
  }
}

async function inner(ns) {
  const m1 = new Machine(ns.m1, []);
  const m2 = new Machine(ns.m2, ['--random-min', '70', '--random-max', '100']);
  const monitor = new Service(['monitor', '--backend', url(0), '--backend', url(1),
    '--listen', '127.0.0.1:0', '--poll-ms', '200', '--timeout-ms', '300']);
  const link = (up) => ip(['-n', ns.m1, 'link', 'set', 'eth0', up ? 'up' : 'down']);
  let shot = 0;

  await run(INNER_MS, [monitor, m1, m2], async (launch) => {
    mkdirSync(OUT, { recursive: true });
    await step('start both machines in their namespaces', async () => {
      await Promise.all([m1.start(), m2.start()]);
      m1.checkPid();
      m2.checkPid();
      log(`machine 1: pid ${m1.proc.pid} in ${ns.m1}; machine 2: pid ${m2.proc.pid} in ${ns.m2}`);
    });
    const base = await step('start the monitor', () => monitor.start());
    log(`monitor at ${base} in ${ns.mon}`);
    check(/machines are checked by icmp-raw/.test(monitor.output),
      `the monitor does not check by icmp-raw as root: ${monitor.output.slice(0, 400)}`);
    const { page } = await step('launch chromium', launch);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const screenshot = async (name) => {
      const path = join(OUT, `monitor-drill-${shot++}-${name}.png`);
      await page.screenshot({ path, fullPage: true, animations: 'disabled' });
      log(`screenshot ${path}`);
    };
    const traffic = new Traffic(base);
    try {
      await drill(page, base, traffic, { m1, m2, link, screenshot });
    } finally {
      await traffic.stop();
      traffic.report();
    }
    for (const [s, what] of [[monitor, 'monitor'], [m1, 'machine 1'], [m2, 'machine 2']]) {
      check(s.proc.exitCode === null && s.proc.signalCode === null,
        `dstmc ${what} ended during the drill (${s.proc.exitCode ?? s.proc.signalCode})`);
    }
    check(errors.length === 0, `JavaScript errors in the page: ${errors.join(' | ')}`);
  });
}

/* Steps 0-6 and the client loop's verdict. */
async function drill(page, base, traffic, { m1, m2, link, screenshot }) {
  await step('0 both up: VM1 takes traffic', async () => {
    traffic.enter('0 both up', { expect: 0 });
    traffic.start();
    await page.goto(`${base}/monitor/`);
    check((await page.title()) === 'System Monitor', `the page's title is "${await page.title()}"`);
    await waitPage(page, bulbs(1, 1, 1, 1), 'VM1');
    await traffic.settle();
    await calculateOn(page, base, 5, 7, 0);
    await expectStatus(base, { VM: [1, 1], B: [1, 1] });
    const rich = (await getJson(base, '/monitor/status')).body;
    check(rich.ping_method === 'icmp-raw' && rich.backends?.length === 2,
      `/monitor/status: ping ${rich.ping_method}, ${rich.backends?.length} backends`);
    await screenshot('both-up');
  });

  await step('1 service 1 paused (SIGSTOP): VM2 takes traffic', async () => {
    traffic.enter('1 service 1 paused', { expect: 1 });
    await m1.pause();
    log(`page shows it after ${await waitPage(page, bulbs(1, 0, 1, 1), 'VM2')} ms`);
    await traffic.settle();
    await calculateOn(page, base, 20, 22, 1);
    await expectStatus(base, { VM: [1, 1], B: [0, 1] });
    await screenshot('service1-paused');
  });

  await step('2 service 1 resumed (SIGCONT): back to VM1', async () => {
    traffic.enter('2 service 1 resumed', { expect: 0 });
    m1.resume();
    log(`page shows it after ${await waitPage(page, bulbs(1, 1, 1, 1), 'VM1')} ms`);
    await traffic.settle();
    await calculateOn(page, base, 3, 4, 0);
    await expectStatus(base, { VM: [1, 1], B: [1, 1] });
    await screenshot('service1-resumed');
  });

  await step('3 machine 1 off (link down): VM2 takes traffic', async () => {
    traffic.enter('3 machine 1 off', { expect: 1 });
    const r = link(false);
    check(r.ok, `link down: ${r.err}`);
    log(`page shows it after ${await waitPage(page, bulbs(0, 0, 1, 1), 'VM2')} ms`);
    await traffic.settle();
    await calculateOn(page, base, 100, 1, 1);
    await expectStatus(base, { VM: [0, 1], B: [0, 1] });
    const rich = (await getJson(base, '/monitor/status')).body;
    check(rich.backends[0].machine.error,
      `machine 1 is down without a reason: ${JSON.stringify(rich.backends[0])}`);
    log(`machine 1: ${rich.backends[0].machine.error}`);
    await screenshot('machine1-off');
  });

  await step('4 machine 1 on (link up): back to VM1', async () => {
    traffic.enter('4 machine 1 on', { expect: 0 });
    const r = link(true);
    check(r.ok, `link up: ${r.err}`);
    log(`page shows it after ${await waitPage(page, bulbs(1, 1, 1, 1), 'VM1')} ms`);
    await traffic.settle();
    await calculateOn(page, base, 8, 9, 0);
    await expectStatus(base, { VM: [1, 1], B: [1, 1] });
    await screenshot('machine1-on');
  });

  await step('5 machine 1 off and service 2 paused: no host active', async () => {
    traffic.enter('5 no host, restore', { lenient: true });
    check(link(false).ok, 'link down');
    await waitPage(page, bulbs(0, 0, 1, 1), 'VM2');
    await m2.pause();
    log(`page shows it after ${await waitPage(page, bulbs(0, 0, 1, 0), NONE)} ms`);
    await traffic.until((p) => p.noHost >= SETTLED_ANSWERS, `${SETTLED_ANSWERS} answers "${NONE}"`);
    const { status, body } = await getJson(base, '/?first=1&second=2');
    check(status === 503 && isDeepStrictEqual(body, { error: { status: 503, message: NONE } }),
      `GET / with no host up: HTTP ${status} ${JSON.stringify(body)}`);
    const r = await calculate(page, 1, 2);
    check(r.status === 503 && r.error === NONE && r.sum === null,
      `Calculate with no host up: ${JSON.stringify(r)}`);
    await expectStatus(base, { VM: [0, 1], B: [0, 0] });
    await screenshot('no-host');
  });

  await step('6 everything restored: back to VM1', async () => {
    check(link(true).ok, 'link up');
    m2.resume();
    log(`page shows it after ${await waitPage(page, bulbs(1, 1, 1, 1), 'VM1')} ms`);
    traffic.enter('6 restored', { expect: 0 });
    await traffic.settle();
    await calculateOn(page, base, 40, 2, 0);
    await screenshot('restored');
  });

  await step('the client loop\'s answers', async () => {
    await traffic.stop();
    traffic.report();
    const p5 = traffic.phases[5];
    for (const p of traffic.phases.filter((q) => !q.lenient)) {
      check(p.failed.length === 0,
        `${p.name}: ${p.failed.length} failed request(s): ${p.failed.slice(0, 5).join(' | ')}`);
      check(p.clean >= SETTLED_ANSWERS,
        `${p.name}: ${p.clean} answers from ${VMS[p.expect].name} once settled`);
    }
    check(p5.noHost > 0, `${p5.name}: no 503 "${NONE}" while no host was up`);
  });
}

if (process.env.DSTMC_DRILL_NS) await inner(JSON.parse(process.env.DSTMC_DRILL_NS));
else await outer();
