"""WideSeek/SingleAgent-v0: one agent with ``search`` and ``access`` — the depth-scaling baseline.

## Description

The same tasks, tools, text protocol, budgets per call and scorer as
:class:`~wideseek_env.env.parallel.WideSeekEnv`, but no subagents: one agent searches, reads and
answers itself, with a larger turn budget. Comparing it with the multi-agent env at equal total
turns is the paper's depth-versus-width experiment.

## Agents

One. Internally it is the lead of the same episode engine, with the ``single`` role prompt.

## Actions

Completion text (or a structured call ``{"name": …, "arguments": {…}}``): one ``<tool_call>`` for
``search``/``access``, or a final message (the answer table). Malformed actions become ``Error:``
tool messages and are counted, as in the multi-agent env.

## Observations

The agent's conversation: a list of OpenAI-shape messages (read-only dicts, append-only), in a
:class:`~wideseek_env.env.spaces.ConversationSpace`.

## Rewards

0.0 per step; at the end the task's score (``reward_metric``, item F1 by default).

## Termination and truncation

The final message terminates the episode. Running out of turns (``max_turns``, default 50) or of
context (``max_context_tokens``) truncates it; the latest message with a table is then scored.

## Infos

``role`` ("single"), ``needs_action``, ``status``, ``end_reason``, ``turns``, ``max_turns``,
``tool_calls``, ``format_errors``, ``tool_errors``, ``context_tokens``, ``max_context_tokens``;
at the end the score fields, ``score``, ``reward``, ``task_id``, ``episode_end``,
``total_turns`` and ``critical_path_turns`` (both equal the agent's turns here); with
``explain_score=True`` also ``score_explanation``.

## Arguments

``max_turns`` (50), ``world``, ``split`` (``"test"`` by default; ``"train"`` to train), ``tasks``, ``backend``, ``judge``, ``token_counter``,
``render_mode``, and the tool and context budgets of
:class:`~wideseek_env.env.config.EnvConfig` (``max_context_tokens``, ``search_top_k``,
``max_page_chars``, …).

## Version history

- v0: initial release.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym

from wideseek_env.env.config import EnvConfig
from wideseek_env.env.core import ContextCounter, Engine
from wideseek_env.env.render import TranscriptViews
from wideseek_env.env.sources import pick_task, resolve_sources
from wideseek_env.env.spaces import ActionSpace, ConversationSpace
from wideseek_env.search.base import SearchBackend
from wideseek_env.tasks import Task

_NOT_FOR_SINGLE = ("width", "max_subagents", "lead_max_turns", "subagent_max_turns", "lead_tools",
                   "subagent_tools")


class WideSeekSingleAgentEnv(TranscriptViews, gym.Env[list, Any]):
    """One search agent as a Gymnasium ``Env`` (see the module docstring)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["human", "ansi"], "render_fps": 1}

    def __init__(
        self,
        *,
        max_turns: int = 50,
        world: Any = None,
        split: str = "test",
        tasks: Sequence[Task] | None = None,
        backend: SearchBackend | None = None,
        judge: Any = None,
        token_counter: Callable[[str], int] | None = None,
        context_counter: ContextCounter | None = None,
        render_mode: str | None = None,
        reader: Any = None,
        **budgets: Any,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None")
        bad = sorted(set(budgets) & set(_NOT_FOR_SINGLE))
        if bad:
            raise TypeError(f"WideSeekSingleAgentEnv does not take {bad} (use max_turns=)")
        self.config = EnvConfig(lead_max_turns=max_turns, lead_tools=("search", "access"),
                                subagent_tools=(), **budgets)
        self.render_mode = render_mode
        self.tasks, backend = resolve_sources(world, split, tasks, backend)
        self._engine = Engine(self.config, backend, judge=judge, token_counter=token_counter,
                              context_counter=context_counter, reader=reader)
        self.observation_space = ConversationSpace()
        self.action_space = ActionSpace("single", self.config.lead_tools,
                                        max_items=self._engine.max_items,
                                        profile=self._engine.profile)

    def reset(
        self, *, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[list, dict[str, Any]]:
        """Start an episode on a task drawn with the env's generator (or named in ``options``:
        ``task``, ``task_id`` or ``task_index``; other keys are ignored)."""
        super().reset(seed=seed)
        index = int(self.np_random.integers(len(self.tasks)))
        self._engine.reset(pick_task(self.tasks, options, index))
        lead = self._engine.states["lead"]
        return list(lead.messages), self._engine.info(lead)

    def step(self, action: Any) -> tuple[list, float, bool, bool, dict[str, Any]]:
        """One turn of the agent; see the module docstring."""
        self._engine.step({"lead": action})
        lead = self._engine.states["lead"]
        if self.render_mode == "human":
            self.render()
        return (list(lead.messages), self._engine.reward if self._engine.done else 0.0,
                lead.end_reason == "final", lead.end_reason in ("turns", "context"),
                self._engine.info(lead))

    def tool_schemas(self, agent_or_role: str = "single") -> list[Any]:
        """OpenAI ``tools`` list (read-only dicts) of the agent."""
        return self._engine.tool_schemas(agent_or_role)

