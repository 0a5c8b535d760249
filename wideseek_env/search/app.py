"""The retrieval server's ASGI application, served by uvicorn (:mod:`.server`).

Endpoints (JSON):

- ``POST /retrieve`` -- Search-R1's convention: ``{"queries": [...], "topk": k,
  "return_scores": bool}`` -> ``{"result": [[item, ...], ...]}``, one list per query, any batch
  size (bounded only by the body limit). An item is ``{"document": doc, "score": s}`` with
  ``return_scores``, else the document itself; ``doc`` has ``id``, ``url``, ``title``,
  ``snippet`` and ``contents`` (``"title"\\nsnippet``, as Search-R1's retrievers write it).
  ``topk`` missing, ``null`` or ``0`` means the server's default (as Search-R1's server does).
- ``POST /access`` -- the WideSeek-R1 reference implementation's shape: ``{"urls": [...]}`` ->
  ``{"result": [page | null, ...]}``, ``null`` for a URL the world does not have; a page has
  ``contents`` (the text) and beside it ``url``, ``title``, ``offset``, ``total_chars`` and
  ``next_offset``. ``offset`` (default 0) and ``max_chars`` (default 25,000) read a long page in
  parts.
- ``GET /health`` -> ``{"status": "ok", "world": ..., "world_id": ..., "integrity": {...},
  "pages": ..., "engine": ...}``; each call re-checks the world files' sizes (``?verify=full``:
  their SHA-256 too). A damaged world answers 503 with ``"status": "damaged"``, and every other
  endpoint then answers 500 with ``{"error": ..., "world_damaged": true}``.

Limits: a body over ``max_body_bytes`` is refused with 413 by counting the bytes as they arrive
(a ``Content-Length`` header can make it fail sooner, never let it through); the body must arrive
within ``request_timeout_s`` (else 408); the work must finish within ``request_timeout_s`` (else
504: the request's thread stops at its next chunk of 64 queries or 8 URLs, and the worker serves
others meanwhile). One exception: a ``/retrieve`` request of at most ``inline_max_queries``
queries (default 1) and ``inline_max_chars`` characters (512) is answered on the event loop
itself, without the hop to a search thread (~0.2 ms, as much as such a search costs); its work
is bounded by its size, so it needs no work timeout.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wideseek_env.search.base import DamagedWorldError, SearchBackend, SearchError

MAX_TOPK = 100
MAX_PAGE_CHARS = 1_000_000
SEARCH_CHUNK = 64
ACCESS_CHUNK = 8


class BadRequest(ValueError):
    """A client error: answered with ``status`` (400 unless said) and the message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Cancelled(Exception):
    """The request timed out; its thread stops at the next chunk."""


@dataclass(frozen=True)
class ServerLimits:
    """Limits of one server (see the module docstring)."""

    request_timeout_s: float = 30.0
    max_body_bytes: int = 1 << 20
    default_topk: int = 3
    threads: int = 4
    inline_max_queries: int = 1
    """A ``/retrieve`` request of at most this many queries, of at most ``inline_max_chars``
    characters in all, is answered on the event loop instead of a search thread (0: never)."""
    inline_max_chars: int = 512


@dataclass
class WorldState:
    """What the server knows about the world behind the backend (``None`` for a bare backend)."""

    path: Path | None = None
    card: Mapping[str, Any] | None = None
    damage: str | None = None

    def health(self, verify: str) -> dict[str, Any]:
        if self.path is None or self.card is None:
            return {}
        from wideseek_env.worlds.integrity import check_world

        report = check_world(self.path, self.card, "full" if verify == "full" else "sizes")
        if not report.ok and self.damage is None:
            self.damage = report.problems[0]
        out = report.as_dict()
        if self.damage is not None:
            out["ok"] = False
            out["problems"] = list(dict.fromkeys([self.damage, *out["problems"]]))
        return {"world": self.card.get("name"), "world_id": self.card.get("world_id"),
                "builder_version": self.card.get("builder_version"),
                "pages": self.card.get("counts", {}).get("pages"), "integrity": out}


def _int_or_default(body: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = body.get(key)
    if value is None or (value == 0 and key == "topk"):
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise BadRequest(f"'{key}' must be an integer in [{lo}, {hi}] (got {value!r})")
    return value


def _strings(body: Mapping[str, Any], plural: str, singular: str) -> list[str]:
    items = body.get(plural, body.get(singular))
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(q, str) for q in items):
        raise BadRequest(f"'{plural}' must be a list of strings")
    return items


def retrieve(backend: SearchBackend, body: Mapping[str, Any], limits: ServerLimits,
             cancel: threading.Event) -> dict[str, Any]:
    queries = _strings(body, "queries", "query")
    topk = _int_or_default(body, "topk", limits.default_topk, 1, MAX_TOPK)
    with_scores = bool(body.get("return_scores", False))
    result = []
    for j in range(0, len(queries), SEARCH_CHUNK):
        if cancel.is_set():
            raise Cancelled
        for hits in backend.search(queries[j: j + SEARCH_CHUNK], topk):
            items = []
            for h in hits:
                doc = {"id": h.id, "url": h.url, "title": h.title, "snippet": h.snippet,
                       "contents": f'"{h.title}"\n{h.snippet}'}
                items.append({"document": doc, "score": h.score} if with_scores else doc)
            result.append(items)
    return {"result": result}


def access(backend: SearchBackend, body: Mapping[str, Any], limits: ServerLimits,
           cancel: threading.Event) -> dict[str, Any]:
    urls = _strings(body, "urls", "url")
    offset = _int_or_default(body, "offset", 0, 0, 2**62)
    max_chars = _int_or_default(body, "max_chars", 25_000, 1, MAX_PAGE_CHARS)
    out: list[dict[str, Any] | None] = []
    for i, url in enumerate(urls):
        if i % ACCESS_CHUNK == 0 and cancel.is_set():
            raise Cancelled
        try:
            p = backend.access(url, offset=offset, max_chars=max_chars)
        except SearchError:
            out.append(None)  # the reference implementation's "no such page"
            continue
        out.append({"url": p.url, "title": p.title, "contents": p.text, "offset": p.offset,
                    "total_chars": p.total_chars, "next_offset": p.next_offset})
    return {"result": out}


Route_ = Callable[[SearchBackend, Mapping[str, Any], ServerLimits, threading.Event],
                  dict[str, Any]]
ROUTES: dict[str, Route_] = {"/retrieve": retrieve, "/access": access}


class SearchApp:
    """The ASGI application serving ``backend`` (and reporting on ``world``, when it is one).

    A plain ASGI callable (three routes need no framework; Starlette's request objects cost a
    third of a millisecond of CPU per request here). One timer per request bounds first the
    body and then the work: when it fires, the request's task is cancelled at its ``await`` and
    answered 408 or 504, and the work's thread is told to stop at its next chunk.
    """

    def __init__(self, backend: SearchBackend, *, limits: ServerLimits | None = None,
                 world: WorldState | None = None, info: Mapping[str, Any] | None = None) -> None:
        self.backend = backend
        self.limits = limits or ServerLimits()
        self.world = world or WorldState()
        self.info = dict(info or {})
        self.pool = ThreadPoolExecutor(self.limits.threads, thread_name_prefix="search")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"].rstrip("/") or "/"
        method = scope["method"]
        if path == "/health":
            if method != "GET":
                await _send_json(send, 405, {"error": f"use GET for {path}"})
            else:
                await self._health(scope, send)
            return
        route = ROUTES.get(path)
        if route is None:
            await _send_json(send, 404, {"error": f"no such endpoint: {method} {scope['path']}"})
        elif method != "POST":
            await _send_json(send, 405, {"error": f"use POST for {path}"})
        elif self.world.damage is not None:
            await _send_json(send, 500, {"error": f"the world is damaged: {self.world.damage}",
                                         "world_damaged": True})
        else:
            status, payload = await self._handle(route, scope, receive)
            await _send_json(send, status, payload)

    async def _handle(self, route: Route_, scope: dict[str, Any], receive: Any,
                      ) -> tuple[int, Any]:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            task.cancel()

        cancel = threading.Event()
        timer = loop.call_later(self.limits.request_timeout_s, expire)
        phase = "body"
        try:
            body = await self._read_body(scope, receive)
            timer.cancel()
            timer = loop.call_later(self.limits.request_timeout_s, expire)
            phase = "work"
            if route is retrieve and self._inline(body):
                return 200, route(self.backend, body, self.limits, cancel)
            result = await loop.run_in_executor(self.pool, route, self.backend, body,
                                                self.limits, cancel)
            return 200, result
        except asyncio.CancelledError:
            if not expired:
                raise  # the server is shutting down
            if hasattr(task, "uncancel"):
                task.uncancel()
            cancel.set()
            if phase == "body":
                return 408, {"error": "the body did not arrive in time"}
            return 504, {"error": f"request took over {self.limits.request_timeout_s} s"}
        except BadRequest as e:
            return e.status, {"error": str(e)}
        except SearchError as e:
            return 400, {"error": str(e)}
        except DamagedWorldError as e:
            self.world.damage = str(e)
            return 500, {"error": str(e), "world_damaged": True}
        except Exception as e:  # a backend bug: answer 500, keep serving, say what broke
            return 500, {"error": f"{type(e).__name__}: {e}"}
        finally:
            timer.cancel()

    def _inline(self, body: Mapping[str, Any]) -> bool:
        """Whether a ``/retrieve`` body is small enough to answer on the event loop: the hop to
        a search thread and back costs ~0.2 ms, as much as a short query's search, and a search
        of at most ``inline_max_chars`` characters is short enough not to need the work timeout
        (it holds this worker's loop for about a millisecond)."""
        lim = self.limits
        if lim.inline_max_queries <= 0:
            return False
        try:
            queries = _strings(body, "queries", "query")
        except BadRequest:
            return False  # answered 400 by the search thread, as before
        return (len(queries) <= lim.inline_max_queries
                and sum(map(len, queries)) <= lim.inline_max_chars)

    async def _read_body(self, scope: dict[str, Any], receive: Any) -> dict[str, Any]:
        limit = self.limits.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise BadRequest(f"body over {limit} bytes", 413)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadRequest("the client went away", 400)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # counted as it arrives: no header can let a large body through
                raise BadRequest(f"body over {limit} bytes", 413)
            chunks.append(chunk)
            more = message.get("more_body", False)
        try:
            body = json.loads(b"".join(chunks) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadRequest(f"invalid JSON: {e}") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return body

    async def _health(self, scope: dict[str, Any], send: Any) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        verify = "full" if "verify=full" in query.split("&") else "sizes"
        state = await asyncio.get_running_loop().run_in_executor(self.pool, self.world.health,
                                                                 verify)
        damaged = self.world.damage is not None
        await _send_json(send, 503 if damaged else 200,
                         {"status": "damaged" if damaged else "ok", **self.info, **state})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.pool.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _send_json(send: Any, status: int, payload: Any) -> None:
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json; charset=utf-8"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def create_app(backend: SearchBackend, *, limits: ServerLimits | None = None,
               world: WorldState | None = None, info: Mapping[str, Any] | None = None,
               ) -> SearchApp:
    """The ASGI app serving ``backend`` (see :class:`SearchApp`)."""
    return SearchApp(backend, limits=limits, world=world, info=info)
