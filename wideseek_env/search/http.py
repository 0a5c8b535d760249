"""A :class:`SearchBackend` that talks to a retrieval server (``wideseek serve-search``).

Pooled keep-alive connections (one ``requests.Session``, shared by threads), a connect/read
timeout per attempt, and retries with exponential backoff on connection errors, timeouts and 5xx
answers. Whatever goes wrong ends as a :class:`SearchError` after at most
``retries + 1`` attempts, which the env turns into a tool error for the agent: a down server
never hangs or crashes a rollout, and the next call works again once the server is back.
Also speaks to any Search-R1-style ``/retrieve`` server (``contents`` = ``"title"\\ntext``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from wideseek_env.search.base import Hit, Page, SearchError

RETRY_STATUS = {500, 502, 503, 504}


class HttpSearchBackend:
    """Client of a retrieval server at ``base_url`` (``http://127.0.0.1:8000``)."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0, retries: int = 3,
                 backoff_s: float = 0.2, pool_size: int = 32) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                r = self.session.post(url, json=body, timeout=(min(self.timeout_s, 3.0),
                                                               self.timeout_s))
            except (requests.ConnectionError, requests.Timeout) as e:
                last = f"{type(e).__name__}: {e}"
                continue
            if r.status_code in RETRY_STATUS:
                last = f"HTTP {r.status_code}: {r.text[:200]}"
                continue
            try:
                data = r.json()
            except ValueError:
                raise SearchError(f"search server {url} sent a non-JSON answer "
                                  f"(HTTP {r.status_code})") from None
            if r.status_code != 200:
                raise SearchError(f"search server {url}: HTTP {r.status_code}: "
                                  f"{data.get('error', data) if isinstance(data, dict) else data}")
            if not isinstance(data, dict) or not isinstance(data.get("result"), list):
                raise SearchError(f"search server {url} answered without a 'result' list")
            return data
        raise SearchError(f"search server {url} unavailable after {self.retries + 1} attempts "
                          f"({last})")

    def search(self, queries: Sequence[str], k: int = 3) -> list[list[Hit]]:
        if isinstance(queries, str):
            raise TypeError("search() takes a sequence of queries, not one string")
        if not queries:
            return []
        data = self._post("/retrieve", {"queries": list(queries), "topk": k,
                                        "return_scores": True})
        out = []
        for items in data["result"]:
            hits = []
            for item in items:
                doc = item.get("document", item)
                title = doc.get("title")
                snippet = doc.get("snippet")
                if title is None or snippet is None:  # a plain Search-R1 server
                    head, _, rest = str(doc.get("contents", "")).partition("\n")
                    title, snippet = head.strip('"'), rest
                hits.append(Hit(id=str(doc.get("id", "")), url=str(doc.get("url", doc.get("id",
                                                                                        ""))),
                                title=title, snippet=snippet, score=float(item.get("score", 0.0))))
            out.append(hits)
        if len(out) != len(queries):
            raise SearchError(f"search server answered {len(out)} lists for {len(queries)} queries")
        return out

    def access(self, url: str, *, offset: int = 0, max_chars: int = 25_000) -> Page:
        data = self._post("/access", {"urls": [url], "offset": offset, "max_chars": max_chars})
        if len(data["result"]) != 1:
            raise SearchError("search server answered /access with the wrong number of pages")
        p = data["result"][0]
        if "error" in p:
            raise SearchError(str(p["error"]))
        return Page(url=p["url"], title=p["title"], text=p["text"], offset=p["offset"],
                    total_chars=p["total_chars"])

    def close(self) -> None:
        self.session.close()
