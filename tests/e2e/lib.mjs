/*
 * lib.mjs - what the browser tests share: start and stop a dstmc service by its pid, launch
 * Debian's Chromium through playwright-core (never a downloaded browser), named steps, waits
 * for a condition, and what `dstmc monitor` says about its backends.
 *
 * Every wait has a deadline, and the deadline is generous: it is reached only when something is
 * wrong, and CI runs on 2 busy vCPUs, under ASan (2-5x slower) too. Tests check what happened,
 * never how fast.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1';
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { chromium } = createRequire(join(ROOT, 'web', 'package.json'))('playwright-core');

export const BIN = process.env.DSTMC_BIN;
export const OUT = process.env.DSTMC_E2E_OUT || join(ROOT, 'build', 'e2e');
export const WAIT_MS = 30000; /* any single wait (in the page or for a service) */
/* The operator's admin token every service here gets (DSTMC_TOKEN), the header that carries it,
 * and the login link's fragment: the page trades it for a session cookie. */
export const TOKEN = 'dstmc-e2e-operator-token-0123456789';
export const AUTH = { Authorization: `Bearer ${TOKEN}` };
export const LOGIN = `#token=${TOKEN}`;
const LISTEN_MS = 60000;      /* until the service prints its address */
const STOP_MS = 20000;        /* from SIGTERM until SIGKILL */

export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

export function log(msg) { console.log(`[e2e] ${msg}`); }

export class CheckError extends Error {}

export function check(cond, msg) { if (!cond) throw new CheckError(msg); }

/* Polls cond (sync or async) every pollMs until it returns a truthy value, which it returns; a
 * CheckError naming what after ms. */
export async function waitFor(cond, what, ms = WAIT_MS, pollMs = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() >= deadline) throw new CheckError(`${what}: not within ${ms} ms`);
    await sleep(pollMs);
  }
}

/* Whether every thread of pid is stopped (SIGSTOP takes effect a moment after kill()). */
export function processStopped(pid) {
  let tids;
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch (e) {
    return false;
  }
  return tids.every((tid) => {
    try {
      const state = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
      return 'TtZX'.includes(state);
    } catch (e) {
      return true; /* the thread is gone */
    }
  });
}

/* Runs one named step, so a failure says where it happened. */
export async function step(name, fn) {
  log(name);
  try {
    return await fn();
  } catch (e) {
    e.message = `${name}: ${e.message}`;
    throw e;
  }
}

/*
 * A dstmc service: start() resolves with its base URL from "listening on http://HOST:PORT".
 * opts.wrap: a command that execs the binary in its place, e.g. ['ip', 'netns', 'exec', NS]
 * (it must exec, so that the pid stop() signals is dstmc's own).
 */
export class Service {
  constructor(args, opts = {}) {
    this.args = args;
    this.wrap = opts.wrap || [];
    this.env = opts.env || null; /* on top of the environment and DSTMC_TOKEN = TOKEN */
    this.proc = null;
    this.paused = false;
    this.output = ''; /* stdout + stderr, the last 20 kB, shown when something fails */
  }

  /* SIGSTOP (docker pause); resolves once every thread has stopped, so that nothing the
   * process answers afterwards was on its way when the test paused it. */
  async pause() {
    this.proc.kill('SIGSTOP');
    this.paused = true;
    await waitFor(() => processStopped(this.proc.pid), `dstmc ${this.args[0]} stopped`);
  }

  /* SIGCONT (docker unpause). */
  resume() {
    this.proc.kill('SIGCONT');
    this.paused = false;
  }

  start() {
    check(BIN, 'DSTMC_BIN is not set (path to the built dstmc binary)');
    const [cmd, ...argv] = [...this.wrap, BIN, ...this.args];
    const env = { DSTMC_TOKEN: TOKEN, ...process.env, ...(this.env || {}) };
    this.proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
    const keep = (d) => { this.output = (this.output + d).slice(-20000); };
    this.proc.stdout.on('data', keep);
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`no "listening on" line within ${LISTEN_MS} ms`)),
        LISTEN_MS);
      this.proc.stderr.on('data', (d) => {
        keep(d);
        const m = this.output.match(/listening on (http:\/\/[^\s]+)/);
        if (m) { clearTimeout(timer); ok(m[1].replace(/\/$/, '')); }
      });
      this.proc.on('error', (e) => { clearTimeout(timer); fail(e); });
      this.proc.on('exit', (code, sig) => {
        clearTimeout(timer);
        fail(new Error(`dstmc ${this.args[0]} exited (${code ?? sig}) before it listened`));
      });
    });
  }

  /* SIGTERM by pid, then wait (SIGKILL after STOP_MS). Resolves with an error text, or null if
   * the service drained and exited 0 (under ASan a leak or an error makes the exit non-zero). */
  async stop() {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return null;
    if (this.paused) this.resume(); /* a stopped process waits with its SIGTERM */
    const exited = new Promise((ok) => p.once('exit', (code, sig) => ok(code ?? sig)));
    p.kill('SIGTERM');
    let timer = null;
    const how = await Promise.race([exited,
      new Promise((ok) => { timer = setTimeout(() => ok('timeout'), STOP_MS); })]);
    clearTimeout(timer);
    if (how === 'timeout') {
      p.kill('SIGKILL');
      await exited;
      return `dstmc ${this.args[0]} did not stop within ${STOP_MS / 1000} s of SIGTERM`;
    }
    return how === 0 ? null : `dstmc ${this.args[0]} exited with ${how} after SIGTERM`;
  }
}

/* Headless Debian Chromium at 1280x800 in a fresh profile (opts.locale: en-GB unless given);
 * close() also removes the profile. */
export async function launchBrowser(opts = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'dstmc-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
    timezoneId: 'Europe/Oslo',
    locale: opts.locale || 'en-GB',
  });
  context.setDefaultTimeout(WAIT_MS);
  const page = context.pages()[0] || (await context.newPage());
  const close = async () => {
    try { await context.close(); } catch (e) { /* already gone */ }
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, close };
}

/* Both charts hold buckets, with at least one real (non-null) y value. Runs in the page. */
export function chartsHavePoints() {
  const d = window.dstmc;
  const full = (u) => !!u && u.data[0].length > 0 && u.data[1].some((v) => v != null);
  return !!d && full(d.charts.speed) && full(d.charts.ping);
}

/*
 * Runs main(service-independent body) under a watchdog of totalMs, stops every service and the
 * browser whatever happens, and exits the process 0 or 1.
 */
export async function run(totalMs, services, main) {
  let browser = null;
  let failed = false;
  const cleanup = async () => {
    await browser?.close();
    for (const s of services) {
      const problem = await s.stop();
      if (problem) { failed = true; console.error(`[e2e] FAIL: ${problem}\n${s.output}`); }
    }
  };
  const watchdog = setTimeout(async () => {
    console.error(`[e2e] FAIL: the test did not finish within ${totalMs / 1000} s`);
    for (const s of services) console.error(`--- dstmc ${s.args[0]} output ---\n${s.output}`);
    await Promise.race([cleanup(), new Promise((ok) => setTimeout(ok, 3000))]);
    process.exit(1);
  }, totalMs);
  try {
    await main(async (opts) => { browser = await launchBrowser(opts); return browser; });
  } catch (e) {
    failed = true;
    console.error(`[e2e] FAIL: ${e.message || e}`);
    if (!(e instanceof CheckError) && e.stack) console.error(e.stack);
    for (const s of services) console.error(`--- dstmc ${s.args[0]} output (last 20 kB) ---\n${s.output}`);
  } finally {
    await cleanup();
    clearTimeout(watchdog);
  }
  if (!failed) log('PASS');
  process.exit(failed ? 1 : 0);
}

/* ---------- dstmc monitor ---------- */

/* GET base/monitor/status: the rich status, or throws. */
export async function monitorStatus(base) {
  const res = await fetch(`${base}/monitor/status`, { signal: AbortSignal.timeout(WAIT_MS) });
  check(res.status === 200, `GET /monitor/status answered ${res.status}`);
  return res.json();
}

/* What the monitor knows that a request's fate depends on: each backend's service up and how
 * often it changed (a machine down is a service down too), and how many requests it moved. */
export function monitorView(st) {
  return {
    up: st.backends.map((b) => b.service.up),
    changes: st.backends.map((b) => b.service.changes),
    retried: st.retried,
    active: st.active,
  };
}

/* Whether the monitor changed its mind between two views: a health flip or a moved request. */
export function monitorChanged(a, b) {
  return a.retried !== b.retried || a.changes.some((c, i) => c !== b.changes[i]);
}

/* Whether, between two views, there may have been a moment with no backend up: each one was
 * down in one of them or changed between them. */
export function monitorMayHaveBeenEmpty(a, b) {
  return a.up.every((up, i) => !up || !b.up[i] || a.changes[i] !== b.changes[i]);
}

/* Waits until the monitor sends traffic to backend active (null: none) and has not changed its
 * mind for stableMs; resolves with that status. */
export async function waitMonitorSettled(base, active, stableMs = 1000, ms = WAIT_MS) {
  let since = null;
  let seen = null;
  return waitFor(async () => {
    const st = await monitorStatus(base);
    const v = monitorView(st);
    if (v.active !== active || (seen && monitorChanged(seen, v))) {
      since = null;
      seen = null;
      return null;
    }
    if (!seen) {
      seen = v;
      since = Date.now();
    }
    return Date.now() - since >= stableMs ? st : null;
  }, `the monitor sending traffic to backend ${active}, unchanged for ${stableMs} ms`, ms);
}
