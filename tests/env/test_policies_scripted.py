"""The scripted baseline: its text heuristics, that it never reads gold tables, and that it
scales with width (and the single agent with turns) on a real small world."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from wideseek_env.policies import heuristics as H
from wideseek_env.policies.scripted import ScriptedPolicy, facts_report, parse_facts_report
from wideseek_env.runner import EvalSpec, evaluate, run_episodes
from wideseek_env.runner.evaluate import make_env_factory
from wideseek_env.tasks import GoldTable
from wideseek_env.trace import read_traces
from wideseek_env.worlds import World, build_small_world
from wideseek_env.worlds.pages import entity_page
from wideseek_env.worlds.sources_default import DOMAINS

WIDESEARCH_QUERY = (
    "Could you help me find the top five universities in each of the five broad subjects?\n\n"
    "Please organize the results in one Markdown table with the following columns:\n"
    "Subject, University, QS World University Rankings by Subject 2025, Home Page\n"
    "Don't ask me any questions."
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.load(build_small_world(tmp_path_factory.mktemp("world") / "small"))


def test_parse_columns_and_attribute_phrases() -> None:
    assert H.parse_columns(WIDESEARCH_QUERY) == [
        "Subject", "University", "QS World University Rankings by Subject 2025", "Home Page"]
    assert H.parse_columns("列出河流。请用 markdown 表格回答，列为：River, Length km, Mouth。") == [
        "River", "Length km", "Mouth"]
    assert H.parse_columns("Tell me a joke.") == []
    query = ("I need a complete overview of all chemical elements in period 2: the chemical "
             "symbol, the density and the period of each.\n\nColumns in order:\n"
             "Element, Symbol, Density (g/cm³), Period\n")
    headers = H.parse_columns(query)
    assert headers == ["Element", "Symbol", "Density (g/cm³)", "Period"]
    assert H.attribute_phrases(query, headers[1:]) == ["chemical symbol", "density", "period"]


def test_parse_selection() -> None:
    sel = H.parse_selection("Could you find the following 3 chemical elements: Boron, Tin, Iron "
                            "and, for each of them, report the density?")
    assert sel.names == ("Boron", "Tin", "Iron") and sel.condition == ""
    sel = H.parse_selection("List the following 2 cities: Paris, Texas; Rome. Each row should give")
    assert sel.names == ("Paris, Texas", "Rome")
    sel = H.parse_selection("Please help me build a table of all countries in Europe and with an "
                            "area of more than 100,000 km², including the capital.")
    assert (sel.condition, sel.attribute, sel.number) == ("more", "area", 100_000.0)
    sel = H.parse_selection("I'm compiling data on the 12 U.S. states and territories with the "
                            "lowest number of counties. For each one, I need the capital.")
    assert (sel.condition, sel.attribute, sel.top_n) == ("lowest", "number of counties", 12)


def test_value_extraction_matches_the_pages_facts() -> None:
    """Every templated fact sentence of every domain reads back as its value (the source table
    is only the oracle here; the policy never sees it)."""
    wrong, total = [], 0
    # Three of the five domains: loading the cities and airports packages takes seconds.
    for table in (DOMAINS[name](40) for name in ("countries", "elements", "us_states")):
        for i, row in enumerate(table.rows):
            page = entity_page([(table, i)], table.entity_url(i), seed=0)
            for col, value in zip(table.columns, row[1:]):
                if not value:
                    continue
                total += 1
                got = H.extract_value(page.text, col.attr, row[0])
                if got != H.clean_value(value):
                    wrong.append((table.id, row[0], col.name, value, got))
    assert total > 500
    assert len(wrong) <= total * 0.01, wrong[:10]


def test_value_in_sentence_shapes() -> None:
    cases = [
        ("Panama City is the capital of Panama.", "capital", "Panama", "Panama City"),
        ("The ISO code of India is IN.", "ISO code", "India", "IN"),
        ("People from Chile are called Chilean; that is the demonym.", "demonym", "Chile", "Chilean"),
        ("Peru uses the Sol as its currency.", "currency", "Peru", "Sol"),
        ("Oslo is in the Europe/Oslo time zone.", "time zone", "Oslo", "Europe/Oslo"),
        ("Iceland covers an area of 103,000 km².", "area", "Iceland", "103,000"),
        ("Atlantic City International Airport is in the city of Atlantic City.", "city",
         "Atlantic City International Airport", "Atlantic City"),
        ("Tin sits in period 5 of the periodic table, so its period is 5.", "period", "Tin", "5"),
    ]
    for sentence, phrase, entity, value in cases:
        assert H.value_in_sentence(sentence, phrase, entity) == value, sentence
    assert H.value_in_sentence("Nothing relevant here.", "capital", "X") is None


def test_facts_report_round_trip() -> None:
    found = {"Boron": {"density": "2.34", "period": "2"}, "Tin": {"density": "7.3"}}
    text = facts_report(["Boron", "Tin"], ["density", "period"], found)
    assert parse_facts_report(text) == found


def _traces(world: World, tasks, policy, tmp: Path, name: str, width: int):
    spec = EvalSpec(width=width)
    run_episodes(make_env_factory(spec, tasks, world.backend()), tasks, policy,
                 trace_path=tmp / f"{name}.jsonl", progress=False)
    return sorted(read_traces(tmp / f"{name}.jsonl"), key=lambda r: r["task_id"])


def test_scripted_policy_never_reads_gold_tables(world: World, tmp_path: Path) -> None:
    """Blanking every task's gold table and metadata leaves every action unchanged."""
    tasks = world.tasks("test")[:4]
    blind = [dataclasses.replace(t, gold=GoldTable(t.gold.columns, ()), meta={}) for t in tasks]
    seen = _traces(world, tasks, ScriptedPolicy(), tmp_path, "seen", 4)
    hidden = _traces(world, blind, ScriptedPolicy(), tmp_path, "hidden", 4)
    assert [r["agents"] for r in seen] == [r["agents"] for r in hidden]
    assert any(r["metrics"]["item_f1"] > 0.5 for r in seen)  # the comparison is not vacuous


def test_scripted_policy_scales_with_width(world: World, tmp_path: Path) -> None:
    tasks = world.tasks("test")
    scores = {}
    for width in (1, 8):
        summary = evaluate(EvalSpec(width=width), tasks, world.backend(), ScriptedPolicy(),
                           tmp_path / f"w{width}", progress=False)
        scores[width] = summary["scores"]["item_f1"]
        assert summary["episode_ends"] == {"answer": len(tasks)}
        assert summary["cost_per_episode"]["format_errors"] == 0
    assert scores[8] >= scores[1] + 0.05, scores
    assert scores[8] > 0.8, scores


def test_scripted_single_agent_improves_with_turns(world: World, tmp_path: Path) -> None:
    tasks = world.tasks("test")[::2]
    scores = {}
    for turns in (10, 40):
        summary = evaluate(EvalSpec(mode="single", max_turns=turns), tasks, world.backend(),
                           ScriptedPolicy(), tmp_path / f"t{turns}", progress=False)
        scores[turns] = summary["scores"]["item_f1"]
    assert scores[40] > scores[10] + 0.1, scores
