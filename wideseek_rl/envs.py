"""Environment specs: how the trainer builds envs and lists their tasks.

The trainer needs two things from an environment: `make(split, tokenizer)` → a PettingZoo
ParallelEnv following the WideSeek text conventions, and `task_options(split)` → the reset
options of every task of a split (`{"task_id": …}`). Any object with those two methods works
with `wideseek_rl.train.train`. A `make` that also takes the keywords `context_counter` and
`max_context_tokens` gets the policy's exact context counter and budget (`make_env`), so the env
and the engine count every context alike. The frozen dataclasses here are the ones the command
line offers: the keyword toy, WideSeek (lead + subagents) and SingleSeek (one agent with search
and access: the paper's single-agent baseline, trained by the same learner). The WideSeek env is
imported lazily so the toy setup never loads worlds or indexes.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from wideseek_env.env.config import EnvConfig


@runtime_checkable
class EnvSpec(Protocol):
    """What the trainer asks of an environment."""

    def make(self, split: str, tokenizer: Any) -> Any:
        """A fresh ParallelEnv whose tasks are those of `split`."""
        ...

    def task_options(self, split: str) -> list[dict[str, Any]]:
        """Reset options of every task of `split`, in a fixed order."""
        ...


def make_env(spec: Any, split: str, tokenizer: Any, policy: Any = None) -> Any:
    """`spec.make(split, tokenizer)`, with `policy.count_context` and its budget when the spec's
    `make` takes them."""
    params = inspect.signature(spec.make).parameters
    kwargs: dict[str, Any] = {}
    if policy is not None and "context_counter" in params:
        kwargs["context_counter"] = policy.count_context
    if policy is not None and "max_context_tokens" in params:
        kwargs["max_context_tokens"] = policy.max_context_tokens
    return spec.make(split, tokenizer, **kwargs)


@dataclass(frozen=True)
class ToyEnvSpec:
    """KeywordRelay-v0 (`wideseek_env.env.keyword_relay`): the lead must get its helpers to say a word."""

    width: int = 2
    """Helpers per delegation."""
    keywords: tuple[str, ...] | None = None
    """One task per keyword (None: the 16 built-in keywords)."""
    scoring: Literal["word", "reply"] = "word"
    """Score a helper on its best-matching word, or on its whole reply."""
    lenient: bool = True
    """Any lead text counts as the delegated task (a tiny model cannot write JSON yet)."""
    max_context_chars: int = 100_000
    """Context budget of an agent, in characters."""

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"env.width must be >= 1, got {self.width}")
        if self.max_context_chars < 1:
            raise ValueError(f"env.max-context-chars must be >= 1, got {self.max_context_chars}")
        if self.keywords is not None and (
                not self.keywords or any(not k.isalpha() or not k.islower() for k in self.keywords)):
            raise ValueError(f"env.keywords must be lower-case words, got {self.keywords!r}")

    def make(self, split: str, tokenizer: Any = None) -> Any:
        from wideseek_env.env.keyword_relay import KeywordRelayEnv

        return KeywordRelayEnv(width=self.width, keywords=self._keywords(), scoring=self.scoring,
                               lenient=self.lenient, max_context_chars=self.max_context_chars)

    def task_options(self, split: str) -> list[dict[str, Any]]:
        return [{"task_id": f"relay-{k}"} for k in self._keywords()]  # the same for every split

    def _keywords(self) -> tuple[str, ...]:
        from wideseek_env.env.keyword_relay import KEYWORDS

        return KEYWORDS if self.keywords is None else tuple(self.keywords)


@dataclass(frozen=True)
class WideSeekEnvSpec:
    """WideSeekEnv over a built world (the embedded default world when `world` is None), or over
    task files (`train_tasks`, `eval_tasks`) with a world or a search server as the corpus."""

    world: str | None = None
    """Path of a built world, or 'default' / 'default-easy' (the default world's tiers, built
    once into the cache); None means 'default'."""
    train_split: str = "train"
    """Split whose tasks are trained on."""
    eval_split: str = "test"
    """Split whose tasks are evaluated."""
    task_set: Literal["width", "depth", "hybrid"] = "width"
    """The world's tasks: width (tables), depth (QA) or hybrid (both)."""
    depth_share: float | None = None
    """Share of QA tasks in the training stream (0..1; tasks of both kinds are drawn without
    repeats to reach it); None: every task of the task set or file as it comes."""
    train_tasks: str | None = None
    """A task file to train on instead of the world's split (any format of
    `wideseek_env.taskfiles`: WideSearch, WideSeek-R1's width/depth/hybrid/test records)."""
    eval_tasks: str | None = None
    """A task file to evaluate on instead of the world's split."""
    search_url: str | None = None
    """A retrieval server (`wideseek serve-search` or Search-R1-style) as the corpus instead of
    the world's local index."""
    search_coalesce: bool = True
    """Send the searches that concurrent rollouts make at the same time to `search_url` as one
    request (see `wideseek_env.search.coalesce`); False: one request per search call."""
    seed: int = 0
    """Seed of the hybrid mix (`depth_share`)."""
    judge_url: str | None = None
    """An OpenAI-compatible judge: QA answers are rewarded by its correct/incorrect verdict and
    `llm_judge` columns by its cell scores (without one: exact match)."""
    judge_model: str | None = None
    """The judge's model name."""
    judge_api_key_env: str | None = None
    """Environment variable holding the judge's bearer token."""
    reader_url: str | None = None
    """An OpenAI-compatible reader: `access` returns its summary of each page for
    `info_to_extract` (needs `config.interface = "paper"`); None: raw page text."""
    reader_model: str | None = None
    """The reader's model name."""
    reader_api_key_env: str | None = None
    """Environment variable holding the reader's bearer token."""
    config: EnvConfig = field(default_factory=EnvConfig)
    """Budgets and switches of the env (width, turns, context, tools, reward)."""
    train_widths: tuple[int, ...] = ()
    """Train at several widths: each training task plays at one of these (the same one every
    time it is drawn; the widths take turns over a permutation of the tasks seeded by `seed`, so
    each gets an equal share), in a `WidthMixEnv`. Evaluation stays at `config.width`. Empty:
    every task at `config.width`."""
    token_counter: Literal["tokenizer", "approx"] = "tokenizer"
    """Count context tokens exactly as the engine sees them (the policy's chat template and
    tokenizer), or with the env's fast estimate."""

    def __post_init__(self) -> None:
        if self.depth_share is not None and not 0.0 <= self.depth_share <= 1.0:
            raise ValueError(f"env.depth-share must be within [0, 1], got {self.depth_share}")
        if self.depth_share is not None and self.train_tasks is None and \
                self.task_set != "hybrid":
            raise ValueError("env.depth-share mixes table and QA tasks: set env.task-set hybrid "
                             "(or give a hybrid env.train-tasks file)")
        for kind in ("judge", "reader"):
            if (getattr(self, f"{kind}_url") is None) != (getattr(self, f"{kind}_model") is None):
                raise ValueError(f"env.{kind}-url and env.{kind}-model go together")
        if len(set(self.train_widths)) != len(self.train_widths) or any(
                isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in self.train_widths):
            raise ValueError(f"env.train-widths must be distinct integers >= 1, got "
                             f"{list(self.train_widths)}")
        if self.train_widths and "delegate" not in self.config.lead_tools:
            raise ValueError("env.train-widths needs a lead that delegates (the width is the "
                             "number of subtasks per delegate call)")
        if self.reader_url is not None and self.config.interface != "paper":
            raise ValueError("env.reader-url needs env.config.interface paper (only the paper's "
                             "access calls say what to extract from a page)")

    def _world(self) -> Any:
        from wideseek_env.worlds import resolve_world

        return _load_world(str(resolve_world(self.world or "default")))

    def make(self, split: str, tokenizer: Any = None, *, context_counter: Any = None,
             max_context_tokens: int | None = None) -> Any:
        """The env of `split`. `context_counter` (the policy's `count_context`) makes its
        context counts exact; `max_context_tokens` replaces the config's budget (the trainer
        passes the engine's, so both stop an agent at the same length)."""
        from wideseek_env.env.parallel import WideSeekEnv

        counter = None
        if self.token_counter == "tokenizer" and tokenizer is not None:
            def counter(text: str) -> int:
                return len(tokenizer.encode(text, add_special_tokens=False))
        config = self.config
        if max_context_tokens is not None:
            config = replace(config, max_context_tokens=max_context_tokens)

        def make(width: int) -> Any:
            return WideSeekEnv(tasks=_spec_tasks(self, split), backend=self._backend(),
                               config=replace(config, width=width), token_counter=counter,
                               context_counter=context_counter
                               if self.token_counter == "tokenizer" else None,
                               judge=_judge(self), reader=_reader(self))

        if split == "train" and self.train_widths:
            from wideseek_env.env.width_mix import WidthMixEnv

            return WidthMixEnv(self.train_widths, make)
        return make(config.width)

    def task_options(self, split: str) -> list[dict[str, Any]]:
        tasks = _spec_tasks(self, split)
        if self.depth_share is not None and split == "train":
            from wideseek_env.taskfiles import mix_tasks, split_by_kind

            tasks = tuple(mix_tasks(*split_by_kind(list(tasks)), self.depth_share, self.seed))
        options = [{"task_id": t.instance_id} for t in tasks]
        if split == "train" and self.train_widths:
            order = np.random.default_rng([self.seed, 7]).permutation(len(options))
            for rank, i in enumerate(order):
                options[i]["width"] = self.train_widths[rank % len(self.train_widths)]
        return options

    def _backend(self) -> Any:
        if self.search_url:
            return _http_backend(self.search_url, self.search_coalesce)
        return self._world().backend()

    def _split(self, split: str) -> str:
        return {"train": self.train_split, "eval": self.eval_split}.get(split, split)


SINGLE_SEEK_CONFIG = EnvConfig(lead_tools=("search", "access"), subagent_tools=(),
                               lead_max_turns=50)


@dataclass(frozen=True)
class SingleSeekEnvSpec(WideSeekEnvSpec):
    """SingleSeek: one agent with search and access (50 turns), the paper's single-agent
    baseline (SingleSeek-R1), on the same worlds, tools, scorer and reward as WideSeek."""

    config: EnvConfig = SINGLE_SEEK_CONFIG
    """Budgets and switches of the env; the lead (the single agent) has no delegate tool."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if "delegate" in self.config.lead_tools:
            raise ValueError("SingleSeekEnvSpec: the single agent cannot delegate (drop "
                             "'delegate' from env.config.lead-tools, or use the WideSeek env)")


@functools.lru_cache(maxsize=16)
def _spec_tasks(spec: WideSeekEnvSpec, split: str) -> tuple[Any, ...]:
    """The tasks of `split` of a spec (from its task file or its world), read once."""
    path = spec.train_tasks if split == "train" else spec.eval_tasks if split == "eval" else None
    if path is not None:
        from wideseek_env.taskfiles import load_task_file

        return tuple(load_task_file(path))
    try:
        return tuple(spec._world().tasks(spec._split(split), task_set=spec.task_set))
    except FileNotFoundError as err:  # a world without QA sets: a setting that cannot work
        from wideseek_rl.config import ConfigError

        raise ConfigError(f"env.task-set {spec.task_set}: {err}") from None


def _judge(spec: WideSeekEnvSpec) -> Any:
    if spec.judge_url is None:
        return None
    import os

    from wideseek_env.scoring.judge import OpenAIJudge

    key = os.environ.get(spec.judge_api_key_env) if spec.judge_api_key_env else None
    return OpenAIJudge(spec.judge_url, str(spec.judge_model), api_key=key or None)


def _reader(spec: WideSeekEnvSpec) -> Any:
    if spec.reader_url is None:
        return None
    from wideseek_env.search.reader import PageReader

    return PageReader(spec.reader_url, str(spec.reader_model), api_key_env=spec.reader_api_key_env)


@functools.lru_cache(maxsize=8)
def _http_backend(url: str, coalesce: bool = True) -> Any:
    from wideseek_env.search.http import HttpSearchBackend

    return HttpSearchBackend(url, coalesce=coalesce)


@functools.lru_cache(maxsize=8)
def _load_world(path: str) -> Any:
    """One `World` per path and process, shared by every env (its search backend is opened
    once and is safe to share between envs)."""
    from wideseek_env.worlds import World

    return World.load(path)
