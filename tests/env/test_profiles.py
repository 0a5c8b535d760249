"""Interface profiles: the paper's tools, limits, call reading, texts and answer formats, beside
the default ``wideseek`` profile, on the toy world (every step checked by hand)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from wideseek_env.env import prompts_paper as P
from wideseek_env.env.parallel import WideSeekEnv
from wideseek_env.env.profiles import profile_of_tools
from wideseek_env.env.protocol import format_tool_call
from wideseek_env.env.single_agent import WideSeekSingleAgentEnv
from wideseek_env.env.toy import InMemoryBackend, toy_backend, toy_documents, toy_tasks
from wideseek_env.qa import qa_task
from wideseek_env.search.base import Hit

TABLE = ("| River | Length km | Mouth |\n|---|---|---|\n| Amberflow | 412 | Gulf of Tessar |\n"
         "| Brightwater | 288 | Lake Orun |\n| Coldrun | 157 | Amberflow |")


class KBackend(InMemoryBackend):
    """The toy backend, recording the result count of every search call."""

    def __init__(self) -> None:
        super().__init__(toy_documents())
        self.ks: list[int] = []

    def search(self, queries: Sequence[str], k: int = 3) -> list[list[Hit]]:
        self.ks.append(k)
        return super().search(queries, k)


def paper_env(**kw) -> WideSeekEnv:
    kw.setdefault("backend", toy_backend())
    return WideSeekEnv(tasks=toy_tasks(), width=2, interface="paper", reward="paper", **kw)


def delegate(*prompts: str) -> str:
    return format_tool_call("create_sub_agents", {"sub_agents": [{"prompt": p} for p in prompts]})


def test_schemas_under_each_profile() -> None:
    paper = paper_env()
    (lead,) = paper.tool_schemas("lead")
    fn = lead["function"]
    assert fn["name"] == "create_sub_agents"
    agents = fn["parameters"]["properties"]["sub_agents"]
    assert agents["maxItems"] == 2 and agents["items"]["required"] == ("prompt",)
    search, access = (t["function"] for t in paper.tool_schemas("subagent"))
    q = search["parameters"]["properties"]["queries"]
    assert q["maxItems"] == 5 and set(q["items"]["properties"]) == {"query", "count"}
    assert q["items"]["properties"]["count"]["default"] == 3
    u = access["parameters"]["properties"]["urls"]
    assert u["maxItems"] == 5 and u["items"]["required"] == ("url", "info_to_extract")
    single = WideSeekSingleAgentEnv(tasks=toy_tasks(), backend=toy_backend(), interface="paper")
    s_search, s_access = (t["function"]["parameters"] for t in single.tool_schemas())
    assert s_search["required"] == ("query",) and s_access["required"] == ("url", "info_to_extract")
    ours = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), width=2)
    assert [t["function"]["name"] for t in ours.tool_schemas("lead")] == ["delegate"]
    assert profile_of_tools(paper.tool_schemas("sub_0")).name == "paper"
    assert profile_of_tools(single.tool_schemas()).name == "paper"
    assert profile_of_tools(ours.tool_schemas("sub_0")).name == "wideseek"


def test_a_paper_episode_step_by_step() -> None:
    backend = KBackend()
    env = paper_env(backend=backend)
    obs, _ = env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    task = env.task
    assert obs["lead"][1]["content"] == (f"# Task\nYour task:\n{task.query}"
                                         + P.FIRST_TURN.format(turns=10))
    assert "create_sub_agents" in obs["lead"][0]["content"] and "# Worked Examples" in obs["lead"][0]["content"]
    # Only the first call is read; the third sub-agent is beyond the width and dropped.
    text = "<think>plan</think>" + delegate("rivers A-B", "river C", "extra") + delegate("never")
    obs, _, _, _, infos = env.step({"lead": text})
    assert env.agents == ["lead", "sub_0", "sub_1"] and infos["lead"]["format_errors"] == 0
    assert obs["sub_1"][1]["content"] == (f"# Task\nThe main task:\n{task.query}\n\nYour subtask:"
                                          f"\nriver C" + P.FIRST_TURN.format(turns=20))
    # count is capped below 10; an entry without a query is skipped; results as the paper lays them out.
    search = format_tool_call("search", {"queries": [{"query": "Amberflow", "count": 50},
                                                      {"q": "bad"}, {"query": "Coldrun"}]})
    url = toy_backend().search(["Coldrun"], 1)[0][0].url
    access = format_tool_call("access", {"urls": [{"url": url, "info_to_extract": "length"}]})
    obs, _, _, _, infos = env.step({"sub_0": search, "sub_1": access})
    assert sorted(backend.ks) == [3, 9]
    result = obs["sub_0"][-1]
    assert result["name"] == "search" and result["content"].startswith(
        "# Search query:\nAmberflow\n# Result:\n[Doc 1](")
    assert "\n\n# Search query:\nColdrun\n# Result:\n[Doc 1](" in result["content"]
    assert result["content"].endswith(P.NEXT_TURN.format(turn=2, turns=20))
    assert obs["sub_1"][-1]["content"].startswith(f"# Access URL:\n{url}\n# Result:\n")
    assert "157" in obs["sub_1"][-1]["content"]
    # A report is the final message without its thinking; the lead gets "# Subtask k" blocks.
    obs, _, _, _, infos = env.step({"sub_0": "<think>done</think>Amberflow 412 km.",
                                    "sub_1": "Coldrun 157 km."})
    assert obs["lead"][-1]["name"] == "create_sub_agents"
    assert obs["lead"][-1]["content"] == (
        "# Subtask 1:\nrivers A-B\n# Result:\nAmberflow 412 km.\n\n# Subtask 2:\nriver C\n"
        "# Result:\nColdrun 157 km." + P.NEXT_TURN.format(turn=2, turns=10))
    obs, rewards, terms, _, infos = env.step({"lead": f"```markdown\n{TABLE}\n```"})
    assert terms["lead"] and infos["lead"]["item_f1"] == 1.0
    # the paper's reward: answer + format + access bonus (sub_1 read a page)
    assert rewards["lead"] == pytest.approx(1.0 + 0.1 + 0.05)
    assert infos["lead"]["tool_calls"] == {"delegate": 1}


@pytest.mark.parametrize("interface", ["wideseek", "paper"])
def test_an_unreadable_call(interface: str) -> None:
    """The paper reads a call it cannot parse as no call (the turn is the final message); our
    profile answers with an Error: tool message and the episode goes on."""
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), width=2, interface=interface,
                      reward="paper")
    env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    broken = '<tool_call>{"name": "create_sub_agents", "arguments": {</tool_call>'
    obs, rewards, terms, _, infos = env.step({"lead": broken})
    assert infos["lead"]["format_errors"] == 1
    if interface == "paper":
        assert terms["lead"] and not env.agents and infos["lead"]["episode_end"] == "answer"
        assert infos["lead"]["parse_ok"] is False and rewards["lead"] == 0.0
    else:
        assert env.agents == ["lead"] and obs["lead"][-1]["content"].startswith("Error: ")


def test_a_subagent_call_without_a_usable_item_is_its_report() -> None:
    env = paper_env()
    env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    env.step({"lead": delegate("rivers")})
    bad = format_tool_call("search", {"queries": [{"query": ""}, "text"]})
    obs, _, terms, _, infos = env.step({"sub_0": bad})
    assert terms["sub_0"] and infos["sub_0"]["format_errors"] == 1
    assert obs["lead"][-1]["content"].startswith(f"# Subtask 1:\nrivers\n# Result:\n{bad}")


def test_a_failed_subagent_is_reported_as_the_paper_does() -> None:
    env = paper_env(subagent_max_turns=1)
    env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    env.step({"lead": delegate("rivers")})
    obs, _, _, truncs, _ = env.step({"sub_0": format_tool_call(
        "search", {"queries": [{"query": "Amberflow"}]})})
    assert truncs["sub_0"]
    assert obs["lead"][-1]["content"].startswith(f"# Subtask 1:\nrivers\n# Result:\n{P.SUBAGENT_FAILED}")


@pytest.mark.parametrize(("interface", "parse_ok"), [("wideseek", True), ("paper", False)])
def test_a_table_outside_a_markdown_fence(interface: str, parse_ok: bool) -> None:
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), interface=interface)
    env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    *_, infos = env.step({"lead": "Here:\n" + TABLE})
    assert infos["lead"]["parse_ok"] is parse_ok


def test_the_paper_reads_the_last_markdown_fence() -> None:
    env = paper_env()
    env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    draft = "| River | Length km | Mouth |\n|---|---|---|\n| Amberflow | 1 | x |"
    *_, infos = env.step({"lead": f"```markdown\n{draft}\n```\nFixed:\n```markdown\n{TABLE}\n```"})
    assert infos["lead"]["item_f1"] == 1.0


QA = qa_task("toy-qa", "How long is the Amberflow river, in km?", ["412 km", "412"])


@pytest.mark.parametrize("interface", ["wideseek", "paper"])
@pytest.mark.parametrize(("answer", "correct", "parse_ok"), [
    ("<think>412?</think>It is \\boxed{412 km}.", 1.0, True),
    ("\\boxed{about 400 km}", 0.0, True),
    ("412 km", 0.0, False),
])
def test_qa_episodes(interface: str, answer: str, correct: float, parse_ok: bool) -> None:
    env = WideSeekEnv(tasks=[QA], backend=toy_backend(), interface=interface, reward="paper")
    obs, _ = env.reset(seed=0)
    system = obs["lead"][0]["content"]
    assert "\\boxed{}" in system and ("# Worked Examples" not in system)
    _, rewards, _, _, infos = env.step({"lead": answer})
    lead = infos["lead"]
    assert lead["kind"] == "qa" and lead["correct"] == correct and lead["parse_ok"] is parse_ok
    assert "item_f1" not in lead
    assert rewards["lead"] == pytest.approx(correct + 0.1 if parse_ok else 0.0)
    # token F1 of "about 400 km" against "412 km": one common token, P = 1/3, R = 1/2
    assert lead["token_f1"] == pytest.approx({1.0: 1.0, 0.0: 0.4 if parse_ok else 0.0}[correct])


def test_sampled_actions_speak_the_profile() -> None:
    env = paper_env()
    env.reset(seed=3)
    space = env.action_space("lead")
    names = set()
    for _ in range(200):
        action = space.sample()
        if isinstance(action, dict):
            names.add(action["name"])
            assert action["name"] != "create_sub_agents" or all(
                set(a) == {"prompt"} for a in action["arguments"]["sub_agents"])
        elif "<tool_call>" in action and '"create_sub_agents"' in action:
            names.add("create_sub_agents")
    assert names == {"create_sub_agents"}
    sub = env.action_space("sub_0").sample
    calls = [a for a in (sub() for _ in range(300)) if isinstance(a, dict)]
    assert {c["name"] for c in calls} == {"search", "access"}
    for c in calls:
        key = "queries" if c["name"] == "search" else "urls"
        assert all(isinstance(x, dict) for x in c["arguments"][key]), json.dumps(c)
