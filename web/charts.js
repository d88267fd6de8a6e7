/*
 * charts.js - the dashboard's two charts ("Download vs. Upload", "Server Ping") with uPlot:
 * the API's series as chart columns (gaps where tests stopped), the average line and min-max
 * band per measure, failed tests shaded, the ISP's promised thresholds dashed, one line per
 * probe when comparing probes, speeds in the unit that suits them, time labels from format.js.
 * Loaded after format.js, before app.js; sets window.dstmcCharts.
 */
'use strict';

(() => {
  const F = window.dstmcFormat;
  const { isNum } = F;
  const fmtTime = F.time;
  const $ = (sel) => document.querySelector(sel);
  const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  let state = null;  /* the dashboard's state of the render in progress */
  let dstmc = null;  /* {charts} of the render in progress */

  /* ---------- series → chart columns ---------- */

  const BPS_COLS = ['download_min', 'download_avg', 'download_max', 'upload_min', 'upload_avg', 'upload_max'];
  const COLS = [...BPS_COLS, 'ping_min', 'ping_avg', 'ping_max', 'jitter_avg', 'ok', 'failed'];

  /*
   * Keeps only buckets that hold results (speeds in Mbps) and puts a null row where the gap to
   * the next one is well beyond the usual spacing of tests: uPlot then breaks the line there.
   * A quarter-hourly test in 5-minute buckets stays one line; a probe that was down for hours
   * shows as a gap. Buckets with only failed tests have null speeds, which breaks the line too.
   */
  function toColumns(s) {
    const t = s.t || [];
    const at = (k, i) => (s[k] ? s[k][i] ?? null : null);
    const rows = [];
    for (let i = 0; i < t.length; i++) {
      const n = (at('ok', i) ?? 0) + (at('failed', i) ?? 0);
      if (n > 0 || at('download_avg', i) != null || at('ping_avg', i) != null) rows.push(i);
    }
    const diffs = rows.slice(1).map((r, k) => t[r] - t[rows[k]]).sort((a, b) => a - b);
    const usual = Math.max(s.step || 0, diffs.length ? diffs[diffs.length >> 1] : 0);
    const out = { t: [], step: s.step || usual, usual };
    for (const k of COLS) out[k] = [];
    let prev = null;
    for (const i of rows) {
      if (prev !== null && usual > 0 && t[i] - prev > 2.5 * usual) {
        out.t.push(prev + usual);
        for (const k of COLS) out[k].push(null);
      }
      out.t.push((prev = t[i]));
      for (const k of COLS) out[k].push(BPS_COLS.includes(k) && at(k, i) != null ? at(k, i) / 1e6 : at(k, i));
    }
    return out;
  }

  /*
   * Per-probe columns on the union of their times. Where a probe has no bucket the value is
   * undefined, which uPlot spans (the line goes on); the null rows toColumns put at long gaps
   * and failed-only buckets stay null and break that probe's line, as in the single view.
   */
  function mergeProbes(names, cols) {
    const t = [...new Set(cols.flatMap((c) => c.t))].sort((a, b) => a - b);
    const at = new Map(t.map((x, i) => [x, i]));
    const align = (c, k) => {
      const out = new Array(t.length).fill(undefined);
      c.t.forEach((x, i) => { out[at.get(x)] = c[k][i]; });
      return out;
    };
    return { t, probes: names.map((name, i) => ({ name, download: align(cols[i], 'download_avg'),
      upload: align(cols[i], 'upload_avg'), ping: align(cols[i], 'ping_avg') })) };
  }

  /* Averages over the whole range, each bucket weighted by its number of good results. */
  function summarize(c) {
    const avg = (k) => {
      let sum = 0, n = 0;
      c[k].forEach((v, i) => { if (v != null) { sum += v * (c.ok[i] || 1); n += c.ok[i] || 1; } });
      return n ? sum / n : null;
    };
    const total = (k) => c[k].reduce((a, v) => a + (v || 0), 0);
    return { download: avg('download_avg'), upload: avg('upload_avg'), ping: avg('ping_avg'),
      ok: total('ok'), failed: total('failed') };
  }

  /* ---------- charts (uPlot) ---------- */

  /* Dashed horizontal lines at what the ISP promised, labelled at the right end. */
  const thresholdPlugin = (lines) => ({ hooks: { draw: (u) => {
    const ctx = u.ctx, { left, top, width } = u.bbox, px = uPlot.pxRatio, right = left + width;
    ctx.save();
    for (const l of lines.filter((x) => isNum(x.value))) {
      const y = Math.round(u.valToPos(l.value, 'y', true));
      Object.assign(ctx, { strokeStyle: l.color, lineWidth: 1.5 * px });
      ctx.setLineDash([6 * px, 4 * px]);
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(right, y);
      ctx.stroke();
      /* the label sits on a card-coloured box so the data under it cannot garble it */
      ctx.font = `600 ${11 * px}px system-ui, sans-serif`;
      const tw = ctx.measureText(l.label).width, ty = Math.max(top + 14 * px, y - 5 * px);
      ctx.fillStyle = cssVar('--card');
      ctx.fillRect(right - tw - 12 * px, ty - 12 * px, tw + 12 * px, 16 * px);
      Object.assign(ctx, { fillStyle: l.color, textAlign: 'right' });
      ctx.fillText(l.label, right - 6 * px, ty);
    }
    ctx.restore();
  } } });

  /* Red shading over intervals with failed tests (darker the larger their share), a tick below. */
  const failurePlugin = () => ({ hooks: { drawClear: (u) => {
    const c = state.series, ctx = u.ctx, { top, height } = u.bbox, px = uPlot.pxRatio;
    ctx.save();
    ctx.fillStyle = cssVar('--fail');
    c.t.forEach((t, i) => {
      if (!c.failed[i]) return;
      const x0 = u.valToPos(t, 'x', true);
      const w = Math.max(3 * px, u.valToPos(t + c.step, 'x', true) - x0);
      ctx.globalAlpha = 0.06 + (0.24 * c.failed[i]) / (c.failed[i] + (c.ok[i] || 0));
      ctx.fillRect(x0, top, w, height);
      ctx.globalAlpha = 1;
      ctx.fillRect(x0, top + height - 8 * px, w, 8 * px);
    });
    ctx.restore();
  } } });

  const AXIS_FONT = '12px system-ui, sans-serif';

  function axisStyle(label) {
    const grid = { stroke: cssVar('--grid'), width: 1 };
    return { stroke: cssVar('--muted'), grid, ticks: { ...grid, size: 4 }, label, labelSize: label ? 20 : 0,
      font: AXIS_FONT, labelFont: '600 12px system-ui, sans-serif' };
  }

  /* The time axis: labels from format.js, ticks far enough apart that no two labels touch. */
  const timeAxis = () => ({ ...axisStyle(), space: () => F.axisSpace(AXIS_FONT),
    values: (u, splits, axisIdx, space, incr) => F.axisLabels(splits, incr) });

  /* y from zero up to a little above the data and the thresholds, so both are in view. */
  const yRange = (lines) => (u, min, max) => uPlot.rangeNum(0, 1.08 * (Math.max(isNum(max) ? max : 0,
    ...lines.map((l) => (isNum(l.value) ? l.value : 0))) || 1), 0.05, true);

  /* legend values with their unit (the chart's scale is set in renderCharts) */
  const withUnit = (unit) => (u, v) => (v == null ? '—' : `${F.num(v)} ${unit}`);

  /*
   * One chart over the current series: per band spec an average line plus hidden min/max
   * edges that bound a shaded band; then a "Failed tests" legend entry that draws nothing itself
   * (failurePlugin does), then any plain lines (jitter); dashed threshold lines on top.
   */
  function makeChart(el, legendEl, height, unit, bands, lines, extra = []) {
    const c = state.series;
    const series = [{ label: 'Time', value: (u, v) => (v == null ? '—' : fmtTime(v)) }];
    const data = [c.t], bandOpts = [];
    const edge = { stroke: 'transparent', width: 0, points: { show: false }, class: 'band-edge' };
    for (const b of bands) {
      bandOpts.push({ series: [series.length + 2, series.length + 1], fill: b.fill });
      series.push({ label: b.label, stroke: b.color, width: 2, value: withUnit(unit) },
        { ...edge, label: `${b.label} min` }, { ...edge, label: `${b.label} max` });
      const k = b.k ?? 1, sc = (col) => (k === 1 ? col : col.map((x) => (x == null ? x : x * k)));
      data.push(sc(c[`${b.col}_avg`]), sc(c[`${b.col}_min`]), sc(c[`${b.col}_max`]));
    }
    series.push({ label: 'Failed tests', scale: 'fail', stroke: cssVar('--fail'), paths: () => null,
      points: { show: false }, class: 'fail-series', value: (u, v) => (v == null ? '—' : String(v)) });
    data.push(c.failed);
    for (const x of extra) { series.push(x.series); data.push(x.data); }
    return plot(el, legendEl, height, unit, lines, series, data, bandOpts);
  }

  /* Dots on a probe's line when it has few values in view (uPlot counts the other probes' too). */
  const sparse = (u, si, i0, i1) => {
    let n = 0;
    for (let i = i0; i <= i1; i++) if (u.data[si][i] != null) n++;
    return n <= u.bbox.width / uPlot.pxRatio / 12;
  };

  /* One line per probe (the overlay): lines are [{label, color, dash?, data}] on overlaySeries.t. */
  function makeOverlayChart(el, legendEl, height, unit, thresholds, lines) {
    const series = [{ label: 'Time', value: (u, v) => (v == null ? '—' : fmtTime(v)) }];
    for (const l of lines) {
      series.push({ label: l.label, stroke: l.color, width: l.dash ? 1.75 : 2, dash: l.dash, value: withUnit(unit),
        class: l.dash ? 'dashed' : undefined, points: { size: 5, show: sparse } });
    }
    return plot(el, legendEl, height, unit, thresholds, series, [state.overlaySeries.t, ...lines.map((l) => l.data)], []);
  }

  function plot(el, legendEl, height, unit, lines, series, data, bandOpts) {
    const t = data[0];
    /* Empty rows at both ends of the window: x spans all of it, and zoom-out returns there. */
    const from = Math.min(state.view.from, t[0] ?? Infinity), to = Math.max(state.view.to, t.at(-1) ?? 0);
    const padded = data.map((col, i) => (i ? [null, ...col, null] : [from, ...col, to]));
    return new uPlot({
      width: Math.max(300, el.clientWidth), height, ms: 1, series, bands: bandOpts,
      cursor: { sync: { key: 'dstmc' }, drag: { x: true, y: false } },
      scales: { x: { time: true }, y: { range: yRange(lines) }, fail: { range: [0, 1] } },
      axes: [timeAxis(), { ...axisStyle(unit), size: 52 }],
      ...(F.tzDate() ? { tzDate: F.tzDate() } : {}),
      legend: { live: true, mount: (u, table) => legendEl.appendChild(table) },
      plugins: [failurePlugin(), thresholdPlugin(lines)],
    }, padded, el);
  }

  /*
   * The speed charts' unit and the factor from the series' Mbps to it: the unit that suits the
   * largest value in view (29340.8 Mbps is drawn as 29.3 Gbps), in bits or bytes per the setting.
   */
  function chartSpeedUnit(cols) {
    let max = 0;
    for (const col of cols) for (const x of col) if (isNum(x) && x > max) max = x;
    const unit = F.speedUnit(max * 1e6);
    return { name: unit.name, k: 1e6 / unit.per };
  }

  /* A threshold (Mbps) on a chart in unit su. */
  const thrLine = (mbps, su, color, label) => ({ value: isNum(mbps) ? mbps * su.k : null, color,
    label: `${label} ${isNum(mbps) ? F.speed(mbps * 1e6) : ''}` });

  /*
   * Draws both charts of st (the dashboard's state: series, overlay, overlaySeries, view,
   * thresholds) into charts ({speed, ping}: the uPlot instances, replaced). Charts are rebuilt
   * on new data, theme, unit or zone (cheap at ≤ 300 buckets, and keeps the code simple).
   */
  function render(st, charts) {
    state = st;
    dstmc = { charts };
    const c = state.series, thr = state.thresholds, v = cssVar;
    if (!c || typeof uPlot === 'undefined') return;
    for (const u of Object.values(charts)) u?.destroy();
    const o = state.overlay && state.overlaySeries;
    for (const id of ['#speed-chart', '#ping-chart']) $(id).closest('.card').classList.toggle('overlay', !!o);
    const su = o ? chartSpeedUnit(o.probes.flatMap((p) => [p.download, p.upload]))
      : chartSpeedUnit([c.download_max, c.upload_max]);
    $('#speed-hint').textContent = o ? `${su.name} · per probe: download solid, upload dashed (averages)`
      : `${su.name} · line: average · band: min–max`;
    $('#ping-hint').textContent = o ? 'ms · one line per probe (average)' : 'ms · line: average · band: min–max';
    const note = $('#overlay-note');
    note.hidden = !o || !(o.total > o.probes.length || !o.probes.length);
    if (o) note.textContent = o.probes.length ? `Showing ${o.probes.length} of ${o.total} probes (the most recently seen)`
      : 'No probe has reported yet';
    if (o) return renderOverlayCharts(o, su);
    dstmc.charts.speed = makeChart($('#speed-chart'), $('#speed-legend'), 240, su.name, [
      { label: `Download speed (${su.name})`, col: 'download', color: v('--dl'), fill: v('--dl-band'), k: su.k },
      { label: `Upload speed (${su.name})`, col: 'upload', color: v('--ul'), fill: v('--ul-band'), k: su.k },
    ], [thrLine(thr.download, su, v('--dl'), 'promised ↓'), thrLine(thr.upload, su, v('--ul'), 'promised ↑')]);
    const jitter = c.jitter_avg.some((x) => x != null) ? [{ data: c.jitter_avg,
      series: { label: 'Jitter (ms)', stroke: v('--jitter'), width: 1.5, dash: [4, 3], value: withUnit('ms') } }] : [];
    dstmc.charts.ping = makeChart($('#ping-chart'), $('#ping-legend'), 150, 'ms', [
      { label: 'Server ping (ms)', col: 'ping', color: v('--ping'), fill: v('--ping-band') },
    ], [{ value: thr.ping, color: v('--fail'), label: `promised max ${thr.ping} ms` }], jitter);
    for (const id of ['#speed-chart', '#ping-chart']) $(id).classList.toggle('no-data', !c.t.length);
  }

  function renderOverlayCharts(o, su) {
    const thr = state.thresholds, v = cssVar;
    const color = (i) => v(`--p${i + 1}`);
    const sc = (col) => col.map((x) => (x == null ? x : x * su.k));
    dstmc.charts.speed = makeOverlayChart($('#speed-chart'), $('#speed-legend'), 260, su.name,
      [thrLine(thr.download, su, v('--dl'), 'promised ↓'), thrLine(thr.upload, su, v('--ul'), 'promised ↑')],
      o.probes.flatMap((p, i) => [
        { label: `${p.name} ↓ (${su.name})`, color: color(i), data: sc(p.download) },
        { label: `${p.name} ↑ (${su.name})`, color: color(i), dash: [5, 4], data: sc(p.upload) },
      ]));
    dstmc.charts.ping = makeOverlayChart($('#ping-chart'), $('#ping-legend'), 170, 'ms',
      [{ value: thr.ping, color: v('--fail'), label: `promised max ${thr.ping} ms` }],
      o.probes.map((p, i) => ({ label: `${p.name} (ms)`, color: color(i), data: p.ping })));
    for (const id of ['#speed-chart', '#ping-chart']) $(id).classList.toggle('no-data', !o.t.length);
  }

  function resize(charts) {
    for (const u of Object.values(charts)) {
      const width = Math.max(300, u?.root.parentElement.clientWidth || 0);
      if (u && u.width !== width) u.setSize({ width, height: u.height });
    }
  }

  window.dstmcCharts = Object.freeze({ toColumns, mergeProbes, summarize, render, resize });
})();
