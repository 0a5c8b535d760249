"""The episode engine behind both envs: agents, turns, budgets, delegation, tools and scoring.

:class:`Engine` holds one episode's state and advances it by one *round* per :meth:`Engine.step`:
every agent that needs an action and was given one acts; the ``search``/``access`` calls of the
round run as one batch; ``delegate`` calls start fresh subagents; a lead whose subagents have all
finished receives one tool message with every subtask's result. The PettingZoo and Gymnasium
classes are thin faces over it (:mod:`~wideseek_env.env.parallel`,
:mod:`~wideseek_env.env.single_agent`).

Conversations are lists of :class:`ReadOnlyDict` messages. A message never changes once written
and a conversation only grows, so observations are cheap shallow copies of these lists: an agent's
observation at turn t is a prefix of its observation at turn t+1, and a caller that tries to edit
a message gets a ``TypeError`` instead of silently corrupting the transcript.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wideseek_env.env.config import MESSAGE_OVERHEAD_TOKENS, EnvConfig, approx_token_count
from wideseek_env.env.messages import ReadOnlyDict, freeze
from wideseek_env.env.profiles import Report, get_profile
from wideseek_env.env.prompts import TEXTS, language_key
from wideseek_env.env.protocol import (
    FinalMessage,
    FormatError,
    ToolCall,
    format_tool_call,
    parse_structured,
    strip_think,
)
from wideseek_env.env.rewards import EpisodeFacts, RewardTerms, episode_reward
from wideseek_env.env.tools import ToolLimits, ToolRunner
from wideseek_env.qa import task_kind
from wideseek_env.search.base import SearchBackend
from wideseek_env.tasks import Task

#: ``(messages, tools) -> tokens``: the length of an agent's conversation as its policy prompts
#: it (tools = the schemas the policy passes to its chat template, empty when they are in the
#: system prompt). When the conversation ends with the agent's own reply, the length of the
#: prompt plus that reply; otherwise the next prompt, generation prompt included.
ContextCounter = Callable[[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]], int]


class AgentState:
    """Mutable state of one agent in the current episode (internal; infos are built from it)."""

    __slots__ = ("agent_id", "call_index", "context_tokens", "end_reason", "format_errors",
                 "max_response_tokens", "max_turns", "messages", "needs_action", "parent",
                 "report", "role", "status", "subtask", "tool_calls", "tool_errors", "tools",
                 "turns")

    def __init__(self, agent_id: str, role: str, parent: str | None, tools: tuple[str, ...],
                 max_turns: int, call_index: int | None = None, subtask: str | None = None) -> None:
        self.agent_id = agent_id
        self.role = role
        self.parent = parent
        self.tools = tools
        self.max_turns = max_turns
        self.call_index = call_index
        self.subtask = subtask
        self.messages: list[ReadOnlyDict] = []
        self.needs_action = True
        self.status = "running"  # running | blocked | done | failed
        self.end_reason: str | None = None  # final | turns | context
        self.report: str | None = None
        self.turns = 0
        self.tool_calls = dict.fromkeys(tools, 0)
        self.format_errors = 0
        self.tool_errors = 0
        self.context_tokens = 0
        self.max_response_tokens = 0  # the longest single reply of this agent, in tokens

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


@dataclass
class Delegation:
    """One ``delegate`` call: which lead turn made it and which subagents run it."""

    index: int
    lead_turn: int
    subtasks: tuple[str, ...]
    agents: tuple[str, ...]
    pending: set[str] = field(default_factory=set)


class Engine:
    """One episode of lead + subagents (or of a single agent, when the lead cannot delegate)."""

    def __init__(self, config: EnvConfig, backend: SearchBackend, *, judge: Any = None,
                 token_counter: Callable[[str], int] | None = None,
                 context_counter: ContextCounter | None = None, reader: Any = None) -> None:
        self.config = config
        self.judge = judge
        self.count_tokens = token_counter or approx_token_count
        self.count_context = context_counter
        self.profile = get_profile(config.interface)
        if reader is not None and config.interface != "paper":
            raise ValueError("reader= (access summaries) needs interface='paper': only its access "
                             "calls say what to extract from a page (info_to_extract)")
        self.limits = ToolLimits(config.width, config.max_queries_per_call,
                                 config.max_urls_per_call, config.search_top_k, config.max_page_chars)
        self.runner = ToolRunner(backend, self.limits, config.tool_workers, self.profile, reader)
        self.lead_role = "lead" if "delegate" in config.lead_tools else "single"
        self.role_tools = {self.lead_role: config.lead_tools, "subagent": config.subagent_tools}
        self.schemas = {role: freeze([self.profile.schema(t, self.limits, role) for t in tools])
                        for role, tools in self.role_tools.items()}
        self.max_items = {"delegate": config.width, "search": config.max_queries_per_call,
                          "access": config.max_urls_per_call}
        self.subagent_ids = tuple(f"sub_{i}" for i in range(config.total_subagents))
        self._prompts: dict[tuple[str, str, str], tuple[ReadOnlyDict, int]] = {}
        self.task: Task | None = None
        self.states: dict[str, AgentState] = {}
        self.live: list[AgentState] = []
        self.delegations: list[Delegation] = []
        self.done = False

    # ---------------------------------------------------------------- episode lifecycle

    def reset(self, task: Task) -> None:
        """Start an episode on ``task``: only the lead exists, with the system prompt and query."""
        self.task = task
        self.kind = task_kind(task)
        self.lang = language_key(task.language)
        self.texts = TEXTS[self.lang]
        self.done = False
        self.end_reason: str | None = None
        self.response: str | None = None
        self.score: Any = None
        self.explanation: dict[str, Any] | None = None
        self.reward = 0.0
        self.reward_terms: RewardTerms | None = None
        self.delegations = []
        lead = AgentState("lead", self.lead_role, None, self.role_tools[self.lead_role],
                          self.config.lead_max_turns)
        self._append_system(lead)
        self._append(lead, "user", self.profile.first_user(self.lead_role, task.query, "",
                                                           lead.max_turns))
        self.states = {"lead": lead}
        self.live = [lead]

    def step(self, actions: Mapping[str, Any]) -> list[str]:
        """Play one round; return the ids of the subagents it started."""
        if self.task is None:
            raise RuntimeError("step() called before reset(); call reset() first")
        if self.done:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        self._check_ids(actions)
        acting = [st for st in self.live if st.needs_action and actions.get(st.agent_id) is not None]
        if not acting:
            if self.lead_role == "single":
                raise ValueError("step() got no action (None); give the agent's completion text "
                                 "or a tool call")
            waiting = [st.agent_id for st in self.live if st.needs_action]
            raise ValueError(f"step() got no action for any agent that needs one (waiting: {waiting})")

        calls: list[tuple[AgentState, str, tuple[Any, ...]]] = []
        errors: list[tuple[AgentState, str]] = []
        spawned: list[str] = []
        for st in acting:
            parsed, content = self._read(actions[st.agent_id])
            st.turns += 1
            st.max_response_tokens = max(st.max_response_tokens, self._append(st, "assistant", content))
            if st.context_tokens >= self.config.max_context_tokens:  # the reply was cut by the budget
                self._finish(st, "context", None)
                continue
            if isinstance(parsed, FinalMessage):
                self._finish(st, "final", parsed.text)
                continue
            items: tuple[Any, ...] = ()
            if isinstance(parsed, ToolCall):
                parsed, items = self._validate(st, parsed)
            if isinstance(parsed, FormatError) and self.profile.bad_call_is_final:
                st.format_errors += 1  # the paper's rule: a call it cannot read is no call
                self._finish(st, "final", strip_think(content))
                continue
            if st.turns >= st.max_turns:  # a call on the last turn could never be read: stop here
                if isinstance(parsed, FormatError):
                    st.format_errors += 1
                self._finish(st, "turns", None)
            elif isinstance(parsed, FormatError):
                st.format_errors += 1
                errors.append((st, parsed.reason))
            elif parsed.name == "delegate":
                st.tool_calls["delegate"] += 1
                spawned += self._delegate(st, items)
            else:
                st.tool_calls[parsed.name] += 1
                calls.append((st, parsed.name, items))

        results = self.runner.run([(name, items) for _, name, items in calls])
        for (st, name, _), (text, n_errors) in zip(calls, results):
            st.tool_errors += n_errors
            self._reply(st, name, text)
        for st, reason in errors:
            self._reply(st, "error", f"Error: {reason}")
        self._deliver_reports()
        if self.states["lead"].finished:
            self._end_episode()
        self.live = [st for st in self.live if not st.finished]
        return spawned

    # ---------------------------------------------------------------- one agent's turn

    def _check_ids(self, actions: Mapping[str, Any]) -> None:
        """Raise for programmer errors before anything changes, so a bad call leaves no trace."""
        for agent_id, action in actions.items():
            if action is not None and not isinstance(action, (str, Mapping, ToolCall, FinalMessage)):
                who = "the agent" if self.lead_role == "single" else repr(agent_id)
                raise TypeError(f"action of {who}: an action is a str (completion text) or a "
                                f'mapping {{"name": ..., "arguments": {{...}}}}, got '
                                f"{type(action).__name__}")
            st = self.states.get(agent_id)
            if st is not None:
                if st.finished:
                    raise ValueError(f"agent {agent_id!r} already finished ({st.end_reason}); "
                                     "a finished agent never acts again")
            elif agent_id in self.subagent_ids:
                raise ValueError(f"agent {agent_id!r} has not been started in this episode")
            else:
                n = len(self.subagent_ids)
                names = "lead" + (f", sub_0 … sub_{n - 1}" if n else "")
                raise ValueError(f"unknown agent {agent_id!r}; the agents are {names}")

    def _read(self, action: Any) -> tuple[FinalMessage | FormatError | ToolCall, str]:
        """Parse an action; return it with the text that goes into the transcript."""
        if isinstance(action, str):
            return self.profile.parse(action), action
        if isinstance(action, (Mapping, ToolCall)):
            parsed = parse_structured(action)
            if isinstance(parsed, ToolCall):
                return parsed, format_tool_call(parsed.name, parsed.arguments)
            return parsed, repr(dict(action)) if isinstance(action, Mapping) else repr(action)
        assert isinstance(action, FinalMessage)  # _check_ids let nothing else through
        return action, action.text

    def _validate(self, st: AgentState, call: ToolCall) -> tuple[ToolCall | FormatError, tuple[Any, ...]]:
        """The call under the internal tool name with its items, or why it cannot run."""
        read = self.profile.read_call(call, st.tools, st.role, self.max_items)
        if isinstance(read, FormatError):
            return read, ()
        tool, items = read
        if tool == "delegate":
            left = len(self.subagent_ids) - self._n_started()
            if len(items) > left and self.profile.bad_call_is_final and left > 0:
                items = items[:left]  # the paper's rule: entries beyond the limit are dropped
            elif len(items) > left:
                return FormatError("arguments", f"{call.name}: too many subtasks ({len(items)}); "
                                   f"only {left} subagent(s) are left in this episode."), ()
        return ToolCall(tool, call.arguments), items

    def _delegate(self, lead: AgentState, subtasks: tuple[str, ...]) -> list[str]:
        start = self._n_started()
        ids = self.subagent_ids[start : start + len(subtasks)]
        index = len(self.delegations)
        self.delegations.append(Delegation(index, lead.turns, subtasks, ids, set(ids)))
        for agent_id, subtask in zip(ids, subtasks):
            sub = AgentState(agent_id, "subagent", "lead", self.role_tools["subagent"],
                             self.config.subagent_max_turns, index, subtask)
            self._append_system(sub)
            assert self.task is not None
            self._append(sub, "user", self.profile.first_user("subagent", subtask, self.task.query,
                                                              sub.max_turns))
            self.states[agent_id] = sub
            self.live.append(sub)
            if sub.context_tokens >= self.config.max_context_tokens:  # no room to write anything
                self._finish(sub, "context", None)
        lead.needs_action = False
        lead.status = "blocked"
        return list(ids)

    def _n_started(self) -> int:
        return len(self.states) - 1

    def _reply(self, st: AgentState, name: str, text: str) -> None:
        """Append a tool message; fail the agent if it no longer fits its context budget."""
        text += self.profile.tool_tail(st.turns + 1, st.max_turns, self.texts["last_turn"])
        shown = self.profile.tool_name(name) if name in ("delegate", "search", "access") else name
        self._append(st, "tool", text, shown)
        if st.context_tokens >= self.config.max_context_tokens:  # no room left for a reply
            self._finish(st, "context", None)

    def _finish(self, st: AgentState, reason: str, report: str | None) -> None:
        st.needs_action = False
        st.end_reason = reason
        st.status = "done" if reason == "final" else "failed"
        if reason == "final":
            st.report = report
        if st.call_index is not None:
            self.delegations[st.call_index].pending.discard(st.agent_id)

    def _failure_text(self, st: AgentState) -> str:
        if st.end_reason == "turns":
            return self.texts["out_of_turns"].format(turns=st.max_turns)
        return self.texts["context"].format(used=st.context_tokens,
                                            limit=self.config.max_context_tokens)

    def _deliver_reports(self) -> None:
        """Give the lead one tool message once every subagent of its current call has finished."""
        lead = self.states["lead"]
        if lead.status != "blocked" or self.delegations[-1].pending:
            return
        deleg = self.delegations[-1]
        reports = []
        for i, (agent_id, subtask) in enumerate(zip(deleg.agents, deleg.subtasks), 1):
            sub = self.states[agent_id]
            done = sub.status == "done"
            reports.append(Report(i, agent_id, subtask, sub.turns,
                                  (sub.report or "") if done else None,
                                  "" if done else self._failure_text(sub)))
        lead.needs_action = True
        lead.status = "running"
        self._reply(lead, "delegate", self.profile.reports_text(reports, self.lang))

    # ---------------------------------------------------------------- messages and context

    def _append_system(self, st: AgentState) -> None:
        key = (st.role, self.lang, self.kind)
        if key not in self._prompts:
            text = self.profile.system_prompt(
                st.role, self.task.language if self.task else "en", self.kind,
                tools=self.schemas[st.role], max_turns=st.max_turns, width=self.config.width,
                tools_in_prompt=self.config.tools_in_prompt,
            )
            self._prompts[key] = (ReadOnlyDict(role="system", content=text),
                                  self.count_tokens(text) + MESSAGE_OVERHEAD_TOKENS)
        message, tokens = self._prompts[key]
        st.messages.append(message)
        if self.count_context is not None:
            st.context_tokens = self._counted(st)
        else:
            st.context_tokens += tokens

    def _append(self, st: AgentState, role: str, content: str, name: str | None = None) -> int:
        """Append a message; return the tokens it added (for a reply: the reply's length)."""
        msg = ReadOnlyDict(role=role, content=content) if name is None else \
            ReadOnlyDict(role=role, name=name, content=content)
        st.messages.append(msg)
        if self.count_context is not None:
            before, st.context_tokens = st.context_tokens, self._counted(st)
            return st.context_tokens - before
        added = self.count_tokens(content)
        st.context_tokens += added + MESSAGE_OVERHEAD_TOKENS
        return added

    def _counted(self, st: AgentState) -> int:
        assert self.count_context is not None
        tools = () if self.config.tools_in_prompt else self.schemas[st.role]
        return int(self.count_context(st.messages, tools))

    # ---------------------------------------------------------------- the end

    def _end_episode(self) -> None:
        from wideseek_env.scoring.scorer import score_response

        lead = self.states["lead"]
        for st in self.live:
            if not st.finished:  # cannot happen while the lead waits for its subagents; be safe
                self._finish(st, "turns", None)
        self.done = True
        self.end_reason = "answer" if lead.end_reason == "final" else lead.end_reason
        self.response = lead.report if lead.end_reason == "final" else \
            self._last_answer(lead, "\\boxed{" if self.kind == "qa" else "|")
        assert self.task is not None
        answer = self.profile.answer_text(self.response or "", self.kind)
        metric = self.config.reward_metric
        if self.kind == "qa":
            from wideseek_env.scoring.qa import score_qa

            self.score = score_qa(self.task, answer, judge=self.judge)  # type: ignore[arg-type]
            metric = self.config.qa_reward_metric
        elif self.config.explain_score:
            from wideseek_env.scoring.explain import explain_response

            self.score, explanation = explain_response(self.task, answer, self.judge)
            self.explanation = explanation.as_dict()
        else:
            self.score = score_response(self.task, answer, judge=self.judge)
        states = self.states.values()
        facts = EpisodeFacts(
            answer_score=float(getattr(self.score, metric)),
            format_ok=bool(self.score.parse_ok), lead_failed=lead.end_reason != "final",
            access_calls=sum(st.tool_calls.get("access", 0) for st in states),
            max_response_tokens=max(st.max_response_tokens for st in states),
            format_errors=sum(st.format_errors for st in states))
        self.reward_terms = episode_reward(
            self.config.reward, facts, weights=self.config.paper_reward,
            format_error_penalty=self.config.format_error_penalty)
        self.reward = self.reward_terms.reward

    @staticmethod
    def _last_answer(lead: AgentState, mark: str) -> str:
        """What a lead that ran out of budget is scored on: its latest message holding a table
        (``mark`` "|" starting a line) or a box (``mark`` ``\\boxed{``)."""
        for msg in reversed(lead.messages):
            if msg["role"] == "assistant":
                text = strip_think(msg["content"])
                if mark == "|" and any(line.lstrip().startswith("|") for line in text.splitlines()):
                    return text
                if mark != "|" and mark in text:
                    return text
        return ""

    # ---------------------------------------------------------------- read-outs

    def info(self, st: AgentState) -> dict[str, Any]:
        """The per-agent ``infos`` entry (fresh dict; the lead's final one carries the score)."""
        out: dict[str, Any] = {
            "role": st.role, "parent": st.parent, "needs_action": st.needs_action,
            "status": st.status, "end_reason": st.end_reason, "turns": st.turns,
            "max_turns": st.max_turns, "tool_calls": dict(st.tool_calls),
            "format_errors": st.format_errors, "tool_errors": st.tool_errors,
            "context_tokens": st.context_tokens,
            "max_context_tokens": self.config.max_context_tokens,
        }
        if st.parent is not None:
            out["delegation"] = st.call_index
        if st.parent is None and self.done:
            out.update(self.summary())
        return out

    def summary(self) -> dict[str, Any]:
        """End-of-episode record: score fields, reward, subagents used, total and critical-path turns."""
        assert self.task is not None and self.score is not None
        record = self.score.as_dict()
        fields = ("correct", "exact_match", "token_f1", "parse_ok") if self.kind == "qa" else (
            "item_precision", "item_recall", "item_f1", "row_precision", "row_recall", "row_f1",
            "success", "parse_ok")
        out: dict[str, Any] = {k: record[k] for k in fields}
        lead = self.states["lead"]
        out.update(
            kind=self.kind, task_id=self.task.instance_id, episode_end=self.end_reason, reward=self.reward,
            score=record, subagents_used=self._n_started(),
            total_turns=sum(st.turns for st in self.states.values()),
            critical_path_turns=lead.turns + sum(
                max(self.states[a].turns for a in d.agents) for d in self.delegations),
            total_format_errors=sum(st.format_errors for st in self.states.values()),
            access_calls=sum(st.tool_calls.get("access", 0) for st in self.states.values()),
            max_response_tokens=max(st.max_response_tokens for st in self.states.values()),
        )
        if self.explanation is not None:
            out["score_explanation"] = self.explanation
        if self.config.reward == "paper" and self.reward_terms is not None:
            t = self.reward_terms
            out.update(reward_answer=t.answer, reward_format=t.format, reward_access=t.access,
                       reward_length=t.length)
        return out

    def tool_schemas(self, agent_or_role: str) -> list[Any]:
        """OpenAI ``tools`` list for a role (``lead``/``single``/``subagent``) or an agent id."""
        role = agent_or_role
        if agent_or_role == "lead":
            role = self.lead_role
        elif agent_or_role in self.subagent_ids:
            role = "subagent"
        if role not in self.schemas:
            raise ValueError(f"unknown agent or role {agent_or_role!r}; roles: {sorted(self.schemas)}")
        return list(self.schemas[role])
