"""Coalescing in the HTTP search client, against the real retrieval app on 127.0.0.1.

The app runs behind a small ASGI layer that records every ``/retrieve`` request as the server
receives it, can hold requests at a gate (so that calls provably arrive while a request is in
flight) and can answer in the app's place (errors). Every caller's hits are compared with the
in-process backend's for the same queries and ``k``.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wideseek_env.search.app import ServerLimits, WorldState, create_app
from wideseek_env.search.base import DamagedWorldError, SearchError
from wideseek_env.search.http import HttpSearchBackend
from wideseek_env.search.server import SearchServer, ThreadedServer
from wideseek_env.worlds import World, build_small_world


class Recorder:
    """ASGI layer in front of ``app``: records each ``/retrieve`` body, holds requests while
    ``gate`` is clear, answers ``answer(body)`` instead of the app when that is not None."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.bodies: list[dict[str, Any]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.answer: Callable[[dict[str, Any]], tuple[int, Any] | None] = lambda body: None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/retrieve":
            await self.app(scope, receive, send)
            return
        raw, more = b"", True
        while more:
            message = await receive()
            raw += message.get("body", b"")
            more = message.get("more_body", False)
        body = json.loads(raw)
        self.bodies.append(body)
        while not self.gate.is_set():
            await asyncio.sleep(0.005)
        answer = self.answer(body)
        if answer is not None:
            data = json.dumps(answer[1]).encode()
            await send({"type": "http.response.start", "status": answer[0],
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": data})
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}

        await self.app(scope, replay, send)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.load(build_small_world(tmp_path_factory.mktemp("w") / "small"))


@pytest.fixture(scope="module")
def names(world: World) -> list[str]:
    found = sorted({r[0] for s in ("train", "test") for t in world.tasks(s) for r in t.gold.rows})
    return found + [f"{n} {w}" for n in found[:20] for w in ("history", "2019", "list")]


def serve(world: World, max_body_bytes: int = 1 << 20) -> tuple[ThreadedServer, Recorder]:
    app = create_app(world.backend(), limits=ServerLimits(max_body_bytes=max_body_bytes),
                     world=WorldState(world.path, world.card))
    recorder = Recorder(app)
    return ThreadedServer(recorder), recorder


@pytest.fixture()
def server(world: World) -> Iterator[tuple[ThreadedServer, Recorder]]:
    srv, recorder = serve(world)
    with srv:
        yield srv, recorder


def start(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``target`` in a thread; its result or exception lands in the returned dict."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = target()
        except BaseException as err:  # the test inspects it
            out["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def gated_round(client: HttpSearchBackend, recorder: Recorder, first: list[str],
                calls: list[tuple[list[str], int]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One call of ``first`` held at the server, then ``calls`` made while it is in flight
    (all queued before the gate opens); returns every call's outcome once all have ended."""
    recorder.gate.clear()
    lead, lead_out = start(lambda: client.search(first, 3))
    wait_for(lambda: len(recorder.bodies) == 1, "the first request at the server")
    threads = [start(lambda c=c: client.search(*c)) for c in calls]
    stats = client.coalesce_stats
    if stats() is not None:
        wait_for(lambda: stats().calls == 1 + len(calls), "every call queued")
    else:
        wait_for(lambda: len(recorder.bodies) == 1 + len(calls), "every request at the server")
    recorder.gate.set()
    for thread, _ in [(lead, lead_out), *threads]:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a caller still waits"
    return lead_out, [out for _, out in threads]


def test_calls_made_during_a_request_go_out_together_each_with_its_own_results(
        world: World, names: list[str], server: tuple[ThreadedServer, Recorder]) -> None:
    srv, recorder = server
    local = world.backend()
    client = HttpSearchBackend(srv.url, in_flight=1, timeout_s=10)
    calls = [(names[i: i + 1 + i % 3], 3) for i in range(12)]  # 1-3 queries each, 24 in all
    lead, outs = gated_round(client, recorder, [names[40]], calls)
    assert lead["result"] == local.search([names[40]], 3)
    for (queries, k), out in zip(calls, outs):
        assert out["result"] == local.search(queries, k), queries
    assert len(recorder.bodies) == 2  # the held request, then one for all twelve calls
    assert sorted(recorder.bodies[1]["queries"]) == sorted(q for qs, _ in calls for q in qs)
    assert client.coalesce_stats().requests == 2


def test_mixed_k_one_request_per_k_and_max_batch_respected(
        world: World, names: list[str], server: tuple[ThreadedServer, Recorder]) -> None:
    srv, recorder = server
    local = world.backend()
    client = HttpSearchBackend(srv.url, in_flight=1, timeout_s=10, max_batch=8)
    calls = [(names[i: i + 2], 2 + 3 * (i % 2)) for i in range(6)]  # k 2 and 5, 12 queries
    calls.append((names[:20], 4))  # over max_batch: sent alone, split in 3 requests
    lead, outs = gated_round(client, recorder, [names[40]], calls[:6])
    assert lead["result"] == local.search([names[40]], 3)
    for (queries, k), out in zip(calls, outs):
        assert out["result"] == local.search(queries, k)
    # 12 queued queries over max_batch 8: two batches (6 then 6), each one request per k
    later = recorder.bodies[1:]
    assert all(len(b["queries"]) <= 8 for b in later)
    assert sorted(b["topk"] for b in later) == [2, 2, 5, 5]
    for k in (2, 5):
        sent = [q for b in later if b["topk"] == k for q in b["queries"]]
        assert sorted(sent) == sorted(q for qs, kk in calls[:6] if kk == k for q in qs)
    before = len(recorder.bodies)
    assert client.search(calls[6][0], 4) == local.search(calls[6][0], 4)
    assert [len(b["queries"]) for b in recorder.bodies[before:]] == [8, 8, 4]


def test_many_threads_at_once_each_get_their_own_results(
        world: World, names: list[str], server: tuple[ThreadedServer, Recorder]) -> None:
    srv, recorder = server
    local = world.backend()
    client = HttpSearchBackend(srv.url, timeout_s=10, max_batch=16)  # the default in_flight
    wrong: list[tuple[list[str], int]] = []

    def worker(i: int) -> None:
        for j in range(15):
            queries = [names[(7 * i + 3 * j + n) % len(names)] for n in range(1 + (i + j) % 4)]
            k = (2, 3, 6)[(i + j) % 3]
            if client.search(queries, k) != local.search(queries, k):
                wrong.append((queries, k))

    threads = [start(lambda i=i: worker(i)) for i in range(16)]
    for thread, out in threads:
        thread.join(timeout=60)
        assert not thread.is_alive() and "error" not in out, out
    assert wrong == []
    stats = client.coalesce_stats()
    assert stats.calls == 16 * 15 and stats.requests == len(recorder.bodies)
    assert stats.queries == sum(len(b["queries"]) for b in recorder.bodies)
    assert all(len(b["queries"]) <= 16 for b in recorder.bodies)


@pytest.mark.parametrize("status,payload,error,message", [
    (503, {"error": "overloaded"}, SearchError, "HTTP 503: .*overloaded"),
    (200, {"result": [[{"id": "no contents"}]]}, SearchError, "answered 1 results for"),
    (500, {"error": "the world is damaged: x.bin", "world_damaged": True}, DamagedWorldError,
     "x.bin"),
])
def test_an_error_of_a_shared_request_reaches_every_caller_in_it(
        world: World, names: list[str], server: tuple[ThreadedServer, Recorder], status: int,
        payload: Any, error: type[Exception], message: str) -> None:
    srv, recorder = server
    client = HttpSearchBackend(srv.url, in_flight=1, timeout_s=10, retries=0)
    recorder.answer = lambda body: (status, payload) if len(body["queries"]) > 1 else None
    calls = [([names[i]], 3) for i in range(5)]
    lead, outs = gated_round(client, recorder, [names[40]], calls)
    assert lead["result"] == world.backend().search([names[40]], 3)  # alone: not failed
    assert len(recorder.bodies) == 2
    for out in outs:
        assert type(out.get("error")) is error, out
        assert re.search(message, str(out["error"])), out["error"]
    assert len({id(out["error"]) for out in outs}) == 5  # each caller raises its own


def test_a_request_refused_for_its_size_is_sent_again_by_each_caller(
        world: World, names: list[str]) -> None:
    srv, recorder = serve(world, max_body_bytes=700)
    local = world.backend()
    with srv:
        client = HttpSearchBackend(srv.url, in_flight=1, timeout_s=10, retries=0)
        long_query = names[3] + " " + "x" * 500  # fits alone, not with the others
        too_long = names[4] + " " + "y" * 800  # fits nowhere
        calls = [([long_query], 3), ([names[1]], 3), ([names[2]], 3), ([too_long], 3)]
        lead, outs = gated_round(client, recorder, [names[40]], calls)
    assert lead["result"] == local.search([names[40]], 3)
    for (queries, k), out in list(zip(calls, outs))[:3]:
        assert out.get("result") == local.search(queries, k)
    assert isinstance(outs[3]["error"], SearchError) and "HTTP 413" in str(outs[3]["error"])
    assert client.coalesce_stats().alone == 4


def test_a_hanging_server_fails_every_waiting_caller_in_bounded_time(
        world: World, names: list[str], server: tuple[ThreadedServer, Recorder]) -> None:
    srv, recorder = server
    client = HttpSearchBackend(srv.url, in_flight=1, timeout_s=1, retries=0)
    recorder.gate.clear()  # never opened while the calls run
    t0 = time.monotonic()
    threads = [start(lambda i=i: client.search([names[i]], 3)) for i in range(6)]
    for thread, _ in threads:
        thread.join(timeout=20)
    elapsed = time.monotonic() - t0
    recorder.gate.set()
    assert all(not t.is_alive() for t, _ in threads)
    assert all(isinstance(out.get("error"), SearchError) for _, out in threads)
    assert elapsed < 10  # one read timeout for the first request, one for the batch after it


def test_a_lone_caller_is_not_delayed(world: World, names: list[str]) -> None:
    with SearchServer.for_world(world) as srv:
        coalesced = HttpSearchBackend(srv.url, timeout_s=10)
        direct = HttpSearchBackend(srv.url, timeout_s=10, coalesce=False)
        times: dict[bool, list[float]] = {True: [], False: []}
        for i in range(60):  # alternating, so that load on the machine hits both alike
            for on, client in ((True, coalesced), (False, direct)):
                t0 = time.perf_counter()
                client.search([names[i % 30]], 3)
                times[on].append(time.perf_counter() - t0)
    assert coalesced.coalesce_stats().requests == 60  # each call went alone
    slower_s = statistics.median(times[True]) - statistics.median(times[False])
    assert slower_s < 0.002, f"a lone coalesced call takes {1000 * slower_s:.1f} ms longer"


def test_a_waiting_caller_interrupted_by_ctrl_c_leaves_nothing_behind(
        world: World, names: list[str], server: tuple[ThreadedServer, Recorder]) -> None:
    srv, recorder = server
    client = HttpSearchBackend(srv.url, in_flight=1, timeout_s=10)
    recorder.gate.clear()
    lead, lead_out = start(lambda: client.search([names[40]], 3))
    wait_for(lambda: len(recorder.bodies) == 1, "the first request at the server")

    def interrupt_once_queued() -> None:
        wait_for(lambda: client.coalesce_stats().calls == 2, "the main thread's call queued")
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C

    # Python's own Ctrl-C handler, as in an interactive run: a process started in the
    # background by a non-interactive shell (some CI runners) inherits SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    helper, helper_out = start(interrupt_once_queued)
    try:
        with pytest.raises(KeyboardInterrupt):
            client.search([names[41]], 3)  # queued behind the held request
    finally:  # a failure says whether the Ctrl-C was ever sent
        helper.join(timeout=30)
        signal.signal(signal.SIGINT, previous)
    assert "error" not in helper_out, helper_out
    other, other_out = start(lambda: client.search([names[42]], 3))
    wait_for(lambda: client.coalesce_stats().calls == 3, "another call queued")
    recorder.gate.set()
    for thread in (lead, other):
        thread.join(timeout=30)
    assert lead_out["result"] == world.backend().search([names[40]], 3)
    assert other_out["result"] == world.backend().search([names[42]], 3)
    assert [b["queries"] for b in recorder.bodies] == [[names[40]], [names[42]]]
    assert client.search([names[43]], 3) == world.backend().search([names[43]], 3)  # slot free


def test_turned_off_every_call_is_its_own_request(
        world: World, names: list[str], server: tuple[ThreadedServer, Recorder]) -> None:
    srv, recorder = server
    client = HttpSearchBackend(srv.url, coalesce=False, timeout_s=10)
    assert client.coalesce_stats() is None
    calls = [([names[i]], 3) for i in range(5)]
    lead, outs = gated_round(client, recorder, [names[40]], calls)
    assert len(recorder.bodies) == 6
    assert lead["result"] == world.backend().search([names[40]], 3)
    assert [out["result"] for out in outs] == [world.backend().search(q, k) for q, k in calls]


def test_the_eval_flag_turns_it_off(world: World) -> None:
    import argparse

    from wideseek_env.runner.cli import configure, load_world

    parser = argparse.ArgumentParser()
    configure(parser)
    with SearchServer.for_world(world) as srv:
        base = ["--world", str(world.path), "--search-url", srv.url, "--out", "x"]
        for flags, on in (([], True), (["--no-search-coalesce"], False)):
            _, backend, _ = load_world(parser.parse_args([*base, *flags]))
            assert (backend.coalescer is not None) is on
