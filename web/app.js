/*
 * dstmc web UI: the dashboard of the speed test monitor.
 *
 * Plain browser JavaScript, no build step. It reads configuration.json to find the API, draws
 * the original's two charts ("Download vs. Upload", "Server Ping") from the server-side
 * bucketed /api/v1/series, lists recent results, and stays current through server-sent events
 * (no polling). Pointed at an original .NET speedtest-api it falls back to GET /SpeedTest.
 */
'use strict';

(() => {
  const $ = (sel) => document.querySelector(sel);
  const DAY = 864e5;
  const RANGES = { '24h': DAY, '7d': 7 * DAY, '30d': 30 * DAY, '1y': 365 * DAY };
  const TABLE_ROWS = 25;     /* the original API's page (compat mode) */
  const RETRY_MAX_MS = 60000;
  const RUN_TIMEOUT_MS = 180000;
  const PROBE_OFFLINE_MS = 90000; /* the API's own notion of an offline probe */
  const OVERLAY_MAX = 8;           /* probes drawn at once when comparing them */

  const state = {
    base: '',              /* API base URL, no trailing slash */
    mode: 'native',        /* 'native' (/api/v1) or 'compat' (an original speedtest-api) */
    range: '24h',          /* a RANGES key or 'custom' */
    custom: null,          /* {from, to} in ms when range is 'custom' */
    view: { from: 0, to: 0 },
    probe: '',             /* '' = all probes */
    overlay: false,        /* "Compare probes": the charts draw one line per probe */
    overlaySeries: null,   /* {t, probes: [{name, download, upload, ping}], total} in overlay mode */
    thresholds: readStored('dstmc.thresholds', { download: null, upload: null, ping: null }),
    series: null,          /* the last series answer, as chart columns (see toColumns) */
    probes: new Map(),     /* probe name → its last known state */
    run: null,             /* {requestId, timer} while a "Run test now" is pending */
    watchRequest: null,    /* request id whose result we still announce */
    answered: new Map(),   /* request id → its result, the last 50 seen */
    sched: null,           /* {paused, schedules} once GET /api/v1/schedules answered */
    schedEdit: null,       /* {i (null: a new one), cron, target, probe} while a row is edited */
    schedBusy: false, schedTimer: null,
    loadSeq: 0, loaded: false, retryMs: 0, retryTimer: null, refreshTimer: null, events: null,
  };

  /* For tests and the curious: the chart instances and a promise of the first complete load. */
  let markReady;
  const dstmc = (window.dstmc = {
    charts: { speed: null, ping: null }, ready: new Promise((ok) => { markReady = ok; }),
    isReady: false, loads: 0, state, theme: () => document.documentElement.dataset.theme,
  });

  /* ---------- small helpers ---------- */

  function readStored(key, fallback) {
    try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch (e) { return fallback; }
  }

  function writeStored(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }

  function esc(s) {
    return String(s ?? '').replace(/[&<>"']/g, (c) =>
      ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  }

  /* Numbers, units and times: format.js (in the chosen time zone and speed unit). */
  const F = window.dstmcFormat, R = window.dstmcResults;
  const { isNum } = F;
  const fmtMs = F.ms;
  const mbpsOf = (bps) => (isNum(bps) ? bps / 1e6 : null);
  const pad2 = (n) => String(n).padStart(2, '0');
  const fmtTime = F.time;
  const resultTime = (r) => new Date(r.time).getTime() || null;
  /* for the schedule panel: formatters in the chosen zone */
  const dateFmt = (o) => ({ format: (d) => new Intl.DateTimeFormat(undefined, F.zone() ? { ...o, timeZone: F.zone() } : o).format(d) });
  const hourFmt = { format: (d) => F.hour(+d) };
  const dayFmt = { format: (d) => F.day(+d) };

  /* "2026-11-21T10:00" in the chosen zone, for datetime-local inputs, and back. */
  const toLocalInput = (ms) => new Date(ms + F.offsetMin(ms) * 6e4).toISOString().slice(0, 16);
  const fromLocalInput = (v) => {
    const asUtc = new Date(`${v}Z`).getTime();
    return isNum(asUtc) ? asUtc - F.offsetMin(asUtc - F.offsetMin(asUtc) * 6e4) * 6e4 : NaN;
  };


  /* ---------- talking to the API ---------- */

  /* fetch + JSON with this browser's login (session.js); throws an error with .status. */
  const api = (path, opts) => dstmcSession.request(path, opts);

  /*
   * configuration.json's speedTestApiBase, as the original web client reads it: empty = the
   * API serves this page (we use the page's directory, so a path prefix keeps working), with
   * "://" an absolute URL, otherwise a path prefix on this host (the ingress form "/backend").
   */
  async function resolveBase() {
    let base = '';
    try {
      const res = await fetch('configuration.json', { cache: 'no-store' });
      if (res.ok) base = String((await res.json()).speedTestApiBase ?? '').trim();
    } catch (e) { /* no configuration: same origin */ }
    if (base.includes('://')) return base.replace(/\/+$/, '');
    if (base) return location.origin + ('/' + base).replace(/\/+/g, '/').replace(/\/$/, '');
    return new URL('.', location.href).href.replace(/\/$/, '');
  }

  /*
   * Logged in or out (session.js): the controls follow by themselves (CSS); a private dashboard
   * locks when logged out, and loads again, without a reload, once logged in.
   */
  function onSession(who) {
    if (!who.admin && state.schedEdit) { state.schedEdit = null; renderSchedules(); }
    if (who.locked) {
      state.events?.close();
      state.events = null;
      for (const t of [state.retryTimer, state.refreshTimer, state.schedTimer]) clearTimeout(t);
      $('#banner').hidden = true;
    } else if (who.private) {
      if (state.loaded) { connectEvents(); loadProbes(); loadSchedules(); }
      loadAll();
    }
  }

  /* A query string of the parameters that have a value. */
  const query = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v != null)).toString();

  /* The time window being shown: relative ranges end now. */
  function computeView() {
    if (state.range === 'custom' && state.custom) return { ...state.custom };
    return { from: Date.now() - RANGES[state.range], to: Date.now() };
  }

  /* ---------- loading data ---------- */

  /* Loads everything the page shows; on failure shows the banner and retries with back-off. */
  async function loadAll() {
    const seq = ++state.loadSeq;
    clearTimeout(state.retryTimer);
    const view = computeView();
    try {
      const data = state.mode === 'native' ? await loadNative(view) : await loadCompat();
      if (seq !== state.loadSeq) return; /* a newer load has started meanwhile */
      state.view = data.view || view;
      state.series = data.series;
      state.overlaySeries = data.overlay || null;
      if (data.results) R.setRows(data.results);
      $('#banner').hidden = true;
      state.retryMs = 0;
      renderAll();
      dstmc.loads++;
      if (!state.loaded && state.mode === 'native') { connectEvents(); loadProbes(); loadSchedules(); }
      state.loaded = true;
      if (!dstmc.isReady) { dstmc.isReady = true; markReady(); }
    } catch (e) {
      if (seq !== state.loadSeq || dstmcSession.locked()) return; /* locked: the login panel says why */
      if (e.status === 404 && state.mode === 'native' && !state.loaded) {
        enterCompatMode(); /* no /api/v1/series: an original speedtest-api */
        return loadAll();
      }
      scheduleRetry(e);
    }
  }

  async function loadNative(view) {
    const sel = { probe: state.probe };
    const range = { from: Math.round(view.from), to: Math.round(view.to) };
    const [series, , overlay] = await Promise.all([
      api(`/api/v1/series?${query({ ...range, ...sel })}`),
      R.load(sel),
      state.overlay ? loadOverlay(range) : null,
    ]);
    return { series: toColumns(series), overlay };
  }

  /*
   * "Compare probes": one series request per probe (at most OVERLAY_MAX, the most recently
   * seen), merged on one time axis. The probe list is asked for each time, so a new probe joins.
   */
  async function loadOverlay(range) {
    const { probes } = await api('/api/v1/probes');
    const seen = (p) => new Date(p.last_seen).getTime() || 0;
    const all = (probes || []).filter((p) => p.name);
    const names = all.sort((a, b) => seen(b) - seen(a)).slice(0, OVERLAY_MAX).map((p) => p.name).sort();
    const cols = await Promise.all(names.map((probe) =>
      api(`/api/v1/series?${query({ ...range, probe })}`).then(toColumns)));
    return { ...mergeProbes(names, cols), total: all.length };
  }

  /* The original's own query: the last 30 tests since two days ago, newest first. */
  async function loadCompat() {
    const d = new Date(Date.now() - 2 * DAY);
    const day = `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
    const rows = await api(`/SpeedTest?From=0&To=30&SortOn=3&SortOrder=1&TestDateGt=${day}`);
    /* A testDate without a zone is local time, as the original's chart read it; JS does that. */
    const results = rows.map((r) => ({
      id: r.sessionId, time: String(r.testDate).replace(/(\.\d{3})\d+/, '$1'), status: 'ok',
      probe: `${r.user} #${r.device}`, engine: null,
      download_bps: r.data.speeds.download * 1e6, upload_bps: r.data.speeds.upload * 1e6,
      ping_ms: r.data.server.ping, jitter_ms: null, server: { host: r.data.server.host },
    }));
    const asc = results.slice().reverse(), col = (f) => asc.map(f), t = col(resultTime);
    const cols = { t, step: 0, ok: col(() => 1), failed: col(() => 0) };
    for (const [k, f] of [['download', 'download_bps'], ['upload', 'upload_bps'], ['ping', 'ping_ms']]) {
      cols[`${k}_min`] = cols[`${k}_avg`] = cols[`${k}_max`] = col((r) => r[f]);
    }
    const series = toColumns(cols);
    return { series, results: results.slice(0, TABLE_ROWS), view: { from: t[0] ?? d.getTime(), to: Date.now() } };
  }

  async function loadProbes() {
    try {
      const { probes } = await api('/api/v1/probes');
      /* the list nests the last heartbeat (phase, mbps…); its own fields (state, last_seen) win */
      for (const p of probes || []) state.probes.set(p.name, { ...state.probes.get(p.name), ...p.heartbeat, ...p });
      renderProbeOptions();
      renderProbeStatus();
    } catch (e) { /* the status line just stays empty */ }
  }

  /* Several results landing at once cause one reload, not many. */
  function scheduleRefresh(delay = 1500) {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(loadAll, delay);
  }

  function scheduleRetry(err) {
    state.retryMs = Math.min(RETRY_MAX_MS, state.retryMs ? state.retryMs * 2 : 2000);
    $('#banner-text').textContent = `${err.message}${err.status ? ` (HTTP ${err.status})` : ''}. ` +
      `Retrying in ${Math.round(state.retryMs / 1000)} s…`;
    $('#banner').hidden = false;
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(loadAll, state.retryMs);
  }

  /* ---------- charts: web/charts.js ---------- */

  const C = window.dstmcCharts;
  const { toColumns, mergeProbes, summarize } = C;
  const renderCharts = () => C.render(state, dstmc.charts);
  const resizeCharts = () => C.resize(dstmc.charts);

  /* ---------- tiles and table ---------- */

  /* true when a value misses what the ISP promised (speeds below, ping above). */
  function misses(kind, v) {
    const thr = state.thresholds[kind];
    return isNum(thr) && isNum(v) && (kind === 'ping' ? v > thr : v < thr);
  }

  function setTile(id, value, unit, sub, bad) {
    const el = $(id);
    el.querySelector('.v').textContent = value;
    el.querySelector('small').textContent = unit;
    el.querySelector('.tile-sub').textContent = sub;
    el.classList.toggle('bad', !!bad);
  }

  function renderTiles() {
    const s = summarize(state.series);
    const latest = R.latest();
    const dl = latest?.download_bps, ul = latest?.upload_bps, ping = latest?.ping_ms;
    const span = state.mode === 'compat' ? 'the last tests' :
      state.range === 'custom' ? 'range' : state.range.replace(/(\d+)/, '$1 ');
    const avgText = (v, f) => (isNum(v) ? `avg ${f(v)} over ${span}` : `no results in ${span}`);
    const speedAvg = (mbps) => F.speed(mbps * 1e6);
    setTile('#tile-download', F.speedIn(dl), F.speedUnit(dl).name, avgText(s.download, speedAvg), misses('download', mbpsOf(dl)));
    setTile('#tile-upload', F.speedIn(ul), F.speedUnit(ul).name, avgText(s.upload, speedAvg), misses('upload', mbpsOf(ul)));
    const jit = isNum(latest?.jitter_ms) ? ` · jitter ${fmtMs(latest.jitter_ms)} ms` : '';
    setTile('#tile-ping', fmtMs(ping), 'ms', avgText(s.ping, (x) => `${fmtMs(x)} ms`) + jit, misses('ping', ping));
    const total = s.ok + s.failed;
    setTile('#tile-failures', String(s.failed), s.failed === 1 ? 'test' : 'tests',
      total ? `of ${F.plural(total, 'test')} · ${F.pct(s.ok, total)} succeeded` : `no tests in ${span}`, s.failed > 0);
  }

  const renderTable = () => R.render();

  const renderAll = () => { renderCharts(); renderTiles(); renderTable(); };

  /* ---------- probes and the status line ---------- */

  /* Adds newly seen probes to the filter (never removes: the selection must stay valid). */
  function renderProbeOptions() {
    const sel = $('#probe'), have = new Set([...sel.options].filter((o) => o.id !== 'probe-overlay').map((o) => o.value));
    for (const name of [...state.probes.keys()].sort()) if (!have.has(name)) sel.add(new Option(name, name));
  }

  function probeLine(p) {
    const seen = new Date(p.last_seen).getTime();
    const offline = p.state === 'offline' || !isNum(seen) || Date.now() - seen > PROBE_OFFLINE_MS;
    const st = offline ? 'offline' : p.state === 'running' ? 'running' : 'idle';
    let detail = st;
    if (st === 'running') {
      detail = ['running', progressText(p)].filter(Boolean).join(' · ');
    } else if (isNum(seen)) {
      detail += ` · seen ${F.sameDay(seen, Date.now()) ? F.hour(seen) : fmtTime(seen)}`;
    }
    return `<span class="probe" data-state="${st}"><span class="dot"></span><b>${esc(p.name)}</b> ${esc(detail)}</span>`;
  }

  /* A running probe's progress: "download · 85.3 Mbps · 4 s" (what its last beat said). */
  function progressText(p) {
    if (!p.phase) return '';
    return [p.phase, isNum(p.bps) && p.phase !== 'latency' ? F.speed(p.bps) : null,
      isNum(p.elapsed_s) ? `${Math.round(p.elapsed_s)} s` : null].filter(Boolean).join(' · ');
  }

  function renderProbeStatus() {
    const list = [...state.probes.values()].filter((p) => !state.probe || p.name === state.probe);
    $('#probe-status').innerHTML = state.mode === 'compat'
      ? '<span class="muted">Original speedtest-api: the last 30 tests of the past two days, no live updates.</span>'
      : list.map(probeLine).join('') || '<span class="muted">No probe has reported yet.</span>';
  }

  /* ---------- live updates (server-sent events) ---------- */

  const setConn = (st, text) => { $('#conn').dataset.state = st; $('#conn-text').textContent = text || st; };

  /*
   * EventSource reconnects by itself (the server sends "retry: 2000" and replays missed events
   * by Last-Event-ID). Only if it gives up (CLOSED) do we reconnect, with back-off.
   */
  function connectEvents(delay = 0) {
    state.events?.close();
    const es = (state.events = new EventSource(`${state.base}/api/v1/events`,
      { withCredentials: dstmcSession.who().authenticated }));
    let wasDown = false;
    setConn('connecting', 'connecting…');
    es.onopen = () => {
      setConn('live');
      /* catch up on what the outage hid (or another API replica, behind a monitor, stored) */
      if (wasDown) { scheduleRefresh(200); loadSchedules(); loadProbes(); }
      wasDown = false;
      delay = 0;
    };
    es.onerror = () => {
      wasDown = true;
      if (es.readyState === EventSource.CLOSED) {
        delay = Math.min(RETRY_MAX_MS, delay ? delay * 2 : 2000);
        setConn('offline', `offline · retry in ${Math.round(delay / 1000)} s`);
        setTimeout(() => { if (state.events === es) connectEvents(delay); }, delay);
      } else {
        setConn('reconnecting', 'reconnecting…');
      }
    };
    const on = (name, fn) => es.addEventListener(name, (ev) => {
      try { fn(JSON.parse(ev.data)); } catch (e) { console.warn(`bad "${name}" event`, e); }
    });
    on('result', onResultEvent);
    on('probe', onProbeEvent);
    on('progress', onProbeEvent);
    on('schedules', applySchedules);
    on('deleted', onDeletedEvent);
    on('excluded', onExcludedEvent);
    /* the API's feed from the store reconnected: it may have missed changes, so reload all */
    on('resync', () => { scheduleRefresh(200); loadSchedules(); loadProbes(); });
  }

  /* Results were deleted (here or by another admin): drop the rows we know, reload the rest. */
  function onDeletedEvent(d) {
    if ((d.ids || []).length) R.remove(d.ids);
    scheduleRefresh(300);
  }

  /* A result's excluded flag changed: redraw its row now, the charts after a reload. */
  function onExcludedEvent(r) {
    if (!r.id) return;
    R.replace(r);
    scheduleRefresh(300);
  }

  /* A result was stored: show it at once, then reload the charts (debounced). */
  function onResultEvent(r) {
    if (r.probe) {
      const p = state.probes.get(r.probe) || { name: r.probe, location: r.location };
      /* the result ends the test's progress: the idle beat that follows may come later */
      state.probes.set(r.probe, { state: 'offline', ...p, ...(p.state === 'running' ? { state: 'idle' } : {}),
        phase: null, bps: null, elapsed_s: null, last_result: r, last_seen: p.last_seen || r.time });
      renderProbeOptions();
      renderProbeStatus();
    }
    if (r.request_id) {
      /* a fast probe can answer before our own POST /run does: remember recent answers */
      state.answered.set(r.request_id, r);
      if (state.answered.size > 50) state.answered.delete(state.answered.keys().next().value);
      if (r.request_id === state.watchRequest) finishRun(r);
    }
    if (state.probe && r.probe !== state.probe) return;
    if (R.addLive(r)) renderTiles();
    if (state.range !== 'custom' || state.view.to >= Date.now()) scheduleRefresh();
  }

  /*
   * A probe heartbeat (`probe`) or live progress (`progress`: phase, bit/s, elapsed): the probe
   * line shows it, and the run message too when it is our run. A beat without a phase (idle, or
   * a test just started) clears the last progress.
   */
  function onProbeEvent(p) {
    if (!p.name) return;
    const clear = p.phase ? {} : { phase: null, bps: null, elapsed_s: null };
    state.probes.set(p.name, { ...state.probes.get(p.name), ...clear, ...p, last_seen: p.last_seen || new Date().toISOString() });
    renderProbeOptions();
    renderProbeStatus();
    if (state.run && p.request_id === state.run.requestId && p.state === 'running') {
      const prog = progressText(p);
      showRunMsg(`Running on ${p.name}${prog ? `: ${prog}` : '…'}`, 'busy');
    }
  }

  /* ---------- the schedule (GET/PUT /api/v1/schedules) ---------- */

  /*
   * The panel stays hidden until GET /api/v1/schedules answers 200: an older dstmc or the
   * original .NET API answer 404, and then there is simply no schedule panel. Edits replace the
   * whole list (PUT); the server's answer, or its "schedules" event, is what gets drawn.
   */
  const weekdayFmt = dateFmt({ weekday: 'short' });
  const DOW_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
  const DOW_ABBR = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
  const ordinal = (n) => n + (n % 100 >= 11 && n % 100 <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] || 'th');
  const andList = (a) => (a.length < 2 ? a.join('') : `${a.slice(0, -1).join(', ')} and ${a.at(-1)}`);

  /* A field as a sorted list of numbers (N, A-B, names, comma lists), or null if it has steps. */
  function cronList(field, lo, hi, names) {
    const out = new Set();
    const num = (s) => {
      const i = names ? names.indexOf(s) : -1;
      const v = i >= 0 ? i : /^\d+$/.test(s) ? Number(s) : NaN;
      return v >= lo && v <= hi ? v : null;
    };
    for (const part of field.split(',')) {
      const [a, b, extra] = part.split('-');
      const x = num(a), y = b === undefined ? x : num(b);
      if (extra !== undefined || x === null || y === null || y < x) return null;
      for (let v = x; v <= y; v++) out.add(v);
    }
    return [...out].sort((p, q) => p - q);
  }

  /*
   * Common cron expressions in words ("every 15 minutes", "on weekdays at 06:30"), or null when
   * it is not simple to say; the raw expression is always shown next to it.
   */
  function describeCron(expr) {
    const e = String(expr || '').trim().toLowerCase();
    const macros = { '@hourly': 'every hour', '@daily': 'every day at 00:00', '@midnight': 'every day at 00:00',
      '@weekly': 'every Sunday at 00:00', '@monthly': 'on the 1st of every month at 00:00',
      '@yearly': 'every 1 January at 00:00', '@annually': 'every 1 January at 00:00' };
    if (e.startsWith('@')) return macros[e] || null;
    const f = e.split(/\s+/);
    if (f.length !== 5 || f[3] !== '*') return null;
    const [mi, h, dom, , dow] = f;
    const step = (s) => { const m = /^\*\/(\d+)$/.exec(s); return m ? Number(m[1]) : null; };

    let days = null; /* null: every day */
    if (dom !== '*' && dow !== '*') return null; /* Vixie's either-or rule: not simple to say */
    if (dow !== '*') {
      const d = cronList(dow.replace(/\b7\b/g, '0'), 0, 6, DOW_ABBR);
      if (!d) return null;
      const key = d.join(',');
      days = key === '1,2,3,4,5' ? 'on weekdays' : key === '0,6' ? 'at weekends'
        : key === '0,1,2,3,4,5,6' ? null : `on ${andList(d.map((x) => `${DOW_NAMES[x]}s`))}`;
    } else if (dom !== '*') {
      const d = cronList(dom, 1, 31);
      if (!d) return null;
      days = `on the ${andList(d.map(ordinal))} of the month`;
    }

    const mins = cronList(mi, 0, 59), hours = cronList(h, 0, 23);
    let when;
    if (h === '*' && (mi === '*' || step(mi) === 1)) when = 'every minute';
    else if (h === '*' && step(mi)) when = `every ${step(mi)} minutes`;
    else if (h === '*' && mins) {
      when = mins.length === 1 && mins[0] === 0 ? 'every hour' : `every hour at ${andList(mins.map((m) => `:${pad2(m)}`))}`;
    } else if (step(h) && mins && mins.length === 1) {
      when = `every ${step(h) === 1 ? 'hour' : `${step(h)} hours`} at :${pad2(mins[0])}`;
    } else if (hours && mins && mins.length === 1 && hours.length <= 6) {
      const at = `at ${andList(hours.map((x) => `${pad2(x)}:${pad2(mins[0])}`))}`;
      return days ? `${days} ${at}` : `every day ${at}`;
    } else {
      return null;
    }
    return days ? `${when} ${days}` : when;
  }

  /* "in 12 min", "in 3 h 5 min", "in 2 days", "due now" */
  function fmtIn(ms) {
    const min = Math.round((ms - Date.now()) / 6e4);
    if (min <= 0) return ms > Date.now() ? 'in < 1 min' : 'due now';
    if (min < 60) return `in ${min} min`;
    if (min < 10 * 60) return `in ${Math.floor(min / 60)} h${min % 60 ? ` ${min % 60} min` : ''}`;
    if (min < 48 * 60) return `in ${Math.round(min / 60)} h`;
    return `in ${Math.round(min / 1440)} days`;
  }

  /* A next run in local time: "09:15" today, "tomorrow 09:15", "Mon 09:15", "2 Dec 09:15". */
  function fmtWhen(ms) {
    const d = new Date(ms), today = new Date();
    if (d.toDateString() === today.toDateString()) return hourFmt.format(d);
    if (d.toDateString() === new Date(today.getTime() + DAY).toDateString()) return `tomorrow ${hourFmt.format(d)}`;
    if (ms - Date.now() < 6 * DAY) return `${weekdayFmt.format(d)} ${hourFmt.format(d)}`;
    return `${dayFmt.format(d)} ${hourFmt.format(d)}`;
  }

  const nextMs = (s) => (s.next_run ? new Date(s.next_run).getTime() : NaN);

  async function loadSchedules() {
    try {
      applySchedules(await api('/api/v1/schedules'));
    } catch (e) {
      /* 404: no schedules API here (an older dstmc, the original API): no panel, no fuss */
      if (e.status === 404 || !state.sched) hideSchedules();
      else planSchedRefresh(30000); /* transient: keep what is shown, look again later */
    }
  }

  function hideSchedules() {
    state.sched = null;
    state.schedEdit = null;
    $('#schedule').hidden = true;
    $('#sched-pill').hidden = true;
    clearTimeout(state.schedTimer);
  }

  function applySchedules(body) {
    if (!body || !Array.isArray(body.schedules)) return;
    state.sched = { paused: !!body.paused, schedules: body.schedules, version: body.version };
    renderSchedules();
    planSchedRefresh();
  }

  /* After the soonest next run has passed, ask again: the server has planned the one after. */
  function planSchedRefresh(delay) {
    clearTimeout(state.schedTimer);
    if (delay === undefined) {
      const next = Math.min(...state.sched.schedules.filter((s) => s.enabled !== false).map(nextMs).filter(isNum));
      if (!isNum(next)) return;
      delay = Math.max(5000, next - Date.now() + 3000);
    }
    state.schedTimer = setTimeout(loadSchedules, Math.min(delay, 6 * 3600e3));
  }

  function schedMsg(text, kind) {
    const el = $('#sched-msg');
    Object.assign(el, { textContent: text || '', hidden: !text });
    if (kind) el.dataset.kind = kind;
  }

  function nextRunCell(s) {
    if (s.enabled === false) return '<span class="muted">disabled</span>';
    if (state.sched.paused) return '<span class="muted">paused</span>';
    const t = nextMs(s);
    if (!isNum(t)) return '<span class="muted">never</span>';
    return `<time datetime="${esc(s.next_run)}" title="${esc(fmtTime(t))}">${esc(fmtWhen(t))}</time> ` +
      `<span class="muted rel" data-t="${t}">${esc(fmtIn(t))}</span>`;
  }

  function schedRowHtml(s, i) {
    const words = describeCron(s.cron);
    const off = s.enabled === false;
    const label = words || s.cron;
    return `<tr data-i="${i}" class="${off ? 'off' : ''}">` +
      `<td title="${esc(words ? `${words}: ${s.cron}` : s.cron)}"><span class="cron-words">${esc(words || 'custom schedule')}</span> <code>${esc(s.cron)}</code></td>` +
      `<td title="${esc(s.target || '')}">${s.target ? `<code>${esc(s.target)}</code>` : '<span class="muted">probe’s default</span>'}</td>` +
      `<td>${s.probe ? esc(s.probe) : '<span class="muted">all probes</span>'}</td>` +
      `<td class="next">${nextRunCell(s)}</td>` +
      `<td data-needs="admin"><label class="switch"><input type="checkbox" role="switch" data-act="toggle"${off ? '' : ' checked'}` +
      ` aria-label="Enabled: ${esc(label)}"><span aria-hidden="true"></span></label></td>` +
      `<td class="actions" data-needs="admin"><button type="button" class="btn ghost small" data-act="edit" aria-label="Edit ${esc(label)}">Edit</button>` +
      `<button type="button" class="btn ghost small danger" data-act="remove" aria-label="Remove ${esc(label)}">Remove</button></td></tr>`;
  }

  function schedEditHtml(d) {
    const words = describeCron(d.cron);
    return `<tr class="editing" data-i="${d.i ?? 'new'}">` +
      `<td><input data-field="cron" class="mono" value="${esc(d.cron)}" placeholder="*/15 * * * *" ` +
      'aria-label="Cron expression: minute hour day-of-month month day-of-week" aria-describedby="sched-msg" spellcheck="false" autocomplete="off">' +
      `<div class="cron-preview muted" aria-live="polite">${esc(words || (d.cron.trim() ? 'custom schedule' : 'minute hour day month weekday'))}</div></td>` +
      `<td><input data-field="target" class="mono" value="${esc(d.target)}" placeholder="probe’s default" aria-label="Target (empty: the probe’s default)" spellcheck="false" autocomplete="off"></td>` +
      `<td><input data-field="probe" value="${esc(d.probe)}" placeholder="all probes" list="sched-probes" aria-label="Probe (empty: all probes)" spellcheck="false" autocomplete="off"></td>` +
      '<td class="next muted">Enter saves · Esc cancels</td><td data-needs="admin"></td>' +
      '<td class="actions" data-needs="admin"><button type="button" class="btn primary small" data-act="save">Save</button>' +
      '<button type="button" class="btn ghost small" data-act="cancel">Cancel</button></td></tr>';
  }

  function renderSchedules() {
    const sc = state.sched;
    if (!sc) return;
    const panel = $('#schedule');
    const focused = panel.contains(document.activeElement) ? document.activeElement : null;
    const focusKey = focused && (focused.dataset.field || (focused.closest('tr') && focused.dataset.act
      ? `${focused.closest('tr').dataset.i}:${focused.dataset.act}` : focused.id));
    panel.hidden = false;
    const st = $('#sched-state');
    st.dataset.state = sc.paused ? 'paused' : 'active';
    st.textContent = sc.paused ? 'paused' : 'active';
    const pause = $('#sched-pause');
    pause.textContent = sc.paused ? 'Resume' : 'Pause';
    pause.classList.toggle('primary', sc.paused);
    pause.title = sc.paused ? 'Resume the scheduled tests' : 'Stop running scheduled tests until resumed';
    $('#sched-pill').hidden = !sc.paused;
    renderSchedSummary();

    const d = state.schedEdit;
    const rows = sc.schedules.map((s, i) => (d && d.i === i ? schedEditHtml(d) : schedRowHtml(s, i)));
    if (d && d.i === null) rows.push(schedEditHtml(d));
    $('#schedules tbody').innerHTML = rows.join('') ||
      '<tr class="empty"><td colspan="6">No schedules: tests run only on request.</td></tr>';
    $('#sched-add').disabled = !!d;
    $('#sched-probes').innerHTML = [...state.probes.keys()].sort().map((n) => `<option value="${esc(n)}">`).join('');

    if (focusKey) { /* a redraw (say, a live update) keeps the keyboard where it was */
      const [i, act] = String(focusKey).split(':');
      const el = act ? $(`#schedules tr[data-i="${i}"] [data-act="${act}"]`)
        : $(`#schedules [data-field="${focusKey}"]`) || document.getElementById(focusKey);
      if (el && el !== document.activeElement) el.focus();
    }
  }

  function renderSchedSummary() {
    const sc = state.sched;
    const next = Math.min(...sc.schedules.filter((s) => s.enabled !== false).map(nextMs).filter(isNum));
    $('#sched-summary').textContent = sc.paused ? 'Scheduled tests are paused until you resume them.'
      : isNum(next) ? `Next test ${fmtWhen(next)} (${fmtIn(next)})`
      : sc.schedules.length ? 'No test scheduled' : '';
  }

  /* Keeps the "in 12 min" texts current. */
  function tickSchedules() {
    if (!state.sched || $('#schedule').hidden) return;
    renderSchedSummary();
    for (const el of document.querySelectorAll('#schedules .rel')) el.textContent = fmtIn(Number(el.dataset.t));
  }

  /* The body of a PUT: what the user can set, nothing the server computes. */
  const schedBody = (s) => {
    const o = { cron: s.cron, enabled: s.enabled !== false };
    if (s.target) o.target = s.target;
    if (s.probe) o.probe = s.probe;
    return o;
  };

  function schedError(e, what) {
    const text = e.status === 401 ? `${what}: the login has ended.`
      : `${what}: ${e.message}${e.status && e.status !== 400 ? ` (HTTP ${e.status})` : ''}`;
    schedMsg(text, 'error');
  }

  function setSchedBusy(busy) {
    state.schedBusy = busy;
    for (const b of document.querySelectorAll('#schedule button, #schedule input')) b.disabled = busy;
    if (!busy) $('#sched-add').disabled = !!state.schedEdit;
  }

  /* PUT the whole list; on success the answer is drawn and true returned. */
  async function putSchedules(list, what) {
    if (state.schedBusy) return false;
    setSchedBusy(true);
    schedMsg('Saving…', 'busy');
    try {
      /* the version read: another admin (or replica) changed them since → 409, nothing stored */
      const version = state.sched.version;
      const body = await api('/api/v1/schedules', { method: 'PUT', body: JSON.stringify({ schedules: list.map(schedBody), ...(version != null ? { version } : {}) }) });
      state.schedEdit = null;
      schedMsg(what, 'ok');
      setSchedBusy(false);
      applySchedules(body);
      return true;
    } catch (e) {
      setSchedBusy(false);
      if (e.status === 409) {
        /* someone else saved first: show theirs; the user makes the change again on it */
        state.schedEdit = null;
        await loadSchedules();
        schedMsg('Not saved: someone else changed the schedules meanwhile. They are reloaded: make your change again.', 'error');
        return false;
      }
      schedError(e, 'Not saved');
      return false;
    }
  }

  async function togglePause() {
    if (state.schedBusy || !state.sched) return;
    const resume = state.sched.paused;
    setSchedBusy(true);
    try {
      const body = await api(`/api/v1/schedules/${resume ? 'resume' : 'pause'}`, { method: 'POST' });
      setSchedBusy(false);
      schedMsg(resume ? 'Scheduled tests resumed.' : 'Scheduled tests paused.', 'ok');
      applySchedules(body);
      $('#sched-pause').focus();
    } catch (e) {
      setSchedBusy(false);
      schedError(e, resume ? 'Not resumed' : 'Not paused');
    }
  }

  function startEdit(i) {
    const s = i === null ? { cron: '', target: '', probe: '' } : state.sched.schedules[i];
    state.schedEdit = { i, cron: s.cron || '', target: s.target || '', probe: s.probe || '' };
    schedMsg('');
    renderSchedules();
    $('#schedules [data-field="cron"]').focus();
  }

  function cancelEdit() {
    const i = state.schedEdit?.i;
    state.schedEdit = null;
    schedMsg('');
    renderSchedules();
    (i != null ? $(`#schedules tr[data-i="${i}"] [data-act="edit"]`) : $('#sched-add'))?.focus();
  }

  async function saveEdit() {
    const d = state.schedEdit;
    if (!d) return;
    const cron = d.cron.trim().replace(/\s+/g, ' ');
    if (!cron) {
      schedMsg('Enter a cron expression, e.g. */15 * * * * (every 15 minutes).', 'error');
      return $('#schedules [data-field="cron"]').focus();
    }
    const edited = { cron, target: d.target.trim() || null, probe: d.probe.trim() || null };
    const list = state.sched.schedules.slice();
    if (d.i === null) list.push({ ...edited, enabled: true });
    else list[d.i] = { ...list[d.i], ...edited };
    const words = describeCron(cron);
    const i = d.i === null ? list.length - 1 : d.i;
    if (await putSchedules(list, `Saved: ${words ? `${words} (${cron})` : cron}.`)) {
      $(`#schedules tr[data-i="${Math.min(i, state.sched.schedules.length - 1)}"] [data-act="edit"]`)?.focus();
    } else {
      $('#schedules [data-field="cron"]')?.focus();
    }
  }

  async function removeSchedule(i) {
    const s = state.sched.schedules[i];
    const list = state.sched.schedules.filter((x, k) => k !== i);
    if (await putSchedules(list, `Removed ${describeCron(s.cron) || s.cron} (${s.cron}).`)) $('#sched-add').focus();
  }

  async function toggleEnabled(i, on) {
    const list = state.sched.schedules.map((s, k) => (k === i ? { ...s, enabled: on } : s));
    const s = list[i];
    if (!(await putSchedules(list, `${on ? 'Enabled' : 'Disabled'} ${describeCron(s.cron) || s.cron}.`))) renderSchedules();
    $(`#schedules tr[data-i="${i}"] [data-act="toggle"]`)?.focus();
  }

  function bindSchedules() {
    const body = $('#schedules tbody');
    body.addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-act]');
      if (!b || state.schedBusy) return;
      const i = Number(b.closest('tr').dataset.i);
      if (b.dataset.act === 'edit') startEdit(i);
      else if (b.dataset.act === 'remove') removeSchedule(i);
      else if (b.dataset.act === 'save') saveEdit();
      else if (b.dataset.act === 'cancel') cancelEdit();
    });
    body.addEventListener('change', (ev) => {
      if (ev.target.dataset.act === 'toggle') toggleEnabled(Number(ev.target.closest('tr').dataset.i), ev.target.checked);
    });
    body.addEventListener('input', (ev) => {
      const f = ev.target.dataset.field;
      if (!f || !state.schedEdit) return;
      state.schedEdit[f] = ev.target.value;
      if (f === 'cron') {
        ev.target.closest('td').querySelector('.cron-preview').textContent =
          describeCron(ev.target.value) || (ev.target.value.trim() ? 'custom schedule' : 'minute hour day month weekday');
      }
    });
    body.addEventListener('keydown', (ev) => {
      if (!ev.target.dataset.field) return;
      if (ev.key === 'Enter') { ev.preventDefault(); saveEdit(); }
      else if (ev.key === 'Escape') { ev.preventDefault(); cancelEdit(); }
    });
    $('#sched-add').addEventListener('click', () => startEdit(null));
    $('#sched-pause').addEventListener('click', togglePause);
    setInterval(tickSchedules, 20000);
  }

  /* ---------- "Run test now" ---------- */

  function showRunMsg(text, kind) {
    Object.assign($('#run-msg'), { textContent: text, hidden: false }).dataset.kind = kind;
  }

  /* Disables the button while a run is pending; gives up waiting after RUN_TIMEOUT_MS. */
  function setRunPending(requestId) {
    clearTimeout(state.run?.timer);
    state.run = null;
    $('#run-btn').disabled = !!requestId;
    $('#run-btn').classList.toggle('busy', !!requestId);
    if (!requestId) return;
    state.run = { requestId, timer: setTimeout(() => {
      setRunPending(null);
      showRunMsg('No result yet; the request stays queued until a probe takes it.', 'warn');
    }, RUN_TIMEOUT_MS) };
  }

  /* What the picker offers: probes seen, targets of the schedules, recent results and probes. */
  function fillRunPicker() {
    const opts = (list) => [...new Set(list.filter(Boolean))].sort().map((x) => `<option value="${esc(x)}">`).join('');
    $('#run-probes').innerHTML = opts([...state.probes.keys()]);
    $('#run-targets').innerHTML = opts([
      ...(state.sched?.schedules || []).map((s) => s.target),
      ...R.rows().map((r) => r.target),
      ...[...state.probes.values()].map((p) => p.target),
    ]);
  }

  function toggleRunForm(open) {
    $('#run-form').hidden = !open;
    $('#run-options').setAttribute('aria-expanded', String(open));
    if (!open) return;
    fillRunPicker();
    if (!$('#run-probe').value && state.probe) $('#run-probe').value = state.probe;
    $('#run-target').focus();
  }

  /* POST /api/v1/run: the picker's target and probe when it is open, else the probe filter's. */
  async function runNow() {
    const picked = !$('#run-form').hidden;
    const target = picked ? $('#run-target').value.trim() : '';
    const probe = picked ? $('#run-probe').value.trim() : state.probe;
    setRunPending('pending');
    showRunMsg('Requesting a test…', 'busy');
    try {
      const body = JSON.stringify({ ...(target ? { target } : {}), ...(probe ? { probe } : {}) });
      const r = await api('/api/v1/run', { method: 'POST', body });
      state.watchRequest = r.request_id;
      const early = state.answered.get(r.request_id);
      if (early) return finishRun(early);
      if (r.probes_alive === 0) {
        /* Queued, but nobody will run it now: say so plainly and let the user try again. */
        const msg = r.message || 'Test requested.';
        showRunMsg(/no probe/i.test(msg) ? msg : `${msg} (no probe is running)`, 'warn');
        setRunPending(null); /* still watched: a probe that starts later will run it */
      } else {
        showRunMsg(r.message || `Test requested (${r.probes_alive} probe(s) alive)…`, 'busy');
        setRunPending(r.request_id);
      }
    } catch (e) {
      setRunPending(null);
      showRunMsg(e.status === 401 ? 'Not requested: the login has ended.' : `Could not request a test: ${e.message}.`, 'error');
    }
  }

  function finishRun(r) {
    setRunPending(null); /* the button allows one run at a time: this was it */
    state.watchRequest = null;
    if (r.status === 'failed') {
      showRunMsg(`Test on ${r.probe || 'probe'} failed: ${r.error || 'no error text'}`, 'error');
    } else {
      showRunMsg(`Done on ${r.probe || 'probe'}: ↓ ${F.speed(r.download_bps)} · ` +
        `↑ ${F.speed(r.upload_bps)} · ping ${fmtMs(r.ping_ms)} ms`, 'ok');
    }
  }

  /* ---------- controls: range, probe, thresholds, theme ---------- */

  function selectRange(range) {
    state.range = range;
    for (const b of document.querySelectorAll('#ranges button')) b.classList.toggle('active', b.dataset.range === range);
    $('#custom-range').hidden = range !== 'custom';
    if (range === 'custom') {
      const v = state.custom || state.view;
      $('#custom-from').value = toLocalInput(v.from);
      $('#custom-to').value = toLocalInput(v.to);
      return; /* loads on Apply */
    }
    loadAll();
  }

  function applyCustomRange(ev) {
    ev.preventDefault();
    /* datetime-local values carry no zone; new Date() reads them as local time. */
    const from = fromLocalInput($('#custom-from').value);
    const to = fromLocalInput($('#custom-to').value);
    if (!isNum(from) || !isNum(to) || from >= to) return showRunMsg('The custom range needs a start before its end.', 'error');
    state.custom = { from, to };
    loadAll();
  }

  function saveSettings(ev) {
    ev.preventDefault();
    const num = (k) => (parseFloat($(`#thr-${k}`).value) > 0 ? parseFloat($(`#thr-${k}`).value) : null);
    state.thresholds = { download: num('download'), upload: num('upload'), ping: num('ping') };
    writeStored('dstmc.thresholds', state.thresholds);
    toggleSettings(false);
    if (state.series) renderAll(); /* redraw the dashed lines and highlights */
  }

  function toggleSettings(open) {
    $('#settings').hidden = !open;
    $('#settings-toggle').setAttribute('aria-expanded', String(open));
    if (!open) return;
    for (const k of ['download', 'upload', 'ping']) $(`#thr-${k}`).value = state.thresholds[k] ?? '';
    $('#unit-select').value = F.unitMode();
    $('#tz-input').value = F.zone();
    $('#tz-input').placeholder = `this browser’s (${F.browserZone() || 'local time'})`;
    if (!$('#tz-list').options.length) {
      const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
      $('#tz-list').innerHTML = ['UTC', ...zones].map((z) => `<option value="${esc(z)}">`).join('');
    }
  }

  /* A new unit or zone: everything that shows speeds or times is drawn again. */
  function redrawAll() {
    showTimeZone();
    if (state.series) renderAll();
    renderProbeStatus();
    if (state.sched) renderSchedules();
  }

  function applyZone() {
    const v = $('#tz-input').value.trim();
    const err = $('#tz-error');
    if (!F.setZone(v)) {
      Object.assign(err, { textContent: `“${v}” is not a time zone this browser knows (e.g. UTC, Europe/Oslo).`, hidden: false });
      return;
    }
    err.hidden = true;
    redrawAll();
  }

  function storedTheme() {
    try { return localStorage.getItem('dstmc.theme'); } catch (e) { return null; }
  }

  /* Canvas colours come from the CSS variables, so the charts are redrawn. */
  const applyTheme = (theme) => { document.documentElement.dataset.theme = theme; renderCharts(); };

  function initTheme() {
    const media = matchMedia('(prefers-color-scheme: dark)');
    const system = () => (media.matches ? 'dark' : 'light');
    if (!storedTheme()) document.documentElement.dataset.theme = system();
    media.addEventListener('change', () => { if (!storedTheme()) applyTheme(system()); });
    $('#theme-toggle').addEventListener('click', () => {
      const next = dstmc.theme() === 'dark' ? 'light' : 'dark';
      try { localStorage.setItem('dstmc.theme', next); } catch (e) { /* not remembered */ }
      applyTheme(next);
    });
  }

  function enterCompatMode() {
    state.mode = 'compat';
    for (const id of ['#ranges', '#probe-field', '#run-btn', '#run-options', '#csv-link', '#demo-remove']) $(id).hidden = true;
    setConn('static', 'original API · no live updates');
    renderProbeStatus();
  }

  function showTimeZone() {
    const z = F.zoneLabel();
    $('#tz').textContent = `Times in ${z.name} (${z.utc})`;
  }

  function bindControls() {
    for (const b of document.querySelectorAll('#ranges button')) b.addEventListener('click', () => selectRange(b.dataset.range));
    $('#custom-range').addEventListener('submit', applyCustomRange);
    $('#probe').addEventListener('change', (ev) => {
      state.overlay = ev.target.selectedOptions[0]?.id === 'probe-overlay';
      state.probe = state.overlay ? '' : ev.target.value;
      R.reset();
      renderProbeStatus();
      loadAll();
    });
    $('#run-btn').addEventListener('click', runNow);
    $('#run-options').addEventListener('click', () => toggleRunForm($('#run-form').hidden));
    $('#run-form').addEventListener('submit', (ev) => { ev.preventDefault(); runNow(); });
    $('#run-cancel').addEventListener('click', () => toggleRunForm(false));
    R.init({ api, query, misses, base: () => state.base, view: () => state.view, probe: () => state.probe,
      reload: loadAll, onDeleted: onDeletedEvent, onExcluded: onExcludedEvent });
    $('#settings-toggle').addEventListener('click', () => toggleSettings($('#settings').hidden));
    $('#tz').addEventListener('click', () => { toggleSettings(true); $('#tz-input').focus(); });
    $('#unit-select').addEventListener('change', (ev) => { F.setUnitMode(ev.target.value); redrawAll(); });
    $('#tz-input').addEventListener('change', applyZone);
    $('#settings').addEventListener('submit', saveSettings);
    $('#settings-clear').addEventListener('click', () => { for (const k of ['download', 'upload', 'ping']) $(`#thr-${k}`).value = ''; });
    $('#banner-retry').addEventListener('click', () => { state.retryMs = 0; loadAll(); });
    bindSchedules();
    new ResizeObserver(resizeCharts).observe($('main'));
  }

  async function init() {
    initTheme(); showTimeZone(); bindControls();
    state.base = await resolveBase();
    for (const a of document.querySelectorAll('[data-api-href]')) a.href = state.base + a.dataset.apiHref;
    try { localStorage.removeItem('dstmc.token'); } catch (e) { /* an older version kept it there */ }
    const who = await dstmcSession.start(state.base);
    dstmcSession.onChange(onSession);
    if (!who.locked) loadAll();
  }

  init();
})();
