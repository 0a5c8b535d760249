"""Search stack: local index, the real HTTP server on 127.0.0.1, the client, failure recovery."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from wideseek_env.search.base import SearchBackend, SearchError
from wideseek_env.search.docstore import DocStore, DocStoreWriter, StoredPage
from wideseek_env.search.engines import build_engine, open_engine
from wideseek_env.search.http import HttpSearchBackend
from wideseek_env.search.local import LocalSearchBackend, make_snippet
from wideseek_env.search.server import SearchServer
from wideseek_env.worlds import World, build_small_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.load(build_small_world(tmp_path_factory.mktemp("w") / "small"))


@pytest.fixture()
def server(world: World):
    srv = SearchServer(world.backend(), "127.0.0.1", 0, request_timeout_s=5.0)
    srv.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _queries(world: World) -> list[str]:
    names = [r[0] for t in world.tasks("train")[:6] for r in t.gold.rows[:3]]
    return [*names, "capital of the country", "time zone Europe", "no-such-wordxyz"]


def test_local_backend_is_a_search_backend(world: World) -> None:
    backend = world.backend()
    assert isinstance(backend, SearchBackend)
    assert world.backend() is backend  # opened once, then shared
    task = world.tasks("test")[0]
    name, url = task.gold.rows[0][0], task.meta["row_urls"][0]
    hits = backend.search([name], k=3)[0]
    assert url in [h.url for h in hits]
    assert all(h.score > 0 and h.title and h.snippet for h in hits)
    page = backend.access(url, max_chars=20)
    assert len(page.text) == 20 and page.next_offset == 20
    rest = backend.access(url, offset=page.next_offset, max_chars=10**6)
    assert rest.next_offset is None and rest.offset + len(rest.text) == rest.total_chars
    with pytest.raises(SearchError, match="no page"):
        backend.access("https://nowhere.example/x")
    with pytest.raises(SearchError):
        backend.search(["x"], k=0)


def test_snippet_prefers_matching_sentences() -> None:
    text = "Oslo is a city.\nThe country of Oslo is Norway.\nThe population of Oslo is 709,037."
    assert "709,037" in make_snippet(text, "population of Oslo", max_chars=40)


def test_engines_agree_on_an_easy_corpus(tmp_path: Path) -> None:
    writer = DocStoreWriter(tmp_path / "corpus")
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    for i, w in enumerate(words):
        writer.add(StoredPage(id=str(i), url=f"u://{i}", title=f"{w} page",
                              text=f"{w} is the word of page {i}. " + " ".join(words[:3])))
    writer.close()
    store = DocStore(tmp_path / "corpus")
    triples = [(i, p.title, p.text) for i, p in enumerate(store)]
    for name in ("tantivy", "bm25s"):
        build_engine(name, triples, tmp_path / name)
        engine = open_engine(name, tmp_path / name)
        ranked = engine.rank(["delta", "golf hotel", "zzz"], 2)
        assert ranked[0][0][0] == 3
        assert {o for o, _ in ranked[1]} == {6, 7}
        assert ranked[2] == []


def test_server_results_equal_in_process(world: World, server: SearchServer) -> None:
    client = HttpSearchBackend(server.url, timeout_s=5)
    local = world.backend()
    queries = _queries(world)
    assert client.search(queries, k=5) == local.search(queries, k=5)
    url = world.tasks("train")[0].meta["row_urls"][0]
    assert client.access(url, offset=3, max_chars=50) == local.access(url, offset=3, max_chars=50)
    with pytest.raises(SearchError, match="no page"):
        client.access("https://nowhere.example/x")
    health = requests.get(f"{server.url}/health", timeout=5).json()
    assert health["status"] == "ok"


def test_retrieve_follows_search_r1_convention(server: SearchServer) -> None:
    r = requests.post(f"{server.url}/retrieve",
                      json={"queries": ["Lithium", "Boron"], "topk": 2, "return_scores": True},
                      timeout=5)
    body = r.json()
    assert r.status_code == 200 and len(body["result"]) == 2
    item = body["result"][0][0]
    assert set(item) == {"document", "score"}
    assert {"id", "contents"} <= set(item["document"])
    assert item["document"]["contents"].startswith('"')
    plain = requests.post(f"{server.url}/retrieve", json={"queries": ["Lithium"], "topk": 1},
                          timeout=5).json()
    assert "contents" in plain["result"][0][0]


@pytest.mark.parametrize("body,status", [
    ({"queries": "x" * 10, "topk": 0}, 400),
    ({"queries": ["a"] * 65, "topk": 3}, 400),
    ({"queries": [1, 2], "topk": 3}, 400),
    ({"urls": 5}, 400),
])
def test_server_rejects_bad_requests(server: SearchServer, body: dict, status: int) -> None:
    path = "/access" if "urls" in body else "/retrieve"
    r = requests.post(f"{server.url}{path}", json=body, timeout=5)
    assert r.status_code == status and "error" in r.json()


def test_server_bounds_body_size(world: World) -> None:
    srv = SearchServer(world.backend(), "127.0.0.1", 0, max_body_bytes=1000)
    srv.start()
    try:
        r = requests.post(f"{srv.url}/retrieve", data=json.dumps({"queries": ["a" * 5000]}),
                          headers={"Content-Type": "application/json"}, timeout=5)
        assert r.status_code == 413
        r = requests.post(f"{srv.url}/retrieve", data=b"{not json", timeout=5)
        assert r.status_code == 400
    finally:
        srv.shutdown()
        srv.server_close()


def test_server_serves_concurrent_clients(world: World, server: SearchServer) -> None:
    local = world.backend()
    queries = _queries(world)
    expected = local.search(queries, k=3)
    client = HttpSearchBackend(server.url, timeout_s=10)

    def one(i: int) -> bool:
        q = queries[i % len(queries)]
        return client.search([q], k=3)[0] == expected[i % len(queries)]

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert all(pool.map(one, range(96)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_cli_server(world: World, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wideseek_env.cli", "serve-search", "--world", str(world.path),
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
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
    client = HttpSearchBackend(f"http://127.0.0.1:{port}", timeout_s=2, retries=2, backoff_s=0.05)
    try:
        assert client.search(["Lithium"], k=1)[0]
        proc.kill()
        proc.wait(timeout=10)
        t0 = time.monotonic()
        with pytest.raises(SearchError, match="unavailable after 3 attempts"):
            client.search(["Lithium"], k=1)
        with pytest.raises(SearchError):
            client.access("https://world.wideseek.local/elements/Lithium")
        assert time.monotonic() - t0 < 10  # an error, not a hang
        proc = _start_cli_server(world, port)
        assert client.search(["Lithium"], k=1)[0][0].title == "Lithium"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_local_open_names_missing_index(world: World) -> None:
    with pytest.raises(FileNotFoundError, match="bm25s"):
        LocalSearchBackend.open(world.path, "bm25s")
