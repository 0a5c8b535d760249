"use strict";
/* wideseek view, part 3: the final answer table coloured cell by cell against the gold table,
   from the score's cell-level explanation (wideseek_env.scoring.explain). */

const VERDICT_TEXT = {
  key: "key column: it matched the gold row", correct: "the column's metric accepts the answer",
  partial: "the judge gave partial credit", wrong: "the column's metric rejects the answer", missed: "gold row missed: no answer row has its key",
  extra: "extra answer row: no gold row has its key", duplicate: "repeats an earlier row's key: not scored",
};

function shown(v) { return v == null ? "–" : v === "" ? "(empty)" : v; }

function metricText(col) {
  const crit = col.criterion == null ? "" : typeof col.criterion === "number" ? ` (tolerance ${col.criterion})` : ` (“${col.criterion}”)`;
  return `${col.preprocess.join(", ") || "no preprocessing"} → ${col.metric.join(" + ")}${crit}`;
}

function showCell(td, col, cell) {
  document.querySelectorAll("table.answer td.picked").forEach((x) => x.classList.remove("picked"));
  td.classList.add("picked");
  const rows = [
    ["column", (col.gold_name || col.name) + (col.answer_name && col.answer_name !== col.name ? ` (answer header “${col.answer_name}”)` : "") + (col.key ? " · key" : "")],
    ["how scored", metricText(col)],
    ["verdict", `${cell.verdict}: ${VERDICT_TEXT[cell.verdict]}` + (cell.score == null ? "" : ` · score ${cell.score}`)],
    ["answer", shown(cell.predicted)], ["answer, as compared", shown(cell.predicted_pre)],
    ["gold", shown(cell.gold)], ["gold, as compared", shown(cell.gold_pre)],
  ];
  $("cell-detail").replaceChildren(h("table", null, rows.map(([k, v]) =>
    h("tr", null, h("td", { class: "note" }, k), h("td", { class: "mono", "data-field": k }, v)))));
}

function rowLabel(r) {
  if (r.status === "matched") return `gold ${r.gold_row} · answer ${r.answer_row}`;
  if (r.status === "missed") return `gold ${r.gold_row} · missed`;
  if (r.status === "extra") return `answer ${r.answer_row} · extra`;
  return `answer ${r.answer_row} · repeats ${r.duplicate_of}`;
}

function answerTable(ex) {
  const head = h("tr", null, h("th", null, "row"),
    ex.columns.map((c) => h("th", { title: `${c.name}: ${metricText(c)}` }, (c.gold_name || c.name) + (c.key ? " (key)" : ""))));
  const body = [...ex.rows, ...ex.extra_rows].map((r) => {
    const ok = r.status === "matched" && r.cells.every((c) => c.verdict === "key" || c.verdict === "correct");
    return h("tr", { class: ok ? "row-ok" : "row-problem", "data-status": r.status },
      h("td", { class: "rowlabel" }, rowLabel(r)),
      r.cells.map((cell, j) => {
        const text = cell.verdict === "missed" ? cell.gold : cell.predicted;
        const td = h("td", { class: `cell v-${cell.verdict}`, "data-verdict": cell.verdict,
          title: `${VERDICT_TEXT[cell.verdict]}${cell.gold != null && cell.verdict !== "missed" ? "; gold: " + shown(cell.gold) : ""}` },
        shown(text));
        if (cell.verdict === "wrong" || cell.verdict === "partial") td.append(h("span", { class: "gold-under" }, "gold: " + shown(cell.gold)));
        td.addEventListener("click", () => showCell(td, ex.columns[j], cell));
        return td;
      }));
  });
  return h("table", { class: "answer", id: "answer-table" }, h("thead", null, head), h("tbody", null, body));
}

function renderAnswer(ep) {
  const ex = ep.explanation;
  const raw = () => lazyDetails("result", "the final answer as written", () => longText(ep.response || "(no final answer)"));
  if (!ex) {
    return h("div", null, h("p", { class: "note" }, "This record has no cell-level explanation (written with --no-explain or by an older version, " +
      "and the run's world was not available to recompute it)."), longText(ep.response || "(no final answer)"));
  }
  if (!ex.parse_ok) return h("div", null, h("p", { class: "error", id: "not-scored" }, "Not scored: " + ex.failure), raw());
  const t = ex.totals;
  const cellsTotal = t.gold_rows * t.columns;
  const table = answerTable(ex);
  const only = h("input", { type: "checkbox", id: "only-problems", onchange: () => table.classList.toggle("only-problems", only.checked) });
  return h("div", null,
    h("p", { id: "answer-summary" }, `${t.matched} of ${t.gold_rows} gold rows matched · ${t.missed} missed · ${t.extra} extra` +
      ` · ${t.duplicates} duplicate answer rows · cell score ${t.item_tp} of ${cellsTotal} gold cells` +
      (ep.explanation_recomputed ? " (explanation recomputed from the world's gold table)" : "")),
    h("div", { class: "legend" }, ["key", "correct", "partial", "wrong", "missed", "extra", "duplicate"].map((v) =>
      h("span", { class: `v-${v}`, style: "display:inline-block" }, v))),
    h("label", { class: "note" }, only, " only rows with a problem"),
    h("div", { style: "overflow-x:auto" }, table),
    h("div", { class: "cell-detail", id: "cell-detail" }, "Click a cell to see how it was scored."),
    raw());
}
