"""QA ("depth") task sets of v2 worlds: generated questions answerable by construction, HybridQA's
dev questions with their tables held out of training, the checker, task sets through the world,
``wideseek eval --task-set / --tasks`` end to end, and the scripted baseline playing whole
episodes in the paper's interface."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from wideseek_env.cli import main
from wideseek_env.qa import QATask, qa_record
from wideseek_env.scoring.extract import render_markdown_table
from wideseek_env.search.docstore import DocStore
from wideseek_env.worlds import World, build_small_world
from wideseek_env.worlds.layout import content_digest
from wideseek_env.worlds.sources_hybridqa import shared_dir
from wideseek_env.worlds.v2.qa import check_qa, qa_path

HYBRIDQA = shared_dir() / "hybridqa"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.load(build_small_world(tmp_path_factory.mktemp("v2") / "small", tier="v2"))


def test_generated_qa_is_answerable_and_leaves_pages_and_tables_alone(world: World,
                                                                      tmp_path: Path) -> None:
    card = world.card["qa"]
    assert card["train"]["tasks"] == 40 and card["test"]["task_rate"] == 1.0
    assert all(int(card[s]["by_hops"].get("2", 0)) > 5 for s in ("train", "test"))
    backend = world.backend()
    for task in world.tasks("test", task_set="depth"):
        assert isinstance(task, QATask) and task.query.startswith("What is the ")
        # an independent look: searching the question finds a page that states the answer
        if task.meta["hops"] == 1:
            hits = backend.search([task.query], 10)[0]
            pages = [backend.access(h.url).text for h in hits]
            assert any(task.answers[0] in p for p in pages), task
    # the same world without QA tasks: every other file byte for byte the same
    from wideseek_env.worlds.v2.build import DomainContent, build_v2_world
    from wideseek_env.worlds.v2.default import SMALL_TASKS, default_domains, other_pages

    content = DomainContent(default_domains(0, True), 0, SMALL_TASKS, other_pages(0, 2_000),
                            qa_per_split={})
    bare = build_v2_world(content, tmp_path / "bare", name="default-small", progress=False,
                          stats_sample=400)
    assert not qa_path(bare, "train").exists()
    for split in ("train", "test"):
        qa_path(world.path, split).rename(tmp_path / f"{split}.qa")
        (world.path / "tasks" / f"{split}_qa_provenance.jsonl.gz").rename(tmp_path / f"{split}.p")
    try:
        assert content_digest(world.path) == content_digest(bare)
    finally:
        for split in ("train", "test"):
            (tmp_path / f"{split}.qa").rename(qa_path(world.path, split))
            (tmp_path / f"{split}.p").rename(world.path / "tasks" /
                                            f"{split}_qa_provenance.jsonl.gz")


def test_the_checker_catches_a_wrong_step(world: World) -> None:
    from wideseek_env.worlds.v2.provenance import read_provenance

    tasks = world.tasks("train", task_set="depth")
    prov = read_provenance(world.path, "train_qa")
    store = DocStore(world.path / "corpus")
    assert check_qa(store, tasks, prov)["task_rate"] == 1.0
    multi = next(t for t in tasks if t.meta["hops"] == 2)
    single = next(t for t in tasks if t.meta["hops"] == 1)
    broken = {**prov,
              multi.instance_id: {**prov[multi.instance_id], "steps": [
                  prov[multi.instance_id]["steps"][0], prov[single.instance_id]["steps"][0]]},
              single.instance_id: {**prov[single.instance_id], "answer_sources": [
                  [prov[single.instance_id]["steps"][0][0], "no such words 123"]]}}
    result = check_qa(store, tasks, broken)
    assert result["tasks_proved"] == len(tasks) - 2
    whys = {f["task"]: f["why"] for f in result["failures"]}
    assert "the second page is about" in whys[multi.instance_id]
    assert "'no such words 123' is not on" in whys[single.instance_id]


def test_task_sets_of_a_world(world: World, tmp_path: Path) -> None:
    width, depth = world.tasks("test"), world.tasks("test", task_set="depth")
    assert world.tasks("test", task_set="hybrid") == width + depth
    with pytest.raises(ValueError, match="unknown task set"):
        world.tasks("test", task_set="deep")
    easy = World.load(build_small_world(tmp_path / "easy"))
    with pytest.raises(FileNotFoundError, match="no QA tasks"):
        easy.tasks("test", task_set="depth")


@pytest.mark.skipif(not (HYBRIDQA / "questions_dev.jsonl.gz").is_file(),
                    reason="needs ../shared/hybridqa (questions_dev.jsonl.gz)")
def test_hybridqa_dev_questions_and_their_tables_held_out(tmp_path: Path) -> None:
    import gzip

    from wideseek_env.worlds.v2.hybridqa import build_hybridqa_v2_world

    w = World.load(build_hybridqa_v2_world(HYBRIDQA, tmp_path / "hq", max_tables=400,
                                           max_other_pages=2_000, progress=False))
    qa = w.tasks("test", task_set="depth")
    assert len(qa) > 30 and w.card["qa"]["test"]["task_rate"] == 1.0
    assert {t.meta["hops"] for t in qa} == {1, 2}
    asked = {t.meta["table_id"] for t in qa}
    with gzip.open(HYBRIDQA / "questions_dev.jsonl.gz", "rt") as f:
        all_asked = {json.loads(line)["table_id"] for line in f}
    trained = {uid for t in w.tasks("train") for uid in t.meta["tables"]}
    assert not trained & all_asked and asked <= all_asked  # no training task over their tables
    generated = w.tasks("train", task_set="depth")  # training QA: cells of training tables
    assert len(generated) == 40 and w.card["qa"]["train"]["task_rate"] == 1.0
    assert {t.meta["table_id"] for t in generated}.isdisjoint(all_asked)
    assert {t.meta["hops"] for t in generated} == {1, 2}


def _eval(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    assert main(["eval", "--policy", "scripted", "--no-progress", "--width", "4", *args]) == 0
    out = capsys.readouterr().out
    summary = json.loads((Path(args[args.index("--out") + 1]) / "summary.json").read_text())
    return summary, out


def test_eval_reports_qa_accuracy_apart(world: World, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    summary, out = _eval(["--world", str(world.path), "--task-set", "hybrid", "--limit", "8",
                          "--interface", "paper", "--out", str(tmp_path / "run")], capsys)
    assert summary["scores"]["tasks"] + summary["qa_scores"]["tasks"] == 8
    assert "table tasks" in out and "QA tasks" in out and "accuracy  avg@1" in out
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["spec"]["interface"] == "paper"


def _serve(world: World) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "wideseek_env.cli", "serve-search", "--world",
                             str(world.path), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/health", timeout=1).ok:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the search server did not come up")


def test_eval_on_a_task_file_over_a_search_server(world: World, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A hybrid file in the paper's record layout, the world's pages served over HTTP."""
    width = world.tasks("test")[:3]
    records = [{"question": t.query, "answer": render_markdown_table(t.gold.columns, t.gold.rows),
                "unique_columns": list(t.unique_columns), "is_markdown": True,
                "instance_id": f"w{i}"} for i, t in enumerate(width)]
    records += [qa_record(t) for t in world.tasks("test", task_set="depth")[:2]]
    file = tmp_path / "hybrid.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    proc, url = _serve(world)
    try:
        summary, _ = _eval(["--tasks", str(file), "--search-url", url, "--out",
                            str(tmp_path / "run")], capsys)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    local, _ = _eval(["--tasks", str(file), "--world", str(world.path), "--out",
                      str(tmp_path / "local")], capsys)
    assert summary["scores"]["tasks"] == 3 and summary["qa_scores"]["tasks"] == 2
    assert summary["scores"] == local["scores"] and summary["scores"]["item_f1"] > 0.2
    assert summary["world"]["tasks_file"] == str(file)


def test_task_file_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "bad.jsonl"
    file.write_text('{"question": "q", "answer": ["a"], "is_markdown": 1}\n', encoding="utf-8")
    assert main(["eval", "--tasks", str(file), "--world", "x", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and re.search(r"error: .*bad.jsonl:1: field 'is_markdown'", err), err
    assert not (tmp_path / "r").exists()  # nothing written


def test_the_scripted_baseline_plays_the_paper_interface(world: World, tmp_path: Path) -> None:
    """Whole episodes in the paper's format (create_sub_agents, object-valued search and access
    calls, its result layouts and turn hints): through its translation, the scripted policy
    makes the same decisions as under our interface, so every score and turn count agrees."""
    from wideseek_env.policies.scripted import ScriptedPolicy
    from wideseek_env.runner import EvalSpec, evaluate
    from wideseek_env.trace import read_traces

    tasks = world.tasks("test")[:10]
    runs = {}
    for iface in ("wideseek", "paper"):
        runs[iface] = evaluate(EvalSpec(width=4, interface=iface), tasks, world.backend(),
                               ScriptedPolicy(), tmp_path / iface, progress=False)
    assert runs["paper"]["scores"] == runs["wideseek"]["scores"]
    assert runs["paper"]["scores"]["item_f1"] > 0.4
    ours, paper = (read_traces(tmp_path / i / "episodes.jsonl") for i in ("wideseek", "paper"))
    for a, b in zip(ours, paper):
        assert [x["turns"] for x in a["agents"]] == [x["turns"] for x in b["agents"]]
    lead = paper[0]["agents"][0]["messages"]
    assert '"name": "create_sub_agents"' in lead[2]["content"] and lead[3]["content"].startswith(
        "# Subtask 1:\n")
    sub = paper[0]["agents"][1]["messages"]
    assert sub[1]["content"].startswith("# Task\nThe main task:\n")
    assert '"queries": [{"query": ' in sub[2]["content"]
    assert sub[3]["content"].startswith("# Search query:\n")
