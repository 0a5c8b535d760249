"""Shared fixtures of the learner tests: the tiny model, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from wideseek_rl.tiny import build_tiny_model


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
