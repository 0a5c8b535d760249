"""``wideseek view`` without a browser: which runs a path means, what the page holds (read back
the way its script reads it), script-safe embedding, explanations recomputed for old traces, the
live server over real HTTP, ``wideseek trace show`` (answer lines, cell diff) and the benchmark's
links to the pages. The page in a real browser: test_viewer_browser.py."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import requests
from viewer_runs import make_runs, read_page

from wideseek_env.cli import main
from wideseek_env.scoring.explain import ScoreExplanation
from wideseek_env.trace import read_traces, render_episode
from wideseek_env.viewer import ViewError, find_runs, write_view
from wideseek_env.viewer.page import ASSETS
from wideseek_env.viewer.serve import LiveView, make_server
from wideseek_env.worlds import build_small_world


@pytest.fixture(scope="module")
def world_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_world(tmp_path_factory.mktemp("world") / "small")


@pytest.fixture(scope="module")
def runs(world_path: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_runs(world_path, tmp_path_factory.mktemp("bench"))


def test_find_runs_reads_run_folders_trace_files_and_benchmark_folders(runs, tmp_path):
    one = find_runs([runs[0]])
    assert [(r.label, r.width, r.mode) for r in one] == [("width_1", 1, "multi")]
    assert find_runs([runs[1] / "episodes.jsonl"])[0].width == 2
    assert [r.label for r in find_runs([runs[0].parent])] == ["width_1", "width_2"]
    with pytest.raises(ViewError, match=r"nope: no such file or folder"):
        find_runs([tmp_path / "nope"])
    with pytest.raises(ViewError, match=r"no episodes.jsonl here"):
        find_runs([tmp_path])
    (tmp_path / "run.json").write_text("{oops")
    (tmp_path / "episodes.jsonl").write_text("")
    with pytest.raises(ViewError, match=r"run.json:1: not valid JSON"):
        find_runs([tmp_path])


def test_page_holds_every_episode_as_recorded(runs, tmp_path):
    result = write_view(runs, tmp_path / "v.html")
    meta, index, payloads = read_page(result.path)
    records = [r for run in runs for r in read_traces(run / "episodes.jsonl")]
    assert result.episodes == len(index) == len(payloads) == len(records) == 12
    assert [m["label"] for m in meta["runs"]] == ["width_1", "width_2"]
    assert "path" not in meta["runs"][0]["world"]  # no absolute paths in a shareable page
    for entry, page, record in zip(index, payloads, records):
        assert (entry["task"], entry["repeat"], entry["item_f1"], entry["tokens"]) == (
            record["task_id"], record["repeat"], record["metrics"]["item_f1"],
            record["cost"]["generated_tokens"])
        assert entry["width"] == (1 if entry["run"] == 0 else 2)
        assert page["explanation"] == record["explanation"] and not page["explanation_recomputed"]
        for agent, original in zip(page["agents"], record["agents"]):
            # System prompts are stored once per page; every other message is kept as written.
            assert meta["prompts"][agent["system"]] == original["messages"][0]["content"]
            assert [[m["role"], m["content"], m.get("name")] for m in original["messages"][1:]] \
                == agent["messages"]
    assert len(meta["prompts"]) < sum(len(p["agents"]) for p in payloads) / 4


def test_page_is_self_contained_and_script_safe(runs, tmp_path):
    # No file the page loads: no src/href/url()/@import anywhere in the template and assets.
    for asset in ASSETS.iterdir():
        text = asset.read_text(encoding="utf-8")
        for needle in ("src=", "href=", "url(", "@import", "http://", "https://"):
            assert needle not in text, (asset.name, needle)
    # Model text that tries to close the script element stays data.
    run = tmp_path / "run"
    run.mkdir()
    record = read_traces(runs[0] / "episodes.jsonl")[0]
    evil = "</script><script>alert(1)</script><!--"
    record["agents"][0]["messages"][1]["content"] = evil
    record["task_id"] = evil
    (run / "episodes.jsonl").write_text(json.dumps(record) + "\n")
    page = write_view([run]).path
    assert page == run / "view.html"
    assert page.read_text().count("</script>") == 4  # the page's own four script elements
    _, index, payloads = read_page(page)
    assert index[0]["task"] == evil and payloads[0]["agents"][0]["messages"][0][1] == evil


def test_old_traces_get_recomputed_explanations_only_when_they_reproduce(runs, tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    (run / "run.json").write_text((runs[0] / "run.json").read_text())
    records = read_traces(runs[0] / "episodes.jsonl")[:2]
    originals = [r["explanation"] for r in records]
    for r in records:
        del r["explanation"]
    records[1]["score"]["item_f1"] = 0.123  # as if a judge had scored it: do not guess
    (run / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    _, _, payloads = read_page(write_view([run]).path)
    assert payloads[0]["explanation"] == originals[0] and payloads[0]["explanation_recomputed"]
    assert payloads[1]["explanation"] is None


def test_view_command(runs, tmp_path, capsys):
    assert main(["view", str(runs[0]), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "view.html: 6 episodes from 1 run(s)" in out and "file://" in out
    assert main(["view", str(runs[0]), str(runs[1]), "--quiet"]) == 2
    assert "several inputs: say where the page goes with --out" in capsys.readouterr().err
    target = tmp_path / "cut.html"
    assert main(["view", str(runs[0]), "--out", str(target), "--max-message-chars", "50",
                 "--quiet"]) == 0
    _, _, payloads = read_page(target)
    longest = max(len(m[1]) for p in payloads for a in p["agents"] for m in a["messages"])
    assert longest < 200 and "more characters cut" in json.dumps(payloads)


def test_live_server_follows_a_growing_trace(runs, tmp_path):
    run = tmp_path / "live"
    run.mkdir()
    (run / "run.json").write_text((runs[1] / "run.json").read_text())
    lines = (runs[1] / "episodes.jsonl").read_text().splitlines(keepends=True)
    trace = run / "episodes.jsonl"
    trace.write_text(lines[0] + lines[1][:100])  # one episode and a line still being written
    server = make_server(LiveView([run]), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        page = requests.get(url + "/", timeout=10)
        assert page.status_code == 200 and '"live":true' in page.text
        assert len(json.loads(page.text.split('id="wsv-index" type="application/json">')[1]
                              .split("</script>")[0])) == 1
        with trace.open("w") as f:
            f.writelines(lines)
        upd = requests.get(url + "/updates?since=1&prompts=0", timeout=10).json()
        assert [e["task"] for e in upd["index"]] == [
            json.loads(line)["task_id"] for line in lines[1:]]
        assert len(upd["blobs"]) == len(lines) - 1 and upd["runs"][0]["label"] == "live"
        assert requests.get(url + "/updates?since=6&prompts=9", timeout=10).json()["index"] == []
        assert requests.get(url + "/nothing", timeout=10).status_code == 404
        with trace.open("a") as f:
            f.write("not json\n")
        bad = requests.get(url + "/updates?since=6", timeout=10)
        assert bad.status_code == 500 and "not a JSON record" in bad.json()["error"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_trace_show_keeps_the_answer_lines_and_prints_the_cell_diff(runs, capsys, tmp_path):
    trace = runs[0] / "episodes.jsonl"
    records = read_traces(trace)
    k = next(i for i, r in enumerate(records) if "WRONG VALUE" in (r["response"] or ""))
    text = render_episode(records[k], max_chars=80)
    answer_lines = [line.strip() for line in records[k]["response"].splitlines()
                    if line.startswith("|")]
    shown = [line.strip() for line in text.splitlines()]
    assert all(line in shown for line in answer_lines)  # each table line on its own line
    assert main(["trace", "show", str(trace), "--index", str(k), "--diff"]) == 0
    out = capsys.readouterr().out
    ex = ScoreExplanation.from_dict(records[k]["explanation"])
    t = ex.totals()
    assert f"{t['matched']:.0f} of {t['gold_rows']:.0f} gold rows matched" in out
    assert "WRONG VALUE (gold " in out and "+ answer" in out and "repeats answer 0" in out
    assert main(["trace", "show", str(trace), "--index", str(k), "--diff", "wrong"]) == 0
    wrong_only = capsys.readouterr().out
    assert wrong_only.count("\n✓ gold") == 0 and "WRONG VALUE (gold " in wrong_only
    # Without an explanation and without the world, --diff says why and fails.
    bare = tmp_path / "bare.jsonl"
    del records[k]["explanation"]
    bare.write_text(json.dumps(records[k]) + "\n")
    assert main(["trace", "show", str(bare), "--diff"]) == 1
    assert "no cell diff: the record has no explanation" in capsys.readouterr().err


def test_bench_links_each_width_to_its_page(world_path, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["bench", "width", "--world", str(world_path), "--split", "test", "--limit", "3",
            "--widths", "1,2", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    md = (out / "results.md").read_text()
    assert "| [view](width_1/view.html) |" in md and "| [view](width_2/view.html) |" in md
    summary = json.loads((out / "summary.json").read_text())
    assert [r["view"] for r in summary] == ["width_1/view.html", "width_2/view.html"]
    for r in summary:
        _, index, _ = read_page(out / r["view"])
        assert len(index) == r["episodes"] == 3
    from wideseek_env.bench import view_links

    assert view_links(summary, out, tmp_path / "elsewhere") == [
        "../bench/width_1/view.html", "../bench/width_2/view.html"]
