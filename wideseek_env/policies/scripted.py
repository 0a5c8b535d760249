"""ScriptedPolicy: a heuristic baseline that plays every role without an LLM.

It sees only what the env shows an agent (its conversation and tool schemas), never gold or
source tables, and it keeps no memory between turns: every decision is recomputed from the
agent's conversation, so the policy is deterministic and can act for any number of agents and
episodes at once.

- **Lead**: reads the query (:mod:`.plan`): columns and keys, the format of each column, the
  attribute phrase behind each column (and the entity a multi-hop column goes through), the sets
  to find (one per group: "the counties of Kansas", "the counties of Nebraska"), explicit names,
  conditions and entity x year rows. It sends one subagent per set to assemble the list from its
  (partial, linked) list pages, then fans the entities out, ``entities_per_subtask`` per subagent
  and as many subagents as the ``delegate`` tool allows per call (the width), asking for every
  column's attribute and every condition's. Entities whose values came back incomplete are sent
  again (up to ``max_attempts`` tries). It then applies the conditions itself, writes each value
  in the format the query asks (units, scale, rounding, date style, lists) and answers with the
  table when nothing is left or its last turn comes.
- **Subagent**: a list subtask reads the best-matching list and its other parts and reports the
  names; a facts subtask searches each entity next to its group, reads its pages (profile,
  article, yearbook), reads each attribute off them (:mod:`.reading`), follows "X of its Y" to
  Y's page, and reports one line per entity. It reports early when its last turn comes.
- **Single agent** (the depth baseline): does the list step and then the entities itself.

Why width matters for it: a subagent handles a few entities (two to four turns each with their
hops), the lead has ``lead_max_turns`` turns, so it covers about ``(turns - 2) * width *
entities_per_subtask`` candidates, and v2 tasks ask for up to 200 rows (more candidates, since
conditions drop some).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from wideseek_env.policies import heuristics as H
from wideseek_env.policies import reading as R
from wideseek_env.policies.base import AgentAction, AgentRequest
from wideseek_env.policies.plan import Condition, Plan, read_plan
from wideseek_env.policies.steps import (
    LIST_MARK,
    Log,
    Step,
    facts_report,
    facts_step,
    facts_subtask,
    first_user,
    list_report,
    list_step,
    list_subtask,
    max_items,
    parse_facts_report,
    parse_facts_subtask,
    split_entity,
    tool_history,
)
from wideseek_env.policies.translate import profile_action, wideseek_view
from wideseek_env.scoring.extract import render_markdown_table

_BLOCK = re.compile(r"^## (?:Subtask|子任务) (\d+)", re.MULTILINE)

__all__ = ["ScriptedPolicy", "facts_report", "parse_facts_report"]


# ------------------------------------------------------------------------------ the answer


def wants_of(plan: Plan) -> list[R.Want]:
    """What to ask subagents for: every column's attribute (per year for entity x year rows:
    the phrase with the year, and without it for columns that do not change by year) and every
    condition's attribute."""
    out: list[R.Want] = []
    for h in plan.attribute_headers:
        w = plan.wants[h]
        out.append(w)
        if plan.years and w.year is None and w.kind == "number":  # values that change by year
            out.extend(R.Want(f"{w.phrase} ({y})", w.kind) for y in plan.years)
    for c in plan.conditions:
        kind = "text" if c.kind == "exclude" else "date" if c.kind in ("before", "from") \
            else "number"
        out.append(R.Want(c.phrase, kind))
    return list(dict.fromkeys(out))


def _number(raw: str | None, unit: str = "") -> float | None:
    if not raw:
        return None
    if unit:
        text = R.format_value(raw, R.Format("number", unit))
        try:
            return float(text)
        except ValueError:
            return None
    q = R.read_quantity(raw)
    return q[0] if q else None


def _year_of(raw: str | None) -> int | None:
    m = re.search(r"\b(\d{4})\b", raw or "")
    return int(m.group(1)) if m else None


def passes(cond: Condition, values: Mapping[str, str]) -> bool | None:
    """Whether an entity meets ``cond`` (``None`` when its value is unknown)."""
    raw = values.get(cond.phrase)
    if cond.kind in ("above", "below"):
        x = _number(raw, cond.unit if cond.unit not in ("", "residents", "people") else "")
        if x is None:
            return None
        return x > cond.number if cond.kind == "above" else x < cond.number
    if cond.kind in ("before", "from"):
        y = _year_of(raw)
        if y is None:
            return None
        return y < cond.number if cond.kind == "before" else y >= cond.number
    if cond.kind == "exclude":
        return None if raw is None else raw.strip().lower() != cond.value.strip().lower()
    return True


def answer_table(plan: Plan, candidates: Sequence[tuple[str, str]],
                 facts: Mapping[str, Mapping[str, str]]) -> str:
    """The final answer: one row per candidate ``(name, group)`` that meets the conditions (per
    year for entity x year rows), each value in the asked format."""
    rows = list(candidates)
    for cond in plan.conditions:
        if cond.kind in ("top", "bottom"):
            valued = [(x, c) for c in rows
                      if (x := _number(facts.get(_ekey(c), {}).get(cond.phrase))) is not None]
            valued.sort(key=lambda xc: -xc[0] if cond.kind == "top" else xc[0])
            rows = [c for _, c in valued[: int(cond.number)]]
        else:
            rows = [c for c in rows if passes(cond, facts.get(_ekey(c), {}))]
    body = []
    for cand in rows:
        values = facts.get(_ekey(cand), {})
        keys = _key_cells(plan, cand)
        for year in plan.years or (None,):
            cells = list(keys) + ([str(year)] if year is not None else [])
            for h in plan.attribute_headers:
                want = plan.wants[h]
                raw = values.get(f"{want.phrase} ({year})") if year is not None else None
                raw = raw or values.get(want.phrase, "")
                cells.append(R.format_value(raw, plan.formats.get(h, R.Format())) if raw else "")
            body.append(cells)
    return "Here is the table.\n\n" + render_markdown_table(plan.headers, body)


def _list_item(item: str) -> tuple[str, str, dict[str, str]]:
    """``name [edition] | column: value | ...`` -> (name, edition, {column: value})."""
    head, *rest = item.split(" | ")
    m = re.match(r"^(.*?)\s*\[(\d{4}(?:[–-]\d{2,4})?)\]$", head)
    name, edition = (m.group(1), m.group(2)) if m else (head, "")
    cells = {}
    for part in rest:
        k, sep, v = part.partition(": ")
        if sep:
            cells[k.strip().lower()] = v.strip()
    return name, edition, cells


def _ekey(cand: tuple[str, str]) -> str:
    name, group = cand
    return f"{name} [{group}]" if group else name


def _singular(noun: str) -> str:
    """``U.S. states and territories`` -> ``U.S. state``; ``counties`` -> ``county``."""
    head = noun.split(" and ")[0].split(" or ")[0].strip()
    if head.endswith("ies"):
        return head[:-3] + "y"
    return head[:-1] if head.endswith("s") and not head.endswith("ss") else head


def _context(plan: Plan, set_phrase: str) -> str:
    """The group a set's names were listed under, and what one member of the set is."""
    group = dict(zip(plan.sets, plan.groups)).get(set_phrase, "")
    noun = _singular(set_noun(set_phrase)) if not plan.names else ""
    return "; ".join(x for x in (group, noun) if x)


def set_noun(set_phrase: str) -> str:
    """What a set is a set of: ``all chemical elements`` -> ``chemical elements``; searched
    next to a name when the set has no group ("Iron chemical elements" finds the element, not
    its isotopes)."""
    text = re.sub(r"^(?:all|the|every|each)\s+", "", set_phrase.strip(), flags=re.IGNORECASE)
    return re.split(r"\s+(?:of|in|with|that|whose|which|located|from)\s+", text)[0].strip()


def _key_cells(plan: Plan, cand: tuple[str, str]) -> list[str]:
    name, context = cand
    if len(plan.keys) == 1:
        return [name]
    m = re.match(r"^(.+)-(\d+)$", name)  # "Iron-56" for (Element, Mass Number)
    if m:
        return [m.group(1), m.group(2)] + [""] * (len(plan.keys) - 2)
    group = context.split(";")[0].strip()
    if group and not any(group == g for g in plan.groups) and \
            not re.fullmatch(r"\d{4}(?:[–-]\d{2,4})?", group):
        group = ""  # a noun standing in for a group is not a key cell (an edition is)
    return [name, group] + [""] * (len(plan.keys) - 2)


# ------------------------------------------------------------------------------ the policy


class ScriptedPolicy:
    """The heuristic baseline; see the module docstring."""

    def __init__(self, entities_per_subtask: int = 2, max_attempts: int = 2,
                 max_list_attempts: int = 2, context_margin: float = 0.9) -> None:
        if entities_per_subtask < 1 or max_attempts < 1 or max_list_attempts < 1:
            raise ValueError("ScriptedPolicy: counts must be >= 1")
        self.entities_per_subtask = entities_per_subtask
        self.max_attempts = max_attempts
        self.max_list_attempts = max_list_attempts
        self.context_margin = context_margin

    def act(self, requests: Sequence[AgentRequest]) -> list[AgentAction]:
        return [AgentAction(r.key, self._act(r)) for r in requests]

    def _act(self, req: AgentRequest) -> str | dict[str, Any]:
        req, profile = wideseek_view(req)  # another interface's request, as wideseek shows it
        if req.role == "lead":
            step = self._lead(req)
        elif req.role == "single":
            step = self._single(req)
        else:
            step = self._subagent(req)
        if step.name is None:
            return step.text
        return profile_action({"name": step.name, "arguments": dict(step.arguments)}, profile,
                              req.role, first_user(req.messages))

    def _last_turn(self, req: AgentRequest) -> bool:
        info = req.info
        turns, max_turns = int(info.get("turns", 0)), int(info.get("max_turns", 1 << 30))
        if turns + 1 >= max_turns:
            return True
        used, limit = info.get("context_tokens"), info.get("max_context_tokens")
        return bool(used and limit and used > self.context_margin * limit)

    # -------------------------------------------------------------- subagent

    def _subagent(self, req: AgentRequest) -> Step:
        subtask = first_user(req.messages)
        log = Log(tool_history(req.messages))
        last = self._last_turn(req)
        if subtask.startswith(LIST_MARK):
            first, _, request = subtask.partition("\n")
            attempt = int(m.group(1)) if (m := re.search(r"\(attempt (\d+)", first)) else 1
            step = list_step(request, log, attempt)
            if step.name is not None and last:
                return Step(None, text=list_report("the pages read", list(log.pages.values())))
            return step
        parsed = parse_facts_subtask(subtask)
        if parsed is None:  # a subtask in free form: search it and report what the results say
            query = re.sub(r"\s+", " ", subtask).strip()[:300]
            if query not in log.searches and not last:
                return Step("search", {"queries": [query]})
            hits = log.searches.get(query, [])
            return Step(None, text="\n".join(f"{h.title} ({h.url}): {h.snippet}" for h in hits)
                        or "Nothing found.")
        entities, wants = parsed
        step, found = facts_step(entities, wants, log)
        if step is None or last:
            return Step(None, text=facts_report(entities, [w.phrase for w in wants], found))
        return step

    # -------------------------------------------------------------- lead

    def _lead(self, req: AgentRequest) -> Step:
        plan = read_plan(first_user(req.messages))
        if not plan.headers:
            return Step(None, text="I could not tell which columns the table should have.")
        width = max_items(req.tools, "delegate", 1)
        candidates: dict[tuple[str, str], None] = dict.fromkeys((n, "") for n in plan.names)
        facts: dict[str, dict[str, str]] = {}
        attempts: dict[str, int] = {}
        listed: dict[str, int] = {}  # set phrase -> list attempts
        found_in: dict[str, int] = {}  # set phrase -> names its lists gave
        for call, result in tool_history(req.messages):
            if call.name != "delegate":
                continue
            subtasks = list(call.arguments.get("subtasks", []))
            for subtask, block in zip(subtasks, _report_blocks(result)):
                report = block.split(subtask, 1)[-1]
                if subtask.startswith(LIST_MARK):
                    request = subtask.partition("\n")[2].strip()
                    listed[request] = listed.get(request, 0) + 1
                    group = _context(plan, request)
                    items = H.bullet_names(report)
                    found_in[request] = found_in.get(request, 0) + len(items)
                    for item in items:
                        name, edition, cells = _list_item(item)
                        cand = (name, edition or group)
                        candidates.setdefault(cand, None)
                        for h, w in plan.wants.items():  # a table row's cells are facts too
                            if h.lower() in cells:
                                facts.setdefault(_ekey(cand), {})[w.phrase] = cells[h.lower()]
                    continue
                parsed = parse_facts_subtask(subtask)
                if parsed is None:
                    continue
                for entity in parsed[0]:
                    attempts[entity] = attempts.get(entity, 0) + 1
                for entity, values in parse_facts_report(report).items():
                    got = facts.setdefault(entity, {})
                    for k, v in values.items():  # the first value found stays (a table's cell)
                        got.setdefault(k, v)
        cands = list(candidates)
        if self._last_turn(req):
            return Step(None, text=answer_table(plan, cands, facts))
        if not plan.names:  # every set listed once, and again while its lists gave no names
            sets = [s for s in plan.sets if listed.get(s, 0) == 0 or (
                listed[s] < self.max_list_attempts and not found_in.get(s))]
            if sets:
                return Step("delegate", {"subtasks": [
                    list_subtask(s, listed.get(s, 0) + 1) for s in sets[:width]]})
        if not cands:
            return Step(None, text=answer_table(plan, cands, facts))
        wants = wants_of(plan)

        def missing(key: str) -> bool:
            """A column with no value (plain or for some year) or a condition not read."""
            got = facts.get(key, {})
            for h in plan.attribute_headers:
                p = plan.wants[h].phrase
                if p not in got and not any(k.startswith(p + " (") for k in got):
                    return True
            return any(c.phrase not in got for c in plan.conditions)

        keys = [_ekey(c) for c in cands]
        todo = [k for k in keys if attempts.get(k, 0) == 0]
        todo += [k for k in keys if 0 < attempts.get(k, 0) < self.max_attempts and missing(k)]
        if not todo:
            return Step(None, text=answer_table(plan, cands, facts))
        todo = todo[: width * self.entities_per_subtask]
        n_sub = min(width, len(todo))
        size = math.ceil(len(todo) / n_sub)
        chunks = [todo[i: i + size] for i in range(0, len(todo), size)]
        return Step("delegate", {"subtasks": [facts_subtask(c, wants) for c in chunks]})

    # -------------------------------------------------------------- single agent

    def _single(self, req: AgentRequest) -> Step:
        plan = read_plan(first_user(req.messages))
        if not plan.headers:
            return Step(None, text="I could not tell which columns the table should have.")
        log = Log(tool_history(req.messages))
        last = self._last_turn(req)
        cands: list[tuple[str, str]] = [(n, "") for n in plan.names]
        table_facts: dict[str, dict[str, str]] = {}
        if not cands:
            for s in plan.sets:
                step = list_step(s, log)
                if step.name is not None:
                    return Step(None, text=answer_table(plan, cands, {})) if last else step
                for name, edition, cells in map(_list_item, H.bullet_names(step.text)):
                    cand = (name, edition or _context(plan, s))
                    cands.append(cand)
                    for h, w in plan.wants.items():  # a table row's cells are facts too
                        if h.lower() in cells:
                            table_facts.setdefault(_ekey(cand), {})[w.phrase] = cells[h.lower()]
        step, found = facts_step([_ekey(c) for c in cands], wants_of(plan), log)
        for key, values in table_facts.items():  # a table's cells beat a reading of prose
            found.setdefault(key, {}).update(values)
        if step is None or last:
            return Step(None, text=answer_table(plan, cands, found))
        return step


def _report_blocks(result: str) -> list[str]:
    """The per-subtask blocks of a ``delegate`` result, in subtask order."""
    starts = [m.start() for m in _BLOCK.finditer(result)]
    return [result[a:b] for a, b in zip(starts, [*starts[1:], len(result)])]


def entity_of(key: str) -> tuple[str, str]:
    """``name [group]`` -> ``(name, group)``."""
    return split_entity(key)
