"""The episode rewards the env can pay: the task's score, or WideSeek-R1's shaped `paper` reward.

Both are computed once, when the episode ends, from facts the episode engine already holds
(:class:`EpisodeFacts`): the score record, whether the lead ended with a final answer, how many
``access`` calls the episode made, the longest single-turn response in tokens and the format
errors. Choose with ``EnvConfig.reward``:

- ``"score"`` (default): the ``reward_metric`` field of the score record (item F1 by default),
  minus ``format_error_penalty`` per format error when that (non-paper) shaping is switched on.
- ``"paper"``: the reward of WideSeek-R1 (DESIGN.md §2.5), with the weights of
  :class:`PaperRewardWeights`::

      R = r_ans + 0.1·[format ok] + 0.05·[any access call] − 0.1·clip((L_max − 3000) / 2000, 0, 1)

  and R = 0 when the answer has no valid format or the lead failed (ran out of turns or context:
  the reference implementation pays such a rollout nothing even when an earlier table parses).
  ``r_ans`` is the ``reward_metric`` field (item F1 for tables, as in the paper). "Format ok" is
  the scorer's ``parse_ok``: a table was extracted and every required column is present.
  ``L_max`` is counted over every turn of every agent, in the env's tokens (exact when the env
  was given the policy's context counter, an estimate otherwise).

The terms are reported in the lead's final infos (``reward_answer``, ``reward_format``,
``reward_access``, ``reward_length``) so a learner can log each one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

RewardKind = Literal["score", "paper"]


@dataclass(frozen=True)
class PaperRewardWeights:
    """Weights of the `paper` reward (the reference configuration's values by default)."""

    format_bonus: float = 0.1
    """Paid when the answer parses with every required column (the reference's format_reward)."""
    access_bonus: float = 0.05
    """Paid when any agent made an ``access`` call (the reference's call_search_reward)."""
    length_penalty: float = 0.1
    """Largest length penalty (the reference's length_penalty)."""
    length_limit_tokens: int = 3000
    """No penalty while the longest single-turn response is at most this long (length_limit)."""
    max_length_limit_tokens: int = 5000
    """The full penalty is reached at this length (max_length_limit)."""

    def __post_init__(self) -> None:
        for name in ("format_bonus", "access_bonus", "length_penalty"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"PaperRewardWeights.{name} must be a finite number >= 0, "
                                 f"got {value!r}")
        if not 0 <= self.length_limit_tokens < self.max_length_limit_tokens:
            raise ValueError("PaperRewardWeights: need 0 <= length_limit_tokens < "
                             f"max_length_limit_tokens, got {self.length_limit_tokens} and "
                             f"{self.max_length_limit_tokens}")


@dataclass(frozen=True)
class EpisodeFacts:
    """What the reward of an ended episode is computed from."""

    answer_score: float
    """The ``reward_metric`` field of the score record (item F1 by default)."""
    format_ok: bool
    """The answer parsed as a table holding every required column (``parse_ok``)."""
    lead_failed: bool
    """The lead (or single agent) ran out of turns or context instead of answering."""
    access_calls: int
    """``access`` calls made by all agents of the episode."""
    max_response_tokens: int
    """The longest single-turn response of any agent, in tokens."""
    format_errors: int
    """Format errors of all agents of the episode."""


@dataclass(frozen=True)
class RewardTerms:
    """A reward and its parts (for the `score` reward only `answer` and `penalty` are used)."""

    reward: float
    answer: float
    format: float = 0.0
    access: float = 0.0
    length: float = 0.0
    """The (non-positive) length term."""
    penalty: float = 0.0
    """The (non-positive) per-format-error shaping of the `score` reward."""


def paper_reward(facts: EpisodeFacts, weights: PaperRewardWeights = PaperRewardWeights()) -> RewardTerms:
    """WideSeek-R1's reward of one rollout (0 with every term 0 for an invalid format or a
    failed lead)."""
    if not facts.format_ok or facts.lead_failed:
        return RewardTerms(0.0, 0.0)
    fmt = weights.format_bonus
    access = weights.access_bonus if facts.access_calls > 0 else 0.0
    span = weights.max_length_limit_tokens - weights.length_limit_tokens
    excess = (facts.max_response_tokens - weights.length_limit_tokens) / span
    length = -weights.length_penalty * min(max(excess, 0.0), 1.0)
    reward = facts.answer_score + fmt + access + length
    return RewardTerms(reward, facts.answer_score, fmt, access, length)


def score_reward(facts: EpisodeFacts, format_error_penalty: float = 0.0) -> RewardTerms:
    """The score itself, minus the optional per-format-error shaping."""
    penalty = -format_error_penalty * facts.format_errors if format_error_penalty else 0.0
    return RewardTerms(facts.answer_score + penalty, facts.answer_score, penalty=penalty)


def episode_reward(kind: RewardKind, facts: EpisodeFacts, *, weights: PaperRewardWeights,
                   format_error_penalty: float = 0.0) -> RewardTerms:
    """The reward `kind` of an ended episode."""
    if kind == "paper":
        return paper_reward(facts, weights)
    if kind == "score":
        return score_reward(facts, format_error_penalty)
    raise ValueError(f"unknown reward {kind!r}; choose 'score' or 'paper'")
