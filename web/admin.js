// Ask Hub operations dashboard: plain browser JavaScript, no build step, no libraries.
// Data comes from GET /admin/stats (and /admin/usage for today's cost) with an admin key or
// JWT kept in sessionStorage. Charts are SVG drawn here. Server text (questions are user text)
// is only ever placed with textContent / setAttribute, never parsed as HTML.

import {
  $,
  applyLabels,
  attempt,
  el,
  keyStore,
  labels,
  language,
  t,
  useLabels,
  wireLanguageToggle,
} from "/static/common.js";

const token = keyStore("askhub.admin-token"); // sessionStorage only: forgotten when the tab closes
const WINDOW_KEY = "askhub.admin-window";
const REFRESH_MS = 15_000;
const USAGE_REFRESH_MS = 60_000; // today's cost moves slowly; every read is an audit line
const LATENCY_ALERT_MS = 3000;
const ERROR_ALERT = 0.02;
const SVG_NS = "http://www.w3.org/2000/svg";

const COLORS = {
  blue: "#2563eb",
  violet: "#7c3aed",
  red: "#dc2626",
  amber: "#d97706",
  green: "#16a34a",
  teal: "#0d9488",
  slate: "#64748b",
  pink: "#db2777",
};

const LABELS = labels("admin");
useLabels(LABELS); // the language is shared with the portal

const ui = {
  main: $("#main"),
  auth: $("#auth"),
  authForm: $("#auth-form"),
  authKey: $("#auth-key"),
  authReason: $("#auth-reason"),
  dashboard: $("#dashboard"),
  kpis: $("#kpis"),
  charts: $("#charts"),
  recentBody: $("#recent tbody"),
  recentEmpty: $("#recent-empty"),
  keysBody: $("#keys tbody"),
  updated: $("#updated"),
  problem: $("#problem"),
  forgetKey: $("#forget-key"),
  refresh: $("#refresh"),
};

const state = {
  window: attempt(() => localStorage.getItem(WINDOW_KEY)) === "day" ? "day" : "hour",
  data: null, // the last /admin/stats answer; null while locked
  usage: null, // { cost, tokens } of today, from /admin/usage?days=1
  usageAt: 0,
  keys: [], // /admin/keys rows (fingerprints and dates, never a key)
  loadedAt: null,
  timer: null,
  controller: null,
  locked: false,
};

// ---- small helpers ----

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value != null) node.setAttribute(name, String(value));
  }
  if (text != null) node.textContent = text;
  return node;
}

const num = (value) => (Number.isFinite(Number(value)) ? Number(value) : 0);
const locale = () => (language() === "zh-TW" ? "zh-TW" : "en-US");

function fmtCount(value) {
  const v = num(value);
  const digits = Math.abs(v) < 10 && !Number.isInteger(v) ? 1 : 0;
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(v);
}

function fmtPct(value, digits = 1) {
  if (value == null || !Number.isFinite(Number(value))) return "–";
  const v = Number(value) * 100;
  return `${Number(v.toFixed(v >= 10 ? 0 : digits))} %`; // 5 %, 0.5 %, 13 %
}

function fmtRate(value) {
  const v = num(value);
  const options = v > 0 && v < 1 ? { maximumSignificantDigits: 2 } : { maximumFractionDigits: 1 };
  return new Intl.NumberFormat(locale(), options).format(v);
}

function fmtMs(value) {
  if (value == null || !Number.isFinite(Number(value))) return "–";
  const v = Number(value);
  if (v > 0 && v < 1) return "<1 ms";
  return v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(v < 10_000 ? 1 : 0)} s`;
}

function fmtUsd(value) {
  const v = num(value);
  if (v === 0) return "$0";
  if (v < 0.01) return `$${v.toFixed(4)}`;
  if (v < 1) return `$${v.toFixed(3)}`;
  return `$${new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(v)}`;
}

function fmtTime(epochSec, withSeconds = false) {
  const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (withSeconds) options.second = "2-digit";
  return new Intl.DateTimeFormat(locale(), options).format(new Date(epochSec * 1000));
}

// ---- talking to the hub ----

async function getJson(path, signal) {
  const headers = token.authorize({ Accept: "application/json" });
  const response = await fetch(path, { headers, signal, cache: "no-store", credentials: "omit" });
  const body = response.ok ? await response.json() : null;
  return { status: response.status, ok: response.ok, body };
}

async function load() {
  clearTimeout(state.timer);
  state.controller?.abort();
  const controller = new AbortController();
  state.controller = controller;
  document.body.setAttribute("aria-busy", "true");
  try {
    const stats = await getJson(`/admin/stats?window=${state.window}`, controller.signal);
    if (stats.status === 401 || stats.status === 403) {
      lock(stats.status);
      return; // no refresh while locked: the operator has to enter a key first
    }
    if (!stats.ok || !isStats(stats.body)) {
      showProblem(stats.ok ? 0 : stats.status);
    } else {
      if (Date.now() - state.usageAt > USAGE_REFRESH_MS) {
        await loadUsage(controller.signal);
        await loadKeys(controller.signal);
      }
      state.data = stats.body;
      state.loadedAt = Date.now() / 1000;
      unlock();
      ui.problem.hidden = true;
      renderAll();
    }
  } catch (err) {
    if (err.name === "AbortError") return;
    showProblem(null);
  } finally {
    if (state.controller === controller) document.body.setAttribute("aria-busy", "false");
  }
  schedule();
}

async function loadUsage(signal) {
  try {
    const usage = await getJson("/admin/usage?days=1", signal);
    if (usage.ok && Array.isArray(usage.body?.rows)) {
      let cost = 0;
      let tokens = 0;
      for (const row of usage.body.rows) {
        cost += num(row.cost_usd);
        tokens += num(row.prompt_tokens) + num(row.completion_tokens);
      }
      state.usage = { cost, tokens };
      state.usageAt = Date.now();
    }
  } catch (err) {
    if (err.name === "AbortError") throw err;
    state.usage = null; // the headline says "not available"; the charts still show
  }
}

async function loadKeys(signal) {
  try {
    const keys = await getJson("/admin/keys", signal);
    state.keys = keys.ok && Array.isArray(keys.body?.keys) ? keys.body.keys : [];
  } catch (err) {
    if (err.name === "AbortError") throw err;
    state.keys = [];
  }
}

function isStats(body) {
  return body && Array.isArray(body.series) && body.totals && typeof body.totals === "object";
}

function schedule() {
  clearTimeout(state.timer);
  if (state.locked || document.hidden) return;
  state.timer = setTimeout(load, REFRESH_MS);
}

function showProblem(status) {
  const time = state.loadedAt ? fmtTime(state.loadedAt, true) : null;
  let text;
  if (time) text = status ? t("problemHttp", { status, time }) : t("problemNetwork", { time });
  else text = status ? t("problemFirst", { status }) : t("problemFirstNetwork");
  ui.problem.textContent = text;
  ui.problem.hidden = false;
  if (!state.data) ui.updated.textContent = "";
}

// ---- locked (no admin credential) ----

function lock(status) {
  state.locked = true;
  state.lockedStatus = status;
  state.data = null; // nothing of the last answer stays on the page
  state.usage = null;
  state.usageAt = 0;
  state.loadedAt = null;
  ui.kpis.replaceChildren();
  ui.charts.replaceChildren();
  ui.recentBody.replaceChildren();
  ui.keysBody.replaceChildren();
  state.keys = [];
  ui.dashboard.hidden = true;
  ui.problem.hidden = true;
  ui.updated.textContent = "";
  showLocked(status);
  ui.auth.hidden = false;
  document.body.classList.add("locked");
  ui.authKey.focus();
}

function showLocked(status) {
  const sent = Boolean(token.get());
  const reason = status === 403 ? "authForbidden" : sent ? "authRejected" : "authNeeded";
  ui.authReason.textContent = t(reason);
  ui.authReason.dataset.reason = reason;
  ui.forgetKey.hidden = !sent;
}

function unlock() {
  state.locked = false;
  ui.auth.hidden = true;
  ui.dashboard.hidden = false;
  document.body.classList.remove("locked");
  ui.forgetKey.hidden = !token.get();
}

function saveKey(event) {
  event.preventDefault();
  if (!token.takeFrom(ui.authKey)) return;
  state.usageAt = 0;
  load();
}

function forgetKey() {
  token.clear();
  ui.forgetKey.hidden = true;
  lock(401);
}

// ---- rendering ----

function renderAll() {
  if (!state.data) return;
  ui.updated.textContent = state.loadedAt ? t("updated", { time: fmtTime(state.loadedAt, true) }) : "";
  renderKpis(state.data);
  renderCharts(state.data);
  renderRecent(state.data.recent);
  renderKeys(state.keys);
}

function renderKpis(data) {
  const totals = data.totals;
  const minutes = Math.max(1, (data.series.length * num(data.bucket_sec || 60)) / 60);
  const errorRate = num(totals.error_rate);
  const p95 = totals.p95_ms;
  const usage = state.usage;
  const tiles = [
    kpi("requests", t("kpiRequests"), fmtCount(totals.requests),
        t("kpiRequestsSub", { rate: fmtRate(num(totals.requests) / minutes) })),
    kpi("errors", t("kpiErrors"), fmtPct(errorRate),
        t("kpiErrorsSub", { errors: fmtCount(totals.errors), limited: fmtCount(totals.limited) }),
        errorRate > ERROR_ALERT),
    kpi("p95", t("kpiP95"), fmtMs(p95), t("kpiP95Sub", { p50: fmtMs(totals.p50_ms) }),
        num(p95) > LATENCY_ALERT_MS),
    kpi("cost", t("kpiCost"), usage ? fmtUsd(usage.cost) : "–",
        usage ? t("kpiCostSub", { tokens: fmtCount(usage.tokens) }) : t("kpiCostUnknown")),
  ];
  ui.kpis.replaceChildren(...tiles);
}

function kpi(name, label, value, sub, alarm = false) {
  return el(
    "div",
    { class: `kpi${alarm ? " kpi-alarm" : ""}`, "data-kpi": name },
    el("p", { class: "kpi-label", text: label }),
    el("p", { class: "kpi-value", text: value }),
    el("p", { class: "kpi-sub muted", text: sub }),
  );
}

/** The chart cards, in order. Each knows how to turn /admin/stats into series. */
function chartSpecs(data) {
  const series = data.series;
  const perMin = 60 / Math.max(60, num(data.bucket_sec || 60)); // counts per bucket -> per minute
  const col = (name, scale = 1) => series.map((p) => (p[name] == null ? null : num(p[name]) * scale));
  const totals = data.totals;
  const ok = series.map((p) => Math.max(0, num(p.requests) - num(p.errors) - num(p.limited)) * perMin);
  const up = num(totals.feedback_up);
  const down = num(totals.feedback_down);
  const breakers = Object.entries(data.breakers || {});
  const openCount = breakers.filter(([, b]) => b?.state === "open").length;
  return [
    { id: "requests", title: t("chartRequests"), kind: "bars", stacked: true, integer: false, merge: "mean",
      note: t("noteTotal", { n: fmtCount(totals.requests) }), format: fmtRate,
      series: [
        { label: t("seriesOk"), color: COLORS.blue, values: ok },
        { label: t("seriesErrors"), color: COLORS.red, values: col("errors", perMin) },
        { label: t("seriesLimited"), color: COLORS.amber, values: col("limited", perMin) },
      ] },
    { id: "latency", title: t("chartLatency"), kind: "line", format: fmtMs,
      note: `p95 ${fmtMs(totals.p95_ms)} · p50 ${fmtMs(totals.p50_ms)}`,
      threshold: { value: LATENCY_ALERT_MS, label: t("alertLine", { v: "3 s" }) },
      series: [
        { label: t("seriesP50"), color: COLORS.blue, values: col("p50_ms") },
        { label: t("seriesP95"), color: COLORS.violet, values: col("p95_ms") },
      ] },
    { id: "errors", title: t("chartErrors"), kind: "line", format: (v) => fmtPct(v), minTop: 0.05,
      note: t("noteOverall", { v: fmtPct(totals.error_rate) }),
      threshold: { value: ERROR_ALERT, label: t("alertLine", { v: "2 %" }), always: true },
      series: [{ label: t("seriesErrorRate"), color: COLORS.red, values: nullWhenIdle(series, "error_rate") }] },
    { id: "cache", title: t("chartCache"), kind: "line", format: (v) => fmtPct(v), fixedTop: 1,
      note: t("noteOverall", { v: fmtPct(totals.cache_hit_ratio) }),
      series: [{ label: t("seriesCache"), color: COLORS.teal, values: nullWhenIdle(series, "cache_hit_ratio") }] },
    { id: "tenants", title: t("chartTenants"), kind: "tenants", wide: false,
      note: t("noteTenants", { n: fmtCount((data.tenants || []).length) }) },
    { id: "limited", title: t("chartLimited"), kind: "bars", integer: true, format: fmtCount,
      note: t("noteTotal", { n: fmtCount(totals.limited) }),
      series: [{ label: t("seriesLimited"), color: COLORS.amber, values: col("limited") }] },
    { id: "pii", title: t("chartPii"), kind: "bars", integer: true, format: fmtCount,
      note: t("notePii", { n: fmtCount(totals.pii) }),
      series: [{ label: t("seriesPii"), color: COLORS.violet, values: col("pii") }] },
    { id: "feedback", title: t("chartFeedback"), kind: "bars", stacked: true, integer: true, format: fmtCount,
      note: up + down ? t("noteFeedback", { ratio: fmtPct(totals.feedback_ratio, 0), up, down }) : t("noteNoVotes"),
      series: [
        { label: t("seriesUp"), color: COLORS.green, values: col("feedback_up") },
        { label: t("seriesDown"), color: COLORS.red, values: col("feedback_down") },
      ] },
    { id: "breakers", title: t("chartBreakers"), kind: "breakers",
      note: t("noteBreakers", { open: openCount, n: breakers.length }), alarm: openCount > 0 },
  ];
}

/** A ratio is meaningless in a bucket without requests: a gap, not a zero. */
function nullWhenIdle(series, name) {
  return series.map((p) => (num(p.requests) > 0 && p[name] != null ? num(p[name]) : null));
}

function renderCharts(data) {
  const specs = chartSpecs(data);
  const times = data.series.map((p) => num(p.t));
  const existing = new Map([...ui.charts.children].map((card) => [card.dataset.card, card]));
  const cards = specs.map((spec) => existing.get(spec.id) || chartCard(spec.id));
  ui.charts.replaceChildren(...cards); // in the page first: the charts are drawn to their cards' width
  specs.forEach((spec, i) => {
    const card = cards[i];
    card.classList.toggle("card-alarm", Boolean(spec.alarm));
    card.querySelector(".card-title").textContent = spec.title;
    card.querySelector(".card-note").textContent = spec.note || "";
    const legend = card.querySelector(".legend");
    legend.replaceChildren(...(spec.series || []).map((s) => legendItem(s.label, s.color)));
    legend.hidden = !spec.series || spec.series.length < 2;
    const body = card.querySelector(".chart");
    if (spec.kind === "tenants") drawTenants(body, data.tenants || []);
    else if (spec.kind === "breakers") drawBreakers(body, data.breakers || {});
    else drawTimeChart(body, spec, times, num(data.bucket_sec || 60));
  });
}

function chartCard(id) {
  const titleId = `chart-${id}-title`;
  return el(
    "article",
    { class: "card chart-card", "data-card": id, "aria-labelledby": titleId },
    el("header", { class: "card-head" },
      el("h2", { class: "card-title", id: titleId }),
      el("p", { class: "card-note muted" })),
    el("div", { class: "legend" }),
    el("div", { class: "chart", "data-chart": id }),
  );
}

function legendItem(label, color) {
  const swatch = el("span", { class: "swatch", "aria-hidden": "true" });
  swatch.style.background = color;
  return el("span", { class: "legend-item" }, swatch, el("span", { text: label }));
}

// ---- SVG charts ----

function niceStep(raw) {
  const exp = 10 ** Math.floor(Math.log10(raw));
  const f = raw / exp;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * exp;
}

function yTicks(max, integer) {
  let top = integer ? Math.max(max, 4) : max > 0 ? max : 1; // small counts: 0 1 2 3 4, not 0 1
  let step = niceStep(top / 4);
  if (integer) step = Math.max(1, Math.ceil(step));
  top = Math.ceil(top / step - 1e-9) * step;
  const ticks = [];
  for (let i = 0; step * i <= top + step / 2; i += 1) ticks.push(step * i);
  return ticks;
}

const TIME_STEPS_MIN = [5, 10, 15, 30, 60, 120, 180, 240, 360, 720];

/** Round local times (13:00, 13:15 …) inside the window, as offsets in buckets from its start. */
function xTicks(times, bucketSec, plotWidth) {
  if (times.length < 2) return [];
  const start = times[0];
  const end = times[times.length - 1] + bucketSec;
  const room = Math.max(2, Math.floor(plotWidth / 64));
  const step = TIME_STEPS_MIN.find((m) => (end - start) / 60 / m <= room) || 1440;
  const first = new Date(start * 1000);
  const minuteOfDay = first.getHours() * 60 + first.getMinutes();
  const ticks = [];
  let at = start - first.getSeconds() + ((step - (minuteOfDay % step)) % step) * 60;
  for (; at < end; at += step * 60) ticks.push({ at, offset: (at - start) / bucketSec });
  return ticks;
}

/** Bars narrower than ~3 px are unreadable: merge neighbouring buckets (sum counts, average rates). */
function mergeBuckets(spec, times, bucketSec, plotWidth) {
  const k = Math.ceil(3 / Math.max(0.01, plotWidth / Math.max(1, times.length)));
  if (spec.kind !== "bars" || k <= 1) return { spec, times, bucketSec };
  const groups = [];
  for (let i = 0; i < times.length; i += k) groups.push([i, Math.min(times.length, i + k)]);
  const fold = (values) =>
    groups.map(([a, b]) => {
      const sum = values.slice(a, b).reduce((s, v) => s + num(v), 0);
      return spec.merge === "mean" ? sum / (b - a) : sum;
    });
  return {
    spec: { ...spec, series: spec.series.map((s) => ({ ...s, values: fold(s.values) })) },
    times: groups.map(([a]) => times[a]),
    bucketSec: bucketSec * k,
  };
}

function drawTimeChart(container, wanted, allTimes, rawBucketSec) {
  const width = Math.max(240, Math.floor(container.clientWidth || 300));
  const height = width < 420 ? 150 : 176;
  const { spec, times, bucketSec } = mergeBuckets(wanted, allTimes, rawBucketSec, width - 60);
  const n = times.length;
  const isBars = spec.kind === "bars";
  const stacks = times.map((_, i) =>
    spec.stacked ? spec.series.reduce((sum, s) => sum + num(s.values[i]), 0) : Math.max(0, ...spec.series.map((s) => num(s.values[i]))),
  );
  const dataMax = Math.max(0, ...stacks);
  const th = spec.threshold;
  // The alert line is drawn when the data comes near it (or always, for small ratios).
  const showThreshold = th && (th.always || dataMax >= th.value * 0.3);
  let top = Math.max(dataMax, spec.minTop || 0, showThreshold ? th.value * 1.15 : 0);
  if (spec.fixedTop) top = spec.fixedTop;
  const ticks = yTicks(top, spec.integer);
  const yMax = ticks[ticks.length - 1] || 1;
  const labels = ticks.map((v) => spec.format(v));
  const left = Math.max(28, 8 + Math.max(...labels.map((l) => l.length)) * 6.4);
  const right = 10;
  const topPad = 10;
  const bottom = 22;
  const plotW = width - left - right;
  const plotH = height - topPad - bottom;
  const band = plotW / Math.max(1, n);
  const x = (i) => left + band * (i + 0.5);
  const y = (v) => topPad + plotH - (Math.min(v, yMax) / yMax) * plotH;

  const root = svg("svg", {
    class: "chart-svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": summarize(spec, stacks),
  });
  const grid = svg("g", { class: "grid" });
  ticks.forEach((v, i) => {
    grid.append(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v) }));
    grid.append(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", class: "axis-label" }, labels[i]));
  });
  const axis = svg("g", { class: "x-axis" });
  for (const tick of xTicks(times, bucketSec, plotW)) {
    const tx = left + band * tick.offset;
    const anchor = tx < left + 20 ? "start" : tx > width - right - 20 ? "end" : "middle";
    axis.append(svg("line", { x1: tx, x2: tx, y1: topPad + plotH, y2: topPad + plotH + 4 }));
    axis.append(svg("text", { x: tx, y: height - 5, "text-anchor": anchor, class: "axis-label" }, fmtTime(tick.at)));
  }
  root.append(grid, axis);

  const plot = svg("g", { class: "plot" });
  if (isBars) {
    const barW = Math.max(1, band * (n > 90 ? 0.9 : 0.72));
    spec.series.forEach((s, k) => {
      const g = svg("g", { class: "bars", "data-series": k, fill: s.color });
      times.forEach((_, i) => {
        const v = num(s.values[i]);
        if (v <= 0) return;
        const below = spec.stacked ? spec.series.slice(0, k).reduce((sum, o) => sum + num(o.values[i]), 0) : 0;
        const y0 = y(below);
        const y1 = y(below + v);
        g.append(svg("rect", { class: "bar", x: (x(i) - barW / 2).toFixed(2), y: y1.toFixed(2), width: barW.toFixed(2),
                               height: Math.max(1, y0 - y1).toFixed(2), "data-value": v }));
      });
      plot.append(g);
    });
  } else {
    spec.series.forEach((s, k) => {
      let d = "";
      let points = 0;
      const dots = svg("g", { class: "dots", fill: s.color });
      s.values.forEach((v, i) => {
        if (v == null) return;
        points += 1;
        const prev = i > 0 && s.values[i - 1] != null;
        const next = i < n - 1 && s.values[i + 1] != null;
        d += `${prev ? "L" : "M"}${x(i).toFixed(1)} ${y(v).toFixed(1)}`;
        if (!prev && !next) dots.append(svg("circle", { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.6 }));
      });
      plot.append(svg("path", { class: "line", d, stroke: s.color, "data-series": k, "data-points": points }), dots);
    });
  }
  root.append(plot);

  if (showThreshold) {
    const ty = y(th.value);
    root.append(
      svg("line", { class: "threshold", x1: left, x2: width - right, y1: ty, y2: ty }),
      svg("text", { class: "threshold-label", x: width - right - 2, y: ty - 4, "text-anchor": "end" }, th.label),
    );
  }
  const empty = isBars ? dataMax === 0 : !spec.series.some((s) => s.values.some((v) => v != null));
  if (empty) {
    root.append(svg("text", { class: "empty-label", x: left + plotW / 2, y: topPad + plotH / 2, "text-anchor": "middle" },
                    t("noData")));
  }

  const guide = svg("line", { class: "guide", y1: topPad, y2: topPad + plotH, visibility: "hidden" });
  const hit = svg("rect", { class: "hit", x: left, y: topPad, width: plotW, height: plotH });
  root.append(guide, hit);
  const tip = el("div", { class: "tip", hidden: true, "aria-hidden": "true" });
  const show = (event) => {
    const box = root.getBoundingClientRect();
    const i = Math.min(n - 1, Math.max(0, Math.floor((event.clientX - box.left - left) / band)));
    if (!(n > 0)) return;
    guide.setAttribute("x1", x(i));
    guide.setAttribute("x2", x(i));
    guide.setAttribute("visibility", "visible");
    const rows = spec.series.map((s) =>
      el("div", { class: "tip-row" },
        el("span", { class: "swatch", style: `background:${s.color}` }),
        el("span", { text: `${s.label}: ${s.values[i] == null ? "–" : spec.format(s.values[i])}` })),
    );
    const end = bucketSec > 60 ? `–${fmtTime(times[i] + bucketSec)}` : "";
    tip.replaceChildren(el("div", { class: "tip-time", text: `${fmtTime(times[i])}${end}` }), ...rows);
    tip.hidden = false;
    const px = x(i);
    tip.style.left = px > width / 2 ? "" : `${px + 10}px`;
    tip.style.right = px > width / 2 ? `${width - px + 10}px` : "";
  };
  hit.addEventListener("pointermove", show);
  hit.addEventListener("pointerdown", show);
  hit.addEventListener("pointerleave", () => {
    guide.setAttribute("visibility", "hidden");
    tip.hidden = true;
  });
  container.replaceChildren(root, tip);
}

function summarize(spec, stacks) {
  const values = stacks.filter((v) => Number.isFinite(v));
  const anyData = spec.series.some((s) => s.values.some((v) => v != null && num(v) > 0));
  if (!anyData) return t("summaryEmpty", { title: spec.title });
  const latest = [...spec.series[spec.series.length - 1].values].reverse().find((v) => v != null);
  return t("summaryLine", {
    title: spec.title,
    n: values.length,
    latest: latest == null ? "–" : spec.format(latest),
    peak: spec.format(Math.max(...values)),
  });
}

/** Per tenant: requests, tokens and cost as three thin bars, each scaled to its own maximum. */
function drawTenants(container, tenants) {
  const width = Math.max(240, Math.floor(container.clientWidth || 300));
  const rows = tenants.slice(0, 8);
  const rest = tenants.slice(8);
  if (rest.length) {
    rows.push({
      tenant: `+${rest.length}`,
      requests: rest.reduce((s, r) => s + num(r.requests), 0),
      tokens: rest.reduce((s, r) => s + num(r.tokens), 0),
      cost_usd: rest.reduce((s, r) => s + num(r.cost_usd), 0),
    });
  }
  if (!rows.length) {
    container.replaceChildren(el("p", { class: "empty-note muted", text: t("noTenants") }));
    return;
  }
  const measures = [
    { key: "requests", label: t("seriesRequests"), color: COLORS.blue, format: fmtCount },
    { key: "tokens", label: t("seriesTokens"), color: COLORS.teal, format: fmtCount },
    { key: "cost_usd", label: t("seriesCost"), color: COLORS.amber, format: fmtUsd },
  ];
  const max = Object.fromEntries(measures.map((m) => [m.key, Math.max(0, ...rows.map((r) => num(r[m.key])))]));
  const nameW = Math.min(130, Math.max(60, width * 0.26));
  const valueW = 84;
  const barH = 9;
  const rowH = measures.length * (barH + 4) + 14;
  const height = rows.length * rowH + 4;
  const barMax = width - nameW - valueW - 8;
  const root = svg("svg", {
    class: "chart-svg tenants-svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": rows.map((r) => `${r.tenant}: ${fmtCount(r.requests)} ${t("seriesRequests")}, ${fmtCount(r.tokens)} ${t("seriesTokens")}, ${fmtUsd(r.cost_usd)}`).join("; "),
  });
  rows.forEach((row, r) => {
    const y0 = r * rowH + 6;
    const g = svg("g", { class: "tenant", "data-tenant": row.tenant });
    const name = svg("text", { class: "tenant-name", x: 0, y: y0 + rowH / 2 - 2 }, truncate(String(row.tenant ?? ""), 16));
    name.append(svg("title", {}, String(row.tenant ?? "")));
    g.append(name);
    measures.forEach((m, k) => {
      const v = num(row[m.key]);
      const w = max[m.key] > 0 ? (v / max[m.key]) * barMax : 0;
      const by = y0 + k * (barH + 4);
      g.append(svg("rect", { class: "track", x: nameW, y: by, width: barMax, height: barH, rx: 2 }));
      const bar = svg("rect", { class: "bar", x: nameW, y: by, width: Math.max(v > 0 ? 2 : 0, w).toFixed(2), height: barH,
                                rx: 2, fill: m.color, "data-measure": m.key, "data-value": v });
      bar.append(svg("title", {}, `${m.label}: ${m.format(v)}`));
      g.append(bar, svg("text", { class: "value-label", x: width - 2, y: by + barH - 1, "text-anchor": "end" },
                        `${m.format(v)}${m.key === "cost_usd" ? "" : ` ${m.label}`}`));
    });
    root.append(g);
  });
  container.replaceChildren(root);
  const legend = container.closest(".card").querySelector(".legend");
  legend.replaceChildren(...measures.map((m) => legendItem(m.label, m.color)));
  legend.hidden = false;
}

function truncate(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function drawBreakers(container, breakers) {
  const entries = Object.entries(breakers);
  if (!entries.length) {
    container.replaceChildren(el("p", { class: "empty-note muted", text: t("noBreakers") }));
    return;
  }
  const order = { open: 0, "half-open": 1, closed: 2 };
  entries.sort(([a, x], [b, y]) => (order[x?.state] ?? 3) - (order[y?.state] ?? 3) || a.localeCompare(b));
  const list = el("ul", { class: "breakers" });
  for (const [model, info] of entries) {
    const stateName = ["open", "half-open", "closed"].includes(info?.state) ? info.state : "closed";
    const item = el(
      "li",
      { class: `breaker breaker-${stateName}`, "data-model": model, "data-state": stateName },
      el("span", { class: "breaker-dot", "aria-hidden": "true" }),
      el("span", { class: "breaker-model", text: model }),
      el("span", { class: "pill", text: t(stateName) }),
    );
    if (info?.reason) item.append(el("span", { class: "breaker-reason muted", text: String(info.reason) }));
    list.append(item);
  }
  container.replaceChildren(list);
}

function renderRecent(recent) {
  const rows = Array.isArray(recent) ? recent : [];
  ui.recentEmpty.hidden = rows.length > 0;
  const heads = ["colTime", "colTenant", "colPlatform", "colQuestion", "colModel", "colLatency", "colOutcome", "colFeedback"];
  const cell = (i, props, ...children) => el("td", { "data-label": t(heads[i]), ...props }, ...children);
  ui.recentBody.replaceChildren(
    ...rows.map((row) => {
      const question = String(row.question ?? "");
      const known = Object.hasOwn(LABELS.en, `outcome_${row.outcome}`);
      const outcome = row.cached ? t("cached") : known ? t(`outcome_${row.outcome}`) : String(row.outcome ?? "");
      const fb = row.feedback === "up" ? ["👍", t("fbUp")] : row.feedback === "down" ? ["👎", t("fbDown")] : ["–", t("fbNone")];
      return el(
        "tr",
        { "data-request-id": String(row.request_id ?? "") },
        cell(0, { class: "nowrap" }, Number.isFinite(Number(row.at)) ? fmtTime(Number(row.at), true) : "–"),
        cell(1, { text: String(row.tenant ?? "") }),
        cell(2, { text: String(row.platform ?? "") }),
        cell(3, { class: "col-question", title: question, text: question }),
        cell(4, { class: "mono", text: String(row.model ?? "") }),
        cell(5, { class: "num nowrap", text: fmtMs(row.latency_ms) }),
        cell(6, {}, el("span", { class: `tag tag-${row.cached ? "cached" : outcomeClass(row.outcome)}`, text: outcome })),
        cell(7, { class: "feedback-cell" }, el("span", { "aria-label": fb[1], title: fb[1], text: fb[0] })),
      );
    }),
  );
}

function renderKeys(keys) {
  const rows = Array.isArray(keys) ? keys : [];
  const heads = ["colClient", "colTenant", "colKey", "colExpires", "colDaysLeft"];
  const cell = (i, props, ...children) => el("td", { "data-label": t(heads[i]), ...props }, ...children);
  const tags = { expired: "other", expiring: "none", valid: "ok", no_expiry: "ok" };
  ui.keysBody.replaceChildren(
    ...rows.map((row) =>
      el(
        "tr",
        { "data-state": String(row.state ?? "") },
        cell(0, { text: String(row.client ?? "") }),
        cell(1, { text: String(row.tenant ?? "") }),
        cell(2, { class: "mono", text: `${String(row.fingerprint ?? "")}…` }),
        cell(3, { class: "nowrap" }, row.expires ? String(row.expires) + " " : "",
             el("span", { class: `tag tag-${tags[row.state] ?? "other"}`, text: t(`key_${row.state}`) })),
        cell(4, { class: "num", text: row.days_left == null ? "–" : String(row.days_left) }),
      ),
    ),
  );
}

function outcomeClass(outcome) {
  return outcome === "answered" ? "ok" : outcome === "no_knowledge" ? "none" : "other";
}

// ---- page wiring ----

function setWindow(name) {
  if (name === state.window) return;
  state.window = name;
  attempt(() => localStorage.setItem(WINDOW_KEY, name));
  syncWindowButtons();
  load();
}

function syncWindowButtons() {
  for (const button of document.querySelectorAll(".seg")) {
    button.setAttribute("aria-pressed", String(button.dataset.window === state.window));
  }
}

let resizeFrame = 0;
function onResize() {
  cancelAnimationFrame(resizeFrame);
  resizeFrame = requestAnimationFrame(() => state.data && renderCharts(state.data));
}

function init() {
  applyLabels();
  syncWindowButtons();
  ui.updated.textContent = t("loading");
  for (const button of document.querySelectorAll(".seg")) {
    button.addEventListener("click", () => setWindow(button.dataset.window));
  }
  ui.refresh.addEventListener("click", () => {
    if (!state.locked) load();
  });
  ui.authForm.addEventListener("submit", saveKey);
  ui.forgetKey.addEventListener("click", forgetKey);
  wireLanguageToggle(() => {
    if (state.locked) showLocked(state.lockedStatus);
    renderAll();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) clearTimeout(state.timer);
    else if (!state.locked) load();
  });
  let lastWidth = ui.main.clientWidth;
  new ResizeObserver(() => {
    if (ui.main.clientWidth !== lastWidth) {
      lastWidth = ui.main.clientWidth;
      onResize();
    }
  }).observe(ui.main);
  document.body.classList.add("ready");
  load();
}

init();
