"""LLMPolicy: incremental prompts that keep generated tokens verbatim, overflow, bad observations.

Most tests drive the real tiny engine through the toy env. Where a test needs a completion with
exact chosen tokens (a non-canonical segmentation, a cut completion), a replay engine returns
them: it implements the same `GenerationEngine` protocol and records the prompts it was given.
"""

from __future__ import annotations

import numpy as np
import pytest

from wideseek_env.env.keyword_relay import KeywordRelayEnv
from wideseek_env.policies.base import AgentRequest, Policy
from wideseek_rl.engines.base import SamplingParams
from wideseek_rl.policy import LLMPolicy


def request(key, messages, tools=()):
    return AgentRequest(key=key, role="lead", messages=messages, tools=tools,
                        info={"agent_id": "lead"})


def test_is_a_policy_and_prompts_extend_verbatim_through_an_episode(tiny_engine, tiny_tokenizer):
    policy = LLMPolicy(tiny_engine, tiny_tokenizer, SamplingParams(max_new_tokens=10, seed=0))
    assert isinstance(policy, Policy)
    env = KeywordRelayEnv(width=2)
    obs, infos = env.reset(seed=0, options={"task_id": "relay-blue"})
    while env.agents:
        acting = [a for a in env.agents if infos[a]["needs_action"]]
        reqs = [AgentRequest(key=a, role=infos[a]["role"], messages=obs[a],
                             tools=env.tool_schemas(a), info={"agent_id": a}) for a in acting]
        actions = policy.act(reqs)
        obs, _, _, _, new_infos = env.step({r.key: act.action for r, act in zip(reqs, actions)})
        infos.update(new_infos)
    lead = policy.take_turns("lead")
    assert len(lead) == 2 and policy.take_turns("lead") == ()
    first, second = lead
    n = len(first.prompt_ids) + len(first.completion_ids)
    assert np.array_equal(second.prompt_ids[: len(first.prompt_ids)], first.prompt_ids)
    assert np.array_equal(second.prompt_ids[len(first.prompt_ids) : n], first.completion_ids)
    # The first prompt is exactly the rendered conversation with the env's tools.
    text = tiny_tokenizer.apply_chat_template(
        obs["lead"][:2], tools=env.tool_schemas("lead"), tokenize=False, add_generation_prompt=True)
    assert tiny_tokenizer.decode(first.prompt_ids) == text
    # The added tokens are the env's tool message and the generation prompt, nothing else.
    added = tiny_tokenizer.decode(second.prompt_ids[n:])
    expected_tail = "<|im_start|>user\n<tool_response>\n" + obs["lead"][3]["content"] + \
        "\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    closing = "<|im_end|>\n" if first.finish_reason == "length" else "\n"
    assert added == closing + expected_tail
    for turn in lead:
        assert turn.agent_id == "lead" and turn.role == "lead"
        assert len(turn.logprobs) == len(turn.completion_ids) and np.all(turn.logprobs <= 0)
        assert not turn.prompt_ids.flags.writeable
    subs = [policy.take_turns(f"sub_{i}") for i in range(2)]
    assert all(len(t) == 1 and t[0].role == "subagent" for t in subs)


def test_generated_tokens_are_never_retokenised(tiny_tokenizer, replay_engine):
    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    # "blue" spelled letter by letter: re-tokenising the text would merge it into one token.
    letters = [tiny_tokenizer.convert_tokens_to_ids(c) for c in "blue"]
    assert len(tiny_tokenizer.encode("blue", add_special_tokens=False)) == 1
    engine = replay_engine([[[*letters, im_end]], [[im_end]]], stop_ids=[im_end])
    policy = LLMPolicy(engine, tiny_tokenizer, SamplingParams(max_new_tokens=8))
    convo = [{"role": "user", "content": "say blue"}]
    (action,) = policy.act([request("k", convo)])
    assert action.action == "blue" and action.completion_tokens == 5
    convo += [{"role": "assistant", "content": "blue"}, {"role": "user", "content": "again"}]
    policy.act([request("k", convo)])
    first_prompt, second_prompt = engine.prompts[0][0], engine.prompts[1][0]
    assert second_prompt[: len(first_prompt) + 5] == [*first_prompt, *letters, im_end]
    assert tiny_tokenizer.decode(second_prompt[len(first_prompt) + 5 :]) == \
        "\n<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\n"


def test_a_cut_completion_is_closed_with_prompt_tokens(tiny_tokenizer, replay_engine):
    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    word = tiny_tokenizer.encode(" apple", add_special_tokens=False)
    engine = replay_engine([[word * 3], [[im_end]]], stop_ids=[im_end])
    policy = LLMPolicy(engine, tiny_tokenizer, SamplingParams(max_new_tokens=3 * len(word)))
    convo = [{"role": "user", "content": "go"}]
    policy.act([request(0, convo)])
    convo += [{"role": "assistant", "content": " apple apple apple"},
              {"role": "tool", "content": "ok"}]
    policy.act([request(0, convo)])
    first, second = engine.prompts[0][0], engine.prompts[1][0]
    tail = tiny_tokenizer.decode(second[len(first) + 3 * len(word) :])
    assert tail.startswith("<|im_end|>\n<|im_start|>user\n<tool_response>\nok")
    (t1, t2) = policy.take_turns(0)
    assert t1.finish_reason == "length" and t2.finish_reason == "stop"


def test_overflowing_agents_generate_nothing(tiny_engine, tiny_tokenizer):
    policy = LLMPolicy(tiny_engine, tiny_tokenizer, SamplingParams(max_new_tokens=50, seed=0),
                       max_context_tokens=30)
    short = [{"role": "user", "content": "hi"}]
    long = [{"role": "user", "content": "apple " * 40}]
    a_short, a_long = policy.act([request("s", short), request("l", long)])
    assert a_long.action == "" and a_long.completion_tokens == 0 and a_long.prompt_tokens > 30
    assert 0 < a_short.completion_tokens <= 30 - a_short.prompt_tokens  # capped by the room left
    assert policy.overflows == 1
    assert policy.take_turns("l") == ()


def test_observations_must_be_append_only(tiny_tokenizer, replay_engine):
    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    engine = replay_engine([[[im_end]]] * 3, stop_ids=[im_end])
    policy = LLMPolicy(engine, tiny_tokenizer, SamplingParams(max_new_tokens=4))
    policy.act([request("a", [{"role": "user", "content": "one"}])])
    with pytest.raises(ValueError, match="append-only"):
        policy.act([request("a", [{"role": "user", "content": "changed"},
                                  {"role": "assistant", "content": ""},
                                  {"role": "user", "content": "two"}])])
    policy.reset()
    policy.act([request("b", [{"role": "user", "content": "one"}])])
    with pytest.raises(ValueError, match="role 'assistant'"):
        policy.act([request("b", [{"role": "user", "content": "one"},
                                  {"role": "user", "content": "two"}])])


def test_seeded_policy_replays(tiny_engine, tiny_tokenizer):
    convo = [{"role": "user", "content": "say something"}]
    texts = []
    for _ in range(2):
        policy = LLMPolicy(tiny_engine, tiny_tokenizer, SamplingParams(max_new_tokens=8))
        policy.set_seed(123)
        texts.append([policy.act([request(i, convo)])[0].action for i in range(3)])
    assert texts[0] == texts[1]
    assert len(set(texts[0])) > 1  # successive calls draw different samples


def test_a_template_that_rewrites_history_still_extends_prompts_verbatim(tiny_tokenizer, replay_engine):
    """Like Qwen3's, this template drops the reasoning of earlier assistant turns, so a
    conversation does not render as a prefix of its extension; the policy must not care."""
    from wideseek_rl.tiny import CHAT_TEMPLATE

    dropping = CHAT_TEMPLATE.replace(
        "{{- '<|im_start|>assistant\\n' + (message.content or '') -}}",
        "{%- set c = message.content or '' -%}"
        "{%- if not loop.last and '</think>' in c -%}{%- set c = c.split('</think>')[-1] -%}{%- endif -%}"
        "{{- '<|im_start|>assistant\\n' + c -}}",
    )
    assert dropping != CHAT_TEMPLATE
    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    reply = [*tiny_tokenizer.encode("<think>hmm</think>blue", add_special_tokens=False), im_end]
    engine = replay_engine([[reply], [[im_end]]], stop_ids=[im_end])
    policy = LLMPolicy(engine, tiny_tokenizer, SamplingParams(max_new_tokens=16),
                       chat_template=dropping)
    convo = [{"role": "user", "content": "colour?"}]
    policy.act([request("q", convo)])
    convo += [{"role": "assistant", "content": "<think>hmm</think>blue"},
              {"role": "user", "content": "again"}]
    head = tiny_tokenizer.apply_chat_template(convo[:2], tokenize=False, chat_template=dropping)
    full = tiny_tokenizer.apply_chat_template(convo, tokenize=False, chat_template=dropping,
                                              add_generation_prompt=True)
    assert not full.startswith(head)  # history is rewritten
    policy.act([request("q", convo)])
    first, second = engine.prompts[0][0], engine.prompts[1][0]
    assert second[: len(first) + len(reply)] == first + reply  # the model's own tokens, reasoning kept
    assert tiny_tokenizer.decode(second[len(first) + len(reply) :]) == \
        "\n<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\n"


def test_one_generate_call_per_act_whatever_the_budgets(tiny_engine, tiny_tokenizer):
    """Prompts of different lengths near the context budget each get their own token budget,
    in a single engine call (the paper's budgets make every prompt length its own budget)."""
    calls = []

    class Counting:
        def generate(self, prompts, sampling, max_new_tokens=None):
            calls.append((len(prompts), list(max_new_tokens)))
            return tiny_engine.generate(prompts, sampling, max_new_tokens)

    policy = LLMPolicy(Counting(), tiny_tokenizer, SamplingParams(max_new_tokens=64, seed=1),
                       max_context_tokens=60)
    convos = [[{"role": "user", "content": "apple " * n}] for n in (1, 5, 9, 13)]
    actions = policy.act([request(i, c) for i, c in enumerate(convos)])
    assert len(calls) == 1 and calls[0][0] == 4
    budgets = calls[0][1]
    assert budgets == [60 - a.prompt_tokens for a in actions]  # each prompt's own room
    assert len(set(budgets)) == 4 and all(0 < b < 64 for b in budgets)
    assert all(a.completion_tokens <= b for a, b in zip(actions, budgets))


def test_hf_engine_stops_each_row_at_its_own_budget(tiny_engine):
    prompts = [[5, 6, 7], [8, 9], [10, 11, 12, 13]]
    sampling = SamplingParams(max_new_tokens=12, temperature=1.0, seed=4, stop_token_ids=())
    full = tiny_engine.generate(prompts, sampling)
    calls = tiny_engine.generate_calls
    capped = tiny_engine.generate(prompts, sampling, [3, 12, 7])
    assert tiny_engine.generate_calls == calls + 1  # one batch for the three budgets
    for out, ref, cap in zip(capped, full, (3, 12, 7)):
        n = len(out.token_ids)  # the same draws as uncapped, up to the row's own budget
        assert n <= cap and out.token_ids == ref.token_ids[:n]
        assert out.finish_reason == ("length" if n == cap else "stop")
    assert capped[1].token_ids == full[1].token_ids
    empty = tiny_engine.generate(prompts[:1], sampling, [0])
    assert empty[0].token_ids == () and empty[0].finish_reason == "length"
    assert tiny_engine.generate_calls == calls + 1  # nothing to run for an empty budget
