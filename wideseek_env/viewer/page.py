"""Assemble the viewer page: one HTML file with its CSS, script and data inlined.

The page needs no server and no network (it works from a ``file://`` URL offline): the script and
styles are in ``assets/`` and inlined here, the episode index is a JSON ``<script>`` block, and the
per-episode payloads are one base64 line each in a ``text/plain`` block that the script inflates
with the browser's own ``DecompressionStream`` when an episode is opened. JSON blocks escape
every ``<`` as ``\\u003c``, so no text from a model can close the ``<script>`` element; the script
puts model text in the page with ``textContent`` only.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wideseek_env.trace import Explainer
from wideseek_env.viewer.data import PromptTable, RunSource, ViewError, find_runs, iter_episodes

ASSETS = Path(__file__).resolve().parent / "assets"
SCRIPTS = ("viewer.js", "answer.js", "episode.js")
VIEW_FILE = "view.html"


def script_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def page_meta(runs: Sequence[RunSource], prompts: PromptTable, *, live: bool = False,
              poll_ms: int = 2000) -> dict[str, Any]:
    """The page's ``META`` object: the runs, the shared system prompts, live mode."""
    return {"runs": [r.describe() for r in runs], "prompts": prompts.texts, "live": live,
            "poll_ms": poll_ms, "version": 1}


def render_page(title: str, meta: dict[str, Any], index: Sequence[dict[str, Any]],
                blobs: Iterable[str]) -> str:
    """The whole HTML document."""
    template = (ASSETS / "page.html").read_text(encoding="utf-8")
    script = "\n".join((ASSETS / name).read_text(encoding="utf-8") for name in SCRIPTS)
    parts = {
        "__CSS__": (ASSETS / "viewer.css").read_text(encoding="utf-8"),
        "__JS__": script,
        "__META__": script_json(meta),
        "__INDEX__": script_json(list(index)),
        "__BLOBS__": "\n".join(blobs),
        "__TITLE__": html.escape(title),
    }
    out = []
    rest = template
    # One pass in template order, so text inserted for one marker is never searched for another.
    while True:
        hits = [(rest.find(k), k) for k in parts if rest.find(k) >= 0]
        if not hits:
            out.append(rest)
            return "".join(out)
        at, key = min(hits)
        out.append(rest[:at])
        out.append(parts[key])
        rest = rest[at + len(key):]


def default_title(runs: Sequence[RunSource], paths: Sequence[str | Path]) -> str:
    if len(runs) == 1:
        return f"WideSeek episodes: {runs[0].label}"
    return f"WideSeek episodes: {Path(paths[0]).resolve().name}" if len(paths) == 1 else \
        f"WideSeek episodes: {len(runs)} runs"


def default_output(paths: Sequence[str | Path]) -> Path:
    """``<folder>/view.html`` for one run or benchmark folder, ``<name>.html`` beside one trace
    file; several inputs need an explicit output."""
    if len(paths) != 1:
        raise ViewError("several inputs: say where the page goes with --out")
    path = Path(paths[0])
    return path.with_suffix(".html") if path.is_file() else path / VIEW_FILE


@dataclass(frozen=True)
class ViewResult:
    """What :func:`write_view` wrote."""

    path: Path
    episodes: int
    runs: int
    size_bytes: int


def write_view(paths: Sequence[str | Path], out: str | Path | None = None, *,
               title: str | None = None, max_message_chars: int = 0,
               progress: bool = False) -> ViewResult:
    """Write the page for the runs behind ``paths`` (see :func:`.data.find_runs`) to ``out``
    (default :func:`default_output`). Raises :class:`ViewError` for paths without runs."""
    runs = find_runs(paths)
    target = Path(out) if out is not None else default_output(paths)
    prompts = PromptTable()
    index, blobs = [], []
    episodes = iter_episodes(runs, max_message_chars=max_message_chars, prompts=prompts,
                             explainer=Explainer())
    if progress:
        from tqdm import tqdm

        episodes = tqdm(episodes, desc="view", unit="ep", dynamic_ncols=True)
    for entry, blob in episodes:
        index.append(entry)
        blobs.append(blob)
    text = render_page(title or default_title(runs, paths), page_meta(runs, prompts), index, blobs)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return ViewResult(target, len(index), len(runs), target.stat().st_size)
