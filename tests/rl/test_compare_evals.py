"""`benchmarks/compare_evals.py`: paired differences are taken task by task, over the same
tasks only, on evaluation folders the env wrote."""

from __future__ import annotations

import json
import shutil

import pytest


def test_paired_differences_and_width_spans_on_real_evaluations(load_benchmark, tmp_path):
    from wideseek_env.policies.scripted import ScriptedPolicy
    from wideseek_env.runner.evaluate import EvalSpec, evaluate
    from wideseek_env.worlds import World, build_small_world

    cmp = load_benchmark("compare_evals")
    world = World.load(build_small_world(tmp_path / "world"))
    tasks = world.tasks("test")[:4]
    for w in (1, 2):
        spec = EvalSpec(width=w, lead_max_turns=3, subagent_max_turns=4, max_context_tokens=4096)
        evaluate(spec, tasks, world.backend(), ScriptedPolicy(entities_per_subtask=1),
                 tmp_path / "a" / f"w{w}", policy_info={"name": "scripted"}, progress=False)
    # Run b: run a with the first task's width-2 episode scored 0 and written last.
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    f = tmp_path / "b" / "w2" / "episodes.jsonl"
    lines = [json.loads(x) for x in f.read_text().splitlines()]
    lost = lines[0]["metrics"]["item_f1"]
    assert lost > 0
    lines[0]["metrics"]["item_f1"] = 0.0
    f.write_text("\n".join(json.dumps(x) for x in [*lines[1:], lines[0]]) + "\n")

    assert cmp.main([str(tmp_path / "a"), str(tmp_path / "b"), "--names", "a", "b",
                     "--label", "t", "--results", str(tmp_path / "res"), "--no-plot"]) == 0
    d = json.loads((tmp_path / "res" / "compare_t.json").read_text())
    b = d["runs"]["b"]
    assert b["minus_baseline"]["1"] == [0.0, 0.0]
    mean, ci = b["minus_baseline"]["2"]
    # One task of four lost `lost`, the others 0: differences (0, 0, 0, -lost) have the
    # sample variance lost² / 4, so the CI is 1.96 · lost / 4 (pairing by position would not
    # give it: the episodes of b are in another order).
    assert mean == pytest.approx(-lost / 4) and ci == pytest.approx(1.96 * lost / 4)
    a = d["runs"]["a"]
    f1 = {w: {json.loads(x)["task_id"]: json.loads(x)["metrics"]["item_f1"]
              for x in (tmp_path / "a" / f"w{w}" / "episodes.jsonl").read_text().splitlines()}
          for w in (1, 2)}
    span = sum(f1[2][t] - f1[1][t] for t in f1[1]) / 4
    assert a["widest_minus_narrowest"][0] == pytest.approx(span)
    assert a["widths"]["2"]["episodes"] == 4 and a["widths"]["2"]["format_error_rate"] == 0.0
    assert "| `b` |" in (tmp_path / "res" / "compare_t.md").read_text()

    # Run c lacks a task at width 2: no pairing, one error line naming run and width.
    shutil.copytree(tmp_path / "a", tmp_path / "c")
    g = tmp_path / "c" / "w2" / "episodes.jsonl"
    g.write_text("\n".join(g.read_text().splitlines()[1:]) + "\n")
    with pytest.raises(ValueError, match="c − a, width 2: the two sides do not hold the same"):
        cmp.compare({"a": cmp.load_run(tmp_path / "a"), "c": cmp.load_run(tmp_path / "c")}, "a")
