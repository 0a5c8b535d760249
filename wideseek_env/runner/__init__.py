"""The evaluation runner: many episodes at once, batched policy calls, traces, resume, summary.

- :func:`run_episodes` (:mod:`~wideseek_env.runner.loop`): the batched loop over env instances;
  :func:`trace_record` turns a hand-written loop's finished episode into the same trace record.
- :func:`evaluate` (:mod:`~wideseek_env.runner.evaluate`): one run into an output folder
  (``run.json``, ``episodes.jsonl``, ``summary.json``), resumable.
- ``wideseek eval`` (:mod:`~wideseek_env.runner.cli`).
"""

from wideseek_env.runner.evaluate import EvalSpec, evaluate, summarize
from wideseek_env.runner.loop import RunOutcome, episode_seed, run_episodes, trace_record

__all__ = ["EvalSpec", "RunOutcome", "episode_seed", "evaluate", "run_episodes", "summarize",
           "trace_record"]
