"""``wideseek serve-search``: the retrieval server (:mod:`.app`) on uvicorn, with worker processes.

Why uvicorn (with its ``httptools`` parser and ``uvloop`` event loop): it is the HTTP server
that Search-R1's own retrieval server and vLLM's OpenAI server run on (through FastAPI), so people
who serve retrieval for RL already run and trust it; it parses HTTP/1.1 (chunked bodies,
keep-alive, malformed headers, a negative ``Content-Length``) so we do not; and its supervisor
runs ``--workers`` processes that share one listening socket and restarts a worker that dies.
The app on top is a plain ASGI callable (:mod:`.app`). Each worker opens the world's page store and index
memory-mapped, so N workers share one copy in the page cache and use N cores, where threads of
one process would queue on the GIL (snippets are Python).

Hardening beyond uvicorn's defaults: a connection that has not sent a whole request head within
``--head-timeout-s`` is closed (uvicorn only times out idle connections *between* requests), and
the app bounds bodies, body time and work time (see :mod:`.app`). An idle connection costs a file
descriptor, never a thread.

Before serving, the world is loaded and every file checked against the checksums in its card
(a damaged world is refused with one line); workers then re-check sizes only.

``SearchServer`` embeds the same app in a thread of the current process (tests, notebooks);
``ThreadedServer`` does the same for any ASGI app.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from wideseek_env.search.app import ServerLimits, WorldState, create_app
from wideseek_env.search.base import SearchBackend

ENV_PREFIX = "WIDESEEK_SERVE_"
DEFAULT_HEAD_TIMEOUT_S = 10.0


class HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, plus a deadline for each request head (see the module docstring)."""

    _head_timer: asyncio.TimerHandle | None = None

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        timeout_s = getattr(self.config, "wideseek_head_timeout_s", DEFAULT_HEAD_TIMEOUT_S)
        self._head_timer = self.loop.call_later(timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port); a clear error when taken."""
    try:
        sock = socket.create_server((host, port), reuse_port=False, backlog=2048)
    except OSError as err:
        raise OSError(err.errno, f"cannot listen on {host}:{port} ({err.strerror}); is another "
                                 "server running there? pick another --port") from None
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: Any, *, workers: int = 1, head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S,
                   keep_alive_s: float = 5.0, factory: bool = False) -> uvicorn.Config:
    config = uvicorn.Config(app, factory=factory, workers=workers, http=HeadTimeoutProtocol,
                            loop="auto", lifespan="on", log_level="warning", access_log=False,
                            timeout_keep_alive=int(keep_alive_s), server_header=False,
                            date_header=False)
    config.wideseek_head_timeout_s = head_timeout_s  # read by HeadTimeoutProtocol
    return config


class ThreadedServer:
    """An ASGI ``app`` on uvicorn in a daemon thread of this process: ``start()``, ``url``,
    ``close()`` (tests, notebooks; the CLI runs worker processes instead)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *,
                 head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S) -> None:
        self.app = app
        self.socket = bind(host, port)
        self.server = uvicorn.Server(uvicorn_config(app, head_timeout_s=head_timeout_s))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> threading.Thread:
        """Serve in a daemon thread; return once the server accepts connections."""
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                        name="asgi-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self._thread

    def close(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.socket.close()

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SearchServer(ThreadedServer):
    """The retrieval server (:func:`~wideseek_env.search.app.create_app`) in a thread."""

    def __init__(self, backend: SearchBackend, host: str = "127.0.0.1", port: int = 0, *,
                 info: Mapping[str, Any] | None = None, world: WorldState | None = None,
                 request_timeout_s: float = 30.0, max_body_bytes: int = 1 << 20,
                 default_topk: int = 3, threads: int = 4, inline_max_queries: int = 1,
                 head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S) -> None:
        limits = ServerLimits(request_timeout_s, max_body_bytes, default_topk, threads,
                              inline_max_queries)
        super().__init__(create_app(backend, limits=limits, world=world, info=info), host, port,
                         head_timeout_s=head_timeout_s)

    @classmethod
    def for_world(cls, world: Any, host: str = "127.0.0.1", port: int = 0,
                  **kwargs: Any) -> SearchServer:
        """The server of a loaded :class:`~wideseek_env.worlds.World` (``/health`` reports its
        identity and integrity)."""
        return cls(world.backend(), host, port, world=WorldState(world.path, world.card),
                   **kwargs)


def app_from_env() -> Any:
    """The app of one worker process, configured by ``WIDESEEK_SERVE_*`` variables (uvicorn
    starts workers from an import string, so settings travel through the environment)."""
    from wideseek_env.worlds.world import World

    env = {k[len(ENV_PREFIX):].lower(): v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    world = World.load(env["world"], verify="sizes")  # the parent checked the checksums
    limits = ServerLimits(float(env["request_timeout_s"]), int(env["max_body_bytes"]),
                          int(env["default_topk"]), int(env["threads"]),
                          int(env.get("inline_max_queries", 1)))
    engine = env.get("engine") or None
    info = json.loads(env["info"])
    return create_app(world.backend(engine), limits=limits, info=info,
                      world=WorldState(world.path, world.card))


# -- wideseek serve-search ---------------------------------------------------------------------
def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", default="default",
                        help="a world folder, or 'default' for the embedded default world "
                             "(built into the cache on first use)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument("--engine", default=None, help="index to serve (default: the world's)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="worker processes (default: CPU cores, at most 4)")
    parser.add_argument("--threads", type=int, default=4,
                        help="search threads per worker (default 4)")
    parser.add_argument("--inline-max-queries", type=int, default=1,
                        help="answer /retrieve requests of at most this many (short) queries on "
                             "the worker's event loop instead of a search thread: saves the "
                             "~0.2 ms hop per request (default 1; 0: always a thread)")
    parser.add_argument("--topk", type=int, default=3,
                        help="hits per query when a request gives no topk (or null, or 0)")
    parser.add_argument("--request-timeout-s", type=float, default=30.0,
                        help="time limit of each request's body and of its work (default 30)")
    parser.add_argument("--head-timeout-s", type=float, default=DEFAULT_HEAD_TIMEOUT_S,
                        help="time limit for a request head to arrive (default 10)")
    parser.add_argument("--max-body-bytes", type=int, default=1 << 20,
                        help="largest request body accepted (default 1 MiB)")


def run(args: argparse.Namespace) -> int:
    from wideseek_env.runner.cli import resolve_world
    from wideseek_env.worlds.world import World

    for name in ("workers", "threads", "topk", "max_body_bytes"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
    if args.inline_max_queries < 0:
        raise ValueError("--inline-max-queries must be >= 0")
    if not args.request_timeout_s > 0 or not args.head_timeout_s > 0:
        raise ValueError("--request-timeout-s and --head-timeout-s must be > 0")
    world = World.load(resolve_world(args.world))  # every checksum, once, before serving
    world.backend(args.engine)  # an unknown engine or a missing index fails here, in one line
    sock = bind(args.host, args.port)
    info = {"engine": args.engine or world.card.get("default_engine", "tantivy"),
            "workers": args.workers}
    os.environ.update({f"{ENV_PREFIX}{k.upper()}": str(v) for k, v in {
        "world": world.path.resolve(), "engine": args.engine or "", "info": json.dumps(info),
        "request_timeout_s": args.request_timeout_s, "max_body_bytes": args.max_body_bytes,
        "default_topk": args.topk, "threads": args.threads,
        "inline_max_queries": args.inline_max_queries}.items()})
    config = uvicorn_config(f"{__name__}:app_from_env", factory=True, workers=args.workers,
                            head_timeout_s=args.head_timeout_s)
    host, port = sock.getsockname()[:2]
    print(f"serving world {world.name!r} (id {world.card.get('world_id')}) on http://{host}:{port}"
          f" with {args.workers} worker(s): /retrieve, /access, /health", flush=True)
    if args.workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
    sock.close()
    return 0


__all__ = ["HeadTimeoutProtocol", "SearchServer", "ThreadedServer", "app_from_env", "bind",
           "configure", "run"]
