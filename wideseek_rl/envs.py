"""Environment specs: how the trainer builds envs and lists their tasks.

The trainer needs two things from an environment: `make(split, tokenizer)` → a PettingZoo
ParallelEnv following the WideSeek text conventions, and `task_options(split)` → the reset
options of every task of a split (`{"task_id": …}`). Any object with those two methods works
with `wideseek_rl.train.train`; the two frozen dataclasses here are the ones the command line
offers. The WideSeek env is imported lazily so the toy setup never loads worlds or indexes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

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


@dataclass(frozen=True)
class ToyEnvSpec:
    """KeywordRelay-v0 (`wideseek_rl.toy_env`): the lead must get its helpers to say a word."""

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

    def make(self, split: str, tokenizer: Any = None) -> Any:
        from wideseek_rl.toy_env import KeywordRelayEnv

        return KeywordRelayEnv(width=self.width, keywords=self._keywords(), scoring=self.scoring,
                               lenient=self.lenient, max_context_chars=self.max_context_chars)

    def task_options(self, split: str) -> list[dict[str, Any]]:
        return [{"task_id": f"relay-{k}"} for k in self._keywords()]  # the same for every split

    def _keywords(self) -> tuple[str, ...]:
        from wideseek_rl.toy_env import KEYWORDS

        return KEYWORDS if self.keywords is None else tuple(self.keywords)


@dataclass(frozen=True)
class WideSeekEnvSpec:
    """WideSeekEnv over a built world (the embedded default world when `world` is None)."""

    world: str | None = None
    """Path of a built world, or 'default' / 'default-easy' (the default world's tiers, built
    once into the cache); None means 'default'."""
    train_split: str = "train"
    """Split whose tasks are trained on."""
    eval_split: str = "test"
    """Split whose tasks are evaluated."""
    config: EnvConfig = field(default_factory=EnvConfig)
    """Budgets and switches of the env (width, turns, context, tools, reward)."""
    token_counter: Literal["tokenizer", "approx"] = "tokenizer"
    """Count context tokens with the model's tokenizer, or with the env's fast estimate."""

    def _world(self) -> Any:
        from wideseek_env.worlds import resolve_world

        return _load_world(str(resolve_world(self.world or "default")))

    def make(self, split: str, tokenizer: Any = None) -> Any:
        from wideseek_env.env.parallel import WideSeekEnv

        counter = None
        if self.token_counter == "tokenizer" and tokenizer is not None:
            def counter(text: str) -> int:
                return len(tokenizer.encode(text, add_special_tokens=False))
        return WideSeekEnv(world=self._world(), split=self._split(split), config=self.config,
                           token_counter=counter)

    def task_options(self, split: str) -> list[dict[str, Any]]:
        return [{"task_id": t.instance_id} for t in self._world().tasks(self._split(split))]

    def _split(self, split: str) -> str:
        return {"train": self.train_split, "eval": self.eval_split}.get(split, split)


@functools.lru_cache(maxsize=8)
def _load_world(path: str) -> Any:
    """One `World` per path and process, shared by every env (its search backend is opened
    once and is safe to share between envs)."""
    from wideseek_env.worlds import World

    return World.load(path)
