"""WideSeek-v0: a lead agent fans a broad table-filling task out to parallel subagents.

## Description

The lead receives a WideSearch-shaped task ("list every X with columns A, B, C"), splits it into
subtasks and hands them to fresh subagents with ``delegate``. Subagents ``search`` and ``access``
pages of a world's corpus and reply with a report. When every subagent of a call has finished, the
lead gets one tool message with each subtask's result and either delegates again or answers with a
markdown table, which is scored against the gold table (WideSearch's item-level F1 by default).

## Agents

``possible_agents = ["lead", "sub_0", …, "sub_{M-1}"]``. Only ``lead`` exists after ``reset``.
A ``delegate`` call with k subtasks starts the next k unused ids (each id is used once per
episode); they appear in ``env.agents`` and in the returned dicts of that same step. An agent
leaves ``env.agents`` in the step where it finishes and never comes back.

While its subagents run, the lead is *blocked*: it stays in ``env.agents`` with
``infos["lead"]["needs_action"] = False`` and any action given for it is ignored. In each step
every agent with ``needs_action`` that is given an action acts; an agent given no action (absent
or ``None``) just waits, but a step in which no waiting agent acts raises ``ValueError``.

## Actions

The agent's raw completion text (``str``). Exactly one
``<tool_call>{"name": …, "arguments": {…}}</tool_call>`` makes it a tool call; none makes it the
agent's final message (a subagent's report, the lead's answer). ``<think>…</think>`` is ignored
and stripped from whatever passes between agents. Non-LLM policies may instead pass a structured
call ``{"name": …, "arguments": {…}}``. Tools (JSON schemas from :meth:`WideSeekEnv.tool_schemas`):

- ``delegate(subtasks: list[str])``: lead only, at most ``width`` subtasks per call and
  ``max_subagents`` per episode.
- ``search(queries: list[str])``: up to ``max_queries_per_call`` queries, top ``search_top_k``
  results each.
- ``access(urls: list[str])``: up to ``max_urls_per_call`` pages, each cut to ``max_page_chars``.

A malformed action (bad JSON, several calls, unknown tool, wrong arguments, too many items) never
raises: the agent gets a tool message starting with ``Error:`` that says what was wrong, the turn
counts, and ``format_errors`` goes up. A backend ``SearchError`` (unknown URL, server down) is
reported the same way and counted in ``tool_errors``. Programmer errors raise: ``step`` before
``reset`` or after the end, an unknown agent id, an agent that finished or has not started, an
action that is neither ``str`` nor a mapping.

## Observations

An agent's own conversation so far, a ``list`` of OpenAI-shape messages: ``system`` (role prompt,
in the task's language, with the role's tool schemas when ``tools_in_prompt``), ``user`` (the task
for the lead, the subtask for a subagent), ``assistant`` (the exact text the agent wrote; a
structured action is written as its canonical ``<tool_call>`` text) and ``tool`` (``name`` = the
tool, ``content`` = its result or error). Observations are append-only: each step's list is a new
list whose prefix is the previous one. The message dicts are shared between steps and are
read-only (editing one raises ``TypeError``; copy with ``dict(m)``), so the env's record cannot
be corrupted by a caller. Every agent returned by a step gets its observation, blocked or not.

## Rewards

0.0 until the episode ends; then the lead receives the episode reward: with ``reward="score"``
(default) the task's score (``reward_metric`` of the score record, item F1 by default, minus
``format_error_penalty`` per format error when that shaping is switched on); with
``reward="paper"`` WideSeek-R1's shaped reward (:mod:`~wideseek_env.env.rewards`: format, access
and length terms, 0 for an invalid format or a failed lead). Subagents' rewards are always 0.0:
credit assignment is the learner's job.

## Termination and truncation

A final message terminates its agent. Running out of turns, or a context that reaches
``max_context_tokens`` (after a tool result: no room for a reply; after its own reply: the reply
was cut by the budget; a subagent's first prompt), truncates it; a tool call written on an agent's last
turn is not run (nobody could read its result). A subagent that ends either way is reported to
the lead (its report, or "failed: ran out of turns / exceeded context window"). The lead's final
message ends the episode (lead terminated); a lead that runs out of turns or context ends it by
truncation and is scored on its latest message that holds a table (empty answer if none). When
one turn is left, the tool message says so.

## Infos

Each returned agent has: ``role`` (lead/subagent), ``parent`` (None or "lead"),
``needs_action``, ``status`` (running/blocked/done/failed), ``end_reason`` (None, final, turns,
context), ``turns``, ``max_turns``, ``tool_calls`` (count by tool name), ``format_errors``,
``tool_errors``, ``context_tokens``, ``max_context_tokens``, and for subagents ``delegation``
(index of the delegate call that started it). The lead's info of the final step adds
``item_precision/recall/f1``, ``row_precision/recall/f1``, ``success``, ``parse_ok``,
``score`` (the full score record as a dict), ``reward``, ``kind`` (table or qa), ``task_id``, ``episode_end``
(answer/turns/context), ``subagents_used``, ``total_turns``, ``critical_path_turns`` (lead turns
plus, per delegate call, the most turns any of its subagents took: the rounds parallelism leaves),
``total_format_errors``, ``access_calls`` and ``max_response_tokens`` (the longest single reply);
with ``reward="paper"`` also ``reward_answer``, ``reward_format``, ``reward_access`` and
``reward_length``; with ``explain_score=True`` also ``score_explanation`` (which gold rows and
cells were matched, and why; :mod:`wideseek_env.scoring.explain`). Nothing depends on wall-clock
time.

## Arguments

``world`` (a World, a path to one, or None for the embedded default world), ``split`` (the
world's task split: ``"test"`` by default, as ``wideseek eval`` uses; pass ``split="train"`` to
train), ``tasks`` and ``backend`` (override the world's), ``judge`` (passed to the scorer for ``llm_judge``
columns), ``token_counter`` (``str -> int``; default
:func:`~wideseek_env.env.config.approx_token_count`; each message costs its content plus 4
tokens), ``context_counter`` (``(messages, tools) -> int``: a policy's exact count of a whole
conversation as its engine sees it, replacing ``token_counter`` for budgets), ``render_mode`` ("human" prints, "ansi" returns the text), and every budget of
:class:`~wideseek_env.env.config.EnvConfig` as a keyword (``width``, ``max_subagents``,
``lead_max_turns``, ``subagent_max_turns``, ``max_context_tokens``, ``lead_tools``, …), or a whole
``config=EnvConfig(...)``.

## Version history

- v0: initial release.
- v0, issue 12: an agent is ended as "context" when it has no room left for a reply (``>=``
  instead of ``>``), when its own reply reaches the budget, or (a subagent) at start; the
  ``"paper"`` reward; ``context_counter``. Episodes that stay inside their budgets are unchanged.
- v0, issue 13: ``interface="paper"`` (WideSeek-R1's tools, limits, texts and answer formats,
  :mod:`~wideseek_env.env.profiles`; registered as ``WideSeek-Paper-v0``), ``reader=`` (access
  summaries), QA tasks (:class:`~wideseek_env.qa.QATask`; the lead's final info then holds
  ``correct``, ``exact_match``, ``token_f1`` and ``parse_ok`` instead of the table fields) and
  ``kind`` in the lead's final info. Under the default interface nothing else changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from wideseek_env.env.config import EnvConfig
from wideseek_env.env.core import AgentState, ContextCounter, Engine
from wideseek_env.env.render import TranscriptViews
from wideseek_env.env.sources import pick_task, resolve_sources
from wideseek_env.env.spaces import ActionSpace, ConversationSpace
from wideseek_env.search.base import SearchBackend
from wideseek_env.tasks import Task


class WideSeekEnv(TranscriptViews, ParallelEnv):
    """Lead + N subagents as a PettingZoo ``ParallelEnv`` (see the module docstring)."""

    metadata: ClassVar[dict[str, Any]] = {"name": "wideseek_v0", "render_modes": ["human", "ansi"], "is_parallelizable": True}

    def __init__(
        self,
        *,
        world: Any = None,
        split: str = "test",
        tasks: Sequence[Task] | None = None,
        backend: SearchBackend | None = None,
        judge: Any = None,
        token_counter: Callable[[str], int] | None = None,
        context_counter: ContextCounter | None = None,
        render_mode: str | None = None,
        config: EnvConfig | None = None,
        reader: Any = None,
        **budgets: Any,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None")
        if config is not None and budgets:
            raise TypeError("pass either config= or budget keywords, not both")
        self.config = config or EnvConfig(**budgets)
        self.render_mode = render_mode
        self.tasks, backend = resolve_sources(world, split, tasks, backend)
        self._engine = Engine(self.config, backend, judge=judge, token_counter=token_counter,
                              context_counter=context_counter, reader=reader)
        self.possible_agents = ["lead", *self._engine.subagent_ids]
        self.agents: list[str] = []
        self._obs_space = ConversationSpace()
        eng = self._engine
        self._action_spaces = {
            a: ActionSpace(eng.lead_role if a == "lead" else "subagent",
                           eng.role_tools[eng.lead_role if a == "lead" else "subagent"],
                           max_items=eng.max_items, profile=eng.profile)
            for a in self.possible_agents
        }
        self.observation_spaces = dict.fromkeys(self.possible_agents, self._obs_space)
        self.action_spaces = dict(self._action_spaces)
        self._rng = None
        self._space_seed = 0
        self._unseeded: set[str] = set()

    # ---------------------------------------------------------------- PettingZoo API

    def observation_space(self, agent: str) -> ConversationSpace:
        self._space_check(agent)
        return self._obs_space

    def action_space(self, agent: str) -> ActionSpace:
        self._space_check(agent)
        space = self._action_spaces[agent]
        if agent in self._unseeded:  # seeded on first use: a seeded reset stays cheap at width 16
            self._unseeded.discard(agent)
            space.seed(self._space_seed + self.possible_agents.index(agent))
        return space

    def _space_check(self, agent: str) -> None:
        if agent not in self._action_spaces:
            raise ValueError(f"unknown agent {agent!r}; possible agents: {self.possible_agents[:3]}…")

    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, list], dict[str, dict[str, Any]]]:
        """Start an episode; return observations and infos of ``["lead"]``.

        The task is drawn from the env's generator, seeded by ``seed`` (which also seeds every
        agent's action space with ``seed + index``, so sampled random actions replay too).
        ``options`` may name the task: ``{"task": Task}``, ``{"task_id": str}`` or
        ``{"task_index": int}``; other keys are ignored (PettingZoo's API test passes some).
        """
        if seed is not None:
            self._rng, _ = seeding.np_random(seed)
            self._space_seed = seed
            self._unseeded = set(self.possible_agents)
        elif self._rng is None:
            self._rng, _ = seeding.np_random()
        index = int(self._rng.integers(len(self.tasks)))
        self._engine.reset(pick_task(self.tasks, options, index))
        self.agents = ["lead"]
        lead = self._engine.states["lead"]
        return {"lead": list(lead.messages)}, {"lead": self._engine.info(lead)}

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """One round: every waiting agent given an action acts; see the module docstring."""
        before = list(self._engine.live)
        spawned = self._engine.step(actions)
        states = self._engine.states
        present: list[AgentState] = before + [states[a] for a in spawned]
        obs, rewards, terms, truncs, infos = {}, {}, {}, {}, {}
        for st in present:
            a = st.agent_id
            obs[a] = list(st.messages)
            rewards[a] = 0.0
            terms[a] = st.end_reason == "final"
            truncs[a] = st.end_reason in ("turns", "context")
            infos[a] = self._engine.info(st)
        if self._engine.done:
            rewards["lead"] = self._engine.reward
        self.agents = [st.agent_id for st in self._engine.live]
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terms, truncs, infos

    # ---------------------------------------------------------------- extras

    def tool_schemas(self, agent_or_role: str) -> list[Any]:
        """OpenAI ``tools`` list (read-only dicts) for ``lead``, ``subagent`` or an agent id."""
        return self._engine.tool_schemas(agent_or_role)


def parallel_env(**kwargs: Any) -> WideSeekEnv:
    """PettingZoo's module-level constructor convention: ``WideSeekEnv(**kwargs)``."""
    return WideSeekEnv(**kwargs)
