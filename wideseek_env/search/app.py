"""The retrieval server's ASGI application (Starlette), served by uvicorn (:mod:`.server`).

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
others meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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


def _json(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status_code=status,
                    media_type="application/json")


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


def create_app(backend: SearchBackend, *, limits: ServerLimits | None = None,
               world: WorldState | None = None, info: Mapping[str, Any] | None = None,
               ) -> Starlette:
    """The ASGI app serving ``backend`` (and reporting on ``world``, when it is one)."""
    limits = limits or ServerLimits()
    world = world or WorldState()
    static = dict(info or {})
    pool = ThreadPoolExecutor(limits.threads, thread_name_prefix="search")

    async def read_body(request: Request) -> dict[str, Any]:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise BadRequest(f"body over {limits.max_body_bytes} bytes", 413)
        chunks, size = [], 0

        async def consume() -> None:
            nonlocal size
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise BadRequest(f"body over {limits.max_body_bytes} bytes", 413)
                chunks.append(chunk)

        try:
            await asyncio.wait_for(consume(), limits.request_timeout_s)
        except asyncio.TimeoutError:
            raise BadRequest("the body did not arrive in time", 408) from None
        try:
            body = json.loads(b"".join(chunks) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadRequest(f"invalid JSON: {e}") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return body

    def endpoint(route: Route_) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            if world.damage is not None:
                return _json(500, {"error": f"the world is damaged: {world.damage}",
                                   "world_damaged": True})
            cancel = threading.Event()
            try:
                body = await read_body(request)
                job = asyncio.get_running_loop().run_in_executor(
                    pool, route, backend, body, limits, cancel)
                return _json(200, await asyncio.wait_for(job, limits.request_timeout_s))
            except BadRequest as e:
                return _json(e.status, {"error": str(e)})
            except SearchError as e:
                return _json(400, {"error": str(e)})
            except asyncio.TimeoutError:
                cancel.set()
                return _json(504, {"error": f"request took over {limits.request_timeout_s} s"})
            except DamagedWorldError as e:
                world.damage = str(e)
                return _json(500, {"error": str(e), "world_damaged": True})
            except Exception as e:  # a backend bug: answer 500, keep serving, say what broke
                return _json(500, {"error": f"{type(e).__name__}: {e}"})
        return handle

    async def health(request: Request) -> Response:
        verify = request.query_params.get("verify", "sizes")
        state = await asyncio.get_running_loop().run_in_executor(pool, world.health, verify)
        damaged = world.damage is not None
        return _json(503 if damaged else 200,
                     {"status": "damaged" if damaged else "ok", **static, **state})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    return Starlette(routes=[Route("/retrieve", endpoint(retrieve), methods=["POST"]),
                             Route("/access", endpoint(access), methods=["POST"]),
                             Route("/health", health, methods=["GET"])], lifespan=lifespan)
