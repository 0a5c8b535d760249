"""ScriptedPolicy: a heuristic baseline that plays every role without an LLM.

It sees only what the env shows an agent (its conversation and tool schemas), never gold or
source tables, and it keeps no memory between turns: every decision is recomputed from the
agent's conversation, so the policy is deterministic and can act for any number of agents and
episodes at once.

- **Lead**: reads the requested columns from the query (the line that lists them, in order), and
  the rows from the query's first paragraph: explicit names, or else a subagent finds the list.
  It then fans the entities out, ``entities_per_subtask`` per subagent and as many subagents as
  the ``delegate`` tool allows per call (the width), re-delegates entities whose values came back
  incomplete (up to ``max_attempts`` tries each), applies a threshold or top-n condition of the
  query itself, and answers with the markdown table when nothing is left or its last turn comes.
- **Subagent**: a list subtask searches the request, reads the best-matching list page (and its
  other parts) and reports the names; a facts subtask handles its entities one at a time (search
  the name, read the best page, try the next page if the first held too little) and reports one
  line per entity. It reports early when its last turn comes.
- **Single agent** (the depth baseline): does the list step and then the entities one by one
  itself, and answers on its last turn or when done.

Why width matters for it: a subagent looks entities up one at a time (two turns each) and is
given only a few, as the paper's lead hands each subagent a small self-contained piece; the lead
has ``lead_max_turns`` turns, so it covers about ``(turns - 2) * width * entities_per_subtask``
rows, and tasks ask for 5-50.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wideseek_env.policies import heuristics as H
from wideseek_env.policies.base import AgentAction, AgentRequest
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
    tool_history,
)
from wideseek_env.scoring.extract import render_markdown_table

_BLOCK = re.compile(r"^## (?:Subtask|子任务) (\d+)", re.MULTILINE)

# ------------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class Plan:
    """What the lead (or single agent) reads from the query."""

    headers: tuple[str, ...]
    phrases: tuple[str, ...]  # one per non-key header
    selection: H.Selection
    request: str

    @classmethod
    def read(cls, query: str) -> Plan:
        headers = tuple(H.parse_columns(query))
        phrases = tuple(H.attribute_phrases(query, headers[1:])) if headers else ()
        request = H.first_paragraph(query)
        for phrase in phrases:  # what to report is not what to list: drop "the <attribute>"
            request = re.sub(r"\bthe " + re.escape(phrase) + r"\b", "", request, flags=re.IGNORECASE)
        request = re.sub(r"\s+([,.?:;])", r"\1", re.sub(r"(?:,\s*)+(and\s*)?(?=[,.?:;])|\s{2,}", " ", request))
        return cls(headers, phrases, H.parse_selection(query), request.strip())

    @property
    def filter_phrase(self) -> str:
        attr = self.selection.attribute.lower()
        if not attr:
            return ""
        for phrase in self.phrases:  # the condition's attribute may also be a requested column
            if phrase == attr or H.header_phrase(phrase) == attr:
                return phrase
        return attr

    @property
    def attributes(self) -> tuple[str, ...]:
        extra = self.filter_phrase
        return self.phrases + ((extra,) if extra and extra not in self.phrases else ())

    def table(self, candidates: Sequence[str], facts: Mapping[str, Mapping[str, str]]) -> str:
        """The final answer: one row per entity that meets the query's condition."""
        sel = self.selection
        rows = list(candidates)
        if sel.condition:
            keyed = [(H.parse_number(facts.get(e, {}).get(self.filter_phrase, "")), e) for e in rows]
            known = [(v, e) for v, e in keyed if v is not None]
            if sel.condition == "more":
                rows = [e for v, e in known if v > sel.number]
            elif sel.condition == "less":
                rows = [e for v, e in known if v < sel.number]
            else:
                ranked = sorted(known, key=lambda ve: -ve[0] if sel.condition == "highest" else ve[0])
                rows = [e for _, e in ranked[: sel.top_n]]
        body = [[e, *(facts.get(e, {}).get(p, "") for p in self.phrases)] for e in rows]
        return "Here is the table.\n\n" + render_markdown_table(self.headers, body)


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
        if req.role == "lead":
            step = self._lead(req)
        elif req.role == "single":
            step = self._single(req)
        else:
            step = self._subagent(req)
        if step.name is None:
            return step.text
        return {"name": step.name, "arguments": dict(step.arguments)}

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
                pages = list(log.pages.values())
                return Step(None, text=list_report("the pages read", pages))
            return step
        parsed = parse_facts_subtask(subtask)
        if parsed is None:  # a subtask in free form: search it and report what the results say
            query = re.sub(r"\s+", " ", subtask).strip()[:300]
            if query not in log.searches and not last:
                return Step("search", {"queries": [query]})
            hits = log.searches.get(query, [])
            return Step(None, text="\n".join(f"{h.title} ({h.url}): {h.snippet}" for h in hits)
                        or "Nothing found.")
        entities, attributes = parsed
        step, found = facts_step(entities, attributes, log)
        if step is None or last:
            return Step(None, text=facts_report(entities, attributes, found))
        return step

    # -------------------------------------------------------------- lead

    def _lead(self, req: AgentRequest) -> Step:
        plan = Plan.read(first_user(req.messages))
        if not plan.headers:
            return Step(None, text="I could not tell which columns the table should have.")
        width = max_items(req.tools, "delegate", 1)
        names: dict[str, None] = dict.fromkeys(plan.selection.names)
        facts: dict[str, dict[str, str]] = {}
        attempts: dict[str, int] = {}
        list_attempts = 0
        for call, result in tool_history(req.messages):
            if call.name != "delegate":
                continue
            subtasks = list(call.arguments.get("subtasks", []))
            for subtask, block in zip(subtasks, _report_blocks(result)):
                report = block.split(subtask, 1)[-1]
                if subtask.startswith(LIST_MARK):
                    list_attempts += 1
                    for name in H.bullet_names(report):
                        names.setdefault(name, None)
                    continue
                parsed = parse_facts_subtask(subtask)
                if parsed is None:
                    continue
                for entity in parsed[0]:
                    attempts[entity] = attempts.get(entity, 0) + 1
                for entity, values in parse_facts_report(report).items():
                    facts.setdefault(entity, {}).update(values)
        candidates = list(names)
        if self._last_turn(req):
            return Step(None, text=plan.table(candidates, facts))
        if not candidates:
            if list_attempts < self.max_list_attempts:
                return Step("delegate", {"subtasks": [list_subtask(plan.request, list_attempts + 1)]})
            return Step(None, text=plan.table(candidates, facts))
        attrs = plan.attributes

        def missing(e: str) -> bool:
            return any(a not in facts.get(e, {}) for a in attrs)

        todo = [e for e in candidates if attempts.get(e, 0) == 0]
        todo += [e for e in candidates if 0 < attempts.get(e, 0) < self.max_attempts and missing(e)]
        if not todo:
            return Step(None, text=plan.table(candidates, facts))
        todo = todo[: width * self.entities_per_subtask]
        n_sub = min(width, len(todo))
        size = math.ceil(len(todo) / n_sub)
        chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
        return Step("delegate", {"subtasks": [facts_subtask(c, attrs) for c in chunks]})

    # -------------------------------------------------------------- single agent

    def _single(self, req: AgentRequest) -> Step:
        plan = Plan.read(first_user(req.messages))
        if not plan.headers:
            return Step(None, text="I could not tell which columns the table should have.")
        log = Log(tool_history(req.messages))
        last = self._last_turn(req)
        names = list(plan.selection.names)
        if not names:
            step = list_step(plan.request, log)
            if step.name is not None:
                return Step(None, text=plan.table([], {})) if last else step
            names = H.bullet_names(step.text)
        step, found = facts_step(names, plan.attributes, log)
        if step is None or last:
            return Step(None, text=plan.table(names, found))
        return step


def _report_blocks(result: str) -> list[str]:
    """The per-subtask blocks of a ``delegate`` result, in subtask order."""
    starts = [m.start() for m in _BLOCK.finditer(result)]
    return [result[a:b] for a, b in zip(starts, [*starts[1:], len(result)])]
