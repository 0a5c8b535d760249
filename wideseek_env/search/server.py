"""A retrieval server for any :class:`SearchBackend`, and ``wideseek serve-search``.

Endpoints (JSON over HTTP, standard library only):

- ``POST /retrieve`` — Search-R1's convention: ``{"queries": [...], "topk": k,
  "return_scores": true}`` -> ``{"result": [[{"document": {"id", "contents", "title", "url",
  "snippet"}, "score"}, ...], ...]}``. ``contents`` is ``"<title>"\\n<snippet>`` as Search-R1's
  retrievers return it; without ``return_scores`` each item is the document alone.
- ``POST /access`` — ``{"urls": [...], "offset": 0, "max_chars": 25000}`` -> ``{"result":
  [{"url", "title", "text", "offset", "total_chars", "next_offset"} | {"url", "error"}, ...]}``.
- ``GET /health`` -> ``{"status": "ok", "world": ..., "pages": ...}``.

Limits: request bodies up to ``max_body_bytes``, at most 64 queries or URLs per request, ``topk``
up to 100; each request's work must finish within ``request_timeout_s`` (else 504); the socket
read times out after the same time. A threaded server serves many clients at once (one thread per
connection); it binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from wideseek_env.search.base import SearchBackend, SearchError

MAX_ITEMS = 64
MAX_TOPK = 100


class BadRequest(ValueError):
    """A client error: answered with 400 and the message."""


def _retrieve(backend: SearchBackend, body: dict[str, Any]) -> dict[str, Any]:
    queries = body.get("queries", body.get("query"))
    if isinstance(queries, str):
        queries = [queries]
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        raise BadRequest("'queries' must be a list of strings")
    if len(queries) > MAX_ITEMS:
        raise BadRequest(f"at most {MAX_ITEMS} queries per request (got {len(queries)})")
    topk = body.get("topk", 3)
    if not isinstance(topk, int) or isinstance(topk, bool) or not 1 <= topk <= MAX_TOPK:
        raise BadRequest(f"'topk' must be an integer in [1, {MAX_TOPK}]")
    with_scores = bool(body.get("return_scores", False))
    result = []
    for hits in backend.search(queries, topk) if queries else []:
        items = []
        for h in hits:
            doc = {"id": h.id, "contents": f'"{h.title}"\n{h.snippet}', "title": h.title,
                   "url": h.url, "snippet": h.snippet}
            items.append({"document": doc, "score": h.score} if with_scores else doc)
        result.append(items)
    return {"result": result}


def _access(backend: SearchBackend, body: dict[str, Any]) -> dict[str, Any]:
    urls = body.get("urls")
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise BadRequest("'urls' must be a list of strings")
    if len(urls) > MAX_ITEMS:
        raise BadRequest(f"at most {MAX_ITEMS} urls per request (got {len(urls)})")
    offset, max_chars = body.get("offset", 0), body.get("max_chars", 25_000)
    if not isinstance(offset, int) or offset < 0 or not isinstance(max_chars, int) \
            or not 1 <= max_chars <= 1_000_000:
        raise BadRequest("'offset' must be >= 0 and 'max_chars' in [1, 1000000]")
    out = []
    for url in urls:
        try:
            p = backend.access(url, offset=offset, max_chars=max_chars)
            out.append({"url": p.url, "title": p.title, "text": p.text, "offset": p.offset,
                        "total_chars": p.total_chars, "next_offset": p.next_offset})
        except SearchError as e:
            out.append({"url": url, "error": str(e)})
    return {"result": out}


class SearchServer(ThreadingHTTPServer):
    """A threaded HTTP server around ``backend``; ``serve_forever`` in a thread to embed it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, backend: SearchBackend, host: str = "127.0.0.1", port: int = 8000, *,
                 info: dict[str, Any] | None = None, request_timeout_s: float = 30.0,
                 max_body_bytes: int = 1 << 20, workers: int = 16) -> None:
        self.backend = backend
        self.info = info or {}
        self.request_timeout_s = request_timeout_s
        self.max_body_bytes = max_body_bytes
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="search")
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> threading.Thread:
        """Serve in a daemon thread and return it."""
        t = threading.Thread(target=self.serve_forever, name="search-server", daemon=True)
        t.start()
        return t

    def server_close(self) -> None:
        super().server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)


class _Handler(BaseHTTPRequestHandler):
    server: SearchServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, a keep-alive client's delayed ACK
    # stalls every answer by ~40 ms.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        self.timeout = self.server.request_timeout_s  # socket read timeout
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would swamp a training run's logs

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/health":
            self._send(200, {"status": "ok", **self.server.info})
        else:
            self._send(404, {"error": f"no such endpoint: GET {self.path}"})

    def do_POST(self) -> None:
        route = {"/retrieve": _retrieve, "/access": _access}.get(self.path.rstrip("/"))
        if route is None:
            self._send(404, {"error": f"no such endpoint: POST {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send(411, {"error": "Content-Length required"})
            return
        if length > self.server.max_body_bytes:
            self.close_connection = True
            self._send(413, {"error": f"body over {self.server.max_body_bytes} bytes"})
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            future = self.server.pool.submit(route, self.server.backend, body)
            self._send(200, future.result(timeout=self.server.request_timeout_s))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            self._send(400, {"error": f"invalid JSON: {e}"})
        except (BadRequest, SearchError) as e:
            self._send(400, {"error": str(e)})
        except FutureTimeout:
            self._send(HTTPStatus.GATEWAY_TIMEOUT, {"error": "request timed out"})
        except Exception as e:  # a backend bug: answer 500, keep serving, say what broke
            self._send(500, {"error": f"{type(e).__name__}: {e}"})


# -- wideseek serve-search ---------------------------------------------------------------------
def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", required=True, help="a world folder (see `wideseek world`)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument("--engine", default=None, help="index to serve (default: the world's)")
    parser.add_argument("--request-timeout-s", type=float, default=30.0,
                        help="per-request time limit in seconds")
    parser.add_argument("--max-body-bytes", type=int, default=1 << 20,
                        help="largest request body accepted")


def run(args: argparse.Namespace) -> int:
    from wideseek_env.worlds.world import World

    try:
        world = World.load(args.world)
        backend = world.backend(args.engine)
    except (FileNotFoundError, ValueError) as e:
        print(f"wideseek serve-search: {e}", file=sys.stderr)
        return 2
    server = SearchServer(backend, args.host, args.port, request_timeout_s=args.request_timeout_s,
                          max_body_bytes=args.max_body_bytes,
                          info={"world": world.name, "pages": world.card["counts"]["pages"]})
    print(f"serving world {world.name!r} on {server.url} (/retrieve, /access, /health)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
