"""LLM judges for ``llm_judge`` columns and for aligning names (columns, key values).

:class:`Judge` is the protocol the scorer calls: :meth:`Judge.judge_column` scores one column of
matched cells in one request (as WideSearch does), :meth:`Judge.align` maps answer strings onto
reference strings (column names when they differ from the required ones; key values before the
join). :meth:`OpenAIJudge.judge_answer` rules on QA answers (correct/incorrect, as the paper's
judge does; :mod:`wideseek_env.scoring.qa`). :class:`OpenAIJudge` implements it for any OpenAI-compatible ``/v1/chat/completions``
endpoint through ``requests``.

Failure policy: a transport failure (connection refused, timeout, HTTP error) is retried with
back-off and then raised as :class:`JudgeError` -- the scorer cannot do its job, that is not the
model's fault. A reply the judge model garbles (no JSON object) is retried too; if it stays
garbled, the column scores 0 and the alignment maps nothing, as in the official evaluator, and
:attr:`OpenAIJudge.stats` counts it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import requests

__all__ = ["Judge", "JudgeError", "JudgeStats", "OpenAIJudge"]


class JudgeError(RuntimeError):
    """The judge endpoint could not be reached or kept failing."""


@runtime_checkable
class Judge(Protocol):
    """What the scorer needs from an LLM judge."""

    def judge_column(
        self, criterion: str, responses: Sequence[str], targets: Sequence[str]
    ) -> list[float]:
        """Score each ``responses[i]`` against ``targets[i]``: a list of 0.0/1.0, same length."""
        ...

    def align(self, values: Sequence[str], reference: Sequence[str]) -> Mapping[str, str]:
        """Map strings of ``values`` to the strings of ``reference`` naming the same thing."""
        ...


_JSON_BLOCK_RE = re.compile(r"```json\s*(\{.*?\})\s*```", re.DOTALL)
_JSON_OBJECT_RE = re.compile(r"\{.*\}", re.DOTALL)

_COLUMN_PROMPT = """You grade answers to a table-filling task, one column at a time.
Below are numbered pairs, each holding a `response` cell and the `target` (reference) cell, and
the grading criterion. Give each pair 1 if the response is correct under the criterion, else 0.
Think briefly, then end with a ```json block mapping every id to its score, e.g.
```json
{{"idx_0": 1, "idx_1": 0}}
```

Criterion:
{criterion}

Pairs:
{pairs}
"""

_ALIGN_PROMPT = """Align two vocabularies. For each string in LIST A, find the string in LIST B
that names the same entity or concept (differences only in wording, formatting, markdown or
case). Identical strings always correspond. Leave out strings of LIST A without a counterpart.
Answer with a ```json block mapping strings of LIST A (verbatim) to strings of LIST B (verbatim).

LIST A:
{values}

LIST B:
{reference}
"""


_ANSWER_PROMPT = """Question: {question}

Reference answer: {reference}

Predicted answer: {answer}

Does the predicted answer say the same as the reference answer (the same entity, number or
fact, whatever the wording)? Reply with the single word "Correct" if it does, or "Incorrect" if
it does not, and nothing else.
"""


def verdict_of(reply: str) -> float:
    """1.0 for a reply that says "correct" and not "incorrect" (the paper's reading), else 0.0."""
    low = reply.strip().lower()
    return 1.0 if "correct" in low and "incorrect" not in low else 0.0


def _parse_json_object(text: str) -> dict[str, Any] | None:
    blocks = _JSON_BLOCK_RE.findall(text)
    candidates = [blocks[-1]] if blocks else _JSON_OBJECT_RE.findall(text)
    for candidate in candidates:
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _as_score(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return 1.0 if value >= 1 else 0.0
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return float(value.strip())
    return 0.0


@dataclass
class JudgeStats:
    """Counters of an :class:`OpenAIJudge` (requests, retries, replies it could not parse)."""

    requests: int = 0
    retries: int = 0
    unparsed: int = 0


@dataclass
class OpenAIJudge:
    """An LLM judge behind any OpenAI-compatible chat-completions endpoint.

    ``base_url`` is the server root (``http://host:8000``), its ``/v1`` prefix, or the full
    ``.../chat/completions`` URL. Requests use temperature 0; each is retried ``max_retries``
    times with exponential back-off starting at ``backoff_s``.
    """

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)  # never in a repr or a log
    timeout_s: float = 120.0
    max_retries: int = 3
    backoff_s: float = 0.5
    max_tokens: int = 4096
    stats: JudgeStats = field(default_factory=JudgeStats)
    extra_body: dict[str, Any] = field(default_factory=dict)
    """Merged into every request (e.g. ``{"chat_template_kwargs": {"enable_thinking": False}}``)."""

    def __post_init__(self) -> None:
        url = self.base_url.rstrip("/")
        if not url.endswith("/chat/completions"):
            url = url + ("/chat/completions" if url.endswith("/v1") else "/v1/chat/completions")
        self._url = url
        self._session = requests.Session()

    # -- transport -------------------------------------------------------------------------

    def complete(self, prompt: str) -> str:
        """One chat completion (user message ``prompt``); raises :class:`JudgeError`."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
            **self.extra_body,
        }
        last_error = "no attempt"
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            self.stats.requests += 1
            try:
                reply = self._session.post(
                    self._url, json=body, headers=headers, timeout=self.timeout_s
                )
            except requests.RequestException as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            if reply.status_code >= 500 or reply.status_code == 429:
                last_error = f"HTTP {reply.status_code}: {reply.text[:200]}"
                continue
            if reply.status_code != 200:
                raise JudgeError(
                    f"judge at {self._url} answered HTTP {reply.status_code}: {reply.text[:500]}"
                )
            try:
                content = reply.json()["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                last_error = f"malformed completion payload: {reply.text[:200]}"
                continue
            return content if isinstance(content, str) else ""
        raise JudgeError(
            f"judge at {self._url} failed after {self.max_retries + 1} attempts: {last_error}"
        )

    def _ask_json(self, prompt: str) -> dict[str, Any] | None:
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.retries += 1
            obj = _parse_json_object(self.complete(prompt))
            if obj is not None:
                return obj
        self.stats.unparsed += 1
        return None

    # -- Judge protocol --------------------------------------------------------------------

    def judge_column(
        self, criterion: str, responses: Sequence[str], targets: Sequence[str]
    ) -> list[float]:
        if len(responses) != len(targets):
            raise ValueError(f"{len(responses)} responses but {len(targets)} targets")
        if not responses:
            return []
        pairs = json.dumps(
            {
                f"idx_{i}": {"response": r, "target": t}
                for i, (r, t) in enumerate(zip(responses, targets))
            },
            ensure_ascii=False,
            indent=1,
        )
        obj = self._ask_json(_COLUMN_PROMPT.format(criterion=criterion, pairs=pairs))
        if obj is None:
            return [0.0] * len(responses)
        return [_as_score(obj.get(f"idx_{i}", 0)) for i in range(len(responses))]

    def judge_answer(self, question: str, answer: str, references: Sequence[str]) -> float:
        """The QA verdict (1.0 correct, 0.0 incorrect) on ``answer`` to ``question``; several
        accepted answers are shown as a list."""
        reference = references[0] if len(references) == 1 else json.dumps(
            list(references), ensure_ascii=False)
        return verdict_of(self.complete(_ANSWER_PROMPT.format(
            question=question, reference=reference, answer=answer)))

    def align(self, values: Sequence[str], reference: Sequence[str]) -> Mapping[str, str]:
        if not values or not reference:
            return {}
        obj = self._ask_json(
            _ALIGN_PROMPT.format(
                values=json.dumps(list(values), ensure_ascii=False),
                reference=json.dumps(list(reference), ensure_ascii=False),
            )
        )
        if obj is None:
            return {}
        allowed = set(reference)
        return {k: v for k, v in obj.items() if isinstance(v, str) and v in allowed}
