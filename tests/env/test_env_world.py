"""WideSeekEnv on a real (small) built world: the on-disk index answers through the env, the
scorer scores a real task, and ``world=None`` resolves to the cached default world."""

from __future__ import annotations

from pathlib import Path

import pettingzoo
import pytest

import wideseek_env  # noqa: F401  (registers the presets)
from wideseek_env.env.parallel import WideSeekEnv
from wideseek_env.env.single_agent import WideSeekSingleAgentEnv
from wideseek_env.scoring.extract import render_markdown_table
from wideseek_env.search.http import HttpSearchBackend
from wideseek_env.search.server import SearchServer
from wideseek_env.worlds import World, build_small_world, default_world_path


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_world(tmp_path_factory.mktemp("world") / "small")


def test_episode_on_a_built_world(small_world: Path) -> None:
    env = WideSeekEnv(world=small_world, split="train", width=16)
    task = env.tasks[0]
    obs, _ = env.reset(options={"task": task})
    assert obs["lead"][1]["content"] == task.query
    entities = [row[0] for row in task.gold.rows][:16]
    env.step({"lead": {"name": "delegate", "arguments": {
        "subtasks": [f"Find {e}: {', '.join(task.gold.columns[1:])}." for e in entities]}}})
    obs, *_ = env.step({f"sub_{i}": {"name": "search", "arguments": {"queries": [e]}}
                        for i, e in enumerate(entities)})
    urls = {}
    for i, entity in enumerate(entities):
        result = obs[f"sub_{i}"][-1]["content"]
        assert result.startswith(f'Results for "{entity}":')
        urls[i] = result.split("URL: ", 1)[1].split("\n", 1)[0]
    obs, *_ = env.step({f"sub_{i}": {"name": "access", "arguments": {"urls": [urls[i]]}}
                        for i in range(len(entities))})
    for i, row in enumerate(task.gold.rows[: len(entities)]):
        page = obs[f"sub_{i}"][-1]["content"]
        assert f"Page: {row[0]}" in page  # the top hit for an entity's name is its own page
    *_, infos = env.step({f"sub_{i}": f"Facts for {e} are on {urls[i]}." for i, e in
                          enumerate(entities)})
    assert infos["lead"]["needs_action"]
    answer = render_markdown_table(list(task.gold.columns), [list(r) for r in task.gold.rows])
    _, rewards, terms, _, infos = env.step({"lead": answer})
    assert terms == {"lead": True} and rewards["lead"] == 1.0
    assert infos["lead"]["item_f1"] == 1.0 and infos["lead"]["subagents_used"] == len(entities)
    assert infos["lead"]["critical_path_turns"] == 2 + 3


def test_single_agent_on_a_built_world(small_world: Path) -> None:
    world = World.load(small_world)
    env = WideSeekSingleAgentEnv(world=world, split="test")
    obs, info = env.reset(seed=0)
    assert env.task in world.tasks("test")
    entity = env.task.gold.rows[0][0]
    obs, *_ = env.step({"name": "search", "arguments": {"queries": [entity]}})
    assert entity in obs[-1]["content"]
    half = render_markdown_table(list(env.task.gold.columns),
                                 [list(r) for r in env.task.gold.rows[: len(env.task.gold.rows) // 2]])
    _, reward, terminated, _, info = env.step(half)
    assert terminated and 0.0 < reward < 1.0 and reward == info["item_f1"]


def test_no_arguments_means_the_cached_default_world(small_world: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Building the full default world is the worlds tests' business; here a small world stands in
    # for it at the cache path, so the no-argument route (default_world() -> World.load) runs.
    default_world_path(tmp_path).symlink_to(small_world, target_is_directory=True)
    monkeypatch.setenv("WIDESEEK_CACHE", str(tmp_path))
    env = pettingzoo.make("parallel", "wideseek/WideSeek-v0")
    obs, infos = env.reset(seed=0)
    assert env.task in World.load(small_world).tasks("test")  # the default split
    assert infos["lead"]["role"] == "lead" and obs["lead"][1]["content"] == env.task.query


def test_remote_backend_reads_pages_concurrently_with_the_same_results(small_world: Path) -> None:
    world = World.load(small_world)
    server = SearchServer(world.backend(), "127.0.0.1", 0, request_timeout_s=5.0)
    server.start()
    try:
        def episode(backend) -> tuple[list, WideSeekEnv]:
            env = WideSeekEnv(world=world, backend=backend, width=4)
            task = world.tasks("train")[1]
            env.reset(options={"task": task})
            urls = [*list(task.meta["row_urls"][:8]), "https://world.wideseek.local/missing"]
            env.step({"lead": {"name": "delegate", "arguments": {"subtasks": ["a", "b", "c"]}}})
            obs, *_ = env.step({
                "sub_0": {"name": "access", "arguments": {"urls": urls[:5]}},
                "sub_1": {"name": "access", "arguments": {"urls": urls[4:]}},
                "sub_2": {"name": "search", "arguments": {"queries": [task.gold.rows[0][0], "x"]}},
            })
            return [obs[a] for a in ("sub_0", "sub_1", "sub_2")], env

        remote, env = episode(HttpSearchBackend(server.url, timeout_s=5, retries=0))
        assert env._engine.runner.workers == 16  # remote: pages are read on threads
        local, local_env = episode(world.backend())
        assert local_env._engine.runner.workers == 0
        assert remote == local
        assert "Error:" in remote[1][-1]["content"]  # the missing page, reported to the agent
    finally:
        server.close()
    # a server that went away is the agent's problem (a tool error), not a crash
    obs, _, _, _, infos = env.step({"sub_0": {"name": "search", "arguments": {"queries": ["y"]}},
                                    "sub_1": "report", "sub_2": "report"})
    assert obs["sub_0"][-1]["content"].startswith("Error: search failed")
    assert infos["sub_0"]["tool_errors"] == 1
