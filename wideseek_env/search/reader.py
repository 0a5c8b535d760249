"""Access summaries: a reader LLM condenses a page with respect to what the agent asked for.

In WideSeek-R1 an ``access`` call names, per URL, the ``info_to_extract``; the page (cut to the
page budget, 25k characters) goes to a reader model that writes a report of what the page says
about it, and that report, not the page, is the tool result. :class:`PageReader` does this over
any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, SGLang, OpenAI ...), with its own
model name and an API key read from an environment variable (never passed as a value).

The env uses a reader when it is given one (``WideSeekEnv(reader=PageReader(...),
interface="paper")``); raw page text stays the default. Failure policy: connection errors,
timeouts, 429 and 5xx are retried with exponential backoff; when the retries run out, or the
endpoint answers another error status or a malformed or empty reply, :meth:`PageReader.summarize`
raises :class:`ReaderError`, which the env turns into a tool error for that page (the agent is
told, ``tool_errors`` counts it, the episode goes on).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

from wideseek_env.env.protocol import strip_think

__all__ = ["PageReader", "ReaderError", "reader_messages"]

_SYSTEM = """You extract information from one web page.
Use ONLY the page content you are given: no prior knowledge, no assumptions, nothing from
elsewhere.

Do not answer the request yourself. Pull out and summarise everything the page says that bears
on it.

If the page does not hold exactly what is asked for, give the closest related information it
does hold and say how it relates. If nothing on the page relates to the request, say exactly:
"This page has no information relevant to the request."

Never invent, infer or guess, and never answer from your own knowledge.

Write a clear, complete and well-organised report:
- use headings or bullet points where they help;
- quote the page's own facts, figures and sentences as evidence;
- keep only what bears on the request, with no general summary of the page;
- say nothing about how you worked."""

_USER = """INFORMATION TO EXTRACT:
{info}

PAGE CONTENT:
{page}

Extract and summarise only the information relevant to the request above, following every
instruction."""


class ReaderError(RuntimeError):
    """The reader endpoint could not summarise a page (unreachable, refusing, or empty reply)."""


def reader_messages(info_to_extract: str, page_text: str) -> list[dict[str, str]]:
    """The chat messages sent to the reader for one page."""
    return [{"role": "system", "content": _SYSTEM},
            {"role": "user", "content": _USER.format(info=info_to_extract, page=page_text)}]


@dataclass
class PageReader:
    """Summarise pages through an OpenAI-compatible chat endpoint (see the module docstring).

    ``base_url`` is a server root (``http://host:8000``), its ``/v1`` or the full
    ``…/chat/completions`` URL; several comma-separated roots spread requests round-robin.
    ``api_key_env`` names the environment variable holding the bearer token (None: no token).
    """

    base_url: str
    model: str
    api_key_env: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 3
    backoff_s: float = 1.0
    max_tokens: int = 2048
    temperature: float = 0.0
    extra_body: dict[str, Any] = field(default_factory=dict)
    requests: int = field(default=0, init=False)
    failures: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        from wideseek_env.http import RetryingClient

        roots = [_endpoint(u) for u in self.base_url.split(",") if u.strip()]
        key = os.environ.get(self.api_key_env) or None if self.api_key_env else None
        self._http = RetryingClient(roots, api_key=key, timeout_s=self.timeout_s,
                                    max_retries=self.max_retries, backoff_s=self.backoff_s,
                                    error=ReaderError, prefix="access summary: ")
        self._lock = threading.Lock()
        self._slot = 0

    def summarize(self, info_to_extract: str, page_text: str) -> str:
        """The reader's report on ``page_text`` for ``info_to_extract`` (thinking removed)."""
        body = {"model": self.model, "messages": reader_messages(info_to_extract, page_text),
                "temperature": self.temperature, "max_tokens": self.max_tokens,
                **self.extra_body}
        with self._lock:
            slot, self._slot = self._slot, self._slot + 1
            self.requests += 1
        try:
            url, resp = self._http.request("POST", "", slot, body)
            try:
                content = resp.json()["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                raise ReaderError(f"access summary: malformed reply from {url}: "
                                  f"{resp.text[:200]}") from None
            summary = strip_think(content) if isinstance(content, str) else ""
            if not summary:
                raise ReaderError(f"access summary: empty reply from {url}")
            return summary
        except ReaderError:
            with self._lock:
                self.failures += 1
            raise

    def describe(self) -> dict[str, Any]:
        """What identifies the reader in a run's record (no URL, no key)."""
        return {"model": self.model, "max_tokens": self.max_tokens,
                "temperature": self.temperature}


def _endpoint(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    return (url if url.endswith("/v1") else url + "/v1") + "/chat/completions"
