"""WideSearch-compatible scoring: table extraction, per-column metrics, item/row F1, judges.

``score_response(task, response, judge=None)`` gives a :class:`ScoreRecord`; ``aggregate`` turns
records of repeated runs into Avg@N / Max@N / Pass@N. See docs/scoring.md for the algorithm and
how it relates to the official WideSearch evaluator.
"""

from .extract import extract_table, render_markdown_table
from .judge import Judge, JudgeError, OpenAIJudge
from .scorer import ScoreRecord, aggregate, score_response

__all__ = [
    "Judge",
    "JudgeError",
    "OpenAIJudge",
    "ScoreRecord",
    "aggregate",
    "extract_table",
    "render_markdown_table",
    "score_response",
]
