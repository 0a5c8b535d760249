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
                 tmp_path / "a" / f"w{w}", policy_info={"name": "scripted"},
                 world_info={"path": str(world.path)}, progress=False)
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


def test_facts_found_and_entities_delegated_on_real_evaluations(load_benchmark, tmp_path):
    """Facts found is item F1's true positives without the key cells; entities delegated
    counts a row when some subtask that ran names its key, and nothing else."""
    from wideseek_env.policies.scripted import ScriptedPolicy
    from wideseek_env.runner.evaluate import EvalSpec, evaluate
    from wideseek_env.worlds import World, build_small_world

    cmp = load_benchmark("compare_evals")
    world = World.load(build_small_world(tmp_path / "world"))
    # Tasks that name their entities (the teacher need not discover them first).
    tasks = [t for t in world.tasks("test") + world.tasks("train") if 2 < len(t.gold.rows) <= 8
             and all(k[0] in t.query for k in cmp.entity_keys(t))][:6]
    rows = {t.instance_id: len(t.gold.rows) for t in tasks}
    assert len(rows) == 6
    for w in (1, 8):
        spec = EvalSpec(width=w, lead_max_turns=3, subagent_max_turns=4, max_context_tokens=4096)
        evaluate(spec, tasks, world.backend(), ScriptedPolicy(entities_per_subtask=1),
                 tmp_path / "a" / f"w{w}", policy_info={"name": "scripted"}, progress=False)
    run = cmp.load_run(tmp_path / "a")
    # No world in run.json: the entity figure is left out unless --world names one.
    assert cmp.world_tasks(tmp_path / "a") is None
    known = cmp.world_tasks(tmp_path / "a", world.path)

    # One subtask per entity, two delegating turns at width 1: min(rows, 2) of the rows.
    narrow = sum(min(n, 2) / n for n in rows.values()) / len(rows)
    assert cmp.entities_delegated(run[1], known) == pytest.approx(narrow)
    assert cmp.entities_delegated(run[8], known) == pytest.approx(1.0)
    # A subtask that no longer names its entity (only a longer word that holds its name)
    # loses that one row of its task.
    ep = run[8][0]
    sub = next(a for a in ep["agents"] if a["role"] != "lead")
    name = next(k for k in cmp.entity_keys(known[ep["task_id"]])
                if str(k[0]).lower() in sub["messages"][1]["content"].lower())[0]
    sub["messages"][1]["content"] = sub["messages"][1]["content"].replace(name, name + "ville")
    assert cmp.entities_delegated(run[8], known) == pytest.approx(
        1.0 - 1.0 / rows[ep["task_id"]] / len(rows))

    for w in (1, 8):
        for r in run[w]:
            t = r["explanation"]["totals"]
            keys = len(known[r["task_id"]].unique_columns)
            assert cmp.facts(r) == pytest.approx(t["item_tp"] - keys * t["matched"])
    assert sum(cmp.facts(r) for r in run[8]) > sum(cmp.facts(r) for r in run[1]) > 0

    res = tmp_path / "res"
    assert cmp.main([str(tmp_path / "a"), "--label", "f", "--results", str(res), "--world",
                     str(world.path), "--no-plot"]) == 0
    d = json.loads((res / "compare_f.json").read_text())["runs"]["a"]
    assert d["widths"]["1"]["entities_delegated"] == pytest.approx(narrow)
    assert d["facts_widest_minus_narrowest"][0] == pytest.approx(
        (sum(map(cmp.facts, run[8])) - sum(map(cmp.facts, run[1]))) / 6)
    assert "· 100 %" in (res / "compare_f.md").read_text()
    # A run whose run.json names a world that is gone: an error naming the file.
    rj = tmp_path / "a" / "w1" / "run.json"
    meta = json.loads(rj.read_text())
    meta["world"] = {"path": str(tmp_path / "moved")}
    rj.write_text(json.dumps(meta))
    with pytest.raises(FileNotFoundError, match=r"run\.json: its world .*moved is not there"):
        cmp.world_tasks(tmp_path / "a")
