"""Shared fixtures of the learner tests: the tiny model, built once per session.

Torch runs single-threaded here: the tiny model gains nothing from a second thread, and on a
busy 2-core machine OpenMP threads spinning against other processes make it many times slower.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import pytest
import torch

from wideseek_rl.engines.base import Completion
from wideseek_rl.tiny import build_tiny_model

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen3 chat model directory (tokenizer + chat template), built locally."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def tiny_engine(tiny_model_dir: Path):
    """A fresh Hugging Face engine over the tiny model (its weights may be changed by a test)."""
    from wideseek_rl.engines.hf import HFEngine

    return HFEngine.from_pretrained(tiny_model_dir)


class ReplayEngine:
    """Answers call k with `script[k]` (a list of token-id lists, one per prompt)."""

    def __init__(self, script: Sequence[Sequence[Sequence[int]]], stop_ids: Sequence[int]):
        self.script = list(script)
        self.stop_ids = set(stop_ids)
        self.prompts: list[list[list[int]]] = []
        self.budgets: list[list[int]] = []

    def generate(self, prompts, sampling, max_new_tokens=None):
        self.prompts.append([list(p) for p in prompts])
        self.budgets.append(list(max_new_tokens or [sampling.max_new_tokens] * len(prompts)))
        answers = self.script[len(self.prompts) - 1]
        return [Completion(tuple(ids), tuple(-1.0 for _ in ids),
                           "stop" if ids and ids[-1] in self.stop_ids else "length")
                for ids in answers]

    def load_weights(self, weights):
        pass

    def close(self):
        pass


@pytest.fixture
def replay_engine():
    """The `ReplayEngine` class: a `GenerationEngine` that answers with scripted token ids, for
    tests that need exact completions (the real engine is tested in test_engine_hf.py)."""
    return ReplayEngine


def _scripted_run(root: Path, mistakes: float = 0.0) -> Path:
    from wideseek_env.policies.mistakes import MistakesPolicy
    from wideseek_env.policies.scripted import ScriptedPolicy
    from wideseek_env.runner.evaluate import EvalSpec, evaluate
    from wideseek_env.worlds import World, build_small_world

    world = World.load(build_small_world(root / "world"))
    spec = EvalSpec(width=2, lead_max_turns=3, subagent_max_turns=4, max_context_tokens=4096)
    policy = ScriptedPolicy(entities_per_subtask=1)
    if mistakes:
        policy = MistakesPolicy(policy, mistakes, seed=1)
    evaluate(spec, world.tasks("train")[:6], world.backend(), policy, root / "run",
             policy_info={"name": "scripted", **({"mistakes": mistakes} if mistakes else {})},
             progress=False)
    return root / "run"


@pytest.fixture(scope="session")
def scripted_traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder of the scripted policy on a small default-easy world: 6 training tasks at
    width 2 (lead 3 turns, subagent 4), the traces SFT learns from."""
    return _scripted_run(tmp_path_factory.mktemp("traces"))


@pytest.fixture(scope="session")
def mistake_traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same six tasks, with a third of the scripted policy's tool calls turned into
    deliberate mistakes it recovers from (`wideseek eval --mistakes 0.3`)."""
    return _scripted_run(tmp_path_factory.mktemp("mistakes"), mistakes=0.3)


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], ModuleType]:
    """Import a script of `benchmarks/` by its name (they are scripts, not a package). The
    module is registered in `sys.modules` first, as an import does: dataclasses look their
    module up there."""
    def load(name: str) -> ModuleType:
        path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    return load
