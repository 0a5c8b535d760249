"""A :class:`SearchBackend` that talks to a retrieval server: ``wideseek serve-search``, a
Search-R1 retrieval server, or the WideSeek-R1 reference implementation's local server.

Where: a base URL (``http://host:8000``), a full endpoint URL (``http://host:8000/retrieve``:
the path is the prefix, so ``/retrieve`` is never doubled) or a bare ``host:port`` (as the
reference implementation's ``server_addr`` is written).

What it reads (both shapes, per item):

- ``/retrieve``: ``{"result": [[item, ...], ...]}``, one list per query, where an item is a
  document or ``{"document": document, "score": s}``. A document has ``contents``
  (``"title"\\ntext`` in Search-R1's convention) and optionally ``id``, ``url``, ``title`` and
  ``snippet`` (ours sends all of them). Without ``title``/``snippet`` they come from
  ``contents``; without ``url`` the ``id`` is the URL.
- ``/access``: ``{"result": [page | null, ...]}`` where ``null`` means no such page and a page has
  ``contents`` (the reference implementation's field; older servers of ours sent ``text``) and
  optionally ``title``, ``offset`` and ``total_chars``. A server that ignores ``offset`` and
  ``max_chars`` sends the whole page; it is sliced here.

Batches larger than ``max_batch`` queries are split over several requests. Pooled keep-alive
connections (one ``http.client`` pool, shared by threads), a connect/read timeout per attempt,
retries with exponential backoff on connection errors, timeouts and 5xx answers. Whatever goes
wrong -- a refused connection, a 4xx, a body that is not JSON, a result of the wrong shape --
ends as a :class:`SearchError` naming the server and what was wrong, which the env turns into a
tool error for the agent: a bad server never hangs or crashes a rollout. One exception: a server
that reports its world as damaged raises :class:`DamagedWorldError`, which ends the run (every
score from such a world would be wrong).

Coalescing (on by default, ``coalesce=False`` to turn off): ``search`` calls that threads make
at the same time (the env's agents, a runner's concurrent episodes) go out as one ``/retrieve``
request per result count ``k``, at most ``in_flight`` (default 4) such requests at once; a
call that finds a free slot is sent at once, so a lone caller is never delayed. Each caller gets
its own results; a failed shared request is an error of every caller in it; a request refused
with a 4xx is sent again by each of its callers alone. See :mod:`.coalesce`; what it gains is
measured in ``benchmarks/search_http.py`` (results in ``benchmarks/results/``).
"""

from __future__ import annotations

import http.client
import json
import select
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from wideseek_env.search.base import DamagedWorldError, Hit, Page, SearchError
from wideseek_env.search.coalesce import Coalescer, CoalesceStats

RETRY_STATUS = {500, 502, 503, 504}
ENDPOINTS = ("/retrieve", "/access", "/health")


def base_url(address: str) -> str:
    """The server root for a base URL, an endpoint URL or a bare ``host:port``."""
    url = address.strip().rstrip("/")
    if not url:
        raise ValueError("the search server address is empty")
    if "://" not in url:
        url = "http://" + url
    for endpoint in ENDPOINTS:
        if url.endswith(endpoint):
            url = url[: -len(endpoint)]
            break
    return url


class RejectedRequest(SearchError):
    """The server refused a request for its content (HTTP 4xx): the same queries sent in
    another batch may pass (see :mod:`.coalesce`)."""


class HttpSearchBackend:
    """Client of a retrieval server at ``address`` (see the module docstring)."""

    def __init__(self, address: str, *, timeout_s: float = 10.0, retries: int = 3,
                 backoff_s: float = 0.2, pool_size: int = 32, max_batch: int = 64,
                 coalesce: bool = True, in_flight: int = 4) -> None:
        if max_batch < 1 or retries < 0 or in_flight < 1:
            raise ValueError("max_batch and in_flight must be >= 1 and retries >= 0")
        self.base_url = base_url(address)
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_batch = max_batch
        self.pool = ConnectionPool(self.base_url, connect_timeout_s=min(timeout_s, 3.0),
                                   read_timeout_s=timeout_s, max_idle=pool_size)
        # The longest one request can take with its retries: what a coalesced call waits for
        # a request ahead of it before it gives up waiting.
        attempt_s = min(timeout_s, 3.0) + timeout_s
        budget_s = (retries + 1) * attempt_s + backoff_s * (2 ** retries - 1) + 1.0
        self.coalescer = Coalescer(self._search, in_flight=in_flight, max_batch=max_batch,
                                   wait_s=budget_s,
                                   isolate=lambda err: isinstance(err, RejectedRequest)
                                   ) if coalesce else None

    # ----------------------------------------------------------------------------- transport

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.base_url}{path}"
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                r = self.pool.request(method, path, data)
            except (http.client.HTTPException, OSError) as e:  # refused, reset, timed out ...
                last = f"{type(e).__name__}: {e}"
                continue
            answer = _json_or_none(r.data)
            if isinstance(answer, Mapping) and answer.get("world_damaged"):
                raise DamagedWorldError(f"search server {url}: "
                                        f"{answer.get('error', 'world damaged')}")
            text = r.data[:200].decode("utf-8", "replace")
            if r.status in RETRY_STATUS:
                last = f"HTTP {r.status}: {text}"
                continue
            if r.status != 200:
                detail = answer.get("error", answer) if isinstance(answer, Mapping) else text
                error = RejectedRequest if 400 <= r.status < 500 else SearchError
                raise error(f"search server {url}: HTTP {r.status}: {detail}")
            if answer is None:
                raise SearchError(f"search server {url} sent an answer that is not JSON")
            return answer
        raise SearchError(f"search server {url} unavailable after {attempt + 1} attempt(s) "
                          f"({last})")

    def _results(self, path: str, body: dict[str, Any], expected: int) -> list[Any]:
        data = self._request("POST", path, body)
        result = data.get("result") if isinstance(data, Mapping) else None
        if not isinstance(result, list):
            raise SearchError(f"search server {self.base_url}{path} answered without a "
                              "'result' list")
        if len(result) != expected:
            raise SearchError(f"search server {self.base_url}{path} answered {len(result)} "
                              f"results for {expected} items")
        return result

    # ----------------------------------------------------------------------------- the API

    def search(self, queries: Sequence[str], k: int = 3) -> list[list[Hit]]:
        if isinstance(queries, str):
            raise TypeError("search() takes a sequence of queries, not one string")
        if not queries:
            return []
        if self.coalescer is not None:
            return self.coalescer.search(queries, k)
        return self._search(queries, k)

    def coalesce_stats(self) -> CoalesceStats | None:
        """Calls and shared requests so far (None when coalescing is off)."""
        return self.coalescer.stats() if self.coalescer is not None else None

    def _search(self, queries: Sequence[str], k: int,
                answered: Callable[[], None] | None = None) -> list[list[Hit]]:
        """One or more ``/retrieve`` requests (``max_batch`` queries each) for ``queries``;
        ``answered()`` once the last answer is in, before it is read into hits."""
        out: list[list[Hit]] = []
        for j in range(0, len(queries), self.max_batch):
            chunk = list(queries[j: j + self.max_batch])
            result = self._results("/retrieve", {"queries": chunk, "topk": k,
                                                 "return_scores": True}, len(chunk))
            if answered is not None and j + self.max_batch >= len(queries):
                answered()
            out.extend([_hit(item, f"{self.base_url}/retrieve") for item in _items(items)]
                       for items in result)
        return out

    def access(self, url: str, *, offset: int = 0, max_chars: int = 25_000) -> Page:
        (p,) = self._results("/access", {"urls": [url], "offset": offset,
                                         "max_chars": max_chars}, 1)
        where = f"search server {self.base_url}/access"
        if p is None:
            raise SearchError(f"access: no page at {url!r}")
        if not isinstance(p, Mapping):
            raise SearchError(f"{where}: a page must be an object or null, got {type(p).__name__}")
        if "error" in p and "contents" not in p and "text" not in p:  # our servers before 0.2
            raise SearchError(str(p["error"]))
        text = p.get("contents", p.get("text"))
        if not isinstance(text, str):
            raise SearchError(f"{where}: the page of {url!r} has no 'contents' string")
        title = p.get("title")
        if "offset" not in p:  # the server sent the whole page: slice it here
            total = len(text)
            text = text[offset: offset + max_chars]
        else:
            total = p.get("total_chars")
            if not isinstance(p["offset"], int) or not isinstance(total, int):
                raise SearchError(f"{where}: 'offset' and 'total_chars' must be integers")
            offset = p["offset"]
        if not isinstance(title, str):
            title = text.split("\n", 1)[0][:200] if offset == 0 else ""
        return Page(url=str(p.get("url") or url), title=title, text=text, offset=offset,
                    total_chars=total)

    def health(self) -> dict[str, Any]:
        """The server's ``/health`` answer (``{}`` from a server without one)."""
        try:
            data = self._request("GET", "/health")
        except SearchError as err:
            if "HTTP 404" in str(err) or "HTTP 405" in str(err):
                return {}
            raise
        return dict(data) if isinstance(data, Mapping) else {}

    def close(self) -> None:
        self.pool.close()


class Response:
    """Status and body of one HTTP exchange."""

    __slots__ = ("data", "status")

    def __init__(self, status: int, data: bytes) -> None:
        self.status = status
        self.data = data


class ConnectionPool:
    """Keep-alive HTTP/1.1 connections to one server, shared by threads (``http.client``).

    Why not urllib3: a request through its ``PoolManager`` costs 0.33 ms of client CPU here, one
    through a bare ``http.client`` connection 0.16 ms (``benchmarks/search_http.py``'s one-query
    calls spend about as much on the search itself). A connection is taken for one exchange and
    put back (at most ``max_idle`` kept) unless the server said it would close it; an idle one
    the server has closed meanwhile (keep-alive timeout) is noticed before it is used, and a
    reused one that fails before any answer arrives is replaced by a new one once (the server
    may close it between the check and the send). Connect and read timeouts are separate.
    """

    def __init__(self, base: str, *, connect_timeout_s: float, read_timeout_s: float,
                 max_idle: int = 32) -> None:
        self.invalid: str | None = None
        self.host, self.port, self.prefix = "", 0, ""
        self.cls: type[http.client.HTTPConnection] = http.client.HTTPConnection
        try:
            parts = urlsplit(base)
            port = parts.port
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("not an http(s) URL with a host")
        except ValueError as e:  # reported by every request, as any other unusable server
            self.invalid = f"the search server address {base!r} is not usable: {e}"
        else:
            self.host = parts.hostname
            self.port = port or (443 if parts.scheme == "https" else 80)
            self.prefix = parts.path.rstrip("/")
            if parts.scheme == "https":
                self.cls = http.client.HTTPSConnection
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.max_idle = max_idle
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _new(self) -> http.client.HTTPConnection:
        conn = self.cls(self.host, self.port, timeout=self.connect_timeout_s)
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(self.read_timeout_s)
        return conn

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._new(), False
            sock = conn.sock
            # Readable while idle: the server closed it (or sent something unasked): drop it.
            if sock is not None and not select.select([sock], [], [], 0)[0]:
                return conn, True
            conn.close()

    def request(self, method: str, path: str, body: bytes | None) -> Response:
        if self.invalid is not None:
            raise SearchError(self.invalid)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for fresh_retry in (False, True):
            conn, reused = self._take() if not fresh_retry else (self._new(), False)
            try:
                conn.request(method, self.prefix + path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    ConnectionAbortedError):
                conn.close()
                if reused:
                    continue  # a keep-alive connection the server had just closed
                raise
            except BaseException:
                conn.close()
                raise
            if r.will_close:
                conn.close()
            else:
                with self._lock:
                    if len(self._idle) < self.max_idle:
                        self._idle.append(conn)
                        conn = None  # type: ignore[assignment]
                if conn is not None:
                    conn.close()
            return Response(r.status, data)
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


_HEADERS = {"Content-Type": "application/json"}


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _items(items: Any) -> list[Any]:
    if not isinstance(items, list):
        raise SearchError(f"search server: each query's result must be a list, got "
                          f"{type(items).__name__}")
    return items


def _hit(item: Any, where: str) -> Hit:
    """One ranked item in either shape (``{"document", "score"}`` or the document itself)."""
    if not isinstance(item, Mapping):
        raise SearchError(f"{where}: a result item must be an object, got {type(item).__name__}")
    doc = item.get("document", item)
    if not isinstance(doc, Mapping):
        raise SearchError(f"{where}: 'document' must be an object")
    title, snippet = doc.get("title"), doc.get("snippet")
    if not isinstance(title, str) or not isinstance(snippet, str):
        contents = doc.get("contents")
        if not isinstance(contents, str):
            raise SearchError(f"{where}: a document needs 'contents' (or 'title' and 'snippet')")
        head, _, rest = contents.partition("\n")  # Search-R1: '"title"\ntext'
        title, snippet = head.strip().strip('"'), rest.strip()
    ident = doc.get("id", doc.get("url", ""))
    url = doc.get("url", ident)
    score = item.get("score", 0.0)
    try:
        score = float(score) if score is not None else 0.0
    except (TypeError, ValueError):
        raise SearchError(f"{where}: 'score' must be a number, got {score!r}") from None
    return Hit(id=str(ident), url=str(url), title=title, snippet=snippet, score=score)
