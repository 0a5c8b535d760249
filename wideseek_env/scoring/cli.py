"""``wideseek score``: score a JSONL file of answers against WideSearch-layout (or R1) tasks.

Each input line carries ``instance_id``, ``response`` and optionally ``run``
(:func:`read_responses` says what is refused, always with file, line and field); every input field
is copied to the output line, which adds ``item_precision``, ``item_recall``, ``item_f1``,
``row_precision``, ``row_recall``, ``row_f1``, ``success`` and ``parse_ok``, and with ``--explain``
an ``explanation`` (the cell-level explanation of :mod:`.explain`, from the same scoring pass). A
summary (means, and Avg@N / Max@N / Pass@N when tasks have repeated runs) is printed at the end.
QA tasks (WideSeek-R1's depth records) are scored by :mod:`.qa` (``correct``, ``exact_match``,
``token_f1``, ``parse_ok``, ``answer``; with a judge, its verdict) and summarised apart.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tasks", required=True, help="task file (WideSearch JSONL or R1 JSON/JSONL)"
    )
    parser.add_argument("--gold-dir", default=None, help="gold CSV directory (WideSearch layout)")
    parser.add_argument("--responses", required=True, help="JSONL with instance_id, response, run")
    parser.add_argument("--out", required=True, help="output JSONL (input fields + scores)")
    parser.add_argument(
        "--judge-url", default=None, help="OpenAI-compatible endpoint for llm_judge"
    )
    parser.add_argument("--judge-model", default=None, help="model name at the judge endpoint")
    parser.add_argument(
        "--judge-api-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the judge's bearer token, if any (default OPENAI_API_KEY)",
    )
    parser.add_argument(
        "--judge-timeout-s", type=float, default=120.0, help="judge request timeout"
    )
    parser.add_argument("--explain", action="store_true",
                        help="add each answer's cell-level explanation (field 'explanation': "
                             "gold rows matched or missed, every cell's values, forms, metric "
                             "and verdict, extra answer rows)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


class ResponseFormatError(ValueError):
    """A responses file that cannot be scored as it is (the message names the file, line, field)."""


def read_responses(src: Path, tasks: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The entries of a responses file, refusing every line that would be scored silently wrong.

    Each non-blank line must be UTF-8 JSON: an object with ``instance_id`` (a task of the task
    file), ``response`` (a string, or ``null`` for no answer: scored 0; the key itself must be
    there) and an optional ``run`` (an integer or a string; default 0). A second line for the
    same ``(instance_id, run)`` is refused: it would count twice in every mean.
    """
    if not src.is_file():
        raise ResponseFormatError(f"{src}: no such file")
    entries: list[dict[str, Any]] = []
    first_line: dict[tuple[str, Any], int] = {}
    for number, raw in enumerate(src.read_bytes().split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ResponseFormatError(
                f"{src}:{number}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                f"{exc.start + 1}); write the file as UTF-8") from None
        if not line.strip():
            continue
        where = f"{src}:{number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ResponseFormatError(f"{where}: invalid JSON: {exc.msg}") from None
        if not isinstance(entry, dict):
            raise ResponseFormatError(f"{where}: expected a JSON object")
        iid = entry.get("instance_id")
        if iid not in tasks:
            raise ResponseFormatError(f"{where}: field 'instance_id': unknown task {iid!r}")
        if "response" not in entry:
            raise ResponseFormatError(f"{where}: field 'response': missing (use null for an "
                                      "episode without an answer)")
        response = entry["response"]
        if response is not None and not isinstance(response, str):
            raise ResponseFormatError(f"{where}: field 'response': expected a string or null, "
                                      f"got {type(response).__name__}")
        run = entry.get("run", 0)
        if isinstance(run, bool) or not isinstance(run, (int, str)):
            raise ResponseFormatError(f"{where}: field 'run': expected an integer or a string, "
                                      f"got {run!r}")
        key = (iid, run)
        if key in first_line:
            raise ResponseFormatError(
                f"{where}: field 'run': instance {iid!r} run {run!r} is already on line "
                f"{first_line[key]}; give repeated runs distinct 'run' values")
        first_line[key] = number
        entries.append(entry)
    return entries


def _fail(message: str) -> int:
    print(f"wideseek score: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from ..progress import bar
    from ..qa import QATask
    from ..tasks import TaskFormatError, load_tasks
    from .explain import explain_response
    from .judge import JudgeError, OpenAIJudge
    from .qa import QAScore, aggregate_qa, score_qa
    from .scorer import ScoreRecord, aggregate, score_response

    if (args.judge_url is None) != (args.judge_model is None):
        return _fail("--judge-url and --judge-model go together")
    try:
        tasks = {t.instance_id: t for t in load_tasks(args.tasks, args.gold_dir)}
    except TaskFormatError as exc:
        return _fail(str(exc))
    judge = None
    if args.judge_url:
        api_key = os.environ.get(args.judge_api_key_env) or None
        judge = OpenAIJudge(
            args.judge_url, args.judge_model, api_key=api_key, timeout_s=args.judge_timeout_s
        )
    try:
        entries = read_responses(Path(args.responses), tasks)
    except ResponseFormatError as exc:
        return _fail(str(exc))
    records: dict[str, list[ScoreRecord]] = defaultdict(list)
    qa_records: dict[str, list[QAScore]] = defaultdict(list)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as sink:
        for entry in bar(entries, desc="scoring", unit="answer", disable=args.quiet):
            task, text = tasks[entry["instance_id"]], entry.get("response") or ""
            extra = {}
            if isinstance(task, QATask):
                try:
                    qa = score_qa(task, text, judge)
                except JudgeError as exc:
                    print(f"wideseek score: error: the judge failed ({exc}); nothing was scored "
                          "past this answer: fix the judge and run again", file=sys.stderr)
                    return 3
                qa_records[entry["instance_id"]].append(qa)
                sink.write(json.dumps({**entry, **qa.as_dict()}, ensure_ascii=False) + "\n")
                continue
            try:
                if args.explain:
                    record, explanation = explain_response(task, text, judge)
                    extra["explanation"] = explanation.as_dict()
                else:
                    record = score_response(task, text, judge)
            except JudgeError as exc:
                print(f"wideseek score: error: the judge failed ({exc}); nothing was scored past "
                      "this answer: fix the judge and run again", file=sys.stderr)
                return 3
            records[entry["instance_id"]].append(record)
            line = {**entry, **record.as_dict(), **extra}
            sink.write(json.dumps(line, ensure_ascii=False) + "\n")
    if not entries:
        print("no responses scored")
        return 0
    if qa_records:
        q = aggregate_qa(qa_records)
        print(f"scored {int(q['runs'])} QA answers over {int(q['tasks'])} tasks -> {out}: "
              f"accuracy {q['correct']:.4f}, exact match {q['exact_match']:.4f}, token F1 "
              f"{q['token_f1']:.4f}")
    if not records:
        return 0
    summary = aggregate(records)
    n = int(summary["runs_per_task"])
    print(f"scored {len(entries)} answers over {int(summary['tasks'])} tasks -> {out}")
    for key in ("item_f1", "item_precision", "item_recall", "row_f1", "success", "parse_ok"):
        print(f"  mean {key:<15} {summary[key]:.4f}")
    if n > 1:
        for key in ("item_f1_avg@n", "item_f1_max@n", "row_f1_avg@n", "row_f1_max@n",
                    "success_avg@n", "success_pass@n"):  # fmt: skip
            print(f"  {key.replace('@n', f'@{n}'):<20} {summary[key]:.4f}")
    return 0
