"""The evaluation loop: many episodes at once, every waiting agent in one policy call.

:func:`run_episodes` keeps up to ``episodes_at_once`` episodes running, each in its own env
instance (they share the task list and the search backend). Each iteration gathers every agent
that needs an action, across every running episode, into one ``policy.act`` call, so an engine
batches generation over episodes as well as over the subagents of one delegation. A finished
episode is written at once as one trace record (:mod:`wideseek_env.trace`), so a crash or Ctrl-C
loses only the episodes still running, and a run started again on the same file skips every
``(task_id, repeat)`` already there.

Requests carry the key ``(task_id, repeat, agent_id)``, which does not depend on scheduling, and
each episode is reset with a seed derived from ``(seed, task_id, repeat)``; a deterministic policy
therefore gives the same traces however many episodes run at once.

Both envs are served: the multi-agent :class:`~wideseek_env.env.parallel.WideSeekEnv` and the
single-agent :class:`~wideseek_env.env.single_agent.WideSeekSingleAgentEnv` (its one agent is
reported as ``lead`` with role ``single``).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wideseek_env.env.config import approx_token_count
from wideseek_env.env.messages import plain
from wideseek_env.policies.base import AgentAction, AgentRequest, Policy
from wideseek_env.tasks import Task
from wideseek_env.trace import TraceWriter, iter_traces

METRICS = ("item_precision", "item_recall", "item_f1", "row_precision", "row_recall", "row_f1",
           "success", "parse_ok")
#: The metrics of a QA episode's record (``kind`` "qa"; wideseek_env.scoring.qa).
QA_METRICS = ("correct", "exact_match", "token_f1", "parse_ok")


def episode_seed(seed: int, task_id: str, repeat: int) -> int:
    """The reset seed of one episode: stable across runs, processes and scheduling."""
    digest = hashlib.sha256(f"{seed}\x00{task_id}\x00{repeat}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass
class _Episode:
    """One running episode over either env (internal)."""

    env: Any
    task: Task
    repeat: int
    seed: int
    multi: bool
    obs: dict[str, list] = field(default_factory=dict)
    infos: dict[str, dict[str, Any]] = field(default_factory=dict)
    done: bool = False
    policy_calls: int = 0
    batches: int = 0
    generated_tokens: int = 0
    prompt_tokens: int = 0
    tokens_reported: bool = True
    prompt_tokens_reported: bool = True
    agent_tokens: dict[str, int] = field(default_factory=dict)
    finish_reasons: dict[str, list[str | None]] = field(default_factory=dict)

    def start(self) -> None:
        options = {"task": self.task}
        if self.multi:
            obs, infos = self.env.reset(seed=self.seed, options=options)
            self.obs.update(obs)
            self.infos.update(infos)
        else:
            obs, info = self.env.reset(seed=self.seed, options=options)
            self.obs["lead"], self.infos["lead"] = obs, info

    def waiting(self) -> list[str]:
        if self.multi:
            return [a for a in self.env.agents if self.infos[a]["needs_action"]]
        return [] if self.done else ["lead"]

    def step(self, actions: Mapping[str, Any]) -> None:
        if self.multi:
            obs, _, _, _, infos = self.env.step(actions)
            self.obs.update(obs)
            self.infos.update(infos)
            self.done = not self.env.agents
        else:
            obs, _, term, trunc, info = self.env.step(actions["lead"])
            self.obs["lead"], self.infos["lead"] = obs, info
            self.done = bool(term or trunc)

    def count(self, agent: str, action: AgentAction) -> None:
        self.policy_calls += 1
        self.finish_reasons.setdefault(agent, []).append(action.finish_reason)
        if action.completion_tokens is None:
            self.tokens_reported = False
            text = action.action if isinstance(action.action, str) else str(action.action)
            tokens = approx_token_count(text)
        else:
            tokens = int(action.completion_tokens)
        self.generated_tokens += tokens
        self.agent_tokens[agent] = self.agent_tokens.get(agent, 0) + tokens
        if action.prompt_tokens is None:
            self.prompt_tokens_reported = False
        else:
            self.prompt_tokens += int(action.prompt_tokens)

    def record(self) -> dict[str, Any]:
        """The trace record of the finished episode."""
        return trace_record(
            self.env, self.obs, self.infos, repeat=self.repeat, seed=self.seed,
            finish_reasons=self.finish_reasons, agent_tokens=self.agent_tokens,
            counts={"policy_calls": self.policy_calls, "batches": self.batches,
                    "generated_tokens": self.generated_tokens,
                    "tokens_estimated": not self.tokens_reported,
                    "prompt_tokens": self.prompt_tokens if self.prompt_tokens_reported else None})


def trace_record(
    env: Any,
    observations: Mapping[str, Sequence[Mapping[str, Any]]] | Sequence[Mapping[str, Any]],
    infos: Mapping[str, Any],
    *,
    repeat: int = 0,
    seed: int | None = None,
    counts: Mapping[str, Any] | None = None,
    finish_reasons: Mapping[str, Sequence[str | None]] | None = None,
    agent_tokens: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The trace record (what ``wideseek trace show`` and the summaries read) of a finished
    episode of ``env``, from the last observation and infos of every agent.

    For a hand-written loop: keep each agent's latest observation and infos (``dict.update``
    after every step; an agent's last ones arrive in the step where it finishes) and pass them
    here; the single-agent env's are its observation and info. ``counts`` (``policy_calls``,
    ``batches``, ``generated_tokens``, ``tokens_estimated``, ``prompt_tokens``) default to one
    policy call per turn and tokens estimated from the agents' text; ``agent_tokens`` (tokens
    each agent generated) defaults to each agent's estimate.
    """
    multi = hasattr(env, "possible_agents")
    if not multi and not isinstance(observations, Mapping):
        observations, infos = {"lead": observations}, {"lead": infos}
    assert isinstance(observations, Mapping)
    task = env.task
    lead = infos.get("lead")
    if task is None or not isinstance(lead, Mapping) or "episode_end" not in lead:
        raise ValueError("trace_record() needs a finished episode: the lead's final infos carry "
                         "the score (keep every agent's latest infos, including the last step's)")
    agents = []
    tool_calls: dict[str, int] = {}
    format_errors = tool_errors = 0
    written = 0
    reasons = finish_reasons or {}
    for agent_id, info in infos.items():
        for name, n in info.get("tool_calls", {}).items():
            tool_calls[name] = tool_calls.get(name, 0) + n
        format_errors += info.get("format_errors", 0)
        tool_errors += info.get("tool_errors", 0)
        messages = plain(observations[agent_id])
        own = sum(approx_token_count(m.get("content") or "") for m in messages
                  if m.get("role") == "assistant")
        written += own
        agents.append({
            "id": agent_id, "role": info["role"], "parent": info.get("parent"),
            "delegation": info.get("delegation"), "status": info["status"],
            "end_reason": info["end_reason"], "turns": info["turns"],
            "max_turns": info["max_turns"], "tool_calls": dict(info.get("tool_calls", {})),
            "format_errors": info.get("format_errors", 0),
            "tool_errors": info.get("tool_errors", 0),
            "context_tokens": info.get("context_tokens"),
            "generated_tokens": (agent_tokens or {}).get(agent_id, own),
            "finish_reasons": list(reasons.get(agent_id, [])),
            "messages": messages,
        })
    counted = {"policy_calls": lead["total_turns"], "batches": None,
               "generated_tokens": written, "tokens_estimated": True, "prompt_tokens": None,
               **(counts or {})}
    return {
        "task_id": task.instance_id,
        "repeat": repeat,
        "seed": seed,
        "mode": "multi" if multi else "single",
        "kind": lead.get("kind", "table"),
        "metrics": {k: lead[k] for k in (QA_METRICS if lead.get("kind") == "qa" else METRICS)},
        "reward": lead["reward"],
        "episode_end": lead["episode_end"],
        "response": _final_response(observations["lead"], lead["episode_end"]),
        "score": plain(lead["score"]),
        "explanation": plain(lead.get("score_explanation")),
        "cost": {
            **counted,
            "tool_calls": tool_calls,
            "total_tool_calls": sum(tool_calls.values()),
            "critical_path_turns": lead["critical_path_turns"],
            "total_turns": lead["total_turns"],
            "subagents_used": lead.get("subagents_used", 0),
            "format_errors": format_errors,
            "tool_errors": tool_errors,
            "length_cuts": sum(r == "length" for rs in reasons.values() for r in rs),
        },
        "agents": agents,
    }


def headline(record: Mapping[str, Any]) -> float:
    """An episode's main number: item F1 of a table task, ``correct`` of a QA task."""
    metrics = record["metrics"]
    return float(metrics["correct"] if record.get("kind") == "qa" else metrics["item_f1"])


def _final_response(messages: Sequence[Mapping[str, Any]], end: str) -> str | None:
    """The lead's final message (None if the episode ended by running out of budget)."""
    if end != "answer":
        return None
    for msg in reversed(messages):
        if msg.get("role") == "assistant":
            return str(msg.get("content", ""))
    return None


def slim(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record without the conversations (``agents``), the answer and its explanation: what
    summaries need. The runner keeps only these in memory; the full records are on disk."""
    return {k: v for k, v in record.items() if k not in ("agents", "response", "explanation")}


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`run_episodes` did: the slim records (:func:`slim`) of every episode in the
    trace file for these tasks and repeats, old and new, and counts."""

    records: tuple[dict[str, Any], ...]
    skipped: int
    ran: int
    policy_batches: int


def run_episodes(
    make_env: Callable[[], Any],
    tasks: Sequence[Task],
    policy: Policy,
    *,
    trace_path: str | Path,
    repeats: int = 1,
    seed: int = 0,
    episodes_at_once: int = 16,
    progress: bool = True,
    desc: str = "episodes",
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> RunOutcome:
    """Run ``repeats`` episodes of every task, resuming from ``trace_path``; see the module docstring.

    ``make_env()`` returns a fresh env (either kind) over the same tasks and backend; it is
    called once per concurrently running episode slot and the envs are reused.
    """
    if repeats < 1 or episodes_at_once < 1:
        raise ValueError("repeats and episodes_at_once must be >= 1")
    ids = [t.instance_id for t in tasks]
    if len(set(ids)) != len(ids):
        raise ValueError("run_episodes: task ids must be unique")
    known = {(t.instance_id, r) for t in tasks for r in range(repeats)}
    records: list[dict[str, Any]] = []
    done: set[tuple[str, int]] = set()
    for old in iter_traces(trace_path):
        key = (old["task_id"], old["repeat"])
        if key in known and key not in done:
            done.add(key)
            records.append(slim(old))
    todo = deque((t, r) for r in range(repeats) for t in tasks if (t.instance_id, r) not in done)
    skipped = len(done)
    bar = _progress(progress, len(todo), desc, skipped)
    free_envs: list[Any] = []
    running: list[_Episode] = []
    batches = 0
    ran = 0
    f1_sum = 0.0  # of the episodes run now, for the progress bar
    try:
        with TraceWriter(trace_path) as writer:
            while todo or running:
                while todo and len(running) < episodes_at_once:
                    task, repeat = todo.popleft()
                    env = free_envs.pop() if free_envs else make_env()
                    ep = _Episode(env, task, repeat, episode_seed(seed, task.instance_id, repeat),
                                  multi=hasattr(env, "possible_agents"))
                    ep.start()
                    running.append(ep)
                batches += 1
                _play_round(policy, running)
                for ep in [e for e in running if e.done]:
                    running.remove(ep)
                    free_envs.append(ep.env)
                    record = ep.record()
                    writer.append(record)
                    records.append(slim(record))
                    ran += 1
                    if on_record is not None:
                        on_record(record)
                    f1_sum += headline(record)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(score=f"{f1_sum / ran:.3f}", refresh=False)
    finally:
        if bar is not None:
            bar.close()
        for env in free_envs + [e.env for e in running]:
            env.close()
    return RunOutcome(tuple(records), skipped, ran, batches)


def _play_round(policy: Policy, running: Iterable[_Episode]) -> None:
    """One policy call for every waiting agent of every running episode, then one env step each."""
    requests: list[AgentRequest] = []
    owners: list[_Episode] = []
    for ep in running:
        waiting = ep.waiting()
        if waiting:
            ep.batches += 1
        for agent in waiting:
            info = ep.infos[agent]
            requests.append(AgentRequest(
                key=(ep.task.instance_id, ep.repeat, agent),
                role=info["role"],
                messages=ep.obs[agent],
                tools=ep.env.tool_schemas(agent),
                info={**info, "agent_id": agent, "task_id": ep.task.instance_id,
                      "repeat": ep.repeat, "episode_seed": ep.seed},
            ))
            owners.append(ep)
    if not requests:
        raise RuntimeError("no running episode has an agent waiting for an action (env bug)")
    actions = policy.act(requests)
    if len(actions) != len(requests):
        raise RuntimeError(f"{type(policy).__name__}.act returned {len(actions)} actions for "
                           f"{len(requests)} requests")
    per_episode: dict[int, dict[str, Any]] = {}
    for req, action, ep in zip(requests, actions, owners):
        if action.key != req.key:
            raise RuntimeError(f"{type(policy).__name__}.act returned key {action.key!r} where "
                               f"{req.key!r} was expected (same order as the requests)")
        ep.count(req.key[2], action)
        per_episode.setdefault(id(ep), {})[req.key[2]] = action.action
    for ep in running:
        if id(ep) in per_episode:
            ep.step(per_episode[id(ep)])


def _progress(enabled: bool, total: int, desc: str, skipped: int) -> Any:
    if not enabled:
        return None
    from wideseek_env.progress import bar

    postfix = {"skipped": skipped} if skipped else None
    return bar(total=total, desc=desc, unit="ep", dynamic_ncols=True, postfix=postfix)
