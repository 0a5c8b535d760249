"""What the viewer page shows, read from runs on disk: the runs, one index entry per episode and
one packed payload per episode.

A *run* is a folder written by ``wideseek eval`` (``run.json`` + ``episodes.jsonl``) or a bare
trace file; a ``wideseek bench`` folder stands for its runs (``width_<N>``/``turns_<T>``
sub-folders). The index entry of an episode is small (scores and costs: the sortable list); the
payload (every agent's conversation, the answer and its cell-level explanation) is gzip-compressed
and base64-encoded, so a 640-episode run stays a few MB and the page inflates one episode only
when it is opened. System prompts are stored once per page (they repeat in every agent).

Records written before traces carried explanations get one computed at view time when the run's
world can still be loaded (``run.json`` names it) and rescoring the answer gives the recorded
score; the page marks it as recomputed.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wideseek_env.trace import Explainer, iter_traces, load_run_info

TRACE_FILE = "episodes.jsonl"
_POINT_RE = re.compile(r"^(width|turns)_(\d+)$")


class ViewError(ValueError):
    """A path that holds no run (message names the path)."""


@dataclass(frozen=True)
class RunSource:
    """One run: a label for the page, its trace file and its ``run.json`` (``{}`` without)."""

    label: str
    trace_path: Path
    run: Mapping[str, Any] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return str(self.run.get("spec", {}).get("mode", "multi"))

    @property
    def width(self) -> int | None:
        spec = self.run.get("spec", {})
        return int(spec["width"]) if self.mode == "multi" and "width" in spec else None

    def describe(self) -> dict[str, Any]:
        """What the page says about the run (no absolute paths: the page may be shared)."""
        world = dict(self.run.get("world", {}))
        world.pop("path", None)
        return {"label": self.label, "spec": dict(self.run.get("spec", {})),
                "policy": dict(self.run.get("policy", {})), "world": world}


def _run(label: str, trace_path: Path) -> RunSource:
    try:
        return RunSource(label, trace_path, load_run_info(trace_path))
    except ValueError as err:
        raise ViewError(str(err)) from err


def find_runs(paths: Sequence[str | Path]) -> list[RunSource]:
    """The runs behind ``paths`` (run folders, trace files or benchmark folders), in order.

    Raises :class:`ViewError` naming a path that does not exist or holds no run.
    """
    runs: list[RunSource] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            runs.append(_run(path.resolve().parent.name or path.stem, path))
        elif (path / TRACE_FILE).is_file():
            runs.append(_run(path.resolve().name, path / TRACE_FILE))
        elif path.is_dir():
            points = []
            for sub in path.iterdir():
                m = _POINT_RE.match(sub.name)
                if m and (sub / TRACE_FILE).is_file():
                    points.append((m.group(1), int(m.group(2)), sub))
            if not points:
                raise ViewError(f"{path}: no {TRACE_FILE} here nor in width_<N>/turns_<T> "
                                "sub-folders (expected a run folder, a trace file or a "
                                "`wideseek bench` folder)")
            for _, _, sub in sorted(points):
                runs.append(_run(sub.name, sub / TRACE_FILE))
        else:
            raise ViewError(f"{path}: no such file or folder")
    return runs


def index_entry(record: Mapping[str, Any], run_index: int, run: RunSource) -> dict[str, Any]:
    """The episode's row in the list: identity, scores and costs."""
    m, c = record.get("metrics", {}), record.get("cost", {})
    calls = c.get("total_tool_calls")
    if calls is None and isinstance(c.get("tool_calls"), Mapping):
        calls = sum(c["tool_calls"].values())
    spec = run.run.get("spec", {})
    return {
        "run": run_index, "task": record.get("task_id"), "repeat": record.get("repeat"),
        "mode": record.get("mode", run.mode), "width": run.width,
        "turn_budget": spec.get("max_turns") if record.get("mode") == "single" else None,
        "kind": record.get("kind", "table"), "correct": m.get("correct"),
        "item_f1": m.get("item_f1"), "row_f1": m.get("row_f1"),
        "item_precision": m.get("item_precision"), "item_recall": m.get("item_recall"),
        "success": m.get("success"), "parse_ok": m.get("parse_ok"),
        "end": record.get("episode_end"), "subagents": c.get("subagents_used"),
        "turns": c.get("total_turns"), "critical_path": c.get("critical_path_turns"),
        "tokens": c.get("generated_tokens"), "tokens_estimated": c.get("tokens_estimated"),
        "tool_calls": calls, "policy_calls": c.get("policy_calls"),
        "format_errors": c.get("format_errors"), "tool_errors": c.get("tool_errors"),
    }


class PromptTable:
    """System prompts stored once per page: text -> index."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._ids: dict[str, int] = {}

    def ref(self, text: str) -> int:
        if text not in self._ids:
            self._ids[text] = len(self.texts)
            self.texts.append(text)
        return self._ids[text]


def _messages(messages: Sequence[Mapping[str, Any]], prompts: PromptTable,
              max_chars: int) -> tuple[int | None, list[list[Any]]]:
    """(system prompt ref, ``[role, content, tool name or None]`` per other message)."""
    system = None
    out = []
    for i, msg in enumerate(messages):
        content = str(msg.get("content") or "")
        if i == 0 and msg.get("role") == "system":
            system = prompts.ref(content)
            continue
        if max_chars > 0 and len(content) > max_chars:
            content = content[:max_chars] + f"\n… [{len(content) - max_chars:,} more characters cut by wideseek view --max-message-chars]"
        out.append([msg.get("role"), content, msg.get("name")])
    return system, out


def payload(record: Mapping[str, Any], prompts: PromptTable, max_message_chars: int = 0,
            explanation: tuple[Mapping[str, Any] | None, bool] = (None, False)) -> dict[str, Any]:
    """Everything the episode view needs (conversations compacted, system prompts by ref)."""
    agents = []
    for a in record.get("agents", []):
        system, msgs = _messages(a.get("messages", []), prompts, max_message_chars)
        agents.append({k: a.get(k) for k in (
            "id", "role", "parent", "delegation", "status", "end_reason", "turns", "max_turns",
            "tool_calls", "format_errors", "tool_errors", "context_tokens", "generated_tokens")}
            | {"system": system, "messages": msgs})
    ex, recomputed = explanation if explanation[0] is not None else (record.get("explanation"), False)
    return {
        "task": record.get("task_id"), "repeat": record.get("repeat"),
        "seed": record.get("seed"), "mode": record.get("mode"),
        "metrics": record.get("metrics", {}), "cost": record.get("cost", {}),
        "reward": record.get("reward"), "end": record.get("episode_end"),
        "response": record.get("response"), "explanation": ex,
        "explanation_recomputed": recomputed,
        "agents": agents,
    }


def pack(data: Any) -> str:
    """JSON, gzip (fixed mtime: the same data gives the same bytes), base64."""
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def unpack(text: str) -> Any:
    """The inverse of :func:`pack`."""
    return json.loads(gzip.decompress(base64.b64decode(text)).decode("utf-8"))


def iter_episodes(runs: Sequence[RunSource], *, max_message_chars: int = 0,
                  prompts: PromptTable | None = None, explainer: Explainer | None = None,
                  ) -> Iterator[tuple[dict[str, Any], str]]:
    """``(index entry, packed payload)`` of every complete episode of ``runs``, in file order."""
    prompts = prompts if prompts is not None else PromptTable()
    for i, run in enumerate(runs):
        for record in iter_traces(run.trace_path):
            ex = explainer(record, run.run) if explainer is not None else (None, False)
            yield index_entry(record, i, run), pack(payload(record, prompts, max_message_chars, ex))
