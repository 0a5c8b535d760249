"""Which turns of an episode are trained, and with which reward (pure functions over records).

Two rules, chosen by `RolloutConfig.turn_selection`:

- `"all"`: every generated turn of every agent is trained with the episode's score.
- `"paper"`: WideSeek-R1's selection (its §2.3, as its reference implementation applies it):

  1. valid format and the lead did not fail → every turn of every agent that did not fail; a
     failed subagent is dropped whole (no rows, so it is not counted in N_e either);
  2. valid format but the lead failed → reward 0, only the lead's turns are trained (they are
     its failed turns: a failure marks every turn of that agent);
  3. invalid format → reward 0, the lead's last turn (when the lead ended with an answer) plus
     every turn of every failed agent.

  An agent *failed* when the env ended it for its context or its turn limit (`AgentTrace.failure`
  is "context" or "turns") or when one of its completions was cut by the generation limit
  (`finish_reason == "length"`, reported as "length"). "Valid format" is the env's `parse_ok`
  (an answer table holding every required column); an env that reports no `parse_ok` has no
  format to get wrong. Departure: the reference trains only the repeating turn when a context
  overflow came from a single reply of 8,000 tokens or more; we train every failed turn.

Every episode keeps its place in the batch (it still counts in the loss's 1/E and in its GRPO
group, with its possibly zeroed reward), as in the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

from wideseek_rl.records import AgentTrace, Credit, Episode

TurnSelection = Literal["all", "paper"]


def failure_of(trace: AgentTrace) -> str | None:
    """Why an agent failed: the env's reason, else "length" for a cut completion, else None."""
    if trace.failure is not None:
        return trace.failure
    if any(t.finish_reason == "length" for t in trace.turns):
        return "length"
    return None


def _format_ok(final_info: Mapping[str, Any]) -> bool:
    return bool(final_info.get("parse_ok", True))


def assign_credit(episode: Episode, selection: TurnSelection, lead: str = "lead", *,
                  keep_format_errors: bool = False) -> Episode:
    """The episode with only its trainable turns and the reward they are trained with.

    `keep_format_errors`: also keep every turn marked `Turn.format_error` that the rule dropped
    (for `RolloutConfig.format_error_advantage`, which trains those turns with an advantage of
    their own); they count as trained turns."""
    total = episode.n_turns
    failed = {a.agent_id: failure_of(a) for a in episode.agents}
    n_failed = sum(f is not None for f in failed.values())
    if selection == "all":
        credit = Credit("all", episode.score, n_failed, total, 0)
        return replace(episode, credit=credit)
    if selection != "paper":
        raise ValueError(f"unknown turn selection {selection!r}; choose 'all' or 'paper'")
    lead_failed = failed.get(lead) is not None
    kept: list[AgentTrace] = []
    if _format_ok(episode.final_info) and not lead_failed:
        case, score = "ok", episode.score
        kept = [a for a in episode.agents if failed[a.agent_id] is None]
    elif _format_ok(episode.final_info):
        case, score = "lead_failed", 0.0
        kept = [a for a in episode.agents if a.agent_id == lead]
    else:
        case, score = "invalid_format", 0.0
        for a in episode.agents:
            if failed[a.agent_id] is not None:
                kept.append(a)
            elif a.agent_id == lead and a.turns:
                kept.append(replace(a, turns=a.turns[-1:]))
    if keep_format_errors:
        kept = _with_format_errors(episode.agents, kept)
    trained = sum(len(a.turns) for a in kept)
    credit = Credit(case, episode.score, n_failed, trained, total - trained)
    return replace(episode, agents=tuple(kept), score=score, credit=credit)


def _with_format_errors(agents: tuple[AgentTrace, ...], kept: list[AgentTrace]) -> list[AgentTrace]:
    """`kept` plus the format-error turns of `agents` it lacks, in the agents' and turns' order."""
    by_id = {a.agent_id: {id(t) for t in a.turns} for a in kept}
    out = []
    for a in agents:
        have = by_id.get(a.agent_id, set())
        turns = tuple(t for t in a.turns if id(t) in have or t.format_error)
        if a.agent_id in by_id or turns:
            out.append(a if len(turns) == len(a.turns) else replace(a, turns=turns))
    return out
