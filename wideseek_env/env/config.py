"""Budgets and switches of the env (one frozen record), the default token counter, and presets.

The presets are the same env with different keyword arguments (MiniGrid's habit): the paper's
budgets at widths 1, 2, 4, 8, 10 and 16, and a variant where the lead may also search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wideseek_env.env.rewards import PaperRewardWeights, RewardKind

Interface = Literal["wideseek", "paper"]
INTERFACES: tuple[Interface, ...] = ("wideseek", "paper")

RewardMetric = Literal[
    "item_f1", "item_precision", "item_recall", "row_f1", "row_precision", "row_recall", "success"
]
QARewardMetric = Literal["correct", "exact_match", "token_f1"]

#: Tokens charged per message on top of its content: role markers and separators of a chat template.
MESSAGE_OVERHEAD_TOKENS = 4


def approx_token_count(text: str) -> int:
    """A tokenizer-free estimate of a text's token count: one token per 4 ASCII characters plus
    one per non-ASCII character (CJK text is close to one token per character in common
    tokenizers). Exact enough for a budget, and a few microseconds even for a 25k-character page.
    """
    n = len(text)
    if text.isascii():
        return (n + 3) // 4
    non_ascii = n - len(text.encode("ascii", "ignore"))  # C speed, exact
    return (n - non_ascii + 3) // 4 + non_ascii


@dataclass(frozen=True)
class EnvConfig:
    """Every budget and switch of :class:`~wideseek_env.env.parallel.WideSeekEnv`."""

    width: int = 10
    """N: at most this many subagents per ``delegate`` call (the width being studied)."""
    max_subagents: int | None = None
    """M: at most this many subagents per episode; ``None`` = ``width * (lead_max_turns - 1)``,
    which never binds (the lead's last turn cannot delegate)."""
    lead_max_turns: int = 10
    """Turns of the lead; on running out, the episode is truncated and its final state scored."""
    subagent_max_turns: int = 20
    """Turns of each subagent; on running out, it fails and the lead is told."""
    max_context_tokens: int = 32_768
    """Context budget of every agent, counted by the env's token counter."""
    lead_tools: tuple[str, ...] = ("delegate",)
    """Tools of the lead; without ``delegate`` the lead is the single-agent baseline."""
    subagent_tools: tuple[str, ...] = ("search", "access")
    """Tools of the subagents."""
    max_queries_per_call: int = 5
    """``search``: queries per call."""
    search_top_k: int = 3
    """``search``: results per query."""
    max_urls_per_call: int = 5
    """``access``: URLs per call."""
    max_page_chars: int = 25_000
    """``access``: a page is cut to this many characters."""
    reward: RewardKind = "score"
    """The episode reward: ``"score"`` pays ``reward_metric`` (item F1 by default); ``"paper"``
    pays WideSeek-R1's shaped reward (format, access and length terms; see ``env/rewards.py``)."""
    reward_metric: RewardMetric = "item_f1"
    """Field of the score record paid as the reward (the answer term r_ans of ``"paper"``)."""
    paper_reward: PaperRewardWeights = field(default_factory=PaperRewardWeights)
    """Weights of the ``"paper"`` reward (the reference configuration's by default)."""
    format_error_penalty: float = 0.0
    """Shaping of the ``"score"`` reward (off by default, not the paper's): subtracted per
    format error in the episode."""
    qa_reward_metric: QARewardMetric = "correct"
    """Field of a QA task's score paid as r_ans: ``correct`` (the judge's verdict, exact match
    without a judge), ``exact_match`` or ``token_f1``."""
    interface: Interface = "wideseek"
    """What the agents see (``env/profiles.py``): ``wideseek`` (our tools and texts) or
    ``paper`` (WideSeek-R1's tool names, schemas, limits, texts, turn hints and answer formats)."""
    tools_in_prompt: bool = True
    """List the tools' JSON schemas and the call format in each system prompt."""
    tool_workers: int | None = None
    """Threads for reading pages; 0 or 1 reads inline; None = 16 for a remote backend (the HTTP
    client, or any backend with ``remote = True``), inline otherwise."""
    render_max_chars: int = 300
    """``render()`` shortens every message to this many characters."""
    explain_score: bool = False
    """Add the cell-level explanation of the score (``ScoreExplanation.as_dict()``, from the same
    scoring pass) to the lead's final infos as ``score_explanation``; eval traces turn it on."""

    def __post_init__(self) -> None:
        for name in ("width", "lead_max_turns", "subagent_max_turns", "max_context_tokens",
                     "max_queries_per_call", "search_top_k", "max_urls_per_call",
                     "max_page_chars", "render_max_chars"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"EnvConfig.{name} must be a positive int, got {value!r}")
        if self.tool_workers is not None and (
            not isinstance(self.tool_workers, int) or self.tool_workers < 0
        ):
            raise ValueError(f"EnvConfig.tool_workers must be None or an int >= 0, got {self.tool_workers!r}")
        if self.max_subagents is not None and (
            not isinstance(self.max_subagents, int) or self.max_subagents < 0
        ):
            raise ValueError(f"EnvConfig.max_subagents must be an int >= 0, got {self.max_subagents!r}")
        known = {"delegate", "search", "access"}
        for name in ("lead_tools", "subagent_tools"):
            tools = getattr(self, name)
            if isinstance(tools, str) or not all(t in known for t in tools):
                raise ValueError(f"EnvConfig.{name} must be a tuple of {sorted(known)}, got {tools!r}")
            object.__setattr__(self, name, tuple(tools))
        if "delegate" in self.subagent_tools:
            raise ValueError("EnvConfig.subagent_tools: subagents cannot delegate (no nesting)")
        if self.interface not in INTERFACES:
            raise ValueError(f"EnvConfig.interface must be one of {INTERFACES}, got {self.interface!r}")
        if self.qa_reward_metric not in QARewardMetric.__args__:
            raise ValueError(f"EnvConfig.qa_reward_metric must be one of {QARewardMetric.__args__}")
        if self.reward_metric not in RewardMetric.__args__:
            raise ValueError(f"EnvConfig.reward_metric must be one of {RewardMetric.__args__}")
        if self.reward not in RewardKind.__args__:
            raise ValueError(f"EnvConfig.reward must be one of {RewardKind.__args__}, got {self.reward!r}")
        if self.reward == "paper" and self.format_error_penalty:
            raise ValueError("EnvConfig.format_error_penalty shapes the 'score' reward only; the "
                             "'paper' reward has its own terms (paper_reward)")

    @property
    def total_subagents(self) -> int:
        """M, resolved: the number of subagent ids (``sub_0 … sub_{M-1}``)."""
        if "delegate" not in self.lead_tools:
            return 0
        if self.max_subagents is None:
            return self.width * max(1, self.lead_max_turns - 1)
        return self.max_subagents


PAPER_WIDTHS = (1, 2, 4, 8, 10, 16)

#: Registered presets: id suffix -> keyword arguments (registered as ``wideseek/<name>``).
PRESETS: dict[str, dict[str, object]] = {
    "WideSeek-v0": {},
    **{f"WideSeek-w{n}-v0": {"width": n} for n in PAPER_WIDTHS},
    "WideSeek-LeadSearch-v0": {"lead_tools": ("delegate", "search", "access")},
    "WideSeek-Paper-v0": {"interface": "paper"},
}
