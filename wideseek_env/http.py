"""JSON over HTTP to a set of interchangeable servers, with retries.

Used by `OpenAIPolicy` (chat completions) and by the learner's `OpenAIServerEngine` (completions
with token ids and log-probs). Request *i* of a batch starts at server ``slot % len(roots)``, so
consecutive requests spread round-robin; a retry moves on to the next server unless it is pinned.
Connection errors, timeouts, 429 and 5xx are retried with exponential backoff (a server's
``Retry-After`` wins); any other status is a configuration error and raises at once. Sessions
are per thread, so a client can be shared by a thread pool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import requests


def retry_after_s(response: requests.Response) -> float | None:
    """The response's ``Retry-After`` in seconds (``None`` when absent or not a number)."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class RetryingClient:
    """Send JSON requests to ``roots`` (URL prefixes) with round-robin and retries.

    ``error`` is the exception class raised, its message starting with ``prefix``; ``on_retry``
    is called (without arguments) before every retry, for counters.
    """

    def __init__(
        self,
        roots: Sequence[str],
        *,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        error: type[Exception] = RuntimeError,
        prefix: str = "",
        on_retry: Callable[[], None] | None = None,
    ) -> None:
        if not roots:
            raise ValueError(f"{prefix}give at least one base URL")
        if max_retries < 0:
            raise ValueError(f"{prefix}max_retries must be >= 0")
        self.roots = list(roots)
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.error = error
        self.prefix = prefix
        self.on_retry = on_retry
        self._local = threading.local()

    def session(self) -> requests.Session:
        """This thread's session (keep-alive connections; the API key as a bearer token)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            if self.api_key:
                session.headers["Authorization"] = f"Bearer {self.api_key}"
            self._local.session = session
        return session

    def request(
        self, method: str, path: str, slot: int, body: Any = None, *, pinned: bool = False
    ) -> tuple[str, requests.Response]:
        """(root, response) of the first server, from ``slot`` on, that answers 200 to
        ``method root+path``; ``pinned`` retries the same server."""
        last_error = ""
        for attempt in range(self.max_retries + 1):
            root = self.roots[(slot + (0 if pinned else attempt)) % len(self.roots)]
            url = root + path
            wait_s: float | None = None
            try:
                resp = self.session().request(method, url, json=body, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as err:
                last_error = f"{type(err).__name__} from {url}: {err}"
            else:
                if resp.status_code == 200:
                    return root, resp
                last_error = f"HTTP {resp.status_code} from {url}: {resp.text[:500]}"
                if resp.status_code != 429 and resp.status_code < 500:
                    raise self.error(f"{self.prefix}{last_error}")
                wait_s = retry_after_s(resp)
            if attempt == self.max_retries:
                break
            if self.on_retry is not None:
                self.on_retry()
            time.sleep(wait_s if wait_s is not None
                       else min(self.max_backoff_s, self.backoff_s * 2**attempt))
        raise self.error(f"{self.prefix}no answer after {self.max_retries + 1} attempt(s); "
                         f"last error: {last_error}")
