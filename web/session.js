/*
 * session.js - the dashboard's login: requests with this browser's credentials, the "Log in"
 * dialog, who is logged in, and which controls the page may offer.
 *
 * The API keeps the login in an HttpOnly session cookie; the page holds only the session's CSRF
 * token, in memory, and sends it with every write. A token typed into the dialog (or carried by
 * the login link's #token=) is traded for the cookie at once and never stored. Controls that need
 * the admin scope carry data-needs="admin": the stylesheet hides them unless <html data-admin>.
 * A private dashboard (--private) that nobody is logged in to shows a login panel instead.
 * Loaded before app.js, which calls start() and request() and listens with onChange().
 */
'use strict';

window.dstmcSession = (() => {
  const $ = (sel) => document.querySelector(sel);
  const SESSION = '/api/v1/session';
  const LOGGED_OUT = { authenticated: false, private: false };

  let base = '';             /* the API's base URL, as app.js resolved it */
  let me = { ...LOGGED_OUT }; /* the last answer of /api/v1/session (csrf included) */
  let notice = '';           /* why the page was logged out, until the next login */
  let noLogins = false;      /* the API has no /api/v1/session (an original speedtest-api) */
  const listeners = [];

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  /* Why a fetch failed: an API of another origin that answers, but not to this page, is CORS. */
  async function unreachable() {
    const api = base || location.origin;
    if (new URL(api, location.href).origin !== location.origin) {
      try {
        await fetch(`${api}/ping`, { mode: 'no-cors', cache: 'no-store' });
        return `The API at ${api} does not let pages of ${location.origin} use it ` +
          `(start it with --cors-origin ${location.origin})`;
      } catch (e) { /* not reachable at all */ }
    }
    return `Cannot reach the API at ${api}`;
  }

  /*
   * fetch + JSON; throws ApiError (status 0 when the API could not be reached). The cookie goes
   * along on the session's own requests, writes, and every request once logged in (not to an
   * API of another origin otherwise: an original speedtest-api answers "Allow-Origin: *", which a
   * request with credentials may not read). A 401 means the login has ended.
   */
  async function request(path, opts = {}) {
    const write = !!opts.method && opts.method !== 'GET';
    const headers = { Accept: 'application/json' };
    if (opts.body || write) headers['Content-Type'] = 'application/json';
    if (write && me.csrf) headers['X-CSRF-Token'] = me.csrf;
    const credentials = write || me.authenticated || path === SESSION ? 'include' : 'same-origin';
    let res;
    try {
      res = await fetch(base + path, { ...opts, headers, cache: 'no-store', credentials });
    } catch (e) {
      throw new ApiError(0, await unreachable());
    }
    let body = null;
    try { body = JSON.parse(await res.text()); } catch (e) { /* empty or not JSON */ }
    if (res.status === 401 && path !== SESSION) {
      if (me.authenticated) ended('Your login has ended (expired or revoked).');
      else if (!write) await load(); /* an API that turned private: the page locks */
    }
    if (!res.ok) throw new ApiError(res.status, body?.error?.message || body?.title || `HTTP ${res.status}`);
    return body;
  }

  /* ---------- state ---------- */

  const isAdmin = () => me.authenticated && (me.scopes || []).includes('admin');
  const locked = () => !!me.private && !me.authenticated;

  function set(next, why = '') {
    me = next && typeof next === 'object' ? next : { ...LOGGED_OUT };
    notice = why;
    render();
    for (const fn of listeners) fn(who());
  }

  const ended = (why) => set({ authenticated: false, private: me.private }, why);

  /* Who this browser is; logged out when the API cannot say. */
  async function load() {
    try {
      set(await request(SESSION));
    } catch (e) {
      noLogins = e.status === 404;
      set({ ...LOGGED_OUT });
    }
  }

  async function login(token) {
    set(await request(SESSION, { method: 'POST', body: JSON.stringify({ token }) }));
  }

  async function logout() {
    try {
      await request(SESSION, { method: 'DELETE' });
      set({ authenticated: false, private: me.private });
      if (!locked()) $('#login-btn').focus();
    } catch (e) {
      hint(`Not logged out: ${e.message}.`, 'error');
    }
  }

  /* The link `dstmc up` prints, ".../#token=...": traded for a session, then out of the address bar. */
  async function loginFromLink() {
    const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (!m) return false;
    history.replaceState(null, '', location.pathname + location.search);
    try {
      await login(decodeURIComponent(m[1]));
      return true;
    } catch (e) {
      await load();
      openLogin(`The login link did not work: ${e.message}.`);
      return true;
    }
  }

  /* ---------- the page ---------- */

  function hint(text, kind) {
    const el = $('#auth-hint');
    el.hidden = !text;
    el.dataset.kind = kind || 'quiet';
    el.querySelector('.text').textContent = text;
    el.querySelector('button').hidden = kind === 'error' || me.authenticated;
  }

  function render() {
    const root = document.documentElement;
    root.toggleAttribute('data-admin', isAdmin());
    root.toggleAttribute('data-locked', locked());
    $('#login-btn').hidden = me.authenticated || locked() || noLogins;
    $('#logout-btn').hidden = $('#who').hidden = !me.authenticated;
    if (me.authenticated) {
      $('#who-name').textContent = me.name || 'logged in';
      const until = me.expires ? `, until ${new Date(me.expires).toLocaleString()}` : '';
      $('#who').title = `Logged in as ${me.name} (${(me.scopes || []).join(', ') || 'no scopes'})${until}`;
    }
    if (noLogins) hint('');
    else if (notice) hint(notice, 'warn');
    else if (!me.authenticated) hint('Read-only view.', 'quiet');
    else if (!isAdmin()) hint(`Read-only: “${me.name}” may not run tests or change the schedule (that needs the admin scope).`, 'quiet');
    else hint('');
    placeForm();
  }

  /* The one login form sits in the dialog, or in the panel while a private page is locked. */
  function placeForm() {
    const form = $('#login-form'), panel = $('#login-panel');
    panel.hidden = !locked();
    if (locked()) {
      if ($('#login-dialog').open) $('#login-dialog').close();
      if (form.parentElement !== panel) panel.append(form);
      if (notice) loginError(notice);
    } else if (form.parentElement !== $('#login-dialog')) {
      $('#login-dialog').append(form);
    }
    $('#login-cancel').hidden = locked();
  }

  function loginError(text) {
    Object.assign($('#login-error'), { textContent: text || '', hidden: !text });
  }

  function openLogin(error) {
    placeForm();
    loginError(error);
    if (!locked() && !$('#login-dialog').open) $('#login-dialog').showModal();
    $('#login-token').focus();
  }

  async function submitLogin(ev) {
    ev.preventDefault();
    const input = $('#login-token'), button = $('#login-submit');
    const token = input.value.trim();
    if (!token) return loginError('Paste a token first.');
    button.disabled = true;
    button.classList.add('busy');
    loginError('');
    try {
      await login(token);
      input.value = '';
      if ($('#login-dialog').open) $('#login-dialog').close();
      $('#logout-btn').focus();
    } catch (e) {
      loginError(e.status === 401 || e.status === 429 ? `Not logged in: ${e.message}.`
        : `Could not log in: ${e.message}${e.status ? ` (HTTP ${e.status})` : ''}.`);
      input.select();
    } finally {
      button.disabled = false;
      button.classList.remove('busy');
    }
  }

  function bind() {
    $('#login-btn').addEventListener('click', () => openLogin(''));
    $('#auth-hint button').addEventListener('click', () => openLogin(''));
    $('#logout-btn').addEventListener('click', logout);
    $('#login-form').addEventListener('submit', submitLogin);
    $('#login-cancel').addEventListener('click', () => $('#login-dialog').close());
    /* the token never outlives the dialog */
    $('#login-dialog').addEventListener('close', () => { $('#login-token').value = ''; loginError(''); });
  }

  /* Who the page shows as logged in (no CSRF token: that stays in here). */
  function who() {
    const { csrf, ...rest } = me;
    return { ...rest, admin: isAdmin(), locked: locked(), notice };
  }

  /* Resolves once the page knows who it is: after the login link, or the session's answer. */
  async function start(apiBase) {
    base = apiBase;
    bind();
    if (!(await loginFromLink())) await load();
    return who();
  }

  return { start, request, who, locked, ApiError, onChange: (fn) => listeners.push(fn) };
})();
