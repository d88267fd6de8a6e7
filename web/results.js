/*
 * results.js - the dashboard's results table: pages of GET /api/v1/results by cursor (newer,
 * older, rows per page), sorting by time, download, upload or ping (the API sorts the whole
 * list; rows from the original API, unpaged, are sorted here), units in the column heads, a detail
 * view of one result, and the admin's exclude/delete buttons. Loaded after format.js, before
 * app.js, which calls window.dstmcResults.init(ctx).
 */
'use strict';

(() => {
  const F = window.dstmcFormat;
  const $ = (sel) => document.querySelector(sel);
  const SIZES = [10, 25, 50, 100];
  const SORTS = { time: (r) => new Date(r.time).getTime() || 0, download: (r) => r.download_bps,
    upload: (r) => r.upload_bps, ping: (r) => r.ping_ms };

  let ctx = null;      /* from app.js: api, base(), query(), misses(), view(), probe(), reload() */
  const st = {
    rows: [],          /* the page shown, in the API's order (newest first) */
    latest: null,      /* the newest result of the selection (the first page's first) */
    cursors: [null],   /* the cursor of each page seen so far: [0] is the first page */
    page: 0, next: null, size: Number(readSize()), sort: { key: 'time', dir: -1 }, paged: true,
  };

  function readSize() {
    try { const n = Number(localStorage.getItem('dstmc.pageSize')); return SIZES.includes(n) ? n : 25; } catch (e) { return 25; }
  }

  function esc(s) {
    return String(s ?? '').replace(/[&<>"']/g, (c) =>
      ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  }

  const timeOf = (r) => new Date(r.time).getTime() || null;

  /* ---------- loading ---------- */

  /* The page at st.page of the current selection (sel: {probe}); resolves with its rows. */
  async function load(sel) {
    const { key, dir } = st.sort;
    const order = key === 'time' && dir < 0 ? {} : { sort: key, order: dir < 0 ? 'desc' : 'asc' };
    const q = ctx.query({ limit: st.size, cursor: st.cursors[st.page], ...order, ...sel });
    const page = await ctx.api(`/api/v1/results?${q}`);
    st.rows = page.results || [];
    st.next = page.next_cursor || null;
    st.paged = true;
    if (st.page === 0) st.latest = st.rows.find((r) => r.status === 'ok') || null;
    return st.rows;
  }

  /* Rows from elsewhere (the original API's answer): one page, no paging. */
  function setRows(rows) {
    st.rows = rows;
    st.latest = rows.find((r) => r.status === 'ok') || null;
    st.cursors = [null];
    st.page = 0;
    st.next = null;
    st.paged = false;
  }

  /* Back to the first page (a new selection: time range, probe). */
  function reset() {
    st.cursors = [null];
    st.page = 0;
  }

  async function goPage(delta) {
    const to = st.page + delta;
    if (to < 0 || (delta > 0 && !st.next)) return;
    if (delta > 0) st.cursors[to] = st.next;
    const was = st.page;
    st.page = to;
    try {
      await load({ probe: ctx.probe() });
      render();
      $('#results').scrollIntoView({ block: 'nearest' });
    } catch (e) {
      st.page = was;
      msg(`Could not load that page: ${e.message}`, 'error');
    }
  }

  /* ---------- rendering ---------- */

  function sorted() {
    const { key, dir } = st.sort;
    if (st.paged || (key === 'time' && dir === -1)) return st.rows; /* the API sorted them */
    const val = SORTS[key];
    /* results without the value (failed tests) go last either way */
    return st.rows.slice().sort((a, b) => {
      const x = val(a), y = val(b);
      if (!F.isNum(x) || !F.isNum(y)) return F.isNum(x) ? -1 : F.isNum(y) ? 1 : 0;
      return dir * (x - y);
    });
  }

  /* One unit per speed column, the one that suits the page's largest value. */
  function columnUnits() {
    const max = (k) => Math.max(0, ...st.rows.map((r) => (F.isNum(r[k]) ? r[k] : 0)));
    return { download: F.speedUnit(max('download_bps')), upload: F.speedUnit(max('upload_bps')) };
  }

  function rowActions(r) {
    const ex = r.excluded === true;
    return '<td class="actions" data-needs="admin">' +
      `<button type="button" class="btn ghost small" data-act="exclude" aria-pressed="${ex}"` +
      ` title="${ex ? 'Show this result in the charts again' : 'Leave this result out of the charts (it stays recorded)'}">${ex ? 'Include' : 'Exclude'}</button>` +
      '<button type="button" class="btn ghost small danger" data-act="delete" title="Delete this result">Delete</button></td>';
  }

  function rowHtml(r, units) {
    const failed = r.status === 'failed';
    const cell = (kind, v, f) => `<td class="num${ctx.misses(kind, v) ? ' below' : ''}">${f(v)}</td>`;
    const mbps = (bps) => (F.isNum(bps) ? bps / 1e6 : null);
    const server = r.server ? (r.server.sponsor || r.server.name || r.server.host || '—') : '—';
    const serverTitle = r.server ? [r.server.host, r.server.name, r.server.country].filter(Boolean).join(' · ') : '';
    const probe = `${esc(r.probe || '—')}${r.location ? ` <span class="muted">${esc(r.location)}</span>` : ''}` +
      (r.demo ? ' <span class="badge demo" title="Demo data (--seed-demo)">demo</span>' : '');
    const head = `<td class="time"><button type="button" class="link" data-act="detail" title="Details of this result">` +
      `${esc(F.time(timeOf(r)))}</button></td><td>${probe}</td>` +
      `<td title="${esc(r.target || '')}">${esc(r.engine || '—')}</td>`;
    const cls = [failed ? 'failed' : '', r.excluded ? 'excluded' : ''].filter(Boolean).join(' ');
    const tr = `<tr${cls ? ` class="${cls}"` : ''} data-id="${esc(r.id)}">`;
    const status = (failed ? '<span class="badge fail">failed</span>' : '<span class="badge ok">ok</span>') +
      (r.excluded ? ' <span class="badge excluded" title="Left out of the charts">excluded</span>' : '');
    if (failed) {
      return `${tr}${head}` +
        `<td colspan="5" class="error">⚠ ${esc(r.error || 'failed (no error text)')}</td>` +
        `<td>${status}</td>${rowActions(r)}</tr>`;
    }
    return `${tr}${head}` +
      cell('download', mbps(r.download_bps), () => F.speedIn(r.download_bps, units.download)) +
      cell('upload', mbps(r.upload_bps), () => F.speedIn(r.upload_bps, units.upload)) +
      cell('ping', r.ping_ms, F.ms) +
      `<td class="num">${F.ms(r.jitter_ms)}</td>` +
      `<td class="server" title="${esc(serverTitle)}">${esc(server)}</td>` +
      `<td>${status}</td>${rowActions(r)}</tr>`;
  }

  function render() {
    const units = columnUnits();
    $('#col-download .unit').textContent = units.download.name;
    $('#col-upload .unit').textContent = units.upload.name;
    for (const th of document.querySelectorAll('#results th[data-sort]')) {
      const on = th.dataset.sort === st.sort.key;
      th.setAttribute('aria-sort', on ? (st.sort.dir < 0 ? 'descending' : 'ascending') : 'none');
    }
    const body = $('#results tbody');
    body.innerHTML = st.rows.length
      ? sorted().map((r) => rowHtml(r, units)).join('')
      : `<tr class="empty"><td colspan="10">${st.page ? 'No older results.' : 'No results yet. Start a probe, or press “Run test now”.'}</td></tr>`;
    const v = ctx.view();
    $('#csv-link').href = `${ctx.base()}/api/v1/results.csv?` +
      ctx.query({ from: Math.round(v.from), to: Math.round(v.to), probe: ctx.probe() });
    $('#pager').hidden = !st.paged;
    $('#page-newer').disabled = st.page === 0;
    $('#page-older').disabled = !st.next;
    const first = st.page * st.size + 1;
    $('#page-info').textContent = st.rows.length
      ? `${first.toLocaleString()}–${(first + st.rows.length - 1).toLocaleString()}` +
        `${st.next ? '' : ` of ${(first + st.rows.length - 1).toLocaleString()}`} · page ${st.page + 1}`
      : `page ${st.page + 1}`;
  }

  /* ---------- live changes ---------- */

  /* A new result of the selection: on the first page it goes in at once. */
  function addLive(r) {
    if (st.rows.some((x) => x.id === r.id)) return false;
    if (r.status === 'ok' && (!st.latest || timeOf(r) >= timeOf(st.latest))) st.latest = r;
    if (st.page !== 0 || (st.paged && (st.sort.key !== 'time' || st.sort.dir > 0))) return false;
    st.rows = [r, ...st.rows].sort((a, b) => timeOf(b) - timeOf(a)).slice(0, st.size);
    render();
    $(`#results tr[data-id="${CSS.escape(r.id)}"]`)?.classList.add('fresh');
    return true;
  }

  function remove(ids) {
    const gone = new Set(ids);
    st.rows = st.rows.filter((r) => !gone.has(r.id));
    if (st.latest && gone.has(st.latest.id)) st.latest = st.rows.find((r) => r.status === 'ok') || null;
    render();
  }

  function replace(r) {
    st.rows = st.rows.map((x) => (x.id === r.id ? r : x));
    render();
  }

  /* ---------- the detail view ---------- */

  function detailRows(r) {
    const rows = [];
    const add = (label, value) => { if (value != null && value !== '' && value !== '—') rows.push([label, value]); };
    const s = r.server || {}, c = r.client || {};
    add('Time', F.timeSeconds(timeOf(r)));
    add('Status', r.status === 'failed' ? 'failed' : 'ok');
    add('Error', r.error);
    add('Probe', [r.probe, r.location].filter(Boolean).join(' · '));
    add('Engine', r.engine);
    add('Target', r.target);
    add('Download', F.isNum(r.download_bps) ? F.speed(r.download_bps) : null);
    add('Upload', F.isNum(r.upload_bps) ? F.speed(r.upload_bps) : null);
    add('Ping', F.isNum(r.ping_ms) ? `${F.ms(r.ping_ms)} ms` : null);
    add('Jitter', F.isNum(r.jitter_ms) ? `${F.ms(r.jitter_ms)} ms` : null);
    add('Packet loss', F.isNum(r.packet_loss_pct) ? `${r.packet_loss_pct.toFixed(1)} %` : null);
    /* loaded latency (issue 14) and any other latency field the result carries */
    for (const [k, v] of Object.entries(r)) {
      if (/latency/.test(k) && F.isNum(v)) add(k.replace(/_ms$/, '').replace(/_/g, ' ').replace(/^./, (x) => x.toUpperCase()), `${F.ms(v)} ms`);
    }
    add('Data received', F.isNum(r.bytes_down) ? F.bytes(r.bytes_down) : null);
    add('Data sent', F.isNum(r.bytes_up) ? F.bytes(r.bytes_up) : null);
    add('Duration', F.isNum(r.duration_s) ? `${r.duration_s.toFixed(1)} s` : null);
    add('Streams', F.isNum(r.streams) ? String(r.streams) : null);
    add('Server', [s.sponsor, s.name, s.country].filter(Boolean).join(' · '));
    add('Server host', [s.host, s.id != null ? `id ${s.id}` : null].filter(Boolean).join(' · '));
    add('Server distance', F.isNum(s.distance_m) ? `${(s.distance_m / 1000).toFixed(1)} km` : null);
    add('Client', [c.ip, c.isp, c.country].filter(Boolean).join(' · '));
    add('Request', r.request_id);
    add('Result id', r.id);
    if (r.excluded) add('Charts', 'left out (excluded)');
    if (r.demo) add('Demo data', 'yes (--seed-demo)');
    return rows;
  }

  async function showDetail(id) {
    let r = st.rows.find((x) => x.id === id);
    const dlg = $('#result-dialog');
    const draw = (x) => {
      $('#result-title').textContent = `Result of ${F.time(timeOf(x))}`;
      $('#result-fields').innerHTML = detailRows(x).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('');
    };
    draw(r);
    if (!dlg.open) dlg.showModal();
    try { /* the full record: a list row may be from an older, shorter answer */
      r = await ctx.api(`/api/v1/results/${encodeURIComponent(id)}`);
      if (dlg.open && r && r.id === id) draw(r);
    } catch (e) { /* the row's copy is shown */ }
  }

  /* ---------- actions ---------- */

  function msg(text, kind) {
    Object.assign($('#results-msg'), { textContent: text, hidden: false }).dataset.kind = kind;
  }

  async function onClick(ev) {
    const btn = ev.target.closest('button[data-act]');
    const id = btn?.closest('tr[data-id]')?.dataset.id;
    const r = id && st.rows.find((x) => x.id === id);
    if (!r) return;
    if (btn.dataset.act === 'detail') return showDetail(id);
    const what = `the result of ${F.time(timeOf(r))} (${r.probe || 'no probe'})`;
    btn.disabled = true;
    try {
      if (btn.dataset.act === 'delete') {
        if (!confirm(`Delete ${what}? This cannot be undone.`)) return;
        await ctx.api(`/api/v1/results/${encodeURIComponent(id)}`, { method: 'DELETE' });
        ctx.onDeleted({ ids: [id] });
        msg(`Deleted ${what}.`, 'ok');
      } else {
        const excluded = r.excluded !== true;
        ctx.onExcluded(await ctx.api(`/api/v1/results/${encodeURIComponent(id)}/excluded`,
          { method: 'PUT', body: JSON.stringify({ excluded }) }));
        msg(excluded ? `Left ${what} out of the charts; it stays recorded.` : `Showing ${what} in the charts again.`, 'ok');
      }
    } catch (e) {
      msg(`Could not change ${what}: ${e.message}`, 'error');
    } finally {
      btn.disabled = false;
    }
  }

  /* "Remove demo data": ask how many first, then confirm with the number. */
  async function removeDemo() {
    const btn = $('#demo-remove');
    btn.disabled = true;
    try {
      const del = (dry) => ctx.api('/api/v1/results/delete', { method: 'POST', body: JSON.stringify({ demo: true, dry_run: dry }) });
      const { count } = await del(true);
      if (!count) return msg('There is no demo data to remove.', 'ok');
      if (!confirm(`Delete ${count} demo result${count === 1 ? '' : 's'}? Real results stay.`)) return;
      const done = await del(false);
      msg(`Removed ${done.count} demo result${done.count === 1 ? '' : 's'}.`, 'ok');
      ctx.reload();
    } catch (e) {
      msg(`Could not remove the demo data: ${e.message}`, 'error');
    } finally {
      btn.disabled = false;
    }
  }

  /* The whole list in that order (the API sorts; paging starts again), or the page (no paging). */
  async function sortBy(key) {
    const was = st.sort;
    st.sort = st.sort.key === key ? { key, dir: -st.sort.dir } : { key, dir: key === 'ping' ? 1 : -1 };
    if (!st.paged) return render();
    reset();
    try {
      await load({ probe: ctx.probe() });
      render();
    } catch (e) {
      st.sort = was;
      msg(`Could not sort: ${e.message}`, 'error');
    }
  }

  function init(c) {
    ctx = c;
    $('#results tbody').addEventListener('click', onClick);
    $('#demo-remove').addEventListener('click', removeDemo);
    for (const th of document.querySelectorAll('#results th[data-sort]')) {
      th.querySelector('button').addEventListener('click', () => sortBy(th.dataset.sort));
    }
    $('#page-newer').addEventListener('click', () => goPage(-1));
    $('#page-older').addEventListener('click', () => goPage(1));
    const size = $('#page-size');
    size.value = String(st.size);
    size.addEventListener('change', () => {
      st.size = Number(size.value);
      try { localStorage.setItem('dstmc.pageSize', String(st.size)); } catch (e) { /* not kept */ }
      reset();
      goPage(0);
    });
    $('#result-close').addEventListener('click', () => $('#result-dialog').close());
  }

  window.dstmcResults = Object.freeze({
    init, load, setRows, reset, render, addLive, remove, replace, showDetail,
    rows: () => st.rows, latest: () => st.latest, page: () => st.page, sort: () => ({ ...st.sort }),
  });
})();
