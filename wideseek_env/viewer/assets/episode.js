"use strict";
/* wideseek view, part 2: one episode (figures, the answer coloured against the gold, the tree). */

const LONG_CHARS = 700;  // longer texts (or more lines) start folded, with a button
const LONG_LINES = 12;

function longText(text, cls = "msg") {
  const pre = h("pre", { class: cls }, text);
  if (text.length <= LONG_CHARS && text.split("\n").length <= LONG_LINES) return pre;
  const more = h("button", { class: "more", type: "button", onclick: () => {
    pre.classList.toggle("full");
    more.textContent = pre.classList.contains("full") ? "show less" : `show all (${fmt(text.length)} chars)`;
  } }, `show all (${fmt(text.length)} chars)`);
  return h("div", null, pre, more);
}

function lazyDetails(cls, summary, fill, open = false) {
  const d = h("details", { class: cls }, h("summary", null, summary));
  let done = false;
  d.addEventListener("toggle", () => { if (d.open && !done) { done = true; d.append(...[].concat(fill())); } });
  if (open) d.open = true;
  return d;
}

function splitAssistant(text) {
  let think = null;
  const block = /<think>([\s\S]*?)<\/think>/.exec(text);
  if (block) { think = block[1].trim(); text = text.replace(block[0], ""); }
  else if (text.includes("</think>")) { const k = text.indexOf("</think>"); think = text.slice(0, k).trim(); text = text.slice(k + 8); }
  const calls = [];
  text = text.replace(/<tool_call>([\s\S]*?)(?:<\/tool_call>|$)/g, (_, inner) => {
    let call = null;
    try { call = JSON.parse(inner.trim().replace(/^```(?:json)?|```$/g, "")); } catch (err) { call = null; }
    calls.push(call && call.name ? call : { raw: inner.trim() });
    return "";
  });
  return { think, body: text.trim(), calls };
}

function assistantBlock(label, text, cls = "") {
  const { think, body, calls } = splitAssistant(text);
  return h("div", { class: "turn " + cls },
    h("div", { class: "who" }, label),
    think ? lazyDetails("think", `thinking (${fmt(think.length)} chars)`, () => longText(think)) : null,
    body ? longText(body) : null,
    calls.map((c) => h("div", { class: "call" }, c.raw != null
      ? [h("b", null, "unparsed tool call "), h("code", null, c.raw)]
      : [h("b", null, c.name), argsView(c.arguments)])));
}

function argsView(args) {
  // One line per argument; a list of texts (delegate's subtasks) as numbered blocks.
  if (args == null || typeof args !== "object" || Array.isArray(args)) return h("code", null, " " + JSON.stringify(args ?? {}));
  return Object.entries(args).map(([k, v]) => {
    const item = (x) => (typeof x === "string" ? longText(x, "msg arg") : h("code", null, JSON.stringify(x)));
    if (Array.isArray(v) && v.some((x) => typeof x === "string" && x.length > 60)) {
      return h("div", null, h("span", { class: "note" }, `${k} (${v.length}):`), h("ol", { class: "args" }, v.map((x) => h("li", null, item(x)))));
    }
    return h("div", null, h("span", { class: "note" }, k + ": "), h("code", null, JSON.stringify(v)));
  });
}

function messageBlocks(agent, label) {
  let turn = 0;
  return agent.messages.map(([role, content, name]) => {
    if (role === "assistant") return assistantBlock(`${label} · turn ${++turn}`, content);
    if (role === "tool") {
      const first = content.replace(/\s+/g, " ").slice(0, 110);
      return h("div", { class: "turn tool" },
        lazyDetails("result", `← ${name || "tool"}: ${first}${content.length > 110 ? "…" : ""}`, () => longText(content)));
    }
    return h("div", { class: "turn user" }, h("div", { class: "who" }, role), longText(content));
  });
}

function systemPrompt(agent) {
  if (agent.system == null) return null;
  return lazyDetails("think", "system prompt", () => longText(META.prompts[agent.system]));
}

function subColumn(a) {
  const tools = Object.entries(a.tool_calls || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "no tool calls";
  const blocks = messageBlocks(a, a.id);
  const last = [...blocks].reverse().find((b) => b.classList.contains("turn") && !b.classList.contains("tool") && !b.classList.contains("user"));
  if (last && a.end_reason === "final") last.classList.add("report");
  return h("div", { class: "sub" + (a.status === "failed" ? " failed" : ""), id: "ag-" + a.id, "data-agent": a.id },
    h("h4", null, a.id),
    h("div", { class: "meta" }, `${a.status}${a.end_reason ? " (" + a.end_reason + ")" : ""} · ${a.turns}/${a.max_turns} turns · ${tools}` +
      ` · ${fmt(a.generated_tokens)} generated / ${fmt(a.context_tokens)} context tokens`),
    systemPrompt(a), blocks);
}

function delegationBlock(k, subs) {
  const failed = subs.filter((a) => a.status === "failed").length;
  const longest = Math.max(0, ...subs.map((a) => a.turns || 0));
  const d = lazyDetails("delegation", `call ${k + 1}: ${subs.length} subagent(s) side by side · ${subs.length - failed} done` +
    `${failed ? ", " + failed + " failed" : ""} · longest ${longest} turns`, () => h("div", { class: "subs" }, subs.map(subColumn)));
  d.dataset.call = String(k);
  return d;
}

function renderTree(ep) {
  const lead = ep.agents.find((a) => a.parent == null);
  const byCall = new Map();
  for (const a of ep.agents) {
    if (a.parent != null) { const k = a.delegation ?? 0; if (!byCall.has(k)) byCall.set(k, []); byCall.get(k).push(a); }
  }
  const tree = h("div", { id: "tree" });
  if (!lead) return tree;
  tree.append(systemPrompt(lead));
  let turn = 0, call = 0;
  for (const [role, content, name] of lead.messages) {
    if (role === "assistant") { tree.append(assistantBlock(`${lead.id} · turn ${++turn}`, content, "lead")); continue; }
    if (role === "tool" && (name === "delegate" || name === "create_sub_agents")) tree.append(delegationBlock(call, byCall.get(call++) || []));
    tree.append(...messageBlocks({ messages: [[role, content, name]] }, lead.id));
  }
  for (const [k, subs] of [...byCall].sort((a, b) => a[0] - b[0])) if (k >= call) tree.append(delegationBlock(k, subs));
  return tree;
}

function openSub(id) {
  const sub = CURRENT.agents.find((x) => x.id === id);
  const d = document.querySelector(`details.delegation[data-call="${sub.delegation ?? 0}"]`);
  if (d && !d.open) { d.open = true; d.dispatchEvent(new Event("toggle")); }
  const a = document.querySelector(`[data-agent="${id}"]`);
  if (a) a.scrollIntoView({ block: "nearest", inline: "nearest" });
}

function roundsFigure(ep) {
  // One group of bars per round, left to right: the lead, then each delegate call's subagents.
  const lead = ep.agents.find((a) => a.parent == null);
  const subs = ep.agents.filter((a) => a.parent != null);
  const top = Math.max(1, ...ep.agents.map((a) => a.turns || 0));
  const bar = (a, cls) => h("div", { class: `tbar ${cls} ${a.status === "failed" ? "failed" : ""}`,
    style: `height:${Math.max(3, Math.round(48 * (a.turns || 0) / top))}px`,
    title: `${a.id}: ${a.turns}/${a.max_turns} turns, ${a.status}${a.end_reason ? " (" + a.end_reason + ")" : ""}, ` +
      `${fmt(a.generated_tokens)} generated tokens, ${fmt(a.context_tokens)} context tokens`,
    onclick: cls === "lead" ? null : () => openSub(a.id) });
  const group = (label, agents, cls) => h("div", { class: "round" },
    h("div", { class: "agents" }, agents.map((a) => bar(a, cls))), h("div", { class: "lbl" }, label));
  const groups = lead ? [group(`lead ${lead.turns}`, [lead], "lead")] : [];
  const calls = [...new Set(subs.map((a) => a.delegation ?? 0))].sort((a, b) => a - b);
  for (const k of calls) {
    const agents = subs.filter((a) => (a.delegation ?? 0) === k);
    groups.push(group(`call ${k + 1} · ${agents.length}`, agents, ""));
  }
  return h("div", { class: "rounds" }, h("div", { class: "strip" }, groups),
    h("div", { class: "note" }, `bar height: turns taken (tallest ${top}); one group per round, the lead first, then each delegate call's subagents; ` +
      "hover a bar for its tokens, click a subagent to open it in the tree"));
}

function cards(e, ep) {
  const m = ep.metrics || {}, c = ep.cost || {};
  const calls = new Set(ep.agents.filter((a) => a.parent != null).map((a) => a.delegation ?? 0)).size;
  const tools = Object.entries(c.tool_calls || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  const items = [
    ["item F1", fmt(m.item_f1)], ["item P / R", `${fmt(m.item_precision)} / ${fmt(m.item_recall)}`],
    ["row F1", fmt(m.row_f1)], ["success", fmt(!!m.success)], ["end", ep.end],
    ["width", widthLabel(e)], ["subagents", `${fmt(c.subagents_used)} in ${calls} call(s)`],
    ["turns", fmt(c.total_turns)], ["critical path", fmt(c.critical_path_turns)],
    ["policy calls", fmt(c.policy_calls)],
    ["generated tokens", (c.tokens_estimated ? "~" : "") + fmt(c.generated_tokens)],
    ["prompt tokens", fmt(c.prompt_tokens)], ["tool calls", tools || "0"],
    ["format / tool errors", `${fmt(c.format_errors)} / ${fmt(c.tool_errors)}`],
  ];
  return h("div", { class: "cards" }, items.map(([k, v]) => h("div", { class: "card" }, h("div", { class: "v" }, v), h("div", { class: "k" }, k))));
}

function renderEpisode(i, e, ep) {
  const run = META.runs[e.run];
  const pos = state.shown.findIndex((x) => x._i === i);
  const go = (d) => { const t = state.shown[pos + d]; if (t) location.hash = "ep=" + t._i; };
  return h("div", null,
    h("div", { class: "ep-head" },
      h("h2", null, `${ep.task} · repeat ${ep.repeat}`),
      h("span", { class: "note" }, `${run.label} · seed ${ep.seed} · ${ep.mode}`),
      h("button", { type: "button", id: "prev", disabled: pos <= 0, onclick: () => go(-1) }, "← previous"),
      h("button", { type: "button", id: "next", disabled: pos < 0 || pos >= state.shown.length - 1, onclick: () => go(1) }, "next →")),
    cards(e, ep),
    h("h3", null, "Width and turns"), roundsFigure(ep),
    h("h2", null, "Answer against the gold table"), renderAnswer(ep),
    h("h2", null, "Agent tree"),
    h("div", { class: "tree-tools" },
      h("button", { type: "button", id: "expand-all", onclick: () => toggleAll(true) }, "expand all"),
      h("button", { type: "button", id: "collapse-all", onclick: () => toggleAll(false) }, "collapse all")),
    renderTree(ep));
}

function toggleAll(open) {
  // Opening fills lazy blocks, which may hold more details: repeat until nothing is left closed.
  for (let pass = 0; pass < 4; pass++) {
    const todo = [...document.querySelectorAll("#tree details")].filter((d) => d.open !== open);
    if (!todo.length) break;
    for (const d of todo) { d.open = open; d.dispatchEvent(new Event("toggle")); }
  }
}

let CURRENT = null;
async function openEpisode(i) {
  state.selected = i;
  document.querySelectorAll("#episodes tbody tr.selected").forEach((tr) => tr.classList.remove("selected"));
  const row = document.querySelector(`#episodes tbody tr[data-i="${i}"]`);
  if (row) { row.classList.add("selected"); row.scrollIntoView({ block: "nearest" }); }
  const sec = $("episode");
  sec.hidden = false;
  let ep;
  try { ep = await loadEpisode(i); } catch (err) {
    sec.replaceChildren(h("p", { class: "error" }, `could not read episode ${i}: ${err.message}`));
    return;
  }
  if (state.selected !== i) return;
  CURRENT = ep;
  sec.replaceChildren(renderEpisode(i, INDEX[i], ep));
  performance.mark("wsv-episode");
  document.body.dataset.episode = String(i);
}

start();
