"""Worlds v2: determinism, the answerability proof (and that it catches a broken cell), the card's
figures on a small built world, surface forms and their transforms, and the scripted baseline on
v2 (gold-blind, width pays)."""

from __future__ import annotations

import argparse
import dataclasses
import random
from datetime import date
from pathlib import Path

import pytest

from wideseek_env.runner import EvalSpec, evaluate
from wideseek_env.search.docstore import DocStore
from wideseek_env.tasks import GoldTable
from wideseek_env.worlds import World, build_small_world, default_world_path, resolve_world
from wideseek_env.worlds.cli import run as world_cli_run
from wideseek_env.worlds.layout import content_digest as _digest
from wideseek_env.worlds.sources_hybridqa import shared_dir
from wideseek_env.worlds.stats import column_words, shortcut_figures, task_figures
from wideseek_env.worlds.v2 import surface as S
from wideseek_env.worlds.v2.provenance import (
    AnswerabilityError,
    check_provenance,
    read_provenance,
)


@pytest.fixture(scope="module")
def v2(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.load(build_small_world(tmp_path_factory.mktemp("v2") / "small", tier="v2"))


def test_v2_build_is_deterministic_under_seed(v2: World, tmp_path: Path) -> None:
    again = build_small_world(tmp_path / "again", tier="v2")
    other = build_small_world(tmp_path / "other", seed=1, tier="v2")
    assert _digest(v2.path) == _digest(again)
    assert _digest(v2.path) != _digest(other)
    assert v2.card["figures"]["tasks"] == World.load(again).card["figures"]["tasks"]
    assert v2.card["tier"] == "v2" and v2.card["world_version"] == 3


def test_every_gold_cell_is_rederived_from_the_built_pages(v2: World) -> None:
    store = DocStore(v2.path / "corpus")
    try:
        for split in ("train", "test"):
            tasks = v2.tasks(split)
            report = check_provenance(store, tasks, read_provenance(v2.path, split))
            assert report["cells"] == sum(len(t.gold.rows) * len(t.required) for t in tasks)
            assert report["cell_rate"] == 1.0, report["failures"][:3]
            assert report["proved_by_transform"].get("number", 0) > 0
            assert any(op.endswith("+hop") for op in report["proved_by_transform"])
    finally:
        store.close()
    # and through the public backend: a recorded surface is on its page
    backend = v2.backend()
    prov = read_provenance(v2.path, "test")
    task = v2.tasks("test")[0]
    for steps in prov[task.instance_id]["cells"][0]:
        for url, surface in steps:
            assert surface in backend.access(url, max_chars=10**6).text


def test_the_checker_fails_on_a_broken_cell(v2: World) -> None:
    tasks = v2.tasks("test")
    prov = read_provenance(v2.path, "test")
    store = DocStore(v2.path / "corpus")
    try:
        task = next(t for t in tasks if any(tr["op"] == "number"
                                             for tr in prov[t.instance_id]["transforms"]))
        j = next(i for i, tr in enumerate(prov[task.instance_id]["transforms"])
                 if tr["op"] == "number")
        rows = [list(r) for r in task.gold.rows]
        rows[0][j] = rows[0][j] + "1"  # a digit more than the page supports
        broken = dataclasses.replace(task, gold=GoldTable(task.gold.columns,
                                                          tuple(map(tuple, rows))))
        report = check_provenance(store, [broken], prov)
        assert report["cell_rate"] < 1.0 and report["tasks_fully_proved"] == 0
        failure = report["failures"][0]
        assert failure["task"] == task.instance_id and failure["column"] == task.gold.columns[j]
        assert "gives" in failure["why"]
        # a surface that is not on its page fails too
        bad = {task.instance_id: {**prov[task.instance_id], "cells": [
            [[[u, s + " (edited)"] for u, s in steps] for steps in prov[task.instance_id][
                "cells"][0]], *prov[task.instance_id]["cells"][1:]]}}
        report = check_provenance(store, [task], bad)
        assert "is not on" in report["failures"][0]["why"]
    finally:
        store.close()


def test_a_build_with_an_unprovable_cell_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    from wideseek_env.worlds.v2 import tasks as T

    original = T.TaskMaker.cell

    def corrupt(self, col, e, row_year):  # every population cell one too high
        got = original(self, col, e, row_year)
        if got and col.attr == "population" and col.source == "attr":
            return got[0] + "9", got[1]
        return got

    monkeypatch.setattr(T.TaskMaker, "cell", corrupt)
    with pytest.raises(AnswerabilityError, match="could not prove every gold cell"):
        build_small_world(tmp_path / "broken", tier="v2")
    assert not list(tmp_path.iterdir())  # nothing left behind


def test_card_figures_on_a_small_world(v2: World) -> None:
    """The figures of the issue on a small world (recomputed here, and equal to the card's):
    the shortcut and query figures at the issue's targets; the shape at what a world capped to
    a dozen counties per state can reach (the full world's shape is in its card, see
    docs/worlds.md)."""
    test = v2.tasks("test")
    figs = task_figures(test)
    assert figs == v2.card["figures"]["tasks"]["test"]
    assert figs["required_columns_mean"] >= 5
    assert figs["multi_column_key_share"] >= 0.15
    assert figs["rows_median"] >= 15 and max(len(t.gold.rows) for t in test) >= 60
    assert figs["openings_5_words_per_100"] >= 30
    mix = figs["metric_mix"]
    for metric in ("number_near", "date_near", "exact_match", "set_match"):
        assert mix.get(metric, 0) > 0, mix
    cuts = shortcut_figures(v2.path, test, cell_sample=400, snippet_sample=150)
    assert cuts["line_with_column_words"] <= 0.40
    assert cuts["normalisation_needed"] >= 0.30
    assert cuts["page_names_every_key"] <= 0.40
    assert cuts["no_page_names_exactly_the_keys"] >= 0.60
    assert cuts["multi_hop_tasks"] >= 0.20
    assert cuts["key_is_a_page_title"] <= 0.60
    assert cuts["key_in_a_url"] == 0.0
    assert v2.card["counterfactual"]["share_differs"] >= 0.8
    assert v2.card["surface_forms"]["min"] >= 3


def test_easy_tier_shows_the_shortcuts(tmp_path: Path) -> None:
    """The same figures on the easy tier find the template (what v2 removes)."""
    easy = World.load(build_small_world(tmp_path / "easy"))
    cuts = easy.card["figures"]["shortcuts"]["test"]
    assert cuts["line_with_column_words"] >= 0.9 and cuts["verbatim"] >= 0.9
    assert cuts["key_is_a_page_title"] >= 0.9 and cuts["key_in_a_url"] >= 0.9
    assert easy.card["tier"] == "easy"


def test_world_info_prints_figures_beside_widesearch(v2: World,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert world_cli_run(argparse.Namespace(world_command="info", world=str(v2.path),
                                            json=False)) == 0
    out = capsys.readouterr().out
    assert "tier v2" in out and "answerability: 100.00%" in out
    assert "figure | WideSearch (200) | train | test" in out
    assert "multi-hop tasks" in out and "test facts that differ from the source data" in out


def test_tier_names(tmp_path: Path) -> None:
    assert default_world_path(tmp_path).name.startswith("default-v2-")
    assert default_world_path(tmp_path, tier="easy").name.startswith("default-easy-")
    assert resolve_world(tmp_path / "x") == tmp_path / "x"


@pytest.mark.parametrize("seed", range(40))
def test_surface_forms_read_back_through_their_transforms(seed: int) -> None:
    rng = random.Random(seed)
    x = rng.choice((rng.uniform(0.5, 9), rng.uniform(10, 5e4), rng.uniform(1e6, 9e8)))
    unit = rng.choice(("km2", "mi2", "ft", "count", "K", "C", "pct"))
    decimals = rng.choice((0, 1, 2))
    style = rng.choice(("sep", "plain", "space"))
    text = S.number_surface(x, unit, decimals, style)
    value, read_unit = S.read_number(text)
    assert abs(value - float(S.fmt_decimal(x, decimals))) < 1e-6, text
    assert read_unit == (None if unit == "count" else unit), text
    target = {"km2": "mi2", "mi2": "km2", "ft": "m", "K": "C", "C": "K"}.get(unit, unit)
    got = float(S.derive(text, S.Transform("number", unit=target, from_unit=unit, decimals=3)))
    assert abs(got - S.convert(value, unit, target)) < 1e-3 + 1e-9 * abs(got)
    d = date(1700, 1, 1).fromordinal(date(1700, 1, 1).toordinal() + rng.randrange(100_000))
    for st in ("dmy", "mdy", "iso", "abbr"):
        assert S.read_date(S.date_surface(d, st)) == d
    items = rng.sample(["English", "Bosnia and Herzegovina", "Saint Kitts, Nevis", "Tok Pisin",
                        "French"], 3)
    for ls in ("and", "semicolon", "dot"):
        surface = S.list_surface(items, S.list_style_for(items, ls))
        assert S.read_list(surface) == items, surface


def test_scale_words_and_column_words() -> None:
    assert S.read_number("1.23 million km²") == (1_230_000.0, "km2")
    assert S.derive("4 731 145", S.Transform("number", unit="count", from_unit="count",
                                             scale=1e6, decimals=2)) == "4.73"
    assert S.derive("17 October 1828", S.Transform("date", style="iso")) == "1828-10-17"
    assert S.derive("Oct. 17, 1828", S.Transform("year")) == "1828"
    assert column_words("Land Area (km²)") == ["land", "area"]
    assert column_words("Population of County Seat (2020)") == ["population", "county", "seat",
                                                                "2020"]


def test_scripted_baseline_never_reads_gold_on_v2(v2: World, tmp_path: Path) -> None:
    from wideseek_env.policies.scripted import ScriptedPolicy
    from wideseek_env.runner import run_episodes
    from wideseek_env.runner.evaluate import make_env_factory
    from wideseek_env.trace import read_traces

    tasks = v2.tasks("test")[:4]
    blind = [dataclasses.replace(t, gold=GoldTable(t.gold.columns, ()), meta={}) for t in tasks]
    runs = []
    for name, ts in (("seen", tasks), ("blind", blind)):
        run_episodes(make_env_factory(EvalSpec(width=4), ts, v2.backend()), ts, ScriptedPolicy(),
                     trace_path=tmp_path / f"{name}.jsonl", progress=False)
        runs.append(sorted(read_traces(tmp_path / f"{name}.jsonl"), key=lambda r: r["task_id"]))
    assert [r["agents"] for r in runs[0]] == [r["agents"] for r in runs[1]]
    assert any(r["metrics"]["item_f1"] > 0.3 for r in runs[0])


def test_width_pays_on_v2(v2: World, tmp_path: Path) -> None:
    from wideseek_env.policies.scripted import ScriptedPolicy

    tasks = v2.tasks("test")[::2]
    scores = {}
    for width in (1, 8):
        summary = evaluate(EvalSpec(width=width), tasks, v2.backend(), ScriptedPolicy(),
                           tmp_path / f"w{width}", progress=False)
        scores[width] = summary["scores"]["item_f1"]
        assert summary["cost_per_episode"]["format_errors"] == 0
    assert scores[8] >= scores[1] + 0.10, scores


HYBRIDQA = shared_dir() / "hybridqa"


@pytest.mark.skipif(not (HYBRIDQA / "tables.jsonl.gz").is_file(),
                    reason=f"HybridQA data not found at {HYBRIDQA}")
def test_hybridqa_v2_keeps_hybridqa_structure(tmp_path: Path) -> None:
    from wideseek_env.worlds.v2.hybridqa import build_hybridqa_v2_world

    world = World.load(build_hybridqa_v2_world(HYBRIDQA, tmp_path / "hq", max_tables=400,
                                               max_other_pages=500, progress=False))
    card = world.card
    assert card["tier"] == "v2" and card["answerability"]["cell_rate"] == 1.0
    assert card["hybridqa"]["passage_columns"] > 0 and card["hybridqa"]["cells_only_in_passages"]
    train = world.tasks("train")
    assert any(t.meta["domain"] == "hybridqa-join" for t in train)
    join = next(t for t in train if t.meta["domain"] == "hybridqa-join")
    assert join.gold.columns[1] == "Edition" and len(join.unique_columns) == 2
    # a passage-column cell: blank on the article's table, stated in the linked passage
    prov = read_provenance(world.path, "train")
    backend = world.backend()
    found = False
    for task in train:
        rec = prov[task.instance_id]
        for row, cells in zip(task.gold.rows, rec["cells"]):
            for value, steps in zip(row, cells):
                if len(steps) == 2:
                    article = backend.access(steps[0][0], max_chars=10**6).text
                    line = next(ln for ln in article.splitlines() if ln.startswith(
                        "| " + row[0] + " |"))
                    assert value not in line.split(" | ", 1)[1]  # not in the table's row
                    assert value in backend.access(steps[1][0], max_chars=10**6).text
                    assert steps[0][1] in article  # the link that leads there
                    found = True
                    break
            if found:
                break
        if found:
            break
    assert found
    # opaque URLs, and no article in both splits
    assert all("/d/" in u for t in train for u in t.meta["row_urls"])
    test_tables = {u for t in world.tasks("test") for u in t.meta["tables"]}
    assert not test_tables & {u for t in train for u in t.meta["tables"]}
