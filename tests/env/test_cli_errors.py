"""One error style on every command: a user's mistake is one ``error:`` line naming the file or
field and status 2, Ctrl-C says how to resume (130), and nothing is written before the inputs
are checked; a resume that would mix two runs names the field that differs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from wideseek_env.cli import main
from wideseek_env.search.server import SearchServer
from wideseek_env.worlds import World, build_small_world


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_world(tmp_path_factory.mktemp("w") / "small")


def one_error_line(capsys: pytest.CaptureFixture[str], code: int) -> str:
    """The single stderr line of a failed command (and that it failed with status 2)."""
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "\n" not in err and "Traceback" not in err and ": error: " in err, err
    return err


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _drop_url(path: Path) -> None:
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))


def _index_file(root: Path) -> Path:
    return max((p for p in (root / "index" / "tantivy").iterdir() if p.is_file()),
               key=lambda p: p.stat().st_size)


def _gold_file(root: Path) -> Path:
    return sorted((root / "tasks" / "test_gold").iterdir())[0]


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "card not JSON": (lambda r: (r / "world.json").write_text("{"), "world.json"),
    "card without splits": (lambda r: (r / "world.json").write_text(json.dumps(
        {k: v for k, v in json.loads((r / "world.json").read_text()).items()
         if k != "splits"})), "splits"),
    "pages truncated": (lambda r: _truncate(r / "corpus" / "pages.bin"), "pages.bin"),
    "a page byte changed": (lambda r: _flip(r / "corpus" / "pages.bin"), "pages.bin"),
    "offsets missing": (lambda r: (r / "corpus" / "offsets.npy").unlink(), "offsets.npy"),
    "offsets rewritten": (lambda r: np.save(r / "corpus" / "offsets.npy",
                                            np.arange(5, dtype=np.uint64)), "offsets.npy"),
    "a URL missing": (lambda r: _drop_url(r / "corpus" / "urls.txt"), "urls.txt"),
    "index gone": (lambda r: shutil.rmtree(r / "index"), "index/tantivy"),
    "index file changed": (lambda r: _flip(_index_file(r)), "index/tantivy/"),
    "test tasks gone": (lambda r: (r / "tasks" / "test.jsonl").unlink(), "tasks/test.jsonl"),
    "a gold table changed": (lambda r: _gold_file(r).write_text("x\n"), "tasks/test_gold/"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_worlds_are_one_line_errors(world_dir: Path, tmp_path: Path, capsys,
                                            damage: str) -> None:
    root = tmp_path / "world"
    shutil.copytree(world_dir, root)
    hurt, where = DAMAGE[damage]
    hurt(root)
    line = one_error_line(capsys, main(["world", "info", str(root)]))
    assert where in line
    line = one_error_line(capsys, main(["eval", "--world", str(root), "--limit", "1",
                                        "--out", str(tmp_path / "run"), "--no-progress"]))
    assert where in line and not (tmp_path / "run").exists()


def test_world_info_reports_integrity(world_dir: Path, capsys) -> None:
    assert main(["world", "info", str(world_dir)]) == 0
    out = capsys.readouterr().out
    world = World.load(world_dir)
    assert f"integrity: ok, {len(world.card['files'])} files" in out
    assert world.card["world_id"] in out


@pytest.mark.parametrize("flags,field", [
    (["--width", "0"], "width"),
    (["--lead-turns", "0"], "lead_max_turns"),
    (["--repeats", "0"], "repeats"),
    (["--limit", "0"], "--limit"),
    (["--split", "dev2"], "split"),
    (["--episodes-at-once", "0"], "episodes_at_once"),
    (["--policy", "openai"], "--base-url"),
    (["--policy", "nomodule"], "MODULE:FACTORY"),
    (["--policy", "json:nothing_here"], "no callable 'nothing_here'"),
    (["--policy", "no_such_module_xyz:make"], "cannot import"),
    (["--policy-kwargs", "[1]", "--policy", "json:dumps"], "JSON object"),
    (["--policy", "openai", "--base-url", "127.0.0.1:1", "--model", "m", "--extra-body", "{"],
     "--extra-body is not valid JSON"),
    (["--policy", "openai", "--base-url", "http://127.0.0.1:1/v1", "--model", "m"],
     "cannot reach http://127.0.0.1:1/v1"),
    (["--extra-body", "{}"], "--extra-body only applies to --policy openai"),
    (["--judge-url", "http://127.0.0.1:1"], "--judge-model"),
    (["--task-id", "nope"], "nope"),
])
def test_bad_settings_fail_before_anything_is_written(world_dir: Path, tmp_path: Path, capsys,
                                                      flags: list[str], field: str) -> None:
    out = tmp_path / "run"
    line = one_error_line(capsys, main(["eval", "--world", str(world_dir), "--out", str(out),
                                        "--no-progress", "--limit", "2", *flags]))
    assert field in line
    assert not out.exists()  # no run.json left behind to refuse the corrected command later


def test_a_refused_resume_names_the_field(world_dir: Path, tmp_path: Path, capsys) -> None:
    def run(*flags: str, limit: str = "2") -> int:
        return main(["eval", "--world", str(world_dir), "--limit", limit, "--out",
                     str(tmp_path / "run"), "--no-progress", *flags])

    assert run("--width", "2") == 0
    capsys.readouterr()
    line = one_error_line(capsys, run("--width", "4"))
    assert "spec.width (2 in the folder, 4 now)" in line
    line = one_error_line(capsys, run("--width", "2", "--entities-per-subtask", "3"))
    assert "policy.entities_per_subtask (2 in the folder, 3 now)" in line
    line = one_error_line(capsys, run("--width", "2", limit="3"))
    assert "tasks (2 in the folder, 3 now" in line
    line = one_error_line(capsys, run("--width", "2", "--split", "train"))
    assert "world.split ('test' in the folder, 'train' now)" in line


def test_resume_across_another_world_or_search_server_is_refused(world_dir: Path,
                                                                tmp_path: Path,
                                                                capsys) -> None:
    other = build_small_world(tmp_path / "other", seed=1)  # same name, other contents
    world, other_world = World.load(world_dir), World.load(other)
    assert world.name == other_world.name and world.card["world_id"] != other_world.card["world_id"]

    def run(world_path: Path, *flags: str, out: str = "run") -> int:
        return main(["eval", "--world", str(world_path), "--limit", "1", "--width", "2",
                     "--out", str(tmp_path / out), "--no-progress", *flags])

    with SearchServer.for_world(world) as srv, SearchServer.for_world(other_world) as srv2:
        assert run(world_dir, "--search-url", srv.url) == 0
        saved = json.loads((tmp_path / "run" / "run.json").read_text())
        assert saved["world"]["search_url"] == srv.url
        assert saved["world"]["world_id"] == world.card["world_id"]
        capsys.readouterr()
        line = one_error_line(capsys, run(world_dir))
        assert f"world.search_url ('{srv.url}' in the folder, None now)" in line
        line = one_error_line(capsys, run(other, "--search-url", srv2.url))
        assert "world.world_id" in line
        # a server that serves another world than --world names: refused before the run
        line = one_error_line(capsys, run(world_dir, "--search-url", srv2.url, out="run2"))
        assert other_world.card["world_id"] in line and not (tmp_path / "run2").exists()
    line = one_error_line(capsys, run(world_dir, "--search-url", "127.0.0.1:1", out="run3"))
    assert "--search-url" in line and "127.0.0.1:1" in line


def test_a_judge_that_is_down_ends_the_run_with_a_resume_hint(world_dir: Path, tmp_path: Path,
                                                              capsys) -> None:
    line = one_error_line(capsys, main([
        "eval", "--world", str(world_dir), "--limit", "1", "--out", str(tmp_path / "run"),
        "--no-progress", "--judge-url", "http://127.0.0.1:1", "--judge-model", "m"]))
    assert "127.0.0.1:1" in line and "re-run with the same --out" in line


def test_ctrl_c_says_how_to_resume(world_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    # A shell's background job ignores SIGINT, and children inherit that: give the child the
    # default disposition a user's terminal gives it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "wideseek_env.cli", "eval", "--world", str(world_dir),
         "--split", "train", "--repeats", "50", "--episodes-at-once", "1", "--out", str(out),
         "--no-progress"], stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not (out / "episodes.jsonl").exists() or not (out / "episodes.jsonl").stat().st_size:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip() == f"wideseek eval: interrupted; re-run with the same --out ({out}) to resume"


def test_api_keys_stay_out_of_argv(world_dir: Path, capsys) -> None:
    for flag in ("--api-key", "--judge-api-key"):
        with pytest.raises(SystemExit) as exit_:
            main(["eval", "--world", str(world_dir), "--out", "x", flag, "sk-123"])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert f"{flag}-env NAME" in err and "`ps`" in err


def test_your_own_policy_by_module_and_factory(world_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "my_agents.py").write_text(
        "from wideseek_env.policies import AgentAction\n"
        "class Answerer:\n"
        "    info = {'table': 'empty'}\n"
        "    def __init__(self, text):\n"
        "        self.text = text\n"
        "    def act(self, requests):\n"
        "        return [AgentAction(r.key, self.text) for r in requests]\n"
        "def make(text='no idea'):\n"
        "    return Answerer(text)\n")
    out = tmp_path / "run"
    args = ["eval", "--world", str(world_dir), "--limit", "2", "--out", str(out),
            "--no-progress", "--policy", f"{tmp_path / 'my_agents.py'}:make",
            "--policy-kwargs", '{"text": "| a |\\n|---|\\n| b |"}']
    assert main(args) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["policy"] == {"name": f"{tmp_path / 'my_agents.py'}:make",
                             "kwargs": {"text": "| a |\n|---|\n| b |"},
                             "info": {"table": "empty"}}
    sys.path.insert(0, str(tmp_path))
    try:  # the same module by its dotted name
        assert main([*args[:-4], "--out", str(tmp_path / "run2"), "--policy",
                     "my_agents:make"]) == 0
    finally:
        sys.path.remove(str(tmp_path))
    assert os.path.getsize(tmp_path / "run2" / "episodes.jsonl") > 0
