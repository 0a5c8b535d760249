"""WideSeekEnv end to end on the toy world: a golden episode with the expected infos at every step,
observations, tool batching, rendering and the registry."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar

import pettingzoo
import pytest

import wideseek_env
from wideseek_env.env.config import MESSAGE_OVERHEAD_TOKENS, approx_token_count
from wideseek_env.env.parallel import WideSeekEnv
from wideseek_env.env.toy import InMemoryBackend, toy_backend, toy_documents, toy_tasks
from wideseek_env.search.base import Hit, Page
from wideseek_env.tasks import ColumnEval

VELORIA_TABLE = (
    "```markdown\n| River | Length km | Mouth |\n| --- | --- | --- |\n"
    "| Amberflow | 412 | Gulf of Tessar |\n| Brightwater | 288 | Lake Orun |\n"
    "| Coldrun | 157 | Amberflow |\n```"
)


class CountingBackend(InMemoryBackend):
    """The toy backend, recording every call it answers."""

    def __init__(self) -> None:
        super().__init__(toy_documents())
        self.search_calls: list[list[str]] = []
        self.access_calls: list[str] = []

    def search(self, queries: Sequence[str], k: int = 3) -> list[list[Hit]]:
        self.search_calls.append(list(queries))
        return super().search(queries, k)

    def access(self, url: str, *, offset: int = 0, max_chars: int = 25_000) -> Page:
        self.access_calls.append(url)
        return super().access(url, offset=offset, max_chars=max_chars)


def call(name: str, key: str, items: list[str]) -> dict:
    return {"name": name, "arguments": {key: items}}


def context_of(messages: list) -> int:
    return sum(approx_token_count(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def expected_info(role: str, *, needs_action: bool, status: str, turns: int, tools: dict,
                  end_reason: str | None = None, delegation: int | None = None) -> dict:
    info = {"role": role, "parent": None if role == "lead" else "lead", "needs_action": needs_action,
            "status": status, "end_reason": end_reason, "turns": turns,
            "max_turns": 10 if role == "lead" else 20, "tool_calls": tools, "format_errors": 0,
            "tool_errors": 0, "max_context_tokens": 32_768}
    if role == "subagent":
        info["delegation"] = delegation
    return info


def check_infos(obs: dict, infos: dict, expected: dict) -> None:
    assert set(infos) == set(expected)
    for agent, want in expected.items():
        got = dict(infos[agent])
        assert got.pop("context_tokens") == context_of(obs[agent]), agent
        score = got.pop("score", None)
        if score is not None:  # the flat score fields repeat the full record
            assert {k: got[k] for k in score if k in got} == {k: v for k, v in score.items() if k in got}
        assert got == want, agent


def test_golden_episode() -> None:
    backend = CountingBackend()
    env = WideSeekEnv(tasks=toy_tasks(), backend=backend, width=4)
    obs, infos = env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    assert [m["role"] for m in obs["lead"]] == ["system", "user"]
    assert "Veloria" in obs["lead"][1]["content"]
    check_infos(obs, infos, {"lead": expected_info("lead", needs_action=True, status="running",
                                                   turns=0, tools={"delegate": 0})})

    # 1. the lead delegates two subtasks: two fresh subagents appear in the same step
    subtasks = ["Find every river of Veloria.", "Find the length and mouth of Amberflow, "
                "Brightwater and Coldrun."]
    obs, rew, term, trunc, infos = env.step({"lead": call("delegate", "subtasks", subtasks)})
    assert env.agents == ["lead", "sub_0", "sub_1"]
    assert rew == {"lead": 0.0, "sub_0": 0.0, "sub_1": 0.0}
    assert not any(term.values()) and not any(trunc.values())
    assert [m["content"] for m in obs["sub_1"][1:]] == [subtasks[1]]
    sub = {"search": 0, "access": 0}
    check_infos(obs, infos, {
        "lead": expected_info("lead", needs_action=False, status="blocked", turns=1,
                              tools={"delegate": 1}),
        "sub_0": expected_info("subagent", needs_action=True, status="running", turns=0,
                               tools=sub, delegation=0),
        "sub_1": expected_info("subagent", needs_action=True, status="running", turns=0,
                               tools=sub, delegation=0),
    })

    # 2. both subagents search; the blocked lead's action is ignored; one batched backend call
    obs, rew, term, trunc, infos = env.step({
        "lead": "ignored while blocked",
        "sub_0": call("search", "queries", ["rivers of Veloria"]),
        "sub_1": call("search", "queries", ["Amberflow river", "Brightwater river", "Coldrun"]),
    })
    assert backend.search_calls == [["rivers of Veloria", "Amberflow river", "Brightwater river",
                                     "Coldrun"]]
    assert len(obs["lead"]) == 3  # system, user, its delegate call: nothing added
    assert obs["sub_0"][-1]["role"] == "tool" and obs["sub_0"][-1]["name"] == "search"
    assert "https://toy.wiki/list/rivers-of-veloria" in obs["sub_0"][-1]["content"]
    one_search = {"search": 1, "access": 0}
    check_infos(obs, infos, {
        "lead": expected_info("lead", needs_action=False, status="blocked", turns=1,
                              tools={"delegate": 1}),
        "sub_0": expected_info("subagent", needs_action=True, status="running", turns=1,
                               tools=one_search, delegation=0),
        "sub_1": expected_info("subagent", needs_action=True, status="running", turns=1,
                               tools=one_search, delegation=0),
    })

    # 3. both read pages
    river_urls = [f"https://toy.wiki/river/{n}" for n in ("amberflow", "brightwater", "coldrun")]
    obs, rew, term, trunc, infos = env.step({
        "sub_0": call("access", "urls", ["https://toy.wiki/list/rivers-of-veloria"]),
        "sub_1": call("access", "urls", river_urls),
    })
    assert backend.access_calls == ["https://toy.wiki/list/rivers-of-veloria", *river_urls]
    assert "412 km long" in obs["sub_1"][-1]["content"]
    both = {"search": 1, "access": 1}
    check_infos(obs, infos, {
        "lead": expected_info("lead", needs_action=False, status="blocked", turns=1,
                              tools={"delegate": 1}),
        "sub_0": expected_info("subagent", needs_action=True, status="running", turns=2,
                               tools=both, delegation=0),
        "sub_1": expected_info("subagent", needs_action=True, status="running", turns=2,
                               tools=both, delegation=0),
    })

    # 4. both report; the lead gets one tool message with both results and acts again
    obs, rew, term, trunc, infos = env.step({
        "sub_0": "<think>easy</think>The rivers of Veloria are Amberflow, Brightwater and Coldrun.",
        "sub_1": "Amberflow: 412 km, into the Gulf of Tessar. Brightwater: 288 km, into Lake Orun. "
                 "Coldrun: 157 km, into the Amberflow.",
    })
    assert env.agents == ["lead"]
    assert term == {"lead": False, "sub_0": True, "sub_1": True}
    assert trunc == {"lead": False, "sub_0": False, "sub_1": False}
    report = obs["lead"][-1]
    assert report["role"] == "tool" and report["name"] == "delegate"
    assert "easy" not in report["content"]  # thinking is not passed between agents
    for fragment in ("sub_0", "sub_1", subtasks[0], "Amberflow, Brightwater and Coldrun.",
                     "Coldrun: 157 km", "finished after 3 turn(s)"):
        assert fragment in report["content"]
    check_infos(obs, infos, {
        "lead": expected_info("lead", needs_action=True, status="running", turns=1,
                              tools={"delegate": 1}),
        "sub_0": expected_info("subagent", needs_action=False, status="done", turns=3,
                               tools=both, end_reason="final", delegation=0),
        "sub_1": expected_info("subagent", needs_action=False, status="done", turns=3,
                               tools=both, end_reason="final", delegation=0),
    })

    # 5. the lead answers: the episode ends, the score is paid to the lead
    answer = "<think>all found</think>\n" + VELORIA_TABLE
    obs, rew, term, trunc, infos = env.step({"lead": answer})
    assert env.agents == []
    assert rew == {"lead": 1.0} and term == {"lead": True} and trunc == {"lead": False}
    final = expected_info("lead", needs_action=False, status="done", turns=2,
                          tools={"delegate": 1}, end_reason="final")
    final.update(item_f1=1.0, item_precision=1.0, item_recall=1.0, row_f1=1.0,
                 row_precision=1.0, row_recall=1.0, success=True,
                 parse_ok=True, reward=1.0, kind="table", task_id="toy-rivers-veloria", episode_end="answer",
                 subagents_used=2, total_turns=8, critical_path_turns=5, total_format_errors=0,
                 access_calls=2, max_response_tokens=approx_token_count(answer))  # the longest reply
    check_infos(obs, infos, {"lead": final})
    assert infos["lead"]["score"]["item_f1"] == 1.0
    with pytest.raises(RuntimeError, match="episode ended"):
        env.step({"lead": "again"})


def test_observations_are_append_only_and_read_only() -> None:
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend())
    obs0, _ = env.reset(seed=1)
    first = obs0["lead"]
    obs1, *_ = env.step({"lead": call("delegate", "subtasks", ["a", "b"])})
    sub_before = obs1["sub_0"]
    obs2, *_ = env.step({"sub_0": call("search", "queries", ["Duskmere"]), "sub_1": "done"})
    assert obs1["lead"][: len(first)] == first and obs1["lead"] is not first
    assert obs2["sub_0"][: len(sub_before)] == sub_before and len(obs2["sub_0"]) == 4
    with pytest.raises(TypeError, match="read-only"):
        obs2["sub_0"][0]["content"] = "tampered"
    obs2["sub_0"].append({"role": "user", "content": "my own list, my business"})
    obs3, *_ = env.step({"sub_0": "report"})
    assert [m["role"] for m in obs3["sub_0"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert env.tool_schemas("sub_0") == env.tool_schemas("subagent")
    assert [t["function"]["name"] for t in env.tool_schemas("lead")] == ["delegate"]
    assert env.observation_space("sub_0").contains(obs3["sub_0"])


def test_concurrent_page_reads_change_nothing() -> None:
    def run(workers: int) -> list:
        env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), tool_workers=workers)
        env.reset(seed=2)
        env.step({"lead": call("delegate", "subtasks", ["x", "y", "z"])})
        urls = [d.url for d in toy_documents()] + ["https://toy.wiki/missing"]
        obs, *_ = env.step({"sub_0": call("access", "urls", urls[:5]),
                            "sub_1": call("access", "urls", urls[3:]),
                            "sub_2": call("search", "queries", ["Emberlyn"])})
        env.close()
        return [obs[a] for a in ("sub_0", "sub_1", "sub_2")]

    inline, threaded = run(0), run(4)
    assert inline == threaded
    assert "page not found" in inline[1][-1]["content"]


def test_chinese_task_gets_chinese_prompts_and_labels() -> None:
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend())
    obs, _ = env.reset(options={"task_id": "toy-rivers-kestland-zh"})
    assert "主智能体" in obs["lead"][0]["content"]
    obs, *_ = env.step({"lead": call("delegate", "subtasks", ["找出 Kestland 的河流"])})
    assert "子智能体" in obs["sub_0"][0]["content"]
    obs, *_ = env.step({"sub_0": "Duskmere, Emberlyn"})
    assert "子任务 1" in obs["lead"][-1]["content"]


def test_render_is_a_tree() -> None:
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), render_mode="ansi")
    env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    env.step({"lead": call("delegate", "subtasks", ["rivers", "lengths"])})
    env.step({"sub_0": call("search", "queries", ["Veloria"]), "sub_1": "no idea"})
    env.step({"sub_0": "Amberflow, Brightwater, Coldrun"})
    env.step({"lead": VELORIA_TABLE})
    lines = env.render().splitlines()
    lead_at = next(i for i, line in enumerate(lines) if line.startswith("lead ["))
    sub0_at = next(i for i, line in enumerate(lines) if line.startswith("    sub_0 ["))
    result_at = next(i for i, line in enumerate(lines) if "← delegate" in line)
    assert lead_at < sub0_at < result_at
    assert any(line.startswith("      ← search: Results for") for line in lines)
    assert lines[-1].startswith("end: answer; reward 1.000")


def test_token_counter_is_pluggable() -> None:
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), token_counter=len)
    obs, infos = env.reset(seed=0)
    assert infos["lead"]["context_tokens"] == sum(len(m["content"]) + 4 for m in obs["lead"])


def test_registry_and_presets() -> None:
    kwargs = {"tasks": toy_tasks(), "backend": toy_backend()}
    for width in (1, 2, 4, 8, 10, 16):
        env = pettingzoo.make("parallel", f"wideseek/WideSeek-w{width}-v0", **kwargs)
        assert isinstance(env, WideSeekEnv) and env.config.width == width
        assert len(env.possible_agents) == 1 + width * 9
    lead_search = wideseek_env.make("wideseek/WideSeek-LeadSearch-v0", **kwargs)
    assert [t["function"]["name"] for t in lead_search.tool_schemas("lead")] == [
        "delegate", "search", "access"]
    env = wideseek_env.parallel_env(width=3, max_subagents=5, **kwargs)
    assert env.possible_agents == ["lead", "sub_0", "sub_1", "sub_2", "sub_3", "sub_4"]


class SynonymJudge:
    """A deterministic judge (the scorer's ``Judge`` protocol): equal up to known synonyms."""

    SYNONYMS: ClassVar[dict[str, str]] = {"nsea": "northernsea"}

    def __init__(self) -> None:
        self.columns_judged = 0

    def _same(self, a: str, b: str) -> bool:
        a, b = re.sub(r"\W", "", a.lower()), re.sub(r"\W", "", b.lower())
        return self.SYNONYMS.get(a, a) == self.SYNONYMS.get(b, b)

    def judge_column(self, criterion: str, responses: Sequence[str], targets: Sequence[str]) -> list[float]:
        self.columns_judged += 1
        return [float(self._same(r, t)) for r, t in zip(responses, targets)]

    def align(self, values: Sequence[str], reference: Sequence[str]) -> dict[str, str]:
        return {v: r for v in values for r in reference if self._same(v, r)}


def test_judge_is_passed_to_the_scorer() -> None:
    base = next(t for t in toy_tasks() if t.instance_id == "toy-rivers-kestland")
    pipeline = dict(base.eval_pipeline)
    pipeline["mouth"] = ColumnEval(metric=("llm_judge",), criterion="Same body of water.")
    task = replace(base, eval_pipeline=pipeline)
    answer = ("```markdown\n| River | Length km | Mouth |\n| --- | --- | --- |\n"
              "| Duskmere | 630 | N. Sea |\n| Emberlyn | 94 | Duskmere |\n```")
    f1 = {}
    for name, judge in (("none", None), ("judge", SynonymJudge())):
        env = WideSeekEnv(tasks=[task], backend=toy_backend(), judge=judge)
        env.reset(seed=0)
        *_, infos = env.step({"lead": answer})
        f1[name] = infos["lead"]["item_f1"]
        if judge is not None:
            assert judge.columns_judged >= 1
    assert f1["judge"] == 1.0 and f1["none"] < 1.0
