/*
 * format.js - how the dashboard writes numbers, units and times: speeds scaled to Mbps/Gbps
 * (or MB/s, GB/s: the unit setting), milliseconds, one percentage format, singular/plural, and
 * dates in the chosen time zone (the browser's, UTC or any IANA name), including the x-axis
 * labels of the charts, spaced so that they never overlap. Loaded before app.js; sets
 * window.dstmcFormat.
 */
'use strict';

(() => {
  const DAY = 864e5;
  const isNum = (v) => typeof v === 'number' && isFinite(v);

  function readStored(key, fallback) {
    try { return localStorage.getItem(key) ?? fallback; } catch (e) { return fallback; }
  }

  function writeStored(key, value) {
    try {
      if (value == null) localStorage.removeItem(key);
      else localStorage.setItem(key, value);
    } catch (e) { /* private mode: not remembered */ }
  }

  /* ---------- speeds ---------- */

  /* 'bit' (Mbps, Gbps) or 'byte' (MB/s, GB/s): a display choice, kept in this browser. */
  let unitMode = readStored('dstmc.unit', 'bit') === 'byte' ? 'byte' : 'bit';
  const UNITS = {
    bit: [{ name: 'Mbps', per: 1e6 }, { name: 'Gbps', per: 1e9 }],
    byte: [{ name: 'MB/s', per: 8e6 }, { name: 'GB/s', per: 8e9 }],
  };

  /* The unit that shows bps best: the larger one from 1000 of the smaller up. */
  function speedUnit(bps) {
    const [small, large] = UNITS[unitMode];
    return isNum(bps) && Math.abs(bps) / small.per >= 1000 ? large : small;
  }

  /* A number in a unit: 2 decimals under 1, else 1 ("0.85", "93.4", "29.3"). */
  const num = (v) => (isNum(v) ? v.toFixed(Math.abs(v) < 1 && v !== 0 ? 2 : 1) : '—');

  /* bit/s → "93.4" in unit u (default: the unit that suits this value). */
  const speedIn = (bps, u = speedUnit(bps)) => (isNum(bps) ? num(bps / u.per) : '—');

  /* bit/s → "29.3 Gbps" */
  const speed = (bps) => (isNum(bps) ? `${speedIn(bps)} ${speedUnit(bps).name}` : '—');

  /* ---------- other numbers ---------- */

  /* Milliseconds: whole from 10 up, one decimal below ("7", "0.8", "23"). */
  const ms = (v) => (!isNum(v) ? '—' : Number.isInteger(v) || v >= 10 ? String(Math.round(v)) : v.toFixed(1));

  /* One percentage format everywhere: one decimal, rounded down ("99.9 %" is not 100 %). */
  const pct = (part, whole) => {
    if (!isNum(part) || !isNum(whole) || whole <= 0) return '—';
    const p = Math.floor((1000 * part) / whole) / 10;
    return `${p.toFixed(1)} %`;
  };

  /* "1 test", "2 tests" */
  const plural = (n, one, many = `${one}s`) => `${Number(n).toLocaleString()} ${n === 1 ? one : many}`;

  const bytes = (n) => {
    if (!isNum(n)) return '—';
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return `${i ? n.toFixed(1) : n} ${units[i]}`;
  };

  /* ---------- time zone ---------- */

  /* '' = the browser's own zone; 'UTC' or an IANA name otherwise. */
  const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || '';
  const validZone = (z) => {
    try { new Intl.DateTimeFormat(undefined, { timeZone: z }); return true; } catch (e) { return false; }
  };
  let zone = readStored('dstmc.tz', '');
  if (zone && !validZone(zone)) zone = '';

  let fmts = null;
  function makeFormats() {
    const f = (o) => new Intl.DateTimeFormat(undefined, zone ? { ...o, timeZone: zone } : o);
    fmts = {
      full: f({ year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }),
      seconds: f({ year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' }),
      hour: f({ hour: '2-digit', minute: '2-digit' }),
      day: f({ day: 'numeric', month: 'short' }),
      month: f({ month: 'short', year: 'numeric' }),
      weekday: f({ weekday: 'short' }),
      dayKey: f({ year: 'numeric', month: '2-digit', day: '2-digit' }),
    };
  }
  makeFormats();

  const time = (t) => (isNum(t) ? fmts.full.format(new Date(t)) : '—');
  const timeSeconds = (t) => (isNum(t) ? fmts.seconds.format(new Date(t)) : '—');
  const hour = (t) => fmts.hour.format(new Date(t));
  const day = (t) => fmts.day.format(new Date(t));
  const weekday = (t) => fmts.weekday.format(new Date(t));
  const sameDay = (a, b) => fmts.dayKey.format(new Date(a)) === fmts.dayKey.format(new Date(b));

  /* The zone's offset from UTC at t, in minutes. */
  function offsetMin(t = Date.now()) {
    const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
      timeZone: zone || browserZone() || undefined, hourCycle: 'h23', year: 'numeric', month: 'numeric',
      day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    }).formatToParts(new Date(t)).map((p) => [p.type, p.value]));
    const asUtc = Date.UTC(+parts.year, parts.month - 1, +parts.day, +parts.hour % 24, +parts.minute, +parts.second);
    return Math.round((asUtc - Math.floor(t / 1000) * 1000) / 6e4);
  }

  function zoneLabel() {
    const off = offsetMin();
    const pad = (n) => String(n).padStart(2, '0');
    const utc = `UTC${off >= 0 ? '+' : '−'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
    return { name: zone || browserZone() || 'local time', utc, browser: !zone };
  }

  /* Sets the zone ('' = the browser's); false if it is not a zone this browser knows. */
  function setZone(z) {
    z = String(z || '').trim();
    if (z && !validZone(z)) return false;
    if (z && z === browserZone()) z = '';
    zone = z;
    writeStored('dstmc.tz', zone || null);
    makeFormats();
    return true;
  }

  /* uPlot's tzDate: a Date whose local fields read as the chosen zone's (null: the browser's). */
  const tzDate = () => (zone ? (ts) => uPlot.tzDate(new Date(ts), zone) : null);

  /* ---------- x-axis labels ---------- */

  /*
   * The labels of ticks at splits (ms), incr apart: months from four weeks up, days from a day
   * up, else times with the day under the first tick of each day. The same function draws the
   * axis and, in the tests, is what is measured.
   */
  function axisLabels(splits, incr) {
    let last = null;
    return splits.map((t) => {
      if (incr >= 28 * DAY) return fmts.month.format(new Date(t));
      if (incr >= DAY) return day(t);
      const label = hour(t);
      const text = last === null || !sameDay(last, t) ? `${label}\n${day(t)}` : label;
      last = t;
      return text;
    });
  }

  /*
   * The least distance between ticks, in CSS px, that keeps any two labels apart: the widest
   * label any range can draw (a time, a day, a month) in the axis font, plus a gap. uPlot picks
   * the tick increment from this, so a week shows days or half days, never "08:00 AM04:00 PM".
   */
  let spaceCache = null;
  function axisSpace(font) {
    if (spaceCache && spaceCache.font === font && spaceCache.key === fmts) return spaceCache.px;
    const ctx = document.createElement('canvas').getContext('2d');
    ctx.font = font;
    const samples = [];
    for (let m = 0; m < 12; m++) {
      const t = Date.UTC(2026, m, 28, 23, 58); /* long month names, two-digit days */
      samples.push(hour(t), day(t), fmts.month.format(new Date(t)));
    }
    samples.push(hour(Date.UTC(2026, 0, 1, 12, 0)), hour(Date.UTC(2026, 0, 1, 0, 0)));
    const widest = Math.max(...samples.map((s) => ctx.measureText(s).width));
    spaceCache = { font, key: fmts, px: Math.ceil(widest) + 16 };
    return spaceCache.px;
  }

  window.dstmcFormat = Object.freeze({
    DAY, isNum, num, speed, speedIn, speedUnit, ms, pct, plural, bytes,
    unitMode: () => unitMode,
    setUnitMode: (m) => { unitMode = m === 'byte' ? 'byte' : 'bit'; writeStored('dstmc.unit', unitMode); },
    time, timeSeconds, hour, day, weekday, sameDay, zone: () => zone, browserZone, zoneLabel, setZone, offsetMin,
    validZone, tzDate, axisLabels, axisSpace,
  });
})();
