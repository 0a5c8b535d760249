"""The HTTP search client against real servers on 127.0.0.1: ours, and servers in the shapes of
Search-R1 and of the WideSeek-R1 reference implementation (documents with ``contents`` only,
pages as ``{"contents"}`` or ``null``, a batch limit), and servers that answer garbage. Every
failure must be a ``SearchError`` (a tool error for the agent), never another exception."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wideseek_env.env.parallel import WideSeekEnv
from wideseek_env.search.base import DamagedWorldError, SearchError
from wideseek_env.search.http import HttpSearchBackend, base_url
from wideseek_env.search.server import SearchServer, ThreadedServer
from wideseek_env.worlds import World, build_small_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.load(build_small_world(tmp_path_factory.mktemp("w") / "small"))


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[SearchServer]:
    with SearchServer.for_world(world, request_timeout_s=5.0) as srv:
        yield srv


def serve(handler: Callable[[str, dict], tuple[int, object]]) -> ThreadedServer:
    """A real server on 127.0.0.1 whose every POST answer is ``handler(path, body)``."""

    async def endpoint(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        status, payload = handler(request.url.path, body)
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return Response(text, status_code=status, media_type="application/json")

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["POST", "GET"])])
    return ThreadedServer(app)


def test_addresses_in_every_form_reach_the_same_server(world: World,
                                                       server: SearchServer) -> None:
    host_port = server.url.removeprefix("http://")
    forms = [server.url, server.url + "/", f"{server.url}/retrieve", f"{server.url}/access",
             host_port]
    expected = world.backend().search(["Lithium"], k=2)
    for form in forms:
        client = HttpSearchBackend(form, timeout_s=5)
        assert client.base_url == server.url
        assert client.search(["Lithium"], k=2) == expected
    assert base_url("gpu0:8000") == "http://gpu0:8000"
    assert base_url("https://h/prefix/retrieve/") == "https://h/prefix"


def test_results_equal_the_local_backend(world: World, server: SearchServer) -> None:
    client = HttpSearchBackend(server.url, timeout_s=5, max_batch=7)  # 3 requests below
    local = world.backend()
    names = sorted({r[0] for t in world.tasks("train")[:8] for r in t.gold.rows})[:18]
    assert client.search(names, k=5) == local.search(names, k=5)
    url = world.tasks("train")[0].meta["row_urls"][0]
    assert client.access(url, offset=3, max_chars=50) == local.access(url, offset=3, max_chars=50)
    with pytest.raises(SearchError, match="no page at"):
        client.access("https://nowhere.example/x")


def search_r1_server(max_batch: int) -> Callable[[str, dict], tuple[int, object]]:
    """Search-R1's server shape: ``contents`` only ('"title"\\ntext'), ids but no URLs, a batch
    limit; access in the reference implementation's shape (whole page, or null)."""

    def handler(path: str, body: dict) -> tuple[int, object]:
        if path == "/retrieve":
            if len(body["queries"]) > max_batch:
                return 400, {"error": "batch too large"}
            topk = body.get("topk") or 3
            result = [[{"document": {"id": f"doc-{q}-{i}", "contents": f'"{q} {i}"\nText {i}.'},
                        "score": 1.0 / (i + 1)} for i in range(topk)] for q in body["queries"]]
            if not body.get("return_scores"):
                result = [[item["document"] for item in r] for r in result]
            return 200, {"result": result}
        pages = [{"contents": "Title line\n" + "x" * 100} if u.startswith("doc-") else None
                 for u in body["urls"]]
        return 200, {"result": pages}

    return handler


def test_reads_search_r1_and_reference_shapes_and_splits_batches() -> None:
    with serve(search_r1_server(max_batch=4)) as srv:
        client = HttpSearchBackend(srv.url, max_batch=4, retries=0)
        hits = client.search([f"q{i}" for i in range(10)], k=2)  # 3 requests of <= 4
        assert [len(h) for h in hits] == [2] * 10
        first = hits[9][0]
        assert (first.id, first.url, first.title, first.snippet) == (
            "doc-q9-0", "doc-q9-0", "q9 0", "Text 0.")
        page = client.access("doc-q1-0", offset=5, max_chars=20)  # sliced on this side
        assert page.text == ("Title line\n" + "x" * 100)[5:25]
        assert page.total_chars == 111 and page.title == "" and page.next_offset == 25
        assert client.access("doc-a").title == "Title line"
        with pytest.raises(SearchError, match="no page at 'elsewhere'"):
            client.access("elsewhere")
        too_big = HttpSearchBackend(srv.url, max_batch=50, retries=0)
        with pytest.raises(SearchError, match="HTTP 400: batch too large"):
            too_big.search([f"q{i}" for i in range(10)])


GARBAGE = [
    (200, "not json", "not JSON"),
    (200, {"result": "x"}, "'result' list"),
    (200, {"result": [[], []]}, "2 results for 1"),
    (200, {"result": [["a string"]]}, "must be an object"),
    (200, {"result": [[{"document": "x"}]]}, "'document' must be an object"),
    (200, {"result": [[{"id": "d"}]]}, "needs 'contents'"),
    (200, {"result": [[{"contents": "t\nx", "score": "high"}]]}, "'score' must be a number"),
    (200, {"result": ["x"]}, "must be a list"),
    (200, ["result"], "'result' list"),
    (404, {"detail": "Not Found"}, "HTTP 404"),
    (422, "<html>", "HTTP 422"),
    (503, "busy", "unavailable after 1 attempt"),
]


@pytest.mark.parametrize("status,payload,message", GARBAGE)
def test_every_malformed_answer_is_a_search_error(status: int, payload: object,
                                                  message: str) -> None:
    with serve(lambda path, body: (status, payload)) as srv:
        client = HttpSearchBackend(srv.url, retries=0)
        with pytest.raises(SearchError, match=message):
            client.search(["q"])
        with pytest.raises(SearchError):
            client.access("u")


def test_malformed_pages_are_search_errors() -> None:
    pages = iter([["a page as a string"], [{"title": "no contents"}],
                  [{"contents": "x", "offset": "0", "total_chars": 1}]])
    with serve(lambda path, body: (200, {"result": next(pages)})) as srv:
        client = HttpSearchBackend(srv.url, retries=0)
        for message in ("must be an object or null", "no 'contents'", "must be integers"):
            with pytest.raises(SearchError, match=message):
                client.access("u")


def test_connection_problems_are_search_errors_and_do_not_hang() -> None:
    t0 = time.monotonic()
    for address in ("127.0.0.1:1", "http://127.0.0.1:1/retrieve", "http://[::bad"):
        with pytest.raises(SearchError):
            HttpSearchBackend(address, retries=1, backoff_s=0.01, timeout_s=1).search(["q"])
    assert time.monotonic() - t0 < 10


def test_a_damaged_world_behind_the_server_ends_the_run() -> None:
    damaged = {"error": "the world is damaged: corpus/pages.bin", "world_damaged": True}
    with serve(lambda path, body: (500, damaged)) as srv, \
            pytest.raises(DamagedWorldError, match=r"pages\.bin"):
        HttpSearchBackend(srv.url, retries=3).search(["q"])


def test_the_env_turns_a_garbage_server_into_tool_errors(world: World) -> None:
    def answer(path: str, body: dict) -> tuple[int, object]:
        return (200, {"result": [[{"id": "no contents"}]]}) if path == "/retrieve" else (500, "x")

    with serve(answer) as srv:
        env = WideSeekEnv(world=world, backend=HttpSearchBackend(srv.url, retries=0), width=2)
        env.reset(seed=0)
        env.step({"lead": {"name": "delegate", "arguments": {"subtasks": ["a", "b"]}}})
        obs, _, _, _, infos = env.step({
            "sub_0": {"name": "search", "arguments": {"queries": ["x"]}},
            "sub_1": {"name": "access", "arguments": {"urls": ["u"]}}})
    assert obs["sub_0"][-1]["content"].startswith("Error: search failed")
    assert "needs 'contents'" in obs["sub_0"][-1]["content"]
    assert "Error" in obs["sub_1"][-1]["content"]
    assert infos["sub_0"]["tool_errors"] == 1 and infos["sub_1"]["tool_errors"] == 1


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_cli_server(world: World, port: int) -> subprocess.Popen:
    import requests

    proc = subprocess.Popen(
        [sys.executable, "-m", "wideseek_env.cli", "serve-search", "--world", str(world.path),
         "--port", str(port), "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not come up: {proc.stderr.read().decode()[-2000:]}")


def test_client_survives_server_death_and_recovers(world: World) -> None:
    port = _free_port()
    proc = _start_cli_server(world, port)
    client = HttpSearchBackend(f"127.0.0.1:{port}", timeout_s=2, retries=2, backoff_s=0.05)
    name = world.tasks("test")[0].gold.rows[0][0]
    try:
        assert client.search([name], k=1)[0]
        proc.kill()
        proc.wait(timeout=10)
        t0 = time.monotonic()
        with pytest.raises(SearchError, match=r"unavailable after 3 attempt\(s\)"):
            client.search([name], k=1)
        with pytest.raises(SearchError):
            client.access(world.tasks("test")[0].meta["row_urls"][0])
        assert time.monotonic() - t0 < 10  # an error, not a hang
        proc = _start_cli_server(world, port)
        assert client.search([name], k=1)[0][0].title
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_health_of_a_server_without_one(world: World) -> None:
    with serve(lambda path, body: (404, {"detail": "Not Found"})) as srv:
        assert HttpSearchBackend(srv.url, retries=0).health() == {}



def test_a_keep_alive_connection_the_server_closed_is_replaced_without_a_retry() -> None:
    """The server drops idle keep-alive connections (here after 1 s); a client that kept one
    must open a new connection, not fail and not spend one of its retries (retries=0 here)."""
    ports: list[int] = []

    async def endpoint(request: Request) -> Response:
        ports.append(request.client.port)
        return Response(json.dumps({"result": [[]]}), media_type="application/json")

    srv = ThreadedServer(Starlette(routes=[Route("/retrieve", endpoint, methods=["POST"])]))
    srv.server.config.timeout_keep_alive = 1
    with srv:
        client = HttpSearchBackend(srv.url, retries=0, coalesce=False)
        assert client.search(["a"]) == [[]] and client.search(["b"]) == [[]]
        assert len(ports) == 2 and ports[0] == ports[1]  # one kept-alive connection
        # The server closes it after 1 s of idling: wait until it has (not a fixed sleep, which
        # a loaded machine can outlast).
        deadline = time.monotonic() + 30
        while srv.server.server_state.connections:
            assert time.monotonic() < deadline, "the server never closed the idle connection"
            time.sleep(0.05)
        assert client.search(["c"]) == [[]]
        assert len(ports) == 3 and ports[2] != ports[0]
        client.close()


def test_a_base_url_with_a_path_keeps_its_path() -> None:
    seen: list[str] = []

    def answer(path: str, body: dict) -> tuple[int, object]:
        seen.append(path)
        return 200, {"result": [[] for _ in body.get("queries", [])]}

    with serve(answer) as srv:
        HttpSearchBackend(f"{srv.url}/api/v1", coalesce=False).search(["q"])
        HttpSearchBackend(f"{srv.url}/api/v1/retrieve", coalesce=False).search(["q"])
    assert seen == ["/api/v1/retrieve", "/api/v1/retrieve"]
