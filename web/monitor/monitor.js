/* monitor.js - the status page of `dstmc monitor` (the original "System Monitor"): one card per
 * backend with a machine bulb (id vmN: circle_green/circle_red) and a service bulb (id bN:
 * circle_yellow/circle_black), live over server-sent events, and the Calculate form. The
 * helpers, the theme and the event stream are live.js's (shared with the toy store's page). */
(() => {
  'use strict';
  const { $, setText, setAttr, show, hms, count, load, connectEvents } = window.dstmcLive;
  let last = null; /* the newest status rendered */

  const full = (iso) => { const d = iso ? new Date(iso) : null; return d && !isNaN(d) ? d.toLocaleString() : ''; };
  const ms = (v) => {
    if (v == null || !isFinite(v)) return '—';
    const digits = v < 1 ? 3 : v < 10 ? 2 : v < 100 ? 1 : 0;
    return `${Number(v.toFixed(digits))} ms`;
  };
  const plural = (n, word) => `${count(n)} ${word}${n === 1 ? '' : 's'}`;

  /* The status as the page uses it; the bare {"VM":[..],"B":[..]} of the original also works. */
  function normalise(s) {
    if (!Array.isArray(s.backends)) {
      s.backends = (s.VM || []).map((vm, i) => ({
        index: i, name: `VM${i + 1}`, url: '', machine: { up: !!vm }, service: { up: !!(s.B || [])[i] },
      }));
      if (s.active === undefined) {
        const a = s.backends.find((b) => b.machine.up && b.service.up);
        s.active = a ? a.index : null;
      }
    }
    return s;
  }

  const CHECK = (kind, id, title) => `
    <div class="check ${kind}">
      <span id="${id}" role="img"></span>
      <div class="check-body">
        <div class="check-head"><b>${id.toUpperCase()}</b><span class="state" data-f="${kind}-state"></span></div>
        <div class="muted small">${title}</div>
        <div class="metric"><span data-f="${kind}-metric"></span> <small>${kind === 'machine' ? 'RTT' : 'latency'}</small></div>
        <div class="muted small since"><span data-f="${kind}-since"></span> <span data-f="${kind}-changes"></span></div>
        <div class="err small" data-f="${kind}-error" hidden></div>
      </div>
    </div>`;

  function card(i) {
    const el = document.createElement('article');
    el.className = 'card backend';
    el.id = `backend-${i + 1}`;
    el.dataset.index = String(i);
    el.innerHTML = `
      <header class="be-head">
        <h3 data-f="name"></h3>
        <span class="badge" data-f="role"></span>
        <span class="be-url" data-f="url"></span>
      </header>
      <div class="checks">${CHECK('machine', `vm${i + 1}`, 'Machine · ping echo')}${CHECK('service', `b${i + 1}`, 'Service · HTTP')}</div>
      <footer class="be-foot muted small">
        <span>Requests <b data-f="requests"></b></span><span>Failures <b data-f="failures"></b></span>
      </footer>`;
    return el;
  }

  /* One bulb: the original's class names, a label for screen readers, a flash when it flips. */
  function bulb(el, cls, label) {
    if (el.className === cls) return setAttr(el, 'aria-label', label);
    const flip = el.className !== '';
    el.className = cls;
    setAttr(el, 'aria-label', label);
    if (flip && el.animate && !matchMedia('(prefers-reduced-motion: reduce)').matches) {
      el.animate([{ transform: 'scale(1.25)' }, { transform: 'scale(1)' }], { duration: 350, easing: 'ease-out' });
    }
  }

  function renderBackend(el, b, s) {
    const n = b.index + 1, f = (k) => $(`[data-f="${k}"]`, el);
    const m = b.machine || {}, sv = b.service || {};
    const active = s.active === b.index;
    el.classList.toggle('active', active);
    el.classList.toggle('down', !(m.up && sv.up));
    setText(f('name'), b.name || `VM${n}`);
    setText(f('url'), b.url || b.host || '');
    setText(f('role'), active ? 'takes traffic' : m.up && sv.up ? 'standby' : 'down');
    setAttr(f('role'), 'data-role', active ? 'active' : m.up && sv.up ? 'standby' : 'down');
    bulb($(`#vm${n}`, el), m.up ? 'circle_green' : 'circle_red', `VM${n} machine ${m.up ? 'up' : 'down'}`);
    bulb($(`#b${n}`, el), sv.up ? 'circle_yellow' : 'circle_black', `B${n} service ${sv.up ? 'up' : 'down'}`);
    for (const [k, c, v] of [['machine', m, m.rtt_ms], ['service', sv, sv.latency_ms]]) {
      setText(f(`${k}-state`), c.up ? 'up' : 'down');
      setAttr(f(`${k}-state`), 'data-up', String(!!c.up));
      setText(f(`${k}-metric`), c.up ? ms(v) : '—');
      setText(f(`${k}-since`), c.since ? `since ${hms(c.since)}` : '');
      setText(f(`${k}-changes`), c.changes != null ? plural(c.changes, 'change') : '');
      setAttr(f(`${k}-since`), 'title', full(c.since));
      setText(f(`${k}-error`), c.up ? '' : c.error || '');
      show(f(`${k}-error`), !c.up && !!c.error);
    }
    setText(f('requests'), count(b.requests));
    setText(f('failures'), count(b.failures));
    f('failures').classList.toggle('bad', b.failures > 0);
  }

  function render(raw) {
    const s = normalise(raw);
    if (last && s.updated && last.updated && s.updated < last.updated) return; /* an older answer */
    last = s;
    const ov = $('#overview'), a = s.backends.find((b) => b.index === s.active);
    setAttr(ov, 'data-state', a ? 'ok' : 'none');
    const act = $('#active');
    const want = a ? `${a.name || `VM${a.index + 1}`}${a.url ? ` (${a.url})` : ''}` : 'No host active';
    if (act.textContent !== want) {
      act.textContent = '';
      if (a) {
        const b = document.createElement('b'), u = document.createElement('span');
        b.textContent = a.name || `VM${a.index + 1}`;
        u.className = 'muted url';
        u.textContent = a.url ? ` (${a.url})` : '';
        act.append(b, u);
      } else act.textContent = want;
    }
    setText($('#st-requests'), count(s.requests));
    setText($('#st-retried'), count(s.retried));
    setText($('#st-no-host'), count(s.no_host));
    setText($('#st-started'), hms(s.started));
    setAttr($('#st-started'), 'title', full(s.started));
    const meta = [];
    if (s.poll_ms != null) meta.push(`poll every ${s.poll_ms} ms`);
    if (s.timeout_ms != null) meta.push(`timeout ${s.timeout_ms} ms`);
    if (s.ping_method) meta.push(`ping: ${s.ping_method}`);
    if (s.updated) meta.push(`updated ${hms(s.updated)}`);
    setText($('#meta'), meta.join(' · '));
    show($('#calc'), s.calculate !== false);

    const list = $('#backends');
    s.backends.forEach((b, i) => {
      let el = list.children[i];
      if (!el || el.dataset.index !== String(b.index)) {
        const fresh = card(b.index);
        el ? list.replaceChild(fresh, el) : list.append(fresh);
        el = fresh;
      }
      renderBackend(el, b, s);
    });
    while (list.children.length > s.backends.length) list.lastElementChild.remove();
  }

  /* ---------- Calculate ---------- */

  async function calculate(ev) {
    ev.preventDefault();
    const form = ev.target, btn = $('#calc-btn');
    const out = (sum, random, by, err) => {
      for (const [id, label, v] of [['#sum', 'Sum is: ', sum], ['#random', 'Random Number is: ', random]]) {
        const el = $(id), b = document.createElement('b');
        el.textContent = v == null ? '' : label; /* the text reads "Sum is: 3", the number in bold */
        if (v != null) { b.textContent = String(v); el.append(b); }
      }
      setText($('#answered-by'), by || '');
      setText($('#calc-error'), err || '');
      show($('#sum'), sum != null); show($('#random'), random != null);
      show($('#answered-by'), !!by); show($('#calc-error'), !!err);
    };
    btn.disabled = true;
    btn.classList.add('busy');
    try {
      const q = `/?first=${encodeURIComponent(form.first.value)}&second=${encodeURIComponent(form.second.value)}`;
      const r = await fetch(q, { cache: 'no-store', headers: { Accept: 'application/json' } });
      const body = await r.json().catch(() => null);
      const idx = r.headers.get('X-Dstmc-Backend');
      const be = idx != null && idx !== '' && last ? last.backends.find((b) => b.index === Number(idx)) : null;
      const by = be ? `answered by ${be.name || `VM${be.index + 1}`}${be.url ? ` (${be.url})` : ''}`
        : idx != null && idx !== '' ? `answered by VM${Number(idx) + 1}` : '';
      if (!r.ok) out(null, null, '', body?.error?.message || `The monitor answered HTTP ${r.status}.`);
      else if (!body || body.err) out(null, null, by, 'The backend could not add these numbers.');
      else out(body.sum, body.random, by, '');
    } catch (e) {
      out(null, null, '', 'Could not reach the monitor.');
    } finally {
      btn.disabled = false;
      btn.classList.remove('busy');
    }
  }

  $('#calc-form').addEventListener('submit', calculate);
  load('status', render, (e) => {
    if (!last) {
      setAttr($('#overview'), 'data-state', 'error');
      setText($('#active'), `Could not load the status (${e.message})`);
    }
  });
  connectEvents('events', render);
})();
