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

An agent whose prompt leaves no room in `max_context_tokens` generates nothing: its action is
the empty string (the env then sees an empty turn), and `overflows` counts it.
"""

from __future__ import annotations

from array import array
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
        """One action per request, in order; one `generate` call per distinct token budget."""
        contexts: list[_Context] = []
        for req in requests:
            ctx = self._contexts.get(req.key)
            if ctx is None:
                agent_id = str(req.info.get("agent_id", req.key)) if req.info else str(req.key)
                ctx = _Context(agent_id=agent_id, role=req.role)
                delta = self.render(req.messages, req.tools, generation_prompt=True)
                self._contexts[req.key] = ctx
            else:
                delta = self._continuation(ctx, req.messages, req.tools)
            ctx.tokens.extend(self._encode(delta))
            ctx.n_messages = len(req.messages)
            ctx.last_message = plain(req.messages[-1])
            contexts.append(ctx)

        budgets: dict[int, list[int]] = {}
        for i, ctx in enumerate(contexts):
            room = min(self.sampling.max_new_tokens, self.max_context_tokens - len(ctx.tokens))
            budgets.setdefault(max(room, 0), []).append(i)
        completions: dict[int, tuple[list[int], list[float], str]] = {}
        for room, idx in budgets.items():
            if room == 0:
                self.overflows += len(idx)
                completions.update({i: ([], [], "length") for i in idx})
                continue
            outs = self.engine.generate(
                [contexts[i].tokens.tolist() for i in idx],
                self._sampling(room),
            )
            for i, out in zip(idx, outs):
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
