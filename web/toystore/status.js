/* status.js - the toy store front end's live page (/status/): the toys and their stock, orders
 * per second, the order replicas and who leads, from GET data and live over GET events.
 * Read only. Every text from the server goes in through textContent (toy names included). The
 * helpers, the theme and the event stream are live.js's (shared with the monitor's page). */
(() => {
  'use strict';
  const { $, setText, setAttr, show, hms, count, load, connectEvents } = window.dstmcLive;
  const rate = (v) => (v == null || !isFinite(v) ? '—' : Number(v.toFixed(v < 10 ? 1 : 0)).toLocaleString());
  const price = (p) => (typeof p === 'number' && isFinite(p) ? p.toFixed(2) : '—');
  let last = null; /* the newest status rendered */

  /* ---------- toys ---------- */

  function toyRow(name) {
    const tr = document.createElement('tr');
    tr.dataset.name = name;
    for (const cls of ['name', 'num price', 'num stock', 'bar-col']) {
      const td = document.createElement('td');
      td.className = cls;
      tr.append(td);
    }
    const bar = document.createElement('span');
    bar.className = 'stock-bar';
    bar.append(document.createElement('span'));
    tr.lastElementChild.append(bar);
    return tr;
  }

  function renderToys(toys, error) {
    show($('#toys-error'), !!error);
    setText($('#toys-error'), error ? `The catalog did not answer: ${error}` : '');
    if (!Array.isArray(toys)) return; /* keep the last list shown, marked stale by the error */
    const body = $('#toys tbody');
    const rows = new Map([...body.querySelectorAll('tr[data-name]')].map((tr) => [tr.dataset.name, tr]));
    const top = Math.max(100, ...toys.map((t) => Number(t.quantity) || 0));
    body.querySelector('tr.empty')?.remove();
    toys.forEach((t, i) => {
      const name = String(t.name);
      let tr = rows.get(name);
      rows.delete(name);
      if (!tr) tr = toyRow(name);
      if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
      const q = Number(t.quantity);
      const before = tr.dataset.quantity;
      setText(tr.cells[0], name);
      setText(tr.cells[1], price(t.price));
      setText(tr.cells[2], q > 0 ? count(q) : 'sold out');
      tr.dataset.quantity = String(q);
      tr.classList.toggle('out', !(q > 0));
      tr.cells[3].firstChild.firstChild.style.width = `${Math.max(0, Math.min(100, (q / top) * 100))}%`;
      if (before !== undefined && before !== tr.dataset.quantity) { /* a buy or a restock: flash */
        tr.classList.remove('fresh');
        void tr.offsetWidth;
        tr.classList.add('fresh');
      }
    });
    for (const tr of rows.values()) tr.remove();
    if (!body.children.length) {
      const tr = document.createElement('tr'), td = document.createElement('td');
      tr.className = 'empty';
      td.colSpan = 4;
      td.textContent = 'The catalog has no toys.';
      tr.append(td);
      body.append(tr);
    }
  }

  /* ---------- orders per second: a sparkline of the last 60 s ---------- */

  function renderRate(o) {
    setText($('#rate'), rate(o.per_s));
    setText($('#rate-window'), o.window_s ? ` /s · mean of ${o.window_s} s` : '');
    const h = Array.isArray(o.per_second) ? o.per_second.map((v) => Number(v) || 0) : [];
    const max = Math.max(1, ...h), W = 600, H = 80, pad = 4;
    const x = (i) => (h.length > 1 ? (i / (h.length - 1)) * W : 0);
    const y = (v) => H - pad - (v / max) * (H - 2 * pad);
    const line = h.map((v, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join('');
    setAttr($('#spark .spark-line'), 'd', line);
    setAttr($('#spark .spark-area'), 'd', h.length ? `${line}L${W},${H}L0,${H}Z` : '');
    setText($('#spark-max'), `peak ${count(Math.max(0, ...h))}/s`);
  }

  /* ---------- replicas ---------- */

  function replicaCard(id) {
    const el = document.createElement('article');
    el.className = 'card backend replica';
    el.dataset.id = String(id);
    const head = document.createElement('header');
    head.className = 'be-head';
    const h3 = document.createElement('h3'), badge = document.createElement('span'), url = document.createElement('span');
    h3.textContent = `Replica ${id}`;
    badge.className = 'badge';
    badge.dataset.f = 'role';
    url.className = 'be-url';
    url.dataset.f = 'url';
    head.append(h3, badge, url);
    const checks = document.createElement('div');
    checks.className = 'rep-checks';
    for (const k of ['live', 'ready']) {
      const c = document.createElement('span');
      c.className = 'state';
      c.dataset.f = k;
      checks.append(c);
    }
    el.append(head, checks);
    return el;
  }

  function renderReplicas(reps) {
    const list = $('#replicas');
    reps.forEach((r, i) => {
      let el = list.children[i];
      if (!el || el.dataset.id !== String(r.id)) {
        const fresh = replicaCard(r.id);
        el ? list.replaceChild(fresh, el) : list.append(fresh);
        el = fresh;
      }
      const f = (k) => $(`[data-f="${k}"]`, el);
      const role = r.leader ? 'leader' : !r.live ? 'down' : r.ready ? 'follower' : 'catching up';
      el.classList.toggle('active', !!r.leader);
      el.classList.toggle('down', !r.live);
      setText(f('role'), role);
      setAttr(f('role'), 'data-role', r.leader ? 'active' : r.live ? 'standby' : 'down');
      setText(f('url'), String(r.url || ''));
      setText(f('live'), r.live ? 'live' : 'no answer');
      setAttr(f('live'), 'data-up', String(!!r.live));
      setText(f('ready'), r.ready ? 'caught up' : 'not ready');
      setAttr(f('ready'), 'data-up', String(!!r.ready));
    });
    while (list.children.length > reps.length) list.lastElementChild.remove();
  }

  /* ---------- the whole status ---------- */

  function render(doc) {
    const s = doc && doc.data;
    if (!s) return;
    if (last && s.updated && last.updated && s.updated < last.updated) return; /* an older answer */
    last = s;
    const reps = Array.isArray(s.replicas) ? s.replicas : [];
    const lead = reps.find((r) => r.leader);
    setAttr($('#overview'), 'data-state', lead ? 'ok' : 'none');
    const el = $('#leader');
    const want = lead ? `Replica ${lead.id} (${lead.url})` : 'No leader: buys wait for one';
    if (el.dataset.shown !== want) {
      el.dataset.shown = want;
      el.textContent = '';
      if (lead) {
        const b = document.createElement('b'), u = document.createElement('span');
        b.textContent = `Replica ${lead.id}`;
        u.className = 'muted url';
        u.textContent = ` (${lead.url})`;
        el.append(b, u);
      } else el.textContent = want;
    }
    const o = s.orders || {};
    setText($('#st-rate'), rate(o.per_s));
    setText($('#st-total'), count(o.total));
    setText($('#st-epoch'), count(s.epoch));
    setText($('#st-elections'), count(s.elections));
    const c = s.cache || {};
    const meta = [c.on ? `cache on${c.events ? '' : ' (catalog stream down: not used)'} · ${count(c.hits)} hits · ${count(c.misses)} misses`
      : 'cache off'];
    if (s.updated) meta.push(`updated ${hms(s.updated)}`);
    setText($('#meta'), meta.join(' · '));
    renderToys(s.toys, s.catalog_error);
    renderRate(o);
    renderReplicas(reps);
  }

  load('data', render, (e) => {
    if (!last) {
      setAttr($('#overview'), 'data-state', 'error');
      setText($('#leader'), `Could not load the status (${e.message})`);
    }
  });
  connectEvents('events', render);
})();
