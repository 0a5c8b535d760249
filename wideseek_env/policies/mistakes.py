"""MistakesPolicy: any policy, with deliberate tool-call mistakes it then has to recover from.

A teacher that never errs (the scripted policy) writes traces without a single error message,
retry or "last turn" note: a model imitating them has never seen what to do after its own
broken call, and one slip becomes several (the same call again, a tool call on the last turn).
This wrapper replaces a share of the inner policy's tool calls by a mistake of the kinds small
models make, and leaves the rest of the episode to the inner policy, which reads its history
again and makes the right call next turn. SFT then trains on the recovery and keeps the mistake
as context only (`sft.skip_error_replies`, on by default), the way noise injection makes
imitation learning robust to the learner's own slips.

Mistakes (each one the env reads as a format error and answers with an ``error`` message):

- ``json``: the call's JSON cut off partway;
- ``argument``: the list argument under another tool's name (``access`` with ``queries``,
  ``search`` with ``urls``, ``delegate`` with ``tasks``);
- ``two_calls``: the call twice in one reply;
- ``too_many``: ``delegate`` with one subtask more than the tool allows per call (its schema's
  ``maxItems``).

A mistake is drawn for a tool call with probability ``rate``, never on the agent's last turn
(it could not recover), from a seeded generator per (seed, agent key, turn): the same episode
gets the same mistakes every time.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from wideseek_env.env.protocol import TOOL_CLOSE, TOOL_OPEN, format_tool_call
from wideseek_env.policies.base import AgentAction, AgentRequest, Policy
from wideseek_env.policies.steps import max_items

KINDS = ("json", "argument", "two_calls", "too_many")
_OTHER_ARGUMENT = {"search": "urls", "access": "queries", "delegate": "tasks"}


class MistakesPolicy:
    """`inner`'s actions, with a share `rate` of its tool calls turned into mistakes (see the
    module doc). `kinds` limits the kinds drawn from (a call none of them applies to stays)."""

    def __init__(self, inner: Policy, rate: float, seed: int = 0,
                 kinds: Sequence[str] = KINDS) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"MistakesPolicy: rate must be in [0, 1], got {rate!r}")
        unknown = [k for k in kinds if k not in KINDS]
        if unknown or not kinds:
            raise ValueError(f"MistakesPolicy: kinds must be some of {KINDS}, got {list(kinds)}")
        self.inner, self.rate, self.seed, self.kinds = inner, float(rate), int(seed), tuple(kinds)

    def act(self, requests: Sequence[AgentRequest]) -> list[AgentAction]:
        actions = self.inner.act(requests)
        return [self._maybe_wrong(r, a) for r, a in zip(requests, actions)]

    def close(self) -> None:
        """Close the inner policy (an HTTP client's connections), if it has anything to close."""
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()

    def _maybe_wrong(self, req: AgentRequest, act: AgentAction) -> AgentAction:
        call = act.action
        if not (isinstance(call, Mapping) and "name" in call and self.rate > 0):
            return act  # a final message, or a call already in text
        turns = int(req.info.get("turns", 0))
        if turns + 1 >= int(req.info.get("max_turns", 1 << 30)):
            return act  # the last turn: no turn left to recover in
        rng = random.Random(f"{self.seed}|{req.key!r}|{turns}")
        if rng.random() >= self.rate:
            return act
        text = mistake(str(call["name"]), dict(call.get("arguments") or {}), req.tools,
                       self.kinds, rng)
        if text is None:
            return act
        return AgentAction(act.key, text, act.completion_tokens, act.prompt_tokens, "stop")


def mistake(name: str, arguments: Mapping[str, Any], tools: Sequence[Mapping[str, Any]],
            kinds: Sequence[str], rng: random.Random) -> str | None:
    """The reply text of one mistake for the call `name(arguments)`, of a kind drawn from
    `kinds` (``too_many`` only for ``delegate``); None when none of them applies."""
    usable = [k for k in kinds if k != "too_many" or name == "delegate"]
    if not usable:
        return None
    kind = rng.choice(usable)
    if kind == "json":
        text = format_tool_call(name, arguments)
        payload = text[len(TOOL_OPEN): -len(TOOL_CLOSE)].strip()
        start = payload.find('"arguments"') + len('"arguments": {')
        cut = rng.randrange(start + 1, max(start + 2, len(payload) - 2))
        return f"{TOOL_OPEN}\n{payload[:cut]}\n{TOOL_CLOSE}"
    if kind == "argument":
        items = next(iter(arguments.values()), [])
        return format_tool_call(name, {_OTHER_ARGUMENT.get(name, "items"): items})
    if kind == "two_calls":
        one = format_tool_call(name, arguments)
        return f"{one}\n{one}"
    subtasks = list(arguments.get("subtasks") or ["(no subtask)"])
    limit = max_items(tools, "delegate", len(subtasks))
    more = [subtasks[i % len(subtasks)] for i in range(limit + 1)]
    return format_tool_call(name, {"subtasks": more})
