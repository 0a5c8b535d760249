"""Supervised fine-tuning on episode traces: `wideseek-train … --stage sft --sft.traces RUN …`.

The input is any run folder's `episodes.jsonl` (`wideseek eval` with the scripted policy, an
OpenAI-compatible model, a trained checkpoint …): every agent's whole conversation. The stage

1. **filters** the episodes by score (rejection sampling): an episode is kept when its
   `sft.score_field` (item F1 by default, or the env's `reward`) is at least `sft.min_score`
   (and, with `sft.max_format_errors`, its format errors are at most that);
2. **renders** every agent of every kept episode — the lead and each subagent — exactly as the
   GRPO rollout would have prompted it: an `LLMPolicy` replays the conversation, with an engine
   that "generates" the recorded reply (its text tokenised, plus the end-of-turn token), so the
   prompts are built by the same code, with the same chat template, tail rule and tool schemas,
   as in a rollout (DESIGN.md's exact-token rule); an agent's turns are then packed into one row
   by `learner.build_sequences`, as in GRPO. A turn that does not fit the context budget ends
   that agent's row there (`sft/dropped_turns`);
3. **trains** on the assistant tokens only (the row's `generated` mask: each reply and its
   end-of-turn token): the loss is the negative log-likelihood of those tokens, averaged per
   `sft.aggregation` over the step's rows ("token_mean": every trained token weighs the same;
   "wideseek": every episode, then every agent in it, weighs the same), with the trainer's
   micro-batching, gradient accumulation, clipping, schedule, checkpoints, trackers and resume.
   `sft.train_on = "all"` trains on every token of the row but its first instead (language
   modelling on the whole transcript; the nano recipe's warm-up stage). `sft.last_replies = N`
   trains on each agent's last N replies only (the final answer, the reports), the earlier
   ones left in the row as context; `sft.last_reply_weight = w` keeps every reply and weighs
   each agent's last one w times in the loss. A reply the env could not use (`error_replies`:
   a format error, a call on the last turn) stays in its row as context and is not trained
   (`sft.skip_error_replies`, on).

Each step takes the next `sft.rows_per_step` rows of a seeded stream that visits every row once
per epoch (the trainer's task stream), so a resumed run replays the uninterrupted one exactly.
Evaluation in the env (`--eval-every`) works as in GRPO.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from wideseek_env.policies.base import AgentRequest
from wideseek_env.trace import iter_traces
from wideseek_rl.engines.base import Completion, SamplingParams
from wideseek_rl.learner import Learner, TrainSequence, build_sequences
from wideseek_rl.nano import trace_files
from wideseek_rl.policy import LLMPolicy
from wideseek_rl.records import AgentTrace, Episode

SCORE_FIELDS = ("item_f1", "row_f1", "success", "reward")


def episode_score(record: Mapping[str, Any], field: str) -> float:
    """The value of `field` of a trace record (`reward`, or a metric such as `item_f1`)."""
    if field == "reward":
        return float(record.get("reward") or 0.0)
    return float(record.get("metrics", {}).get(field) or 0.0)


def episode_format_errors(record: Mapping[str, Any], where: str) -> int:
    """The format errors the env counted over all agents of a trace record (its
    `cost.format_errors`); `where` (file and episode) names a record without the count."""
    n = (record.get("cost") or {}).get("format_errors")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{where}: cost.format_errors must be a count (an int >= 0) to filter "
                         f"by sft.max_format_errors, got {n!r}")
    return n


def load_records(traces: Sequence[str], *, min_score: float, score_field: str,
                 max_episodes: int | None = None,
                 max_format_errors: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """The records of `traces` whose score is at least `min_score` and whose agents made at most
    `max_format_errors` format errors in all (None: any number), at most `max_episodes` of them
    in file order, and how many records were read."""
    if score_field not in SCORE_FIELDS:
        raise ValueError(f"sft.score_field must be one of {SCORE_FIELDS}, got {score_field!r}")
    kept, read = [], 0
    for f in trace_files(traces):
        for n, record in enumerate(iter_traces(f), 1):
            read += 1
            if max_format_errors is not None and episode_format_errors(
                    record, f"{f}: episode {n}") > max_format_errors:
                continue
            if episode_score(record, score_field) >= min_score:
                kept.append(record)
                if max_episodes is not None and len(kept) >= max_episodes:
                    return kept, read
    return kept, read


# -- entity renaming (augmentation) -------------------------------------------------------------

_ONSETS = ("b", "br", "d", "dr", "f", "g", "gr", "k", "kr", "l", "m", "n", "p", "pr", "r", "s",
           "st", "t", "tr", "v", "z", "sh", "th", "h", "j")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou")
_CODAS = ("", "", "", "n", "r", "s", "l", "m", "x", "k")


def entity_names(record: Mapping[str, Any]) -> list[str]:
    """The task's entity names in a trace record: the gold key cells of its scorer explanation
    (every matched or missed gold row), longest first. Numbers and names under 3 characters are
    left out (renaming them would rewrite unrelated text)."""
    names = set()
    for row in (record.get("explanation") or {}).get("rows") or ():
        for cell in row.get("cells") or ():
            gold = cell.get("gold")
            if cell.get("verdict") == "key" and isinstance(gold, str):
                gold = gold.strip()
                if len(gold) >= 3 and any(c.isalpha() for c in gold):
                    names.add(gold)
    return sorted(names, key=lambda n: (-len(n), n))


def pseudo_name(rng: random.Random, words: int, pieces: Sequence[str] = ()) -> str:
    """A made-up name of `words` capitalised words: each one or two `pieces` run together (the
    alphabetic tokens of a vocabulary: every token then has to be copied somewhere), or, without
    pieces, one or two pronounceable syllables."""
    def word() -> str:
        if pieces:
            first = rng.choice(pieces)
            return first[0].upper() + first[1:] + "".join(
                rng.choice(pieces) for _ in range(rng.randint(0, 1)))
        return ("".join(rng.choice(_ONSETS) + rng.choice(_VOWELS)
                        for _ in range(rng.randint(1, 2))).capitalize() + rng.choice(_CODAS))
    return " ".join(word() for _ in range(max(1, words)))


def name_pieces(tokenizer: Any) -> list[str]:
    """The alphabetic tokens (at least 2 letters, leading space dropped) of a tokenizer's
    vocabulary, sorted: what `pseudo_name` builds names from."""
    out = set()
    for i in range(len(tokenizer)):
        text = tokenizer.decode([i]).strip()
        if len(text) >= 2 and text.isascii() and text.isalpha():
            out.add(text)
    return sorted(out)


def rename_entities(record: Mapping[str, Any], rng: random.Random, pieces: Sequence[str] = (),
                    ) -> tuple[dict[str, Any], dict[str, str]]:
    """A copy of a trace record in which every entity name of its task (`entity_names`) is
    replaced by a made-up one, the same everywhere in the episode: in the query, the lead's
    delegations, the subagents' searches, the search results and pages they read, their reports
    and the final answer (as written, lower-cased as in addresses, and with `_` for spaces), as
    whole words only. Every agent's context stays consistent, and a model can predict those
    names only by copying them from its context — which is what it must do with entities it has
    never seen (the nano recipe's held-out entities). Also returns the replacements made
    ({old: new}, every written form; empty when the episode has no entity names)."""
    names = entity_names(record)
    if not names:
        return dict(record), {}
    mapping: dict[str, str] = {}
    for name in names:
        new = pseudo_name(rng, len(name.split()), pieces)
        for old, repl in ((name, new), (name.lower(), new.lower()),
                          (name.replace(" ", "_"), new.replace(" ", "_")),
                          (name.lower().replace(" ", "_"), new.lower().replace(" ", "_"))):
            mapping.setdefault(old, repl)
    pattern = re.compile(r"(?<![\w])(" + "|".join(
        re.escape(k) for k in sorted(mapping, key=len, reverse=True)) + r")(?![\w])")
    used: dict[str, str] = {}

    def replace(m: re.Match[str]) -> str:
        used[m.group(1)] = mapping[m.group(1)]
        return mapping[m.group(1)]

    def sub(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub(replace, value)
        if isinstance(value, list):
            return [sub(v) for v in value]
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        return value

    out = dict(record)
    out["agents"] = [dict(agent, messages=sub(agent.get("messages", [])))
                     for agent in record.get("agents", [])]
    return out, used


def cut_record(record: Mapping[str, Any], *, drop_system: bool = False,
               max_replies: int | None = None, roles: Sequence[str] = ()) -> dict[str, Any]:
    """A copy of a trace record whose agents keep no system message (`drop_system`) and their
    messages only up to their `max_replies`-th reply (None: all); with `roles`, only the agents
    of those roles stay."""
    agents = []
    for agent in record.get("agents", []):
        if roles and agent.get("role") not in roles:
            continue
        messages, replies, cut = [], 0, False
        for m in agent.get("messages", []):
            if drop_system and m.get("role") == "system":
                continue
            if max_replies is not None and replies >= max_replies:
                cut = True
                break
            messages.append(m)
            replies += m.get("role") == "assistant"
        kept = dict(agent, messages=messages)
        if cut:  # the replies the env could not use, read off the whole agent: the cut loses
            # the error message after the last kept reply, and how the agent ended
            kept["error_replies"] = sorted(k for k in error_replies(agent) if k < replies)
        agents.append(kept)
    return dict(record, agents=agents)


class _TeacherEngine:
    """A `GenerationEngine` whose next completion is set by the caller (the recorded reply)."""

    def __init__(self) -> None:
        self.reply: list[int] = []

    def generate(self, prompts, sampling, max_new_tokens=None) -> list[Completion]:
        return [Completion(tuple(self.reply), (0.0,) * len(self.reply), "stop") for _ in prompts]

    def load_weights(self, weights: Any) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class TraceSet:
    """Training rows of a trace set and what the filter and the context budget kept."""

    rows: tuple[TrainSequence, ...]
    episodes_read: int
    episodes_kept: int
    agents: int
    turns: int
    dropped_turns: int
    tokens: int
    trained_tokens: int
    renamed: int = 0
    """Episodes whose entities were renamed (`sft.rename_entities`)."""
    error_replies: int = 0
    """Replies left untrained because the env could not use them (`sft.skip_error_replies`)."""

    def summary(self) -> dict[str, float]:
        return {f"sft/{k}": float(getattr(self, k)) for k in (
            "episodes_read", "episodes_kept", "agents", "turns", "dropped_turns", "tokens",
            "trained_tokens", "renamed", "error_replies")} | {"sft/rows": float(len(self.rows))}


def error_replies(agent: Mapping[str, Any]) -> set[int]:
    """Which replies of a trace's agent (0-based, among its assistant messages) the env could
    not use: a reply it answered with an `error` message (a format error), and the last reply
    when it was a call made on the agent's last turn (`end_reason` "turns": never run) or a
    format error that ended the agent without a message (more `format_errors` than error
    messages: a broken call on the last turn, or the paper's rule that a broken call ends it)."""
    if "error_replies" in agent:  # set by `cut_record` from the agent before the cut
        return set(agent["error_replies"])
    messages = agent.get("messages") or []
    replies = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    bad = {k for k, i in enumerate(replies) if i + 1 < len(messages)
           and messages[i + 1].get("role") == "tool" and messages[i + 1].get("name") == "error"}
    unanswered = int(agent.get("format_errors") or 0) > len(bad)
    if replies and (agent.get("end_reason") == "turns" or unanswered):
        bad.add(len(replies) - 1)
    return bad


def trace_rows(records: Sequence[Mapping[str, Any]], tokenizer: Any, *, max_context_tokens: int,
               chat_template: str | None = None, tools: Mapping[str, Sequence[Any]] | None = None,
               pack: bool = True, episodes_read: int | None = None,
               skip_error_replies: bool = False) -> TraceSet:
    """Training rows of every agent of `records` (see the module doc). `tools` maps a role to the
    tool schemas its chat template shows (none: the tools are in the system prompts). With
    `skip_error_replies`, the replies the env could not use (`error_replies`) stay in their rows
    as context for the replies after them, and no row trains on them."""
    stop = tokenizer.convert_tokens_to_ids(tokenizer.eos_token) if tokenizer.eos_token else None
    if stop is None:
        raise ValueError("the tokenizer has no end-of-turn (eos) token to end each reply with")
    engine = _TeacherEngine()
    policy = LLMPolicy(engine, tokenizer, SamplingParams(max_new_tokens=max_context_tokens),
                       max_context_tokens=max_context_tokens, chat_template=chat_template)
    episodes: list[Episode] = []
    n_agents = n_turns = dropped = n_error = 0
    for e, record in enumerate(records):
        traces = []
        for agent in record.get("agents", []):
            messages = agent.get("messages", [])
            role = str(agent.get("role", "agent"))
            key = (e, agent.get("id"))
            role_tools = (tools or {}).get(role, ())
            replies = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
            for k, i in enumerate(replies):
                engine.reply = [*tokenizer.encode(str(messages[i].get("content") or ""),
                                                  add_special_tokens=False), stop]
                # The prompt's exact length, as the env would count it (and `act` reuses).
                prompt = policy.count_context(messages[:i], role_tools)
                if prompt + len(engine.reply) > max_context_tokens:
                    dropped += len(replies) - k
                    break
                policy.act([AgentRequest(key=key, role=role, messages=messages[:i],
                                         tools=role_tools, info={"agent_id": agent.get("id")})])
            turns = policy.take_turns(key)
            if skip_error_replies and (bad := error_replies(agent) & set(range(len(turns)))):
                turns = [replace(t, format_error=k in bad) for k, t in enumerate(turns)]
                n_error += len(bad)
            if turns:
                n_agents += 1
                n_turns += len(turns)
                traces.append(AgentTrace(str(agent.get("id")), role, turns))
        episodes.append(Episode(str(record.get("task_id")), e, int(record.get("repeat", 0)),
                                int(record.get("seed", 0)), 1.0, tuple(traces)))
    rows = build_sequences(episodes, [1.0] * len(episodes), pack=pack,
                           episode_ids=list(range(len(episodes))),
                           format_errors_as_context=skip_error_replies)
    return TraceSet(tuple(rows), len(records) if episodes_read is None else episodes_read,
                    len(records), n_agents, n_turns, dropped,
                    sum(len(r.input_ids) for r in rows), sum(r.n_generated for r in rows),
                    error_replies=n_error)


def tool_schemas_of_run(run_info: Mapping[str, Any]) -> dict[str, list[Any]] | None:
    """The tool schemas each role's chat template showed in a `wideseek eval` run whose env did
    not list them in its system prompts (`run.json` spec `tools_in_prompt` false); else None."""
    spec = run_info.get("spec", {})
    if spec.get("tools_in_prompt", True):
        return None
    from wideseek_env.env.tools import ToolLimits, tool_schema

    limits = ToolLimits(max_subtasks=int(spec.get("width", 10)))
    search = [tool_schema(t, limits) for t in ("search", "access")]
    return {"lead": [tool_schema("delegate", limits)], "subagent": search, "single": search}


@dataclass(frozen=True, eq=False)
class WeightedSequence(TrainSequence):
    """An SFT row whose trained tokens weigh `token_weights` each in the loss (same length as
    `input_ids`; `sft.last_reply_weight`)."""

    token_weights: np.ndarray | None = None


class SFTLearner(Learner):
    """The trainer's learner with the SFT objective: −Σ_rows w_row Σ_assistant tokens c_t log p,
    where c_t is a token's weight (1 unless `sft.last_reply_weight` sets it)."""

    def _collate(self, rows: Sequence[TrainSequence]) -> dict[str, torch.Tensor]:
        batch = super()._collate(rows)
        if any(getattr(r, "token_weights", None) is not None for r in rows):
            c = torch.ones(batch["input_ids"].shape, dtype=torch.float32)
            for i, r in enumerate(rows):
                tw = getattr(r, "token_weights", None)
                if tw is not None:
                    c[i, : len(tw)] = torch.from_numpy(np.asarray(tw, dtype=np.float32))
            batch["token_weights"] = c[:, 1:].to(batch["mask"].device)
        return batch

    def micro_batch_loss(self, batch: dict[str, torch.Tensor], logprobs: torch.Tensor,
                         weights: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mask = batch["mask"]
        lp = torch.where(mask, logprobs.float(), torch.zeros_like(logprobs, dtype=torch.float32))
        weighted = lp * batch["token_weights"] if "token_weights" in batch else lp
        loss = -(weighted.sum(dim=1) * weights.float()).sum()
        return loss, {"tokens": mask.sum().double(), "nll": -lp.detach().double().sum()}

    def _metrics(self, sums, entropy_sum, loss_sum, grad_norm, lr, n_micro) -> dict[str, float]:
        acc = self.accelerator
        dev = acc.device
        vec = torch.stack([torch.as_tensor(sums.get(k, 0.0), dtype=torch.float64, device=dev)
                           for k in ("tokens", "nll")] + [entropy_sum, loss_sum])
        if acc.num_processes > 1:
            vec = acc.reduce(vec, reduction="sum")
        tokens, nll, entropy, loss = vec.tolist()
        n = max(tokens, 1.0)
        out = {"loss/sft": loss, "loss/nll": nll / n, "loss/tokens": tokens,
               "loss/entropy": entropy / n, "loss/lr": float(lr),
               "loss/micro_batches": float(n_micro)}
        if grad_norm is not None:
            g = float(grad_norm)
            out["loss/grad_norm"] = g if math.isfinite(g) else float("nan")
        return out


def trained_mask(generated: np.ndarray, train_on: str) -> np.ndarray:
    """The tokens a row's loss covers: its replies (`assistant`), or all but the first (`all`)."""
    if train_on == "assistant":
        return generated
    if train_on != "all":
        raise ValueError(f"sft.train_on must be 'assistant' or 'all', got {train_on!r}")
    mask = np.ones_like(generated, dtype=bool)
    mask[:1] = False
    return mask


def keep_last_replies(rows: Sequence[TrainSequence], masks: Sequence[np.ndarray],
                      n: int) -> list[np.ndarray]:
    """`masks` (one per row of `rows`) with only each agent's last `n` replies left: a reply is
    a run of masked tokens, and an agent's replies are counted back from its last row (an
    agent's turns may fill more than one row), so earlier replies stay in the rows as context."""
    left: dict[tuple[int, int], int] = {}
    out: list[np.ndarray] = [np.asarray(m) for m in masks]
    for i in reversed(range(len(rows))):
        key = (rows[i].episode_id, rows[i].agent_id)
        keep = left.get(key, n)
        mask = out[i].astype(bool)
        starts = np.flatnonzero(mask & ~np.concatenate([[False], mask[:-1]]))
        if keep <= 0:  # later rows hold all n of them
            cut = len(mask)
        elif keep >= len(starts):  # all of this row's replies are among them
            cut = 0
        else:
            cut = int(starts[-keep])
        out[i] = np.where(np.arange(len(mask)) >= cut, mask, False)
        left[key] = keep - len(starts)
    return out


def last_reply_weights(rows: Sequence[TrainSequence], masks: Sequence[np.ndarray],
                       weight: float) -> list[np.ndarray]:
    """Per-token loss weights of `rows`: `weight` on each agent's last reply (as
    `keep_last_replies` finds it), 1 on every other token."""
    last = keep_last_replies(rows, masks, 1)
    return [np.where(m, np.float32(weight), np.float32(1.0)) for m in last]


def load_trace_set(config: Any, tokenizer: Any, chat_template: str | None,
                   log: bool = True) -> TraceSet:
    """The rows of `config.sft.traces` for a run of `config` (a `TrainConfig`)."""
    from wideseek_env.trace import load_run_info

    sft = config.sft
    if not sft.traces:
        raise ValueError("sft.traces: give at least one run folder or episodes.jsonl file")
    t0 = time.perf_counter()
    if sft.max_replies is not None and sft.max_replies < 1:
        raise ValueError(f"sft.max_replies must be at least 1 (or None), got {sft.max_replies!r}")
    if not 0.0 <= sft.rename_entities <= 1.0:
        raise ValueError(f"sft.rename_entities must be in [0, 1], got {sft.rename_entities!r}")
    if sft.last_replies is not None and sft.last_replies < 1:
        raise ValueError(f"sft.last_replies must be at least 1 (or None), got {sft.last_replies!r}")
    if not sft.last_reply_weight > 0:
        raise ValueError(f"sft.last_reply_weight must be > 0, got {sft.last_reply_weight!r}")
    if sft.last_reply_weight != 1.0 and sft.train_on != "assistant":
        raise ValueError("sft.last_reply_weight weighs replies: it needs sft.train_on "
                         f"'assistant', got {sft.train_on!r}")
    if sft.last_replies is not None and sft.train_on != "assistant":
        raise ValueError("sft.last_replies picks replies to train on: it needs sft.train_on "
                         f"'assistant', got {sft.train_on!r}")
    if not set(sft.roles) <= {"lead", "subagent"}:
        raise ValueError(f"sft.roles must name lead and/or subagent, got {sft.roles!r}")
    parts = []
    read_total = renamed = 0
    budget = sft.max_episodes
    draw = random.Random(config.seed)
    pieces = name_pieces(tokenizer) if sft.rename_entities > 0 else []
    for f in trace_files(sft.traces):
        records, read = load_records([str(f)], min_score=sft.min_score,
                                     score_field=sft.score_field, max_episodes=budget,
                                     max_format_errors=sft.max_format_errors)
        read_total += read
        if sft.drop_system or sft.max_replies is not None or sft.roles:
            records = [cut_record(r, drop_system=sft.drop_system, max_replies=sft.max_replies,
                                  roles=sft.roles) for r in records]
        if sft.rename_entities > 0:
            for i, record in enumerate(records):
                pick, seed = draw.random(), draw.random()  # two draws per episode, always
                if pick < sft.rename_entities:
                    records[i], used = rename_entities(record, random.Random(seed), pieces)
                    renamed += bool(used)
        parts.append((records, tool_schemas_of_run(load_run_info(f))))
        if budget is not None:
            budget -= len(records)
            if budget <= 0:
                break
    sets = [trace_rows(records, tokenizer, max_context_tokens=config.rollout.max_context_tokens,
                       chat_template=chat_template, tools=tools, pack=config.optim.pack_turns,
                       skip_error_replies=sft.skip_error_replies)
            for records, tools in parts if records]
    if not sets:
        raise ValueError(f"sft.traces: no episode has {sft.score_field} >= {sft.min_score} "
                         f"(read {read_total})")
    offset, rows = 0, []
    for s in sets:  # episode ids unique over the whole set
        masks = [r.generated for r in s.rows]
        if sft.last_replies is not None:
            masks = keep_last_replies(s.rows, masks, sft.last_replies)
        weights: list[np.ndarray | None] = [None] * len(masks)
        if sft.last_reply_weight != 1.0:
            weights = list(last_reply_weights(s.rows, masks, sft.last_reply_weight))
        rows += [WeightedSequence(r.input_ids, trained_mask(m, sft.train_on), r.old_logprobs,
                                  r.advantage, r.episode_id + offset, r.agent_id, w)
                 for r, m, w in zip(s.rows, masks, weights)]
        offset += s.episodes_kept
    out = TraceSet(tuple(rows), read_total, sum(s.episodes_kept for s in sets),
                   sum(s.agents for s in sets), sum(s.turns for s in sets),
                   sum(s.dropped_turns for s in sets), sum(s.tokens for s in sets),
                   sum(r.n_generated for r in rows), renamed,
                   sum(s.error_replies for s in sets))
    if log:
        print(f"sft data: {json.dumps(out.summary())} in {time.perf_counter() - t0:.1f} s",
              flush=True)
    return out


def sft_step(run: Any, step: int, consumed: int) -> dict[str, float]:
    """One SFT step: the next `sft.rows_per_step` rows of the seeded row stream (this rank's
    share of them), one optimiser step, and the weights to the engine (for evaluation)."""
    from wideseek_rl.stats import memory_metrics, rss_gib
    from wideseek_rl.train import sync_weights, task_stream

    cfg, acc = run.config, run.accelerator
    rows = run.trace_set.rows
    n = cfg.sft.rows_per_step
    t0 = time.perf_counter()
    picked = task_stream(len(rows), cfg.seed, consumed, n)
    mine = [rows[picked[i]] for i in range(acc.process_index, n, acc.num_processes)]
    episodes = len({rows[i].episode_id for i in picked})
    metrics = run.learner.update(mine, num_episodes=episodes)
    t_update = time.perf_counter() - t0
    t1 = time.perf_counter()
    sync_weights(run)
    tokens = sum(len(rows[i].input_ids) for i in picked)
    metrics.update({"sft/epoch": (consumed + n) / len(rows), "sft/episodes": float(episodes),
                    "sft/tokens": float(tokens), "time/update_s": t_update,
                    "time/sync_s": time.perf_counter() - t1,
                    "time/tokens_per_s": tokens / max(t_update, 1e-9)})
    metrics.update(memory_metrics(rss_gib()))
    return metrics
