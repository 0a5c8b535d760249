"""Episode traces on disk: crash-safe JSONL appends, tolerant reading, and ``wideseek trace show``.

A trace file holds one JSON object per finished episode (written by the runner, see
:mod:`wideseek_env.runner`): its ``task_id`` and ``repeat``, the score, the cost, and every
agent's whole conversation (``agents``: id, role, parent, delegation index, status, turns and
messages). Each record is written with a single ``write`` on a file opened for appending, then
flushed and synced, so a crash or Ctrl-C leaves at most one torn last line; :func:`read_traces`
drops such a line (and :class:`TraceWriter` cuts it off before appending), so a resumed run
simply runs that episode again. Eval traces also hold each score's cell-level ``explanation``
(:mod:`wideseek_env.scoring.explain`); :class:`Explainer` recomputes it for older records.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

#: Tool names under which a lead's delegation results come back (wideseek, paper).
DELEGATE_NAMES = ("delegate", "create_sub_agents")

def iter_traces(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every complete record of a trace file, streamed (nothing if the file does not exist).

    A last line without its newline is a torn write and is skipped; any other line that is not a
    JSON object is corruption and raises ``ValueError`` naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                return  # a torn write: the episode is simply run again
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not a JSON record ({err.msg})") from err
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{lineno}: a trace record must be a JSON object")
            yield record


def read_traces(path: str | Path) -> list[dict[str, Any]]:
    """All complete records of a trace file (see :func:`iter_traces`)."""
    return list(iter_traces(path))


class TraceWriter:
    """Appends records to a JSONL file, one atomic line each (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._cut_torn_tail()

    def _cut_torn_tail(self) -> None:
        size = os.fstat(self._fd).st_size
        with open(self.path, "rb") as f:
            f.seek(max(0, size - 1))
            if size == 0 or f.read(1) == b"\n":
                return
            end = size  # scan back for the last newline, a chunk at a time
            while end > 0:
                start = max(0, end - 65536)
                f.seek(start)
                newline = f.read(end - start).rfind(b"\n")
                if newline >= 0:
                    os.ftruncate(self._fd, start + newline + 1)
                    return
                end = start
        os.ftruncate(self._fd, 0)

    def append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode("utf-8"))
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------ explanations


def load_run_info(trace_path: str | Path) -> dict[str, Any]:
    """The ``run.json`` beside a trace file (what ``wideseek eval`` ran), or ``{}``."""
    path = Path(trace_path).parent / "run.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from err
    return data if isinstance(data, dict) else {}


class Explainer:
    """Cell-level score explanations of trace records: the record's own (``explanation``), or,
    for a record written without one, one recomputed from the run's world (named in
    ``run.json``) when that world still loads and rescoring the answer (without a judge) gives
    the recorded score. Worlds are loaded once per (path, split)."""

    def __init__(self) -> None:
        self._tasks: dict[tuple[str, str], dict[str, Any] | None] = {}

    def _tasks_of(self, run_info: Mapping[str, Any]) -> dict[str, Any] | None:
        world = run_info.get("world", {})
        path, split = world.get("path"), world.get("split")
        if not path or not split or not Path(path).is_dir():
            return None
        if (path, split) not in self._tasks:
            from wideseek_env.worlds import World

            try:
                tasks = {t.instance_id: t for t in World.load(path).tasks(split)}
            except (OSError, ValueError, KeyError):
                tasks = None
            self._tasks[(path, split)] = tasks
        return self._tasks[(path, split)]

    def __call__(self, record: Mapping[str, Any], run_info: Mapping[str, Any],
                 ) -> tuple[dict[str, Any] | None, bool]:
        """``(explanation as a dict or None, recomputed)``."""
        if isinstance(record.get("explanation"), Mapping):
            return dict(record["explanation"]), False
        if record.get("response") is None:
            return None, False
        tasks = self._tasks_of(run_info)
        task = tasks.get(record.get("task_id")) if tasks else None
        if task is None:
            return None, False
        from wideseek_env.scoring.explain import explain_response

        score, explanation = explain_response(task, record["response"])
        if score.as_dict() != record.get("score"):
            return None, False  # scored with a judge or another scorer version: do not guess
        return explanation.as_dict(), True


# ------------------------------------------------------------------------------------ rendering


def _short(text: str, max_chars: int) -> str:
    flat = " ".join(str(text).split())
    if max_chars <= 0 or len(flat) <= max_chars:
        return flat
    return flat[: max_chars - 1] + "…"


def _has_table(text: str) -> bool:
    return sum(line.lstrip().startswith("|") for line in text.splitlines()) >= 2


def _message_text(text: str, indent: str, max_chars: int) -> str:
    """A message for the tree: in full with its lines when it holds a markdown table (an answer
    or a report) or when ``max_chars`` <= 0, else flattened to one line cut to ``max_chars``."""
    text = str(text)
    if max_chars > 0 and not _has_table(text):
        return _short(text, max_chars)
    return ("\n" + indent).join(line.rstrip() for line in text.strip("\n").splitlines())


def _agent_block(agent: Mapping[str, Any], indent: str, max_chars: int) -> Iterator[tuple[Any, str]]:
    """``(message, line)`` per shown message of one agent, after a header line (message None)."""
    status = agent.get("status", "?")
    if agent.get("end_reason"):
        status += f" ({agent['end_reason']})"
    yield None, (f"{indent}{agent['id']} [{agent.get('role', '?')}, {agent.get('turns', '?')}/"
                 f"{agent.get('max_turns', '?')} turns, {status}]")
    turn = 0
    reasons = agent.get("finish_reasons") or []
    for msg in agent.get("messages", [])[1:]:  # the system prompt is the same for every agent
        role = msg.get("role")
        if role == "assistant":
            turn += 1
            cut = turn <= len(reasons) and reasons[turn - 1] == "length"
            label = f"turn {turn}" + (" (cut at the token limit)" if cut else "")
        elif role == "tool":
            label = f"← {msg.get('name', 'tool')}"
        else:
            label = str(role)
        body = _message_text(msg.get("content", ""), indent + "    ", max_chars)
        yield msg, f"{indent}  {label}: {body}"


def render_episode(record: Mapping[str, Any], max_chars: int = 300) -> str:
    """One episode as an agent tree: each delegation's subagents appear under the lead's call,
    before the results come back. Messages are cut to ``max_chars`` on one line, except that a
    message holding a markdown table (the answer) is shown in full with its lines; ``max_chars``
    <= 0 shows every message in full with its lines."""
    agents = list(record.get("agents", []))
    lead = next((a for a in agents if a.get("parent") is None), None)
    head = (f"task {record.get('task_id')} repeat {record.get('repeat')} "
            f"(seed {record.get('seed')}, {record.get('mode', 'multi')})")
    out = [head]
    if lead is not None:
        by_call: dict[int, list[Mapping[str, Any]]] = {}
        for a in agents:
            if a.get("parent") is not None:
                by_call.setdefault(int(a.get("delegation", 0)), []).append(a)
        call = 0
        for msg, line in _agent_block(lead, "", max_chars):
            if msg is not None and msg.get("role") == "tool" and msg.get("name") in DELEGATE_NAMES:
                for sub in by_call.get(call, []):
                    out.extend(text for _, text in _agent_block(sub, "    ", max_chars))
                call += 1
            out.append(line)
        # Subagents whose results never came back (cannot happen with a finished episode).
        for k in sorted(by_call):
            if k >= call:
                for sub in by_call[k]:
                    out.extend(text for _, text in _agent_block(sub, "    ", max_chars))
    m, c = record.get("metrics", {}), record.get("cost", {})
    if m and record.get("kind") == "qa":
        out.append(
            f"end: {record.get('episode_end')}; correct {m.get('correct', 0):.0f}; exact match "
            f"{m.get('exact_match', 0):.0f}; token F1 {m.get('token_f1', 0):.3f}; subagents "
            f"{c.get('subagents_used')}; turns {c.get('total_turns')} (critical path "
            f"{c.get('critical_path_turns')}); policy calls {c.get('policy_calls')}; "
            f"generated tokens {c.get('generated_tokens')}"
        )
    elif m:
        out.append(
            f"end: {record.get('episode_end')}; item F1 {m.get('item_f1', 0):.3f}; row F1 "
            f"{m.get('row_f1', 0):.3f}; success {m.get('success')}; subagents "
            f"{c.get('subagents_used')}; turns {c.get('total_turns')} (critical path "
            f"{c.get('critical_path_turns')}); policy calls {c.get('policy_calls')}; "
            f"generated tokens {c.get('generated_tokens')}"
        )
    return "\n".join(out)


# ------------------------------------------------------------------------------------ CLI


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="trace_command", metavar="SUBCOMMAND", required=True)
    show = sub.add_parser("show", help="print one episode of a trace file as the agent tree",
                          description="Print one episode as the agent tree (the answer table "
                                      "keeps its lines); --diff adds the cell diff against the gold.")
    show.add_argument("file", type=Path, help="a trace file (episodes.jsonl written by `wideseek eval`)")
    pick = show.add_mutually_exclusive_group()
    pick.add_argument("--index", type=int, default=0,
                      help="which record of the file, from 0 (default 0; negative counts from the end)")
    pick.add_argument("--task-id", help="the episode of this task (with --repeat)")
    show.add_argument("--repeat", type=int, default=0, help="repeat of --task-id (default 0)")
    show.add_argument("--max-chars", type=int, default=300,
                      help="shorten each message to this many characters (0: in full)")
    show.add_argument("--list", action="store_true", help="list the file's episodes instead")
    show.add_argument("--diff", nargs="?", const="all", choices=("all", "wrong"), default=None,
                      help="also print the answer's cell diff against the gold table (every "
                           "row, or with 'wrong' only rows with a wrong, missed or extra cell)")


def run(args: argparse.Namespace) -> int:
    records = read_traces(args.file)
    if not records:
        print(f"wideseek trace show: error: {args.file}: no complete episodes", file=sys.stderr)
        return 2
    if args.list:
        for i, r in enumerate(records):
            m = r.get("metrics", {})
            score = (f"correct {m.get('correct', 0):.0f}" if r.get("kind") == "qa"
                     else f"item F1 {m.get('item_f1', 0):.3f}")
            print(f"{i}\t{r.get('task_id')}\trepeat {r.get('repeat')}\t{score}")
        return 0
    if args.task_id is not None:
        found = [r for r in records if r.get("task_id") == args.task_id and r.get("repeat") == args.repeat]
        if not found:
            print(f"wideseek trace show: error: {args.file}: no episode of task {args.task_id!r} "
                  f"repeat {args.repeat}", file=sys.stderr)
            return 2
        record = found[0]
    else:
        if not -len(records) <= args.index < len(records):
            print(f"wideseek trace show: error: {args.file}: --index {args.index} out of range "
                  f"(0..{len(records) - 1})", file=sys.stderr)
            return 2
        record = records[args.index]
    print(render_episode(record, args.max_chars))
    if args.diff:
        from wideseek_env.scoring.explain import ScoreExplanation, format_explanation

        data, recomputed = Explainer()(record, load_run_info(args.file))
        if data is None:
            print(f"{args.file}: no cell diff: the record has no explanation and the run's world "
                  "(run.json) is not available to recompute it", file=sys.stderr)
            return 1
        note = " (recomputed from the world's gold table)" if recomputed else ""
        print(f"\ncell diff{note}:")
        print(format_explanation(ScoreExplanation.from_dict(data), args.max_chars,
                                 only_wrong=args.diff == "wrong"))
    return 0
