"""The OpenAI-compatible judge against a real HTTP server on 127.0.0.1 with scripted replies."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from wideseek_env.scoring import (
    Judge,
    JudgeError,
    OpenAIJudge,
    render_markdown_table,
    score_response,
)
from wideseek_env.tasks import ColumnEval, GoldTable, Task

SYNONYMS = {"town": "city", "nation": "country"}


def scripted_reply(prompt: str) -> str:
    """A stand-in judge model: prefix matching for cells, synonyms/prefixes for alignment."""
    if "Pairs:" in prompt:
        pairs = json.loads(prompt.split("Pairs:\n", 1)[1])
        scores = {
            k: int(v["response"].lower()[:4] == v["target"].lower()[:4]) for k, v in pairs.items()
        }
        return "Looked at each pair.\n```json\n" + json.dumps(scores) + "\n```"
    values = json.loads(re.search(r"LIST A:\n(.*)\n\nLIST B", prompt, re.S).group(1))
    reference = json.loads(re.search(r"LIST B:\n(.*)\n", prompt, re.S).group(1))
    mapping = {}
    for v in values:
        for r in reference:
            if SYNONYMS.get(v.lower()) == r or r.lower().startswith(v.lower()[:4]):
                mapping[v] = r
                break
    return "```json\n" + json.dumps(mapping) + "\n```"


class Server:
    """A chat-completions endpoint whose behaviour per request the test scripts."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.paths: list[str] = []
        self.plan: list[Callable[[str], tuple[int, str]]] = []  # consumed first, then default
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][0]["content"]
                server.prompts.append(prompt)
                server.paths.append(self.path)
                step = server.plan.pop(0) if server.plan else None
                status, content = step(prompt) if step else (200, scripted_reply(prompt))
                payload = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": content}}]}
                )
                data = payload.encode() if status == 200 else b'{"error": "scripted"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out (test_timeouts_raise)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def make_task() -> Task:
    pipeline = {
        "city": ColumnEval(("norm_str",), ("exact_match",)),
        "country": ColumnEval(("norm_str",), ("llm_judge",), "Same country."),
        "population": ColumnEval(("extract_number",), ("number_near",), 0.1),
    }
    gold = (
        ("Paris", "France", "2100000"),
        ("Berlin", "Germany", "3600000"),
        ("Rome", "Italy", "2800000"),
    )
    return Task(
        "j1",
        "q",
        "en",
        ("city",),
        tuple(pipeline),
        pipeline,
        GoldTable(("City", "Country", "Population"), gold),
    )


def test_judge_scores_columns_and_aligns_names_and_keys(server):
    judge = OpenAIJudge(server.url, "judge-model", backoff_s=0.01)
    assert isinstance(judge, Judge)
    answer = render_markdown_table(
        ["Town", "Nation", "Population"],
        [
            ["Paris, France", "France (FR)", "2100000"],
            ["Berlin", "Deutschland", "3600000"],
            ["Rome", "Italia", "2800000"],
        ],
    )
    record = score_response(make_task(), answer, judge=judge)
    # Columns: Town->city, Nation->country (one call); keys: "Paris, France"->"Paris" (one call);
    # country: one call for the column: "France (FR)" and "Italia" pass the prefix rule, "Deutschland" does not.
    assert len(server.prompts) == 3
    assert server.paths == ["/v1/chat/completions"] * 3
    assert record.item_precision == pytest.approx(8 / 9) and record.row_recall == pytest.approx(
        2 / 3
    )
    without = score_response(make_task(), answer)
    assert not without.parse_ok  # no judge: "town" is not "city"


def test_retries_server_errors_then_succeeds(server):
    server.plan = [lambda p: (500, ""), lambda p: (503, "")]
    judge = OpenAIJudge(server.url + "/v1", "m", backoff_s=0.01)
    assert judge.judge_column("c", ["abcd1", "zzz"], ["abcd2", "abc"]) == [1.0, 0.0]
    assert judge.stats.requests == 3 and judge.stats.retries == 2


def test_garbled_replies_score_zero_after_retries(server):
    server.plan = [lambda p: (200, "I think they match.")] * 3
    judge = OpenAIJudge(server.url + "/v1/chat/completions", "m", max_retries=2, backoff_s=0.01)
    assert judge.judge_column("c", ["a", "b"], ["a", "b"]) == [0.0, 0.0]
    assert judge.stats.unparsed == 1
    server.plan = [lambda p: (200, '```json\n{"idx_0": 1, "idx_1": "1", "idx_2": 7}\n```')]
    assert judge.judge_column("c", ["a", "b", "c", "d"], ["a", "b", "c", "d"]) == [
        1.0,
        1.0,
        1.0,
        0.0,
    ]


def test_client_errors_and_unreachable_servers_raise(server):
    server.plan = [lambda p: (401, "")]
    with pytest.raises(JudgeError, match="HTTP 401"):
        OpenAIJudge(server.url, "m").judge_column("c", ["a"], ["a"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(JudgeError, match="failed after 3 attempts"):
        OpenAIJudge(f"http://127.0.0.1:{port}", "m", max_retries=2, backoff_s=0.01).judge_column(
            "c", ["a"], ["a"]
        )


def test_timeouts_raise(server):
    def slow(prompt: str) -> tuple[int, str]:
        time.sleep(0.5)
        return 200, scripted_reply(prompt)

    server.plan = [slow, slow]
    judge = OpenAIJudge(server.url, "m", timeout_s=0.1, max_retries=1, backoff_s=0.01)
    with pytest.raises(JudgeError, match="Timeout"):
        judge.judge_column("c", ["a"], ["a"])


def test_score_command_uses_the_judge(server, tmp_path):
    from wideseek_env.cli import main
    from wideseek_env.tasks import write_widesearch

    task = make_task()
    write_widesearch([task], tmp_path / "t.jsonl", tmp_path / "gold")
    answer = render_markdown_table(
        ["City", "Country", "Population"],
        [["Paris", "France (FR)", "2100000"], ["Berlin", "Deutschland", "3600000"]],
    )
    (tmp_path / "r.jsonl").write_text(
        json.dumps({"instance_id": "j1", "response": answer, "run": 0}) + "\n"
    )
    code = main([
        "score", "--tasks", str(tmp_path / "t.jsonl"), "--gold-dir", str(tmp_path / "gold"),
        "--responses", str(tmp_path / "r.jsonl"), "--out", str(tmp_path / "o.jsonl"), "--quiet",
        "--judge-url", server.url, "--judge-model", "m",
    ])  # fmt: skip
    assert code == 0
    (line,) = (tmp_path / "o.jsonl").read_text().splitlines()
    # Keys aligned (1 call), the country column judged (1 call): "France (FR)" passes.
    assert len(server.prompts) == 2
    assert json.loads(line)["item_precision"] == pytest.approx(5 / 6)
    server.plan = [lambda p: (404, "")]
    code = main([
        "score", "--tasks", str(tmp_path / "t.jsonl"), "--gold-dir", str(tmp_path / "gold"),
        "--responses", str(tmp_path / "r.jsonl"), "--out", str(tmp_path / "o.jsonl"), "--quiet",
        "--judge-url", server.url, "--judge-model", "m",
    ])  # fmt: skip
    assert code == 3
