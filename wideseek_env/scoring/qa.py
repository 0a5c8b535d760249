"""Score a QA ("depth") answer: the usual QA metrics, or a judge's correct/incorrect verdict.

1. The answer is the content of the **last** ``\\boxed{…}`` of the response, reasoning removed
   (braces balanced, as the reference implementation reads it). None -> every score 0 and
   ``parse_ok`` false (the paper pays such a rollout nothing).
2. ``exact_match``: 1 when the answer equals one of the accepted answers after normalisation
   (lower case; punctuation, the articles a/an/the and extra spaces removed: SQuAD's
   normalisation; Chinese characters are compared one by one, as token F1 counts them).
3. ``token_f1``: the best token-overlap F1 against any accepted answer (SQuAD's F1).
4. ``correct``: with a judge that has ``judge_answer`` (any OpenAI-compatible endpoint through
   :class:`~wideseek_env.scoring.judge.OpenAIJudge`), its verdict (1/0) on the question, the
   accepted answers and the answer, as the paper judges QA; without one, ``exact_match``.

A missing answer only lowers the score; a judge that cannot be reached raises (JudgeError).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import fmean
from typing import Any, Protocol, runtime_checkable

from wideseek_env.env.protocol import strip_think
from wideseek_env.qa import QATask

__all__ = ["QAJudge", "QAScore", "aggregate_qa", "extract_boxed", "normalize_answer",
           "score_qa", "token_f1"]

QA_FIELDS = ("correct", "exact_match", "token_f1", "parse_ok")


@runtime_checkable
class QAJudge(Protocol):
    """A judge that rules on one QA answer."""

    def judge_answer(self, question: str, answer: str, references: Sequence[str]) -> float:
        """1.0 when ``answer`` is equivalent to a reference answer, else 0.0."""
        ...


@dataclass(frozen=True)
class QAScore:
    """The scores of one QA answer. ``answer`` is what was read from the box (None: no box)."""

    correct: float
    exact_match: float
    token_f1: float
    parse_ok: bool
    judged: bool
    answer: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_BOX = "\\boxed{"


def extract_boxed(response: str) -> str | None:
    """The content of the last balanced ``\\boxed{…}`` after the reasoning, stripped."""
    text = strip_think(response)
    found: str | None = None
    i = text.find(_BOX)
    while i >= 0:
        start = j = i + len(_BOX)
        depth = 1
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        if depth == 0:
            found = text[start : j - 1]
            i = text.find(_BOX, j)
        else:
            i = text.find(_BOX, start)
    return found.strip() if found is not None else None


_PUNCT = set(string.punctuation) | {"“", "”", "‘", "’", "，", "。", "、", "：", "；", "！", "？",
                                     "（", "）", "《", "》", "—", "–"}
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CJK = re.compile(r"([\u3400-\u9fff\uf900-\ufaff])")


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation (NFKC first; CJK characters spaced out)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    text = _CJK.sub(r" \1 ", text)
    return " ".join(text.split())


def token_f1(answer: str, reference: str) -> float:
    """SQuAD's token F1 between two answers (after :func:`normalize_answer`)."""
    a, r = normalize_answer(answer).split(), normalize_answer(reference).split()
    if not a or not r:
        return float(a == r)
    common = sum((Counter(a) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(r)
    return 2 * precision * recall / (precision + recall)


def score_qa(task: QATask, response: str, judge: Any = None) -> QAScore:
    """Score ``response`` against ``task.answers`` (see the module docstring)."""
    answer = extract_boxed(response)
    if answer is None:
        return QAScore(0.0, 0.0, 0.0, False, False, None)
    norm = normalize_answer(answer)
    em = float(any(norm == normalize_answer(r) for r in task.answers))
    f1 = max(token_f1(answer, r) for r in task.answers)
    if isinstance(judge, QAJudge):
        verdict = float(judge.judge_answer(task.query, answer, list(task.answers)))
        if verdict not in (0.0, 1.0):
            raise ValueError(f"{type(judge).__name__}.judge_answer returned {verdict!r}; "
                             "expected 0.0 or 1.0")
        return QAScore(verdict, em, f1, True, True, answer)
    return QAScore(em, em, f1, True, False, answer)


def aggregate_qa(records_by_task: Mapping[str, Sequence[QAScore]]) -> dict[str, float]:
    """Summary over QA tasks, each with one or more runs: ``tasks``, ``runs``,
    ``runs_per_task``, the means over all records of ``correct``, ``exact_match``, ``token_f1``
    and ``parse_ok``, and over tasks ``accuracy_avg@n`` (mean ``correct`` over a task's runs),
    ``accuracy_pass@n`` (any run correct), ``exact_match_avg@n`` and ``token_f1_avg@n``."""
    per_task = [list(v) for v in records_by_task.values() if len(v)]
    if not per_task:
        raise ValueError("aggregate_qa() needs at least one task with at least one record")
    everything = [r for runs in per_task for r in runs]
    out: dict[str, float] = {"tasks": float(len(per_task)), "runs": float(len(everything)),
                             "runs_per_task": float(max(len(runs) for runs in per_task))}
    for name in QA_FIELDS:
        out[name] = fmean(float(getattr(r, name)) for r in everything)
    out["accuracy_avg@n"] = fmean(fmean(r.correct for r in runs) for runs in per_task)
    out["accuracy_pass@n"] = fmean(float(any(r.correct > 0 for r in runs)) for runs in per_task)
    out["exact_match_avg@n"] = fmean(fmean(r.exact_match for r in runs) for runs in per_task)
    out["token_f1_avg@n"] = fmean(fmean(r.token_f1 for r in runs) for runs in per_task)
    return out
