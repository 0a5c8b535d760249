"""One evaluation run into an output folder: settings, traces, summary.

::

    <out>/run.json          what was run (env settings, task ids, repeats, seed, policy, world)
    <out>/episodes.jsonl    one trace record per finished episode (see wideseek_env.trace)
    <out>/summary.json      Avg@N / Max@N / Pass@N (wideseek_env.scoring.aggregate), mean cost
                            per episode, wall time, machine, versions and command line

Running again with the same folder resumes: finished ``(task_id, repeat)`` episodes are skipped.
A folder that holds a run with different settings (spec, task ids, policy, or the world's id,
split and search server) is refused with a ``ConfigError`` that names each differing field,
rather than mixed. Nothing is written before the spec and the env's settings are checked.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from statistics import fmean
from typing import Any, Literal

from wideseek_env.errors import ConfigError
from wideseek_env.policies.base import Policy
from wideseek_env.runner.loop import run_episodes
from wideseek_env.scoring.scorer import ScoreRecord, aggregate
from wideseek_env.search.base import SearchBackend
from wideseek_env.tasks import Task

RUN_FILE, TRACE_FILE, SUMMARY_FILE = "run.json", "episodes.jsonl", "summary.json"
COST_FIELDS = ("policy_calls", "generated_tokens", "prompt_tokens", "total_tool_calls",
               "critical_path_turns", "total_turns", "subagents_used", "format_errors",
               "tool_errors", "length_cuts")


@dataclass(frozen=True)
class EvalSpec:
    """The settings of one evaluation (everything that changes results)."""

    mode: Literal["multi", "single"] = "multi"
    """``multi``: lead + subagents (WideSeekEnv); ``single``: one agent (WideSeekSingleAgentEnv)."""
    width: int = 10
    """Subagents per ``delegate`` call (multi)."""
    lead_max_turns: int = 10
    """Turns of the lead (multi)."""
    subagent_max_turns: int = 20
    """Turns of each subagent (multi)."""
    max_turns: int = 50
    """Turns of the single agent (single)."""
    max_context_tokens: int = 32_768
    """Context budget of every agent."""
    tools_in_prompt: bool = True
    """List tool schemas in system prompts (off when the policy passes ``tools`` natively)."""
    repeats: int = 1
    """Episodes per task (for Avg@N / Max@N / Pass@N)."""
    seed: int = 0
    """Base seed of the episodes' reset seeds."""
    interface: Literal["wideseek", "paper"] = "wideseek"
    """What the agents see: our tools and texts, or the paper's (``env/profiles.py``)."""
    reward: Literal["score", "paper"] = "score"
    """The reward recorded per episode (``env/rewards.py``); the scores do not depend on it."""

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first setting that cannot work."""
        if self.mode not in ("multi", "single"):
            raise ConfigError(f"mode must be 'multi' or 'single', got {self.mode!r}")
        names = ("width", "lead_max_turns", "subagent_max_turns") if self.mode == "multi" \
            else ("max_turns",)
        for name in (*names, "max_context_tokens", "repeats"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")

    def env_kwargs(self) -> dict[str, Any]:
        common = {"max_context_tokens": self.max_context_tokens,
                  "tools_in_prompt": self.tools_in_prompt, "interface": self.interface,
                  "reward": self.reward}
        if self.mode == "single":
            return {"max_turns": self.max_turns, **common}
        return {"width": self.width, "lead_max_turns": self.lead_max_turns,
                "subagent_max_turns": self.subagent_max_turns, **common}

    def relevant(self) -> dict[str, Any]:
        """The fields that matter for this mode (for run.json and resume checks)."""
        d = asdict(self)
        drop = ("width", "lead_max_turns", "subagent_max_turns") if self.mode == "single" else ("max_turns",)
        # Fields added later appear only when not at their default, so older runs still resume.
        drop += tuple(k for k in ("interface", "reward") if d[k] == getattr(EvalSpec, k))
        return {k: v for k, v in d.items() if k not in drop}


def make_env_factory(spec: EvalSpec, tasks: Sequence[Task], backend: SearchBackend,
                     judge: Any = None, explain: bool = True, reader: Any = None,
                     env_kwargs: Mapping[str, Any] | None = None) -> Any:
    """A zero-argument callable that builds one env of ``spec`` over ``tasks`` and ``backend``;
    ``explain`` puts the cell-level score explanation into each episode's trace record;
    ``reader`` summarises pages read by ``access`` (``interface="paper"``); ``env_kwargs`` go to
    the env as they are (e.g. a policy's ``context_counter``)."""
    kwargs = {**spec.env_kwargs(), "explain_score": explain, "reader": reader, **(env_kwargs or {})}
    if spec.mode == "single":
        from wideseek_env.env.single_agent import WideSeekSingleAgentEnv

        return lambda: WideSeekSingleAgentEnv(tasks=tasks, backend=backend, judge=judge, **kwargs)
    from wideseek_env.env.parallel import WideSeekEnv

    return lambda: WideSeekEnv(tasks=tasks, backend=backend, judge=judge, **kwargs)


def environment_info() -> dict[str, Any]:
    """Machine and package versions, for result files."""
    versions = {}
    for pkg in ("wideseek", "gymnasium", "pettingzoo", "tantivy", "bm25s", "numpy", "requests"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        # Other jobs on the machine slow wall-clock numbers down; say how busy it was.
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "versions": versions,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }


def summarize(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Scores of the table tasks (``scores``, via :func:`wideseek_env.scoring.aggregate`), QA
    accuracy apart (``qa_scores``, via :func:`wideseek_env.scoring.qa.aggregate_qa`, when the
    run has QA tasks) and mean cost per episode."""
    from wideseek_env.scoring.qa import QAScore, aggregate_qa

    by_task: dict[str, list[ScoreRecord]] = {}
    qa_by_task: dict[str, list[QAScore]] = {}
    for r in sorted(records, key=lambda r: (r["task_id"], r["repeat"])):
        if r.get("kind") == "qa":
            qa_by_task.setdefault(r["task_id"], []).append(QAScore(**r["score"]))
        else:
            by_task.setdefault(r["task_id"], []).append(ScoreRecord(**r["score"]))
    scores = aggregate(by_task) if by_task else None
    qa_scores = aggregate_qa(qa_by_task) if qa_by_task else None
    cost: dict[str, Any] = {}
    for name in COST_FIELDS:
        values = [r["cost"][name] for r in records if r["cost"].get(name) is not None]
        cost[name] = fmean(values) if len(values) == len(records) else None
    cost["tokens_estimated"] = any(r["cost"].get("tokens_estimated") for r in records)
    ends: dict[str, int] = {}
    for r in records:
        ends[r["episode_end"]] = ends.get(r["episode_end"], 0) + 1
    out = {"scores": scores, "cost_per_episode": cost, "episode_ends": ends}
    if qa_scores is not None:
        out["qa_scores"] = qa_scores
    return out


# What must match for a run folder to be resumed: every key of these run.json entries, and the
# world's identity and search server (not its path: a world may move).
SAME_RUN_KEYS = ("spec", "tasks", "policy")
SAME_WORLD_KEYS = ("name", "world_id", "split", "search_url")


def _differences(old: Any, new: Any, where: str) -> list[str]:
    """Dotted paths where two run.json values differ, with both values (nested dicts walked)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key), new.get(key), f"{where}.{key}")
        return out
    if old == new:
        return []
    if isinstance(old, list) and isinstance(new, list):
        gone = [x for x in old if x not in new][:2]
        added = [x for x in new if x not in old][:2]
        return [f"{where} ({len(old)} in the folder, {len(new)} now; e.g. only in the folder: "
                f"{gone}, only now: {added})"]
    return [f"{where} ({old!r} in the folder, {new!r} now)"]


def _check_same_run(path: Path, run: Mapping[str, Any]) -> None:
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err}); use another output folder") from None
    diffs: list[str] = []
    for key in SAME_RUN_KEYS:
        diffs += _differences(old.get(key), run.get(key), key)
    old_world, new_world = old.get("world", {}), run.get("world", {})
    for key in SAME_WORLD_KEYS:
        if key in old_world or key in new_world:
            diffs += _differences(old_world.get(key), new_world.get(key), f"world.{key}")
    if diffs:
        more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
        raise ConfigError(
            f"{path.parent} holds a run with different settings: {'; '.join(diffs[:3])}{more}. "
            "Use another output folder (or delete this one) instead of mixing two runs")


def evaluate(
    spec: EvalSpec,
    tasks: Sequence[Task],
    backend: SearchBackend,
    policy: Policy,
    out_dir: str | Path,
    *,
    policy_info: Mapping[str, Any] | None = None,
    world_info: Mapping[str, Any] | None = None,
    judge: Any = None,
    episodes_at_once: int = 16,
    progress: bool = True,
    desc: str | None = None,
    explain: bool = True,
    reader: Any = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``spec`` over ``tasks`` with ``policy`` into ``out_dir`` (resuming); return the summary.

    ``policy_info`` (name and settings that change results, not URLs or keys) and ``world_info``
    are recorded, and a resumed run must have the same ``spec``, task ids and ``policy_info``.
    ``explain`` (default on) stores each score's cell-level explanation in the trace records
    (:mod:`wideseek_env.scoring.explain`); it changes no number. ``env_kwargs`` go to every env
    (an LLM policy's exact ``context_counter``, for one).
    """
    out = Path(out_dir)
    spec.check()
    if episodes_at_once < 1:
        raise ConfigError(f"episodes_at_once must be >= 1, got {episodes_at_once}")
    if not tasks:
        raise ConfigError("no tasks to run")
    if spec.mode == "single":
        spec = replace(spec, width=EvalSpec.width)  # unused in single mode; keep run.json stable
    make_env = make_env_factory(spec, tasks, backend, judge, explain, reader, env_kwargs)
    make_env().close()  # the env's own checks run before anything is written
    out.mkdir(parents=True, exist_ok=True)
    run = {"spec": spec.relevant(), "tasks": [t.instance_id for t in tasks],
           "policy": dict(policy_info or {}), "world": dict(world_info or {})}
    if (out / RUN_FILE).exists():
        _check_same_run(out / RUN_FILE, run)
    else:
        tmp = out / (RUN_FILE + ".tmp")
        tmp.write_text(json.dumps(run, indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(out / RUN_FILE)
    t0 = time.perf_counter()
    outcome = run_episodes(
        make_env, tasks, policy,
        trace_path=out / TRACE_FILE, repeats=spec.repeats, seed=spec.seed,
        episodes_at_once=episodes_at_once, progress=progress,
        desc=desc or (f"width {spec.width}" if spec.mode == "multi" else f"turns {spec.max_turns}"),
    )
    summary = {
        **summarize(outcome.records),
        "spec": spec.relevant(),
        "policy": dict(policy_info or {}),
        "world": dict(world_info or {}),
        "episodes": len(outcome.records),
        "episodes_run_now": outcome.ran,
        "episodes_resumed": outcome.skipped,
        "policy_batches_now": outcome.policy_batches,
        "wall_time_s_now": round(time.perf_counter() - t0, 3),
        "environment": environment_info(),
    }
    tmp = out / (SUMMARY_FILE + ".tmp")
    tmp.write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(out / SUMMARY_FILE)
    return summary
