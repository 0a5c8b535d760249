"""QA ("depth") tasks: a question with a short answer, beside the table ("width") tasks.

A :class:`QATask` is a :class:`~wideseek_env.tasks.Task` (so every part of the project that
passes tasks around takes it unchanged) whose table parts are empty and whose ``answers`` hold
the accepted answers (any one is right; the paper's depth data gives a string or a list). The
lead answers it inside ``\\boxed{}``; :mod:`wideseek_env.scoring.qa` scores it by normalised exact
match and token F1, or with a judge's correct/incorrect verdict.

:func:`task_kind` tells the two kinds apart; :func:`write_qa_tasks` / :func:`read_qa_tasks` keep
QA tasks in the paper's depth record layout (``question``, ``answer`` as a list,
``is_markdown: false``, ``instance_id``, plus our ``language`` and ``meta``), which is how a world
stores them (``tasks/<split>_qa.jsonl``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wideseek_env.tasks import GoldTable, Task

TaskKind = Literal["table", "qa"]
_NO_TABLE = GoldTable((), ())


@dataclass(frozen=True)
class QATask(Task):
    """A question (``query``) with accepted ``answers``; the table fields are empty."""

    answers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.answers or not all(isinstance(a, str) and a.strip() for a in self.answers):
            raise ValueError(f"QA task {self.instance_id!r}: answers must be non-empty strings, "
                             f"got {self.answers!r}")


def qa_task(instance_id: str, question: str, answers: Sequence[str], *, language: str = "en",
            meta: Mapping[str, Any] | None = None) -> QATask:
    """A :class:`QATask` from its question and accepted answers."""
    return QATask(instance_id, question, language, (), (), {}, _NO_TABLE, dict(meta or {}),
                  tuple(answers))


def task_kind(task: Task) -> TaskKind:
    """``qa`` for a :class:`QATask`, else ``table``."""
    return "qa" if isinstance(task, QATask) else "table"


def qa_record(task: QATask) -> dict[str, Any]:
    """The paper's depth record of ``task`` (plus ``language`` and a non-empty ``meta``)."""
    record: dict[str, Any] = {"instance_id": task.instance_id, "question": task.query,
                              "answer": list(task.answers), "is_markdown": False,
                              "language": task.language}
    if task.meta:
        record["meta"] = dict(task.meta)
    return record


def write_qa_tasks(tasks: Iterable[QATask], path: str | os.PathLike[str]) -> None:
    """Write QA tasks as JSONL in the paper's depth layout (:func:`qa_record`)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(qa_record(t), ensure_ascii=False) for t in tasks]
    out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def read_qa_tasks(path: str | os.PathLike[str]) -> list[QATask]:
    """Read QA tasks written by :func:`write_qa_tasks` (any depth file of the paper reads too)."""
    from wideseek_env.taskfiles import load_task_file

    tasks = load_task_file(path)
    bad = [t.instance_id for t in tasks if not isinstance(t, QATask)]
    if bad:
        raise ValueError(f"{path}: expected QA records only, {bad[0]!r} is a table task")
    return tasks  # type: ignore[return-value]
