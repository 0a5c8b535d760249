"""The runnable examples of docs/eval.md run as written (blocks starting ``# example:``)."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

from wideseek_env.cli import main
from wideseek_env.env.toy import toy_backend, toy_tasks
from wideseek_env.runner import EvalSpec, evaluate
from wideseek_env.trace import read_traces

DOC = Path(__file__).resolve().parents[2] / "docs" / "eval.md"


def example(name: str) -> str:
    blocks = re.findall(r"^```python\n(# example: [^\n]*\n.*?)^```$", DOC.read_text(),
                        re.DOTALL | re.MULTILINE)
    found = [b for b in blocks if b.startswith(f"# example: {name}\n")]
    assert len(found) == 1, f"docs/eval.md has {len(found)} examples named {name!r}"
    return found[0]


def test_own_policy_example(tmp_path: Path) -> None:
    module = types.ModuleType("my_agents")
    exec(compile(example("own policy"), "my_agents.py", "exec"), module.__dict__)
    summary = evaluate(EvalSpec(width=2), toy_tasks()[:2], toy_backend(), module.make_policy(),
                       tmp_path, policy_info={"name": "mine"}, progress=False)
    assert summary["episodes"] == 2 and summary["episode_ends"] == {"answer": 2}
    assert all(r["cost"]["subagents_used"] == 1 for r in read_traces(tmp_path / "episodes.jsonl"))


def test_hand_written_loop_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(example("hand-written loop"), "loop.py", "exec"), {})
    (record,) = read_traces(tmp_path / "my_episodes.jsonl")
    assert record["episode_end"] == "answer" and record["cost"]["subagents_used"] == 1
    assert main(["trace", "show", str(tmp_path / "my_episodes.jsonl")]) == 0
    shown = capsys.readouterr().out
    assert "lead [lead, 2/10 turns, done (final)]" in shown and "sub_0 [subagent" in shown
    assert "end: answer" in shown
