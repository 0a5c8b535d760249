"""``wideseek view --serve``: the same page from a local HTTP server, following a running eval.

The server reads each trace file from where it stopped (only complete lines: a line still being
written is read on the next request), finds run folders that appear later (a benchmark's next
width), and answers two requests: ``/`` (the page with every episode so far, in live mode) and
``/updates?since=N&prompts=M`` (the episodes from N on, the system prompts from M on, and the runs).
The page polls ``/updates`` every two seconds. It binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from wideseek_env.trace import Explainer
from wideseek_env.viewer.data import (
    TRACE_FILE,
    PromptTable,
    RunSource,
    ViewError,
    find_runs,
    index_entry,
    pack,
    payload,
)
from wideseek_env.viewer.page import default_title, page_meta, render_page


def _read_new(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Complete records of ``path`` after byte ``offset``, and the offset after them."""
    if not path.is_file():
        return [], offset
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    records = []
    for raw in data[: end + 1].splitlines():
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: after byte {offset}: not a JSON record ({err.msg})") from err
        if not isinstance(record, dict):
            raise ValueError(f"{path}: after byte {offset}: a trace record must be a JSON object")
        records.append(record)
    return records, offset + end + 1


class LiveView:
    """What a served page shows, brought up to date on every request."""

    def __init__(self, paths: Sequence[str | Path], *, title: str | None = None,
                 max_message_chars: int = 0, poll_ms: int = 2000) -> None:
        self.paths = [Path(p) for p in paths]
        self.max_message_chars = max_message_chars
        self.poll_ms = poll_ms
        self.runs: list[RunSource] = []
        self.offsets: list[int] = []
        self.index: list[dict[str, Any]] = []
        self.blobs: list[str] = []
        self.prompts = PromptTable()
        self.explainer = Explainer()
        self.lock = threading.Lock()
        self.refresh()
        self.title = title or default_title(self.runs, self.paths) + " (live)"

    def _discover(self) -> list[RunSource]:
        found: list[RunSource] = []
        for path in self.paths:
            try:
                found += find_runs([path])
            except ViewError:
                if path.suffix == ".jsonl" or path.is_file():
                    found.append(RunSource(path.parent.resolve().name, path))
                else:  # a run folder whose eval has not written its trace yet
                    found.append(RunSource(path.resolve().name, path / TRACE_FILE))
        return found

    def refresh(self) -> None:
        with self.lock:
            known = {r.trace_path: k for k, r in enumerate(self.runs)}
            for run in self._discover():
                k = known.get(run.trace_path)
                if k is None:
                    self.runs.append(run)
                    self.offsets.append(0)
                elif run.run and not self.runs[k].run:
                    self.runs[k] = run  # its run.json has appeared
            for k, run in enumerate(self.runs):
                records, self.offsets[k] = _read_new(run.trace_path, self.offsets[k])
                for record in records:
                    ex = self.explainer(record, run.run)
                    self.index.append(index_entry(record, k, run))
                    self.blobs.append(pack(payload(record, self.prompts, self.max_message_chars, ex)))

    def page(self) -> str:
        self.refresh()
        with self.lock:
            meta = page_meta(self.runs, self.prompts, live=True, poll_ms=self.poll_ms)
            return render_page(self.title, meta, list(self.index), list(self.blobs))

    def updates(self, since: int, prompts_known: int) -> dict[str, Any]:
        self.refresh()
        with self.lock:
            return {"index": self.index[since:], "blobs": self.blobs[since:],
                    "prompts": self.prompts.texts[prompts_known:],
                    "runs": [r.describe() for r in self.runs]}


def make_server(view: LiveView, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server for ``view`` (``port`` 0: any free port; see ``server.server_address``)."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            try:
                if url.path in ("/", "/index.html"):
                    self._send(200, view.page().encode("utf-8"), "text/html; charset=utf-8")
                elif url.path == "/updates":
                    q = parse_qs(url.query)
                    since = int(q.get("since", ["0"])[0])
                    known = int(q.get("prompts", ["0"])[0])
                    body = json.dumps(view.updates(since, known), ensure_ascii=False)
                    self._send(200, body.encode("utf-8"), "application/json")
                else:
                    self._send(404, b'{"error": "not found"}', "application/json")
            except (ValueError, OSError) as err:
                self._send(500, json.dumps({"error": str(err)}).encode("utf-8"), "application/json")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per poll would drown the terminal

    return ThreadingHTTPServer((host, port), Handler)
