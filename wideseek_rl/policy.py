"""An LLM policy: the env's `Policy` protocol over a `GenerationEngine`, recording every turn.

Prompts are built incrementally and never re-tokenise generated text. An agent's first prompt
is its rendered conversation (chat template with the env's tool schemas, generation prompt on).
Every later prompt is

    previous prompt + previous completion tokens + tokens(tail)

where `tail` is what the chat template writes after the agent's previous assistant message: the
end of that assistant turn, the env's new messages and the next generation prompt. It is found
by rendering the conversation with the previous assistant message replaced by a sentinel and
taking the text after the sentinel, so it works with templates that render history differently
from the live turn (Qwen3's drops earlier reasoning). When the completion ended with a stop token
whose text opens the tail (`<|im_end|>`), that text is not repeated; a completion cut by the
token limit gets the template's end-of-turn text as prompt tokens.

One count of the context. `count_context(messages, tools)` is the env's view of the same
tokens: an env built with it (`WideSeekEnv(context_counter=policy.count_context)`) counts every
agent's context exactly as the engine sees it (the prompt this policy builds next, or the prompt
plus the reply the agent just wrote), so it can end an agent that has no room left before asking
it for a turn. The tail it computes is kept and reused by the next `act`, so nothing is rendered
twice. A conversation is recognised by its first user message (the object itself).

All agents of an `act` call go to the engine in one `generate` call, each prompt with its own
token budget (`min(max_new_tokens, max_context_tokens − prompt length)`). An agent whose prompt
leaves no room at all (only possible with an env that does not use `count_context`) generates
nothing: its action is the empty string and `overflows` counts it.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from wideseek_env.env.messages import plain
from wideseek_env.policies.base import AgentAction, AgentRequest
from wideseek_rl.engines.base import GenerationEngine, SamplingParams
from wideseek_rl.records import Turn, frozen_array

_SENTINEL = "\u2063WIDESEEK-SENTINEL\u2063"


@dataclass
class _Context:
    """Token history of one agent (mutable, internal)."""

    agent_id: str
    role: str
    tokens: array = field(default_factory=lambda: array("i"))
    n_messages: int = 0
    last_message: Any = None
    last_stop_text: str | None = None  # text of the stop token that ended the last completion
    turns: list[tuple[int, int, np.ndarray, str]] = field(default_factory=list)
    anchor: Any = None  # the conversation's first user message (identifies it for count_context)
    pending: tuple[int, list[int]] | None = None  # (messages, tail ids) computed by count_context


class LLMPolicy:
    """Acts for a batch of agents with one `engine.generate` call and records each turn.

    `take_turns(key)` hands back (and forgets) the turns of an agent once its episode is over.
    Agent ids come from `request.info["agent_id"]` (the rollout sets it), else `str(key)`.
    """

    def __init__(
        self,
        engine: GenerationEngine,
        tokenizer: Any,
        sampling: SamplingParams,
        *,
        max_context_tokens: int | None = None,
        chat_template: str | None = None,
    ):
        self.engine = engine
        self.tokenizer = tokenizer
        self.sampling = sampling
        self.max_context_tokens = max_context_tokens or int(
            getattr(tokenizer, "model_max_length", 0) or 32768
        )
        if self.max_context_tokens > 10**8:  # tokenizers without a limit report a huge number
            self.max_context_tokens = 32768
        self.chat_template = chat_template
        self.overflows = 0
        self._seed: int | None = sampling.seed
        self._calls = 0
        self._contexts: dict[Hashable, _Context] = {}
        self._by_anchor: dict[int, _Context] = {}
        self._first: OrderedDict[tuple[int, int], tuple[Any, list[int]]] = OrderedDict()

    # ------------------------------------------------------------------ rendering

    def render(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]],
        generation_prompt: bool,
    ) -> str:
        """The chat template's text for `messages` (tool schemas included when given)."""
        return self.tokenizer.apply_chat_template(
            plain(messages),
            tools=plain(tools) or None,
            tokenize=False,
            add_generation_prompt=generation_prompt,
            chat_template=self.chat_template,
        )

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    @staticmethod
    def _anchor(messages: Sequence[Mapping[str, Any]]) -> Any:
        """The first user message of a conversation (None when there is none)."""
        return next((m for m in messages if m.get("role") == "user"), None)

    def _first_prompt(self, messages: Sequence[Mapping[str, Any]],
                      tools: Sequence[Mapping[str, Any]]) -> list[int]:
        """Token ids of a conversation's first prompt (memoised for the following `act`)."""
        key = (id(messages[-1]), len(messages)) if messages else None
        hit = self._first.pop(key, None) if key else None
        if hit is not None and hit[0] is messages[-1]:
            return hit[1]
        ids = self._encode(self.render(messages, tools, generation_prompt=True))
        if key is not None:
            self._first[key] = (messages[-1], ids)
            while len(self._first) > 4096:  # counts of conversations nobody prompted
                self._first.popitem(last=False)
        return ids

    def count_context(self, messages: Sequence[Mapping[str, Any]],
                      tools: Sequence[Mapping[str, Any]] = ()) -> int:
        """Tokens of an agent's conversation as the engine sees it: the agent's prompt plus its
        latest reply when the conversation ends with that reply, else the next prompt."""
        anchor = self._anchor(messages)
        ctx = self._by_anchor.get(id(anchor)) if anchor is not None else None
        if ctx is None or ctx.anchor is not anchor or len(messages) <= ctx.n_messages \
                or messages[ctx.n_messages].get("role") != "assistant":
            return len(self._first_prompt(messages, tools))  # not prompted yet
        if len(messages) == ctx.n_messages + 1:
            return len(ctx.tokens)
        if ctx.pending is None or ctx.pending[0] != len(messages):
            ctx.pending = (len(messages), self._encode(self._continuation(ctx, messages, tools)))
        return len(ctx.tokens) + len(ctx.pending[1])

    def _continuation(self, ctx: _Context, messages: Sequence[Mapping[str, Any]],
                      tools: Sequence[Mapping[str, Any]]) -> str:
        n = ctx.n_messages
        if len(messages) <= n or plain(messages[n - 1]) != ctx.last_message:
            raise ValueError(
                f"agent {ctx.agent_id}: the observation is not an append-only continuation of the "
                f"previous one ({n} messages before, {len(messages)} now)"
            )
        if messages[n].get("role") != "assistant":
            raise ValueError(
                f"agent {ctx.agent_id}: message {n} should be the agent's own reply (role "
                f"'assistant'), got role {messages[n].get('role')!r}"
            )
        probe = [*messages[:n], {"role": "assistant", "content": _SENTINEL}, *messages[n + 1 :]]
        parts = self.render(probe, tools, generation_prompt=True).split(_SENTINEL)
        if len(parts) != 2:
            raise ValueError("the chat template does not render assistant content verbatim")
        tail = parts[1]
        if ctx.last_stop_text and tail.startswith(ctx.last_stop_text):
            tail = tail[len(ctx.last_stop_text) :]
        return tail

    # ------------------------------------------------------------------ acting

    def act(self, requests: Sequence[AgentRequest]) -> list[AgentAction]:
        """One action per request, in order, from one `generate` call."""
        contexts: list[_Context] = []
        for req in requests:
            ctx = self._contexts.get(req.key)
            if ctx is None:
                agent_id = str(req.info.get("agent_id", req.key)) if req.info else str(req.key)
                ctx = _Context(agent_id=agent_id, role=req.role)
                ids = self._first_prompt(req.messages, req.tools)
                self._contexts[req.key] = ctx
                ctx.anchor = self._anchor(req.messages)
                if ctx.anchor is not None:
                    self._by_anchor[id(ctx.anchor)] = ctx
            elif ctx.pending is not None and ctx.pending[0] == len(req.messages):
                ids = ctx.pending[1]  # already computed for the env's count
            else:
                ids = self._encode(self._continuation(ctx, req.messages, req.tools))
            ctx.pending = None
            ctx.tokens.extend(ids)
            ctx.n_messages = len(req.messages)
            ctx.last_message = plain(req.messages[-1])
            contexts.append(ctx)

        budgets = [max(min(self.sampling.max_new_tokens, self.max_context_tokens - len(c.tokens)), 0)
                   for c in contexts]
        self.overflows += budgets.count(0)
        completions: list[tuple[list[int], list[float], str]] = [([], [], "length")] * len(contexts)
        live = [i for i, b in enumerate(budgets) if b > 0]
        if live:
            outs = self.engine.generate([contexts[i].tokens.tolist() for i in live],
                                        self._sampling(self.sampling.max_new_tokens),
                                        [budgets[i] for i in live])
            for i, out in zip(live, outs):
                completions[i] = (list(out.token_ids), list(out.logprobs), out.finish_reason)

        actions = []
        for i, (req, ctx) in enumerate(zip(requests, contexts)):
            ids, logprobs, finish = completions[i]
            prompt_len = len(ctx.tokens)
            if ids:
                ctx.turns.append(
                    (prompt_len, len(ids), np.asarray(logprobs, dtype=np.float32), finish)
                )
                ctx.tokens.extend(ids)
            ctx.last_stop_text = (
                self.tokenizer.decode(ids[-1:], skip_special_tokens=False)
                if finish == "stop" else None
            )
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            actions.append(AgentAction(req.key, text, completion_tokens=len(ids),
                                       prompt_tokens=prompt_len))
        return actions

    # ------------------------------------------------------------------ records

    def take_turns(self, key: Hashable) -> tuple[Turn, ...]:
        """The recorded turns of the agent `key` (forgetting it); () for an unknown key."""
        ctx = self._contexts.pop(key, None)
        if ctx is None:
            return ()
        if ctx.anchor is not None and self._by_anchor.get(id(ctx.anchor)) is ctx:
            del self._by_anchor[id(ctx.anchor)]
        buf = frozen_array(np.frombuffer(ctx.tokens, dtype=np.int32).copy(), np.int32)
        return tuple(
            Turn(
                agent_id=ctx.agent_id,
                role=ctx.role,
                prompt_ids=buf[:start],
                completion_ids=buf[start : start + n],
                logprobs=frozen_array(lp, np.float32),
                finish_reason=finish,
            )
            for start, n, lp, finish in ctx.turns
        )

    def set_seed(self, seed: int | None) -> None:
        """Seed the sampling of the following `act` calls: call k samples with a seed derived
        from (seed, k), so a rollout replays exactly whatever ran before it. None: unseeded."""
        self._seed = seed
        self._calls = 0

    def _sampling(self, max_new_tokens: int) -> SamplingParams:
        seed = None
        if self._seed is not None:
            seed = int(np.random.SeedSequence([self._seed, self._calls]).generate_state(1)[0])
            self._calls += 1
        return replace(self.sampling, max_new_tokens=max_new_tokens, seed=seed)

    def reset(self) -> None:
        """Forget every agent (for example after an aborted rollout)."""
        self._contexts.clear()
        self._by_anchor.clear()
        self._first.clear()
