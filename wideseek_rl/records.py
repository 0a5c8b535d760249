"""Typed frozen records of a rollout: `Turn`, `AgentTrace`, `Episode`.

Token ids and log-probs are read-only numpy arrays (int32 / float32) rather than tuples: an
agent's turns are views into one buffer holding its whole context, so the turns of an agent with
a 32k-token context cost 32k × 4 bytes, not a copy per turn (which would grow quadratically).
Because of the arrays these records compare by identity; use `numpy.array_equal` on fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


def frozen_array(values: Any, dtype: type) -> np.ndarray:
    """A read-only 1-D numpy array of `values` (no copy when already the right dtype)."""
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D sequence, got shape {arr.shape}")
    if arr.flags.writeable:
        arr = arr.view()
        arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class Turn:
    """One generation of one agent: the exact prompt ids the engine saw, the completion ids it
    sampled and their sampling log-probs."""

    agent_id: str
    role: str
    prompt_ids: np.ndarray
    completion_ids: np.ndarray
    logprobs: np.ndarray
    finish_reason: str
    """"stop" (an end-of-turn token ended it, and is included) or "length"."""
    format_error: bool = False
    """The env counted this turn's action as a format error (its `format_errors` info went up);
    set by the rollout, used by `RolloutConfig.format_error_advantage`."""

    def __post_init__(self) -> None:
        if len(self.completion_ids) != len(self.logprobs):
            raise ValueError(
                f"turn of {self.agent_id}: {len(self.completion_ids)} completion ids but "
                f"{len(self.logprobs)} log-probs"
            )

    @property
    def n_generated(self) -> int:
        return len(self.completion_ids)


@dataclass(frozen=True, eq=False)
class AgentTrace:
    """All turns of one agent in one episode, and how the agent ended."""

    agent_id: str
    role: str
    turns: tuple[Turn, ...]
    failure: str | None = None
    """None, or why the env failed the agent (its `end_reason`, e.g. "context")."""

    @property
    def n_generated(self) -> int:
        return sum(t.n_generated for t in self.turns)


@dataclass(frozen=True)
class Credit:
    """What the turn selection of `wideseek_rl.credit` did to one episode."""

    case: Literal["all", "ok", "lead_failed", "invalid_format"]
    env_score: float
    """The reward the env paid, before the rule (the episode's `score` is the one trained on)."""
    failed_agents: int
    trained_turns: int
    dropped_turns: int


@dataclass(frozen=True, eq=False)
class Episode:
    """One episode of one task: its place in the batch, its score and every agent's turns."""

    task_id: str
    task_index: int
    """Position of the task in the step's task list."""
    group: int
    """Position of the episode inside its group (0 … G-1)."""
    seed: int
    """Seed the env was reset with."""
    score: float
    """The episode reward (what the advantages are computed from)."""
    agents: tuple[AgentTrace, ...]
    final_info: Mapping[str, Any] = field(default_factory=dict)
    """The reward agent's last `infos` entry (the env's score record lives here)."""
    env_steps: int = 0
    credit: Credit | None = None
    """How the turns were selected (None before `wideseek_rl.credit.assign_credit`)."""

    @property
    def n_generated(self) -> int:
        return sum(a.n_generated for a in self.agents)

    @property
    def n_turns(self) -> int:
        return sum(len(a.turns) for a in self.agents)
