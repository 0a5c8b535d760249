"""The retrieval server on 127.0.0.1, driven the way real clients drive it.

- Search-R1's client: one ``requests.post(search_url, json={"queries", "topk",
  "return_scores": True})`` with every active rollout's query (hundreds), reading
  ``result[i][j]["document"]["contents"]`` and splitting the title off the first line.
- The WideSeek-R1 reference implementation's client: ``aiohttp`` posts to
  ``http://{server_addr}/retrieve`` and ``/access`` with a bare ``host:port``, reads
  ``contents`` and ``url`` of each document and ``contents`` of each page, ``null`` meaning no page.

Then the limits (bodies, heads, body and work time), world integrity over HTTP and the CLI
(worker processes, ``--world default``, a port in use, a damaged world).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from wideseek_env.search.base import SearchError
from wideseek_env.search.server import SearchServer
from wideseek_env.worlds import World, build_small_world, default_world_path


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_world(tmp_path_factory.mktemp("w") / "small")


@pytest.fixture(scope="module")
def world(world_dir: Path) -> World:
    return World.load(world_dir)


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[SearchServer]:
    with SearchServer.for_world(world, request_timeout_s=5.0) as srv:
        yield srv


def queries_of(world: World, n: int) -> list[str]:
    names = sorted({r[0] for s in ("train", "test") for t in world.tasks(s) for r in t.gold.rows})
    return [names[i % len(names)] + ("" if i < len(names) else f" {i}") for i in range(n)]


# ------------------------------------------------------------------------ Search-R1's client


def search_r1_batch_search(search_url: str, queries: list[str], topk: int | None) -> list[list]:
    """What Search-R1's generation manager does with a batch: one request, then per document
    the title is the first line of ``contents`` and the text the rest."""
    payload = {"queries": queries, "topk": topk, "return_scores": True}
    results = requests.post(search_url, json=payload, timeout=60).json()["result"]
    out = []
    for result in results:
        docs = []
        for item in result:
            content = item["document"]["contents"]
            docs.append((content.split("\n")[0], "\n".join(content.split("\n")[1:]),
                         item["score"]))
        out.append(docs)
    return out


def test_search_r1_client_sends_hundreds_of_queries_in_one_request(world: World,
                                                                   server: SearchServer) -> None:
    queries = queries_of(world, 300)  # more than the old server's 64-query cap
    got = search_r1_batch_search(f"{server.url}/retrieve", queries, topk=3)
    expected = world.backend().search(queries, k=3)
    assert len(got) == 300
    assert [[(f'"{h.title}"', h.snippet, h.score) for h in hits] for hits in expected] == got


@pytest.mark.parametrize("topk", [None, 0])
def test_topk_null_or_zero_means_the_server_default(world: World, server: SearchServer,
                                                    topk: int | None) -> None:
    got = search_r1_batch_search(f"{server.url}/retrieve", queries_of(world, 2), topk=topk)
    assert [len(docs) for docs in got] == [3, 3]  # the server's --topk (default 3)


# ------------------------------------------------- the WideSeek-R1 reference implementation


async def reference_client_calls(server_addr: str, query: str, urls: list[str]) -> tuple:
    """The reference implementation's local-server client shape (aiohttp, bare host:port)."""
    import aiohttp

    async with aiohttp.ClientSession(trust_env=False) as session:
        async with session.post(f"http://{server_addr}/retrieve",
                                json={"queries": [query], "topk": 3, "return_scores": False},
                                ) as response:
            response.raise_for_status()
            res = await response.json()
            search = [{"documents": [r["contents"] for r in result],
                       "urls": [r["url"] for r in result]} for result in res["result"]]
        async with session.post(f"http://{server_addr}/access", json={"urls": urls}) as response:
            response.raise_for_status()
            res = await response.json()
            pages = [r["contents"] if r is not None else "" for r in res["result"]]
    return search, pages


def test_reference_implementation_client(world: World, server: SearchServer) -> None:
    task = world.tasks("test")[0]
    name, url = task.gold.rows[0][0], task.meta["row_urls"][0]
    addr = server.url.removeprefix("http://")
    search, pages = asyncio.run(reference_client_calls(
        addr, name, [url, "https://nowhere.example/x"]))
    assert url in search[0]["urls"] and len(search[0]["documents"]) == 3
    assert search[0]["documents"][0].startswith('"')
    local = world.backend().access(url)
    assert pages == [local.text, ""]  # the unknown URL came back as null
    raw = requests.post(f"{server.url}/access", json={"urls": [url, "x"], "max_chars": 10},
                        timeout=5).json()["result"]
    assert raw[1] is None
    assert raw[0]["contents"] == local.text[:10] and raw[0]["next_offset"] == 10
    assert raw[0]["total_chars"] == local.total_chars and raw[0]["title"] == local.title


# ------------------------------------------------------------------------ bad requests, limits


@pytest.mark.parametrize("path,body", [
    ("/retrieve", {"queries": ["a"], "topk": -1}),
    ("/retrieve", {"queries": ["a"], "topk": 101}),
    ("/retrieve", {"queries": ["a"], "topk": "3"}),
    ("/retrieve", {"queries": [1, 2]}),
    ("/retrieve", ["not", "an", "object"]),
    ("/access", {"urls": 5}),
    ("/access", {"urls": ["u"], "offset": -1}),
    ("/access", {"urls": ["u"], "max_chars": 0}),
])
def test_bad_requests_get_400_with_the_reason(server: SearchServer, path: str, body) -> None:
    r = requests.post(f"{server.url}{path}", json=body, timeout=5)
    assert r.status_code == 400 and r.json()["error"]


def raw_http(url: str, data: bytes, *, read_timeout_s: float = 5.0) -> bytes:
    """Send raw bytes to the server and return everything it answers before closing."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout_s) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


@pytest.fixture()
def strict_server(world: World) -> Iterator[SearchServer]:
    with SearchServer.for_world(world, max_body_bytes=1000, request_timeout_s=0.5,
                                head_timeout_s=0.5) as srv:
        yield srv


def test_no_header_lets_a_large_body_through(strict_server: SearchServer) -> None:
    url = f"{strict_server.url}/retrieve"
    big = json.dumps({"queries": ["a" * 5000]}).encode()
    assert requests.post(url, data=big, timeout=5).status_code == 413
    # chunked: no Content-Length at all, so the bytes are counted as they arrive
    assert requests.post(url, data=iter([big[:600], big[600:]]), timeout=5).status_code == 413
    for length in (b"-1", b"abc", b"10 20"):
        answer = raw_http(strict_server.url, b"POST /retrieve HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: " + length + b"\r\n\r\n" + big)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    small = requests.post(url, json={"queries": ["Lithium"]}, timeout=5)
    assert small.status_code == 200  # and the server still serves


def test_silent_and_slow_clients_are_cut_off(strict_server: SearchServer) -> None:
    t0 = time.monotonic()
    assert raw_http(strict_server.url, b"") == b""  # connects, says nothing: closed
    assert raw_http(strict_server.url, b"POST /retrieve HTTP/1.1\r\nHost: x\r\n") == b""
    assert time.monotonic() - t0 < 4  # 0.5 s each, not the socket's 5 s read timeout
    slow_body = raw_http(strict_server.url, b"POST /retrieve HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 100\r\n\r\n{\"queries\"")
    assert slow_body.startswith(b"HTTP/1.1 408")


class SlowBackend:
    """A backend whose every search call takes 0.2 s, counting its calls."""

    def __init__(self, backend) -> None:
        self.backend, self.calls = backend, 0

    def search(self, queries, k=3):
        self.calls += 1
        time.sleep(0.2)
        return self.backend.search(queries, k)

    def access(self, url, *, offset=0, max_chars=25_000):
        return self.backend.access(url, offset=offset, max_chars=max_chars)


def test_a_timed_out_request_frees_its_worker(world: World) -> None:
    slow = SlowBackend(world.backend())
    with SearchServer(slow, request_timeout_s=0.3, threads=1) as srv:
        t0 = time.monotonic()
        r = requests.post(f"{srv.url}/retrieve", json={"queries": ["Oslo"] * 640}, timeout=10)
        assert r.status_code == 504 and time.monotonic() - t0 < 2
        time.sleep(0.6)  # the job's thread stops at its next chunk of 64 queries
        assert slow.calls <= 3  # not all 10 chunks
        ok = requests.post(f"{srv.url}/retrieve", json={"queries": ["Oslo"]}, timeout=10)
        assert ok.status_code == 200  # the only thread is free again


def test_concurrent_clients_get_the_in_process_answers(world: World,
                                                       server: SearchServer) -> None:
    from wideseek_env.search.http import HttpSearchBackend

    queries = queries_of(world, 40)
    expected = world.backend().search(queries, k=3)
    client = HttpSearchBackend(server.url, timeout_s=10)

    def one(i: int) -> bool:
        return client.search([queries[i % 40]], k=3)[0] == expected[i % 40]

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert all(pool.map(one, range(96)))


# ------------------------------------------------------------------------ world integrity


def test_health_reports_world_identity_and_integrity(world: World, server: SearchServer) -> None:
    health = requests.get(f"{server.url}/health?verify=full", timeout=5).json()
    assert health["status"] == "ok" and health["world"] == world.name
    assert health["world_id"] == world.card["world_id"] and len(health["world_id"]) == 16
    assert health["integrity"]["ok"] and health["integrity"]["verify"] == "full"
    assert health["integrity"]["files_checked"] == len(world.card["files"])


def test_a_world_damaged_under_a_running_server_is_reported(world_dir: Path,
                                                            tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(world_dir, copy)
    world = World.load(copy)
    task = world.tasks("test")[0]
    with SearchServer.for_world(world) as srv:
        assert requests.get(f"{srv.url}/health", timeout=5).status_code == 200
        pages = copy / "corpus" / "pages.bin"
        data = bytearray(pages.read_bytes())
        ordinal = world.backend().store.ordinal(task.meta["row_urls"][0])
        start = int(world.backend().store._offsets[ordinal])
        data[start + 5: start + 25] = b"\x00" * 20  # flip bytes inside one page's record
        pages.write_bytes(bytes(data))
        r = requests.post(f"{srv.url}/access", json={"urls": [task.meta["row_urls"][0]]},
                          timeout=5)
        assert r.status_code == 500 and r.json()["world_damaged"] is True
        assert "pages.bin" in r.json()["error"]
        health = requests.get(f"{srv.url}/health", timeout=5)
        assert health.status_code == 503 and health.json()["status"] == "damaged"
        # every later request says so too, instead of serving a half-broken world
        again = requests.post(f"{srv.url}/retrieve", json={"queries": ["x"]}, timeout=5)
        assert again.status_code == 500 and again.json()["world_damaged"] is True
    with SearchServer.for_world(World.load(world_dir)) as srv:
        pass  # the intact original still serves
    pages.write_bytes(bytes(data[: len(data) // 2]))  # truncated: seen by the size check
    with pytest.raises(ValueError, match=r"pages\.bin: \d+ bytes where"):
        World.load(copy, verify="sizes")


# ------------------------------------------------------------------------ the CLI


def start_cli(args: list[str], env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """``wideseek serve-search --port 0 ARGS`` in its own process group; (process, URL)."""
    proc = subprocess.Popen([sys.executable, "-m", "wideseek_env.cli", "serve-search",
                             "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
                            start_new_session=True)
    line = proc.stdout.readline()
    match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
    url = match.group(1) if match else ""
    deadline = time.monotonic() + 60
    while match and time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=5).ok:
                return proc, url
        except requests.RequestException:  # the socket listens before the workers serve
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the supervisor and its workers
    proc.wait()
    raise AssertionError(f"no server from {line!r}: {proc.stderr.read()[-2000:]}")


@pytest.mark.slow
def test_cli_with_two_workers_and_the_default_world(world: World, world_dir: Path,
                                                    tmp_path: Path, stop_process_group) -> None:
    # `--world default` resolves through the cache; a small world stands in for the default one.
    default_world_path(tmp_path).symlink_to(world_dir, target_is_directory=True)
    proc, url = start_cli(["--world", "default", "--workers", "2"],
                          env={"WIDESEEK_CACHE": str(tmp_path)})
    try:
        health = requests.get(f"{url}/health", timeout=5).json()
        assert health["workers"] == 2 and health["world_id"] == world.card["world_id"]
        queries = queries_of(world, 20)
        expected = search_r1_batch_search(f"{url}/retrieve", queries, 3)
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda _: search_r1_batch_search(f"{url}/retrieve", queries, 3),
                                range(16)))
        assert all(g == expected for g in got)
    finally:
        stop_process_group(proc)


def test_cli_refuses_a_taken_port_and_a_damaged_world(world_dir: Path, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "wideseek_env.cli", "serve-search",
                              "--world", str(world_dir), "--port", str(port)],
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and f"127.0.0.1:{port}" in out.stderr
    assert "error:" in out.stderr and "Traceback" not in out.stderr
    import shutil

    copy = tmp_path / "damaged"
    shutil.copytree(world_dir, copy)
    (copy / "tasks" / "test.jsonl").write_text("")
    out = subprocess.run([sys.executable, "-m", "wideseek_env.cli", "serve-search",
                          "--world", str(copy), "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "tasks/test.jsonl" in out.stderr and "damaged" in out.stderr


def test_server_stays_up_while_a_client_holds_connections(server: SearchServer) -> None:
    held = [socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
            for _ in range(50)]
    try:
        results: list[int] = []
        t = threading.Thread(target=lambda: results.append(requests.post(
            f"{server.url}/retrieve", json={"queries": ["Oslo"]}, timeout=5).status_code))
        t.start()
        t.join(timeout=10)
        assert results == [200]  # 50 idle sockets hold no thread and no worker
    finally:
        for s in held:
            s.close()


def test_unknown_route_and_method(server: SearchServer) -> None:
    assert requests.get(f"{server.url}/nope", timeout=5).status_code == 404
    assert requests.get(f"{server.url}/retrieve", timeout=5).status_code == 405
    with pytest.raises(SearchError):
        from wideseek_env.search.http import HttpSearchBackend

        HttpSearchBackend(f"{server.url}/nope", retries=0).search(["x"])


class ThreadRecorder:
    """A backend that records the name of the thread each search ran on."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.threads: list[str] = []

    def search(self, queries, k=3):
        self.threads.append(threading.current_thread().name)
        return self.backend.search(queries, k)

    def access(self, url, *, offset=0, max_chars=25_000):
        self.threads.append(threading.current_thread().name)
        return self.backend.access(url, offset=offset, max_chars=max_chars)


def test_short_one_query_requests_are_answered_without_the_thread_hop(world: World) -> None:
    """A /retrieve of one short query runs on the event loop (no search thread); several
    queries, a long query, /access, and any request with `inline_max_queries=0` go to a search
    thread. The answers are the same either way, errors included."""
    rec = ThreadRecorder(world.backend())
    expected = world.backend().search(["Lithium"], 3)
    with SearchServer(rec, inline_max_queries=1) as srv:
        def post(path: str, body: dict) -> requests.Response:
            return requests.post(f"{srv.url}{path}", json=body, timeout=10)

        one = post("/retrieve", {"queries": ["Lithium"], "topk": 3, "return_scores": True})
        assert [d["document"]["url"] for d in one.json()["result"][0]] == [
            h.url for h in expected[0]]
        post("/retrieve", {"query": "Lithium"})
        post("/retrieve", {"queries": ["Lithium", "Oxygen"]})
        post("/retrieve", {"queries": ["Lithium " * 200]})
        post("/access", {"urls": [expected[0][0].url]})
        assert post("/retrieve", {"queries": ["Lithium"], "topk": -1}).status_code == 400
        names = rec.threads
        assert [n.startswith("search") for n in names] == [False, False, True, True, True]
    rec.threads.clear()
    with SearchServer(rec, inline_max_queries=0) as srv:
        requests.post(f"{srv.url}/retrieve", json={"queries": ["Lithium"]}, timeout=10)
    assert [n.startswith("search") for n in rec.threads] == [True]
