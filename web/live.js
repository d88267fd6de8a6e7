/* live.js - what the two live status pages share (the monitor's /monitor/, the toy store's
 * /status/): DOM helpers that change only what differs, the theme shared with the dstmc UI
 * through localStorage, the connection pill, the first load and the event stream with its
 * back-off. Loaded in <head> without defer, before the page's own script: it sets the theme
 * before the first paint (no inline script: the toy store's page forbids one). */
(() => {
  'use strict';

  /* ---------- theme: the choice stored by the dstmc UI, else the system's ---------- */
  const stored = () => { try { return localStorage.getItem('dstmc.theme'); } catch (e) { return null; } };
  const media = matchMedia('(prefers-color-scheme: dark)');
  const system = () => (media.matches ? 'dark' : 'light');
  const applyTheme = (t) => { document.documentElement.dataset.theme = t; };
  applyTheme(stored() || system());

  document.addEventListener('DOMContentLoaded', () => {
    media.addEventListener('change', () => { if (!stored()) applyTheme(system()); });
    document.querySelector('#theme-toggle')?.addEventListener('click', () => {
      const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
      try { localStorage.setItem('dstmc.theme', next); } catch (e) { /* not remembered */ }
      applyTheme(next);
    });
  });

  /* ---------- DOM: change only where a value differs, so live updates do not flicker ---------- */
  const $ = (sel, root = document) => root.querySelector(sel);
  const setText = (el, text) => { if (el && el.textContent !== text) el.textContent = text; };
  const setAttr = (el, name, value) => { if (el.getAttribute(name) !== value) el.setAttribute(name, value); };
  const show = (el, on) => { if (el.hidden === on) el.hidden = !on; };

  const pad = (n) => String(n).padStart(2, '0');
  const hms = (iso) => {
    const d = iso ? new Date(iso) : null;
    return d && !isNaN(d) ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` : '—';
  };
  const count = (n) => (n == null ? '—' : Number(n).toLocaleString());

  /* ---------- loading and live updates ---------- */

  /* The pill in the top bar (#conn, #conn-text) and body[data-conn]. */
  function setConn(state, text) {
    setAttr($('#conn'), 'data-state', state);
    setText($('#conn-text'), text);
    document.body.dataset.conn = state;
  }

  /* GET url once; onDoc gets its JSON, onError the failure (an HTTP status is one). */
  async function load(url, onDoc, onError) {
    try {
      const r = await fetch(url, { cache: 'no-store' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      onDoc(await r.json());
    } catch (e) {
      onError(e);
    }
  }

  /* The event stream at url: each `status` event (or one without a name) parsed for onStatus;
   * conn(state, text) hears connecting/live/reconnecting/offline. EventSource reconnects by
   * itself after a cut; when the server refused the stream, a new one after 2 s, 4 s, … 30 s. */
  function connectEvents(url, onStatus, conn = setConn) {
    const on = (ev) => { try { onStatus(JSON.parse(ev.data)); } catch (e) { console.warn('bad status event', e); } };
    let delay = 0;
    const open = () => {
      const es = new EventSource(url);
      conn('connecting', 'connecting…');
      es.addEventListener('status', on);
      es.onmessage = on;
      es.onopen = () => { delay = 0; conn('live', 'live'); };
      es.onerror = () => {
        if (es.readyState !== EventSource.CLOSED) return conn('reconnecting', 'reconnecting…');
        delay = Math.min(30000, delay ? delay * 2 : 2000); /* the server refused: retry with back-off */
        conn('offline', `offline · retry in ${Math.round(delay / 1000)} s`);
        setTimeout(open, delay);
      };
    };
    open();
  }

  window.dstmcLive = Object.freeze({ $, setText, setAttr, show, hms, count, setConn, load, connectEvents });
})();
