"""KeywordRelay-v0: a tiny lead + subagents ParallelEnv that a tiny model can learn.

Description
    The lead is asked to make its helpers say a keyword. It delegates (a `delegate` tool call,
    or, in the lenient default, any text, which is then sent to every helper as its
    instruction); each helper replies once; the lead reads the replies in one tool message and
    gives a final answer, which ends the episode. The env follows the WideSeek text conventions
    (DESIGN.md §2.1) without sharing any code with WideSeekEnv, so a learner that trains here
    trains against "an env that is not ours"; a tiny model learns it on a CPU in a minute
    (`wideseek-train toy`). Not to be confused with `wideseek_env.env.toy`, a five-river *world*
    (in-memory search backend and tasks) for WideSeekEnv.

Agents
    `possible_agents = ["lead", "sub_0", …, "sub_{width-1}"]`. Helpers appear after the lead's
    first turn and terminate after their one reply; they never come back.

Actions
    Raw completion text. A lead tool call is `<tool_call>{"name": "delegate", "arguments":
    {"tasks": [str, …]}}</tool_call>`; at most `width` tasks are used. Text without a valid call
    counts as a format error; with `lenient=True` the text itself becomes every helper's task,
    with `lenient=False` the lead gets an error message and tries again (its turn budget is 3).

Observations
    The agent's own conversation: a list of OpenAI-shape chat messages (`system`, `user`,
    `assistant`, `tool`), append-only across turns. `tool_schemas(agent)` gives the JSON schemas
    of the agent's tools.

Rewards
    Paid to the lead when the episode ends: the mean over helpers of a `difflib.SequenceMatcher`
    similarity between the keyword and the helper's reply — with `scoring="word"` the best ratio
    over the reply's words (1.0 when the word appears), with `scoring="reply"` the ratio to the
    whole reply (1.0 only when the reply is exactly the word) — and 0.0 for a helper that failed
    or never ran. Other agents get 0. The lead's final `infos` carry `score` and `hits` (helpers
    that scored 1.0).

Termination and truncation
    Helpers terminate after one reply; the lead after its final answer or when its turn budget
    is spent; the episode ends when the lead terminates. An agent whose conversation grows past
    `max_context_chars` terminates at once with `status = "failed"` and `end_reason =
    "context"`; a failed helper scores 0 and the lead is told. Nothing is truncated.

Arguments
    `width` (helpers per delegation, default 2), `keywords` (one task per keyword, default the 16
    of `KEYWORDS`), `scoring` ("word" or "reply"), `lenient` (default True), `max_context_chars`
    (default 100_000), `max_reply_chars` (a helper reply is cut to this many characters in the
    lead's tool message, default 200).

`infos[agent]` keys (named as in WideSeekEnv): `role` ("lead"/"subagent"), `parent` (None or
"lead"), `needs_action`, `status` ("running"/"blocked"/"done"/"failed"), `end_reason` (None,
"final" or "context"), `turns`, `format_errors`; the lead's final infos add `score` and `hits`.

Version history
    v0: first version.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

KEYWORDS = (
    "apple", "banana", "cherry", "lemon", "mango", "orange", "peach", "plum",
    "red", "green", "blue", "yellow", "tiger", "horse", "eagle", "whale",
)  # fmt: skip

LEAD_SYSTEM = "You lead a team of helpers. Delegate short tasks with the delegate tool, then answer."
SUB_SYSTEM = "You are a helper. Do the task you are given and reply in one short message."
_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_WORD = re.compile(r"[a-z]+")

DELEGATE_SCHEMA = {
    "type": "function",
    "function": {
        "name": "delegate",
        "description": "Start one helper per task; each replies once.",
        "parameters": {
            "type": "object",
            "properties": {"tasks": {"type": "array", "items": {"type": "string"}}},
            "required": ["tasks"],
        },
    },
}


class TextSpace(gymnasium.Space):
    """Any Python string (Gymnasium's `Text` rejects most Unicode)."""

    def __init__(self, seed: int | None = None):
        super().__init__(shape=None, dtype=None, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str)

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        return " ".join(self.np_random.choice(KEYWORDS, size=3).tolist())


class ChatSpace(gymnasium.Space):
    """A list of chat messages, each a mapping with a string `role`."""

    def __init__(self, seed: int | None = None):
        super().__init__(shape=None, dtype=None, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, list) and all(
            isinstance(m, Mapping) and isinstance(m.get("role"), str) for m in x
        )

    def sample(self, mask: Any = None, probability: Any = None) -> list[dict[str, str]]:
        return [{"role": "user", "content": str(self.np_random.choice(KEYWORDS))}]


def keyword_similarity(keyword: str, reply: str) -> float:
    """Best SequenceMatcher ratio between `keyword` and a lower-case word of `reply`."""
    words = set(_WORD.findall(reply.lower()))
    if keyword in words:
        return 1.0
    return max((difflib.SequenceMatcher(None, w, keyword).ratio() for w in words), default=0.0)


def reply_similarity(keyword: str, reply: str) -> float:
    """SequenceMatcher ratio between `keyword` and the whole reply (lower-cased, stripped):
    1.0 only for a reply that is exactly the keyword."""
    return difflib.SequenceMatcher(None, reply.lower().strip(), keyword).ratio()


SCORERS = {"word": keyword_similarity, "reply": reply_similarity}


def parse_delegate(text: str) -> list[str] | None:
    """Tasks of the first valid `delegate` tool call in `text`, or None."""
    for raw in _TOOL_CALL.findall(text):
        try:
            call = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if not isinstance(call, dict) or call.get("name") != "delegate":
            continue
        tasks = (call.get("arguments") or {}).get("tasks")
        if isinstance(tasks, list) and tasks and all(isinstance(t, str) for t in tasks):
            return tasks
    return None


@dataclass
class _AgentState:
    role: str
    messages: list[dict[str, Any]]
    needs_action: bool
    turns: int = 0
    format_errors: int = 0
    failed: str | None = None
    reply: str | None = None
    task: str = ""
    has_report: bool = False


class KeywordRelayEnv(ParallelEnv):
    """Lead + helpers keyword game; see the module docstring for the full contract."""

    metadata: ClassVar[dict[str, Any]] = {"name": "KeywordRelay-v0", "is_parallelizable": True}
    LEAD_TURNS = 3

    def __init__(
        self, width: int = 2, keywords: Sequence[str] = KEYWORDS, scoring: str = "word",
        lenient: bool = True, max_context_chars: int = 100_000, max_reply_chars: int = 200,
    ):
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        if not keywords or any(not k or not k.isalpha() or not k.islower() for k in keywords):
            raise ValueError(f"keywords must be non-empty lower-case words, got {keywords!r}")
        if scoring not in SCORERS:
            raise ValueError(f"scoring must be one of {sorted(SCORERS)}, got {scoring!r}")
        self.width = width
        self.keywords = tuple(keywords)
        self.scoring = scoring
        self.lenient = lenient
        self.max_context_chars = max_context_chars
        self.max_reply_chars = max_reply_chars
        self.possible_agents = ["lead", *(f"sub_{i}" for i in range(width))]
        self.agents: list[str] = []
        self._state: dict[str, _AgentState] = {}
        self._keyword: str | None = None
        self._done = True
        self._rng = np.random.default_rng()
        self._observation_space = ChatSpace()
        self._action_space = TextSpace()

    @property
    def task_ids(self) -> list[str]:
        """One task per keyword: `relay-<keyword>`."""
        return [f"relay-{k}" for k in self.keywords]

    def observation_space(self, agent: str) -> gymnasium.Space:
        self._check_agent(agent, live=False)
        return self._observation_space  # the same object on every call (PettingZoo's rule)

    def action_space(self, agent: str) -> gymnasium.Space:
        self._check_agent(agent, live=False)
        return self._action_space

    def tool_schemas(self, agent: str) -> list[dict[str, Any]]:
        """JSON schemas (OpenAI shape) of the tools `agent` may call."""
        self._check_agent(agent, live=False)
        return [DELEGATE_SCHEMA] if agent == "lead" else []

    def reset(self, seed: int | None = None, options: Mapping[str, Any] | None = None):
        """Start an episode. `options["task_id"]` picks `relay-<keyword>`; otherwise a keyword is
        drawn with `seed`. Returns observations and infos for `["lead"]`."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        task_id = (options or {}).get("task_id")
        if task_id is None:
            self._keyword = str(self._rng.choice(self.keywords))
        elif task_id in self.task_ids:
            self._keyword = task_id.removeprefix("relay-")
        else:
            raise ValueError(f"unknown task_id {task_id!r}; expected one of {self.task_ids}")
        prompt = f"Make every helper say the word '{self._keyword}'."
        self._state = {
            "lead": _AgentState(
                role="lead",
                messages=[
                    {"role": "system", "content": LEAD_SYSTEM},
                    {"role": "user", "content": prompt},
                ],
                needs_action=True,
            )
        }
        self.agents = ["lead"]
        self._done = False
        return {"lead": self._obs("lead")}, {"lead": self._info("lead")}

    def step(self, actions: Mapping[str, Any]):
        """Apply the actions of every agent whose `needs_action` is true (others are ignored)."""
        if self._done:
            raise RuntimeError("step() called before reset() or after the episode ended")
        for agent in actions:
            self._check_agent(agent, live=True)
        acting = [a for a in self.agents if self._state[a].needs_action]
        missing = [a for a in acting if a not in actions]
        if missing:
            raise ValueError(f"no action for agents that need one: {missing}")
        before = list(self.agents)
        n_known = len(self._state)
        terminated = dict.fromkeys(before, False)
        for agent in acting:
            text = actions[agent]
            if not isinstance(text, str):
                text = json.dumps(text) if isinstance(text, Mapping) else str(text)
            state = self._state[agent]
            state.turns += 1
            state.messages.append({"role": "assistant", "content": text})
            if self._context_chars(agent) > self.max_context_chars:
                state.failed, state.needs_action, terminated[agent] = "context", False, True
            elif state.role == "subagent":
                state.reply, state.needs_action, terminated[agent] = text, False, True
            else:
                terminated["lead"] = self._lead_acts(text)
        lead = self._state["lead"]
        subs = [a for a in self._state if a != "lead"]
        if (
            not terminated.get("lead", False) and not lead.needs_action and not lead.has_report
            and subs and all(self._state[a].reply is not None or self._state[a].failed for a in subs)
        ):
            lead.messages.append({"role": "tool", "content": self._report(subs)})
            lead.needs_action = lead.has_report = True
        spawned = list(self._state)[n_known:]
        keys = [*before, *spawned]
        rewards = dict.fromkeys(keys, 0.0)
        terminated.update(dict.fromkeys(spawned, False))
        infos = {}
        if terminated.get("lead", False):
            self._done = True
            terminated = dict.fromkeys(keys, True)
            rewards["lead"], hits = self._score(subs)
            infos["lead"] = {**self._info("lead"), "score": rewards["lead"], "hits": hits}
        self.agents = [a for a in keys if not terminated[a]]
        observations = {a: self._obs(a) for a in keys}
        infos = {a: infos.get(a) or self._info(a) for a in keys}
        return observations, rewards, terminated, dict.fromkeys(keys, False), infos

    def _lead_acts(self, text: str) -> bool:
        """Handle the lead's turn; True when the lead is done (which ends the episode)."""
        lead = self._state["lead"]
        if lead.has_report:
            lead.needs_action = False  # its final answer: any text
            return True
        tasks = parse_delegate(text)
        if tasks is None:
            lead.format_errors += 1
            if not self.lenient:
                if lead.turns >= self.LEAD_TURNS:
                    lead.needs_action = False
                    return True
                lead.messages.append({
                    "role": "user",
                    "content": 'Error: no valid delegate call. Write <tool_call>{"name": '
                    '"delegate", "arguments": {"tasks": ["..."]}}</tool_call>.',
                })
                return False
            tasks = [text] * self.width
        lead.needs_action = False
        for i, task in enumerate(tasks[: self.width]):
            self._state[f"sub_{i}"] = _AgentState(
                role="subagent",
                messages=[
                    {"role": "system", "content": SUB_SYSTEM},
                    {"role": "user", "content": task},
                ],
                needs_action=True,
                task=task,
            )
        return False

    def _report(self, subs: list[str]) -> str:
        lines = []
        for a in subs:
            s = self._state[a]
            result = "[failed: exceeded context window]" if s.failed else (s.reply or "")[: self.max_reply_chars]
            lines.append(f"{a} (task: {s.task[:80]}): {result}")
        return "\n".join(lines)

    def _score(self, subs: list[str]) -> tuple[float, int]:
        if not subs:
            return 0.0, 0
        sims = [
            0.0 if self._state[a].failed or self._state[a].reply is None
            else SCORERS[self.scoring](self._keyword or "", self._state[a].reply or "")
            for a in subs
        ]
        return float(np.mean(sims)), sum(s == 1.0 for s in sims)

    def _context_chars(self, agent: str) -> int:
        return sum(len(str(m.get("content") or "")) for m in self._state[agent].messages)

    def _obs(self, agent: str) -> list[dict[str, Any]]:
        return [dict(m) for m in self._state[agent].messages]

    def _info(self, agent: str) -> dict[str, Any]:
        s = self._state[agent]
        finished = s.failed is not None or (s.reply is not None) or (
            agent == "lead" and self._done
        )
        if s.failed is not None:
            status, end_reason = "failed", s.failed
        elif finished:
            status, end_reason = "done", "final"
        else:
            status, end_reason = ("running" if s.needs_action else "blocked"), None
        return {
            "role": s.role,
            "parent": None if agent == "lead" else "lead",
            "needs_action": s.needs_action,
            "status": status,
            "end_reason": end_reason,
            "turns": s.turns,
            "format_errors": s.format_errors,
        }

    def _check_agent(self, agent: str, live: bool) -> None:
        if agent not in self.possible_agents:
            raise ValueError(f"unknown agent id {agent!r}; possible agents: {self.possible_agents}")
        if live and agent not in self.agents:
            raise ValueError(f"agent {agent!r} is not live (live agents: {self.agents})")
