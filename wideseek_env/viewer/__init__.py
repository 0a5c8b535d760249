"""The episode viewer: ``wideseek view`` writes one self-contained HTML page per run (no server,
no network; it opens from a ``file://`` URL) with the episode list (sortable, filterable by task,
run/width, score, end and success) and, per episode, its figures (scores, width, turns, tokens),
the final answer coloured cell by cell against the gold table (from the score's cell-level
explanation) and the agent tree (lead turns; under each ``delegate`` call its subagents side by
side). ``--serve`` serves the same page live while an eval runs. See docs/eval.md.
"""

from wideseek_env.viewer.data import RunSource, ViewError, find_runs
from wideseek_env.viewer.page import ViewResult, write_view

__all__ = ["RunSource", "ViewError", "ViewResult", "find_runs", "write_view"]
