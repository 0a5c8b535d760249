"use strict";
/* wideseek view, part 1: data, the episode list (sort, filter) and live updates.
   Everything model-written is put in the page with textContent, never parsed as HTML. */

const META = JSON.parse(document.getElementById("wsv-meta").textContent);
const INDEX = JSON.parse(document.getElementById("wsv-index").textContent);
const BLOB_TEXT = document.getElementById("wsv-blobs").textContent;
const BLOBS = BLOB_TEXT ? BLOB_TEXT.split("\n") : [];
INDEX.forEach((e, i) => { e._i = i; });

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid != null && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

function fmt(x, digits = 3) {
  if (x == null) return "–";
  if (typeof x === "boolean") return x ? "yes" : "no";
  if (typeof x === "number") return Number.isInteger(x) ? x.toLocaleString("en") : x.toFixed(digits);
  return String(x);
}

function widthLabel(e) {
  if (e.width != null) return String(e.width);
  return e.mode === "single" ? (e.turn_budget ? `single, ${e.turn_budget} turns` : "single") : "?";
}

const COLUMNS = [
  { key: "_i", label: "#" },
  { key: "run", label: "run", text: true, get: (e) => META.runs[e.run].label },
  { key: "task", label: "task", text: true },
  { key: "repeat", label: "rep" },
  { key: "width", label: "width", get: (e) => e.width ?? -1, show: widthLabel },
  { key: "item_f1", label: "item F1", score: true, bar: true },
  { key: "row_f1", label: "row F1", score: true },
  { key: "item_precision", label: "P", score: true },
  { key: "item_recall", label: "R", score: true },
  { key: "success", label: "success", get: (e) => (e.success ? 1 : 0), show: (e) => fmt(!!e.success) },
  { key: "end", label: "end", text: true },
  { key: "subagents", label: "subagents" },
  { key: "turns", label: "turns" },
  { key: "critical_path", label: "crit. path" },
  { key: "tokens", label: "gen. tokens",
    show: (e) => (e.tokens == null ? "–" : (e.tokens_estimated ? "~" : "") + fmt(Math.round(e.tokens))) },
  { key: "tool_calls", label: "tool calls" },
  { key: "errors", label: "errors", get: (e) => (e.format_errors || 0) + (e.tool_errors || 0) },
];
const COL = Object.fromEntries(COLUMNS.map((c) => [c.key, c]));
const value = (c, e) => (c.get ? c.get(e) : e[c.key]);

const state = { sortKey: "_i", sortDir: 1, shown: [], selected: null };
const $ = (id) => document.getElementById(id);

function compare(a, b) {
  const c = COL[state.sortKey];
  const x = value(c, a), y = value(c, b);
  if (x == null || y == null) return x == null ? (y == null ? a._i - b._i : 1) : -1;
  const d = typeof x === "string" ? x.localeCompare(y) : x - y;
  return d !== 0 ? d * state.sortDir : a._i - b._i;
}

function filtered() {
  const task = $("f-task").value.trim().toLowerCase();
  const run = $("f-run").value, end = $("f-end").value, ok = $("f-success").value;
  const lo = parseFloat($("f-min").value), hi = parseFloat($("f-max").value);
  return INDEX.filter((e) =>
    (!task || String(e.task).toLowerCase().includes(task)) &&
    (run === "" || String(e.run) === run) &&
    (end === "" || e.end === end) &&
    (ok === "" || (ok === "yes") === !!e.success) &&
    (isNaN(lo) || (e.item_f1 ?? 0) >= lo - 1e-12) &&
    (isNaN(hi) || (e.item_f1 ?? 0) <= hi + 1e-12));
}

function renderHead() {
  const tr = document.querySelector("#episodes thead tr");
  tr.replaceChildren(...COLUMNS.map((c) => h("th", {
    class: [c.text ? "text" : "", state.sortKey === c.key ? (state.sortDir > 0 ? "sorted-asc" : "sorted-desc") : ""].join(" ").trim() || null,
    "data-key": c.key, title: "sort by " + c.label,
    onclick: () => {
      state.sortDir = state.sortKey === c.key ? -state.sortDir : (c.text ? 1 : -1);
      state.sortKey = c.key;
      renderList();
    },
  }, c.label)));
}

function renderList() {
  renderHead();
  state.shown = filtered().sort(compare);
  const frag = document.createDocumentFragment();
  for (const e of state.shown) {
    const tr = h("tr", { "data-i": e._i, class: e._i === state.selected ? "selected" : null,
      onclick: () => { location.hash = "ep=" + e._i; } });
    for (const c of COLUMNS) {
      const v = value(c, e);
      const text = c.show ? c.show(e) : c.score && typeof v === "number" ? v.toFixed(3) : c.key === "run" ? v : fmt(v);
      const td = h("td", { class: c.text ? "text" : null });
      if (c.bar && typeof e[c.key] === "number") {
        td.append(h("span", { class: "bar", style: `width:${Math.round(e[c.key] * 40)}px` }));
      }
      td.append(text);
      tr.append(td);
    }
    frag.append(tr);
  }
  document.querySelector("#episodes tbody").replaceChildren(frag);
  const f1 = state.shown.filter((e) => e.item_f1 != null);
  const mean = f1.length ? f1.reduce((s, e) => s + e.item_f1, 0) / f1.length : null;
  $("count").textContent = `${state.shown.length} of ${INDEX.length} episodes` +
    (mean == null ? "" : ` · mean item F1 ${mean.toFixed(3)}`);
}

function fillOptions() {
  const keep = (sel, values, label) => {
    const current = sel.value;
    sel.replaceChildren(h("option", { value: "" }, "all"),
      ...values.map((v) => h("option", { value: v }, label(v))));
    sel.value = values.map(String).includes(current) ? current : "";
  };
  keep($("f-run"), META.runs.map((_, i) => String(i)), (i) => {
    const r = META.runs[+i];
    const w = r.spec.mode === "single" ? `single agent, ${r.spec.max_turns} turns` : `width ${r.spec.width ?? "?"}`;
    return `${r.label} (${w})`;
  });
  keep($("f-end"), [...new Set(INDEX.map((e) => e.end))].filter((x) => x != null).sort(), (v) => v);
}

function describeRuns() {
  $("runs").replaceChildren(...META.runs.map((r) => {
    const s = r.spec, w = r.world || {}, p = r.policy || {};
    const budget = s.mode === "single" ? `single agent, ${s.max_turns} turns`
      : `width ${s.width}, lead ${s.lead_max_turns} / subagent ${s.subagent_max_turns} turns`;
    const bits = [r.label, p.name ? `${p.name}${p.model ? " " + p.model : ""} policy` : null,
      w.name ? `${w.name} world (${[w.split, w.tasks != null ? w.tasks + " tasks" : null].filter(Boolean).join(", ")})` : null,
      s.mode ? budget : null,
      s.repeats ? `${s.repeats} repeat(s)` : null].filter(Boolean);
    return h("div", null, bits.join(" · "));
  }));
}

const CACHE = new Map();
async function loadEpisode(i) {
  if (CACHE.has(i)) return CACHE.get(i);
  if (typeof DecompressionStream === "undefined") {
    throw new Error("this browser has no DecompressionStream (needs Chrome 80+, Firefox 113+, Safari 16.4+)");
  }
  const bin = atob(BLOBS[i]);
  const bytes = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  const data = JSON.parse(await new Response(stream).text());
  if (CACHE.size > 24) CACHE.delete(CACHE.keys().next().value);
  CACHE.set(i, data);
  return data;
}

function onHash() {
  const m = /ep=(\d+)/.exec(location.hash);
  if (m && +m[1] < INDEX.length) openEpisode(+m[1]);
}

async function poll() {
  try {
    const r = await fetch(`updates?since=${INDEX.length}&prompts=${META.prompts.length}`, { cache: "no-store" });
    const u = await r.json();
    if (u.error) throw new Error(u.error);
    META.prompts.push(...u.prompts);
    for (const e of u.index) { e._i = INDEX.length; INDEX.push(e); }
    BLOBS.push(...u.blobs);
    if (u.index.length) { fillOptions(); renderList(); }
    $("status").textContent = `live: ${INDEX.length} episodes, checked ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $("status").textContent = `live: update failed (${err.message}); retrying`;
  }
}

function start() {
  describeRuns();
  fillOptions();
  for (const id of ["f-task", "f-run", "f-min", "f-max", "f-end", "f-success"]) {
    for (const kind of ["input", "change"]) $(id).addEventListener(kind, renderList);
  }
  $("f-reset").addEventListener("click", () => { $("filters").reset(); renderList(); });
  renderList();
  window.addEventListener("hashchange", onHash);
  onHash();
  if (META.live) {
    $("status").textContent = `live: ${INDEX.length} episodes`;
    setInterval(poll, META.poll_ms || 2000);
  }
  performance.mark("wsv-ready");
  document.body.dataset.ready = "1";
}
