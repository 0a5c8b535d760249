"""Rollouts: G episodes per task on any PettingZoo ParallelEnv, batched into one `act` per step.

The driver only uses the ParallelEnv API and the text conventions of DESIGN.md §2.1:

- `reset(seed, options)`; `options` are the task's reset options (e.g. `{"task_id": ...}`);
- every live agent whose `infos[agent]["needs_action"]` is true acts (an env without that key is
  treated as "every live agent acts", PettingZoo's default); only those agents get an action;
- `infos[agent]["role"]` names the role; an optional `env.tool_schemas(agent)` gives the tool
  schemas the policy passes to its chat template (none otherwise, and none when the env says
  `tools_in_prompt`: its system prompts list them already, and they must appear once);
- the episode score is the total reward of `reward_agent` ("lead"), or of all agents when None;
- an agent failed when its last infos say `status == "failed"` (the reason is its
  `end_reason`, "context" for a context overflow) or carry a truthy `failed`.

Which turns are trained, and with which reward, is `wideseek_rl.credit`'s rule (`turn_selection`),
applied to every finished episode. A generated turn after which the env's
`infos[agent]["format_errors"]` went up is marked `Turn.format_error` (an env without that key
marks none).

All episodes of a step (every task × G) run side by side; at each env step the agents that need
an action in every live episode go to the policy in one `act` call, so the engine batches them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from wideseek_env.policies.base import AgentRequest
from wideseek_rl.credit import TurnSelection, assign_credit
from wideseek_rl.policy import LLMPolicy
from wideseek_rl.records import AgentTrace, Episode, Turn


def episode_seed(seed: int, step: int, task_index: int, group: int) -> int:
    """A well-mixed 31-bit seed for one episode, stable across runs and world sizes."""
    return int(np.random.SeedSequence([seed, step, task_index, group]).generate_state(1)[0] >> 1)


def agent_failure(info: Mapping[str, Any]) -> str | None:
    """Why the env failed an agent, from its last infos (None when it did not fail)."""
    if info.get("status") == "failed":
        return str(info.get("end_reason") or "failed")
    failed = info.get("failed")
    return str(failed) if failed else None


def task_id_of(options: Mapping[str, Any], index: int) -> str:
    return str(options.get("task_id", options.get("task_index", index)))


class _Slot:
    """Bookkeeping of one running episode (internal)."""

    def __init__(self, env: Any, task_index: int, group: int, seed: int):
        self.env = env
        self.task_index = task_index
        self.group = group
        self.seed = seed
        self.obs: dict[str, Any] = {}
        self.infos: dict[str, dict[str, Any]] = {}
        self.roles: dict[str, str] = {}
        self.format_errors: dict[str, list[bool]] = {}
        """Per agent, one flag per generated turn: did the env count it as a format error."""
        self.score = 0.0
        self.steps = 0
        self.done = False


class RolloutRunner:
    """Runs groups of episodes with an `LLMPolicy` on envs made by `make_env` (a pool, reused)."""

    def __init__(
        self,
        make_env: Callable[[], Any],
        policy: LLMPolicy,
        *,
        reward_agent: str | None = "lead",
        turn_selection: TurnSelection = "all",
        keep_format_errors: bool = False,
        max_env_steps: int = 10_000,
        progress: bool = False,
    ):
        if turn_selection == "paper" and reward_agent is None:
            raise ValueError("turn_selection='paper' needs a lead: set reward_agent")
        self.make_env = make_env
        self.policy = policy
        self.reward_agent = reward_agent
        self.turn_selection = turn_selection
        self.keep_format_errors = keep_format_errors
        self.max_env_steps = max_env_steps
        self.progress = progress
        self._pool: list[Any] = []

    def run(
        self,
        tasks: Sequence[Mapping[str, Any]],
        group_size: int,
        *,
        seed: int,
        step: int = 0,
        task_indices: Sequence[int] | None = None,
    ) -> list[Episode]:
        """`group_size` episodes of every task (reset options); returns them task-major.

        `task_indices` are the tasks' positions in the whole step (over all ranks); with `seed`
        and `step` they fix every env seed, so a task gets the same episodes on any rank."""
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        indices = list(range(len(tasks))) if task_indices is None else list(task_indices)
        if len(indices) != len(tasks):
            raise ValueError(f"{len(tasks)} tasks but {len(indices)} task indices")
        n = len(tasks) * group_size
        while len(self._pool) < n:
            self._pool.append(self.make_env())
        slots = []
        for t, options in enumerate(tasks):
            for g in range(group_size):
                slot = _Slot(self._pool[len(slots)], t, g,
                             episode_seed(seed, step, indices[t], g))
                obs, infos = slot.env.reset(seed=slot.seed, options=dict(options))
                self._observe(slot, obs, infos)
                slots.append(slot)
        episodes: list[Episode | None] = [None] * n
        bar = tqdm(total=n, desc="rollout", unit="ep", disable=not self.progress, leave=False)
        try:
            live = [i for i, s in enumerate(slots) if not self._check_done(s)]
            for i in set(range(n)) - set(live):
                episodes[i] = self._finish(slots[i], i, tasks, indices)
            generated = 0
            while live:
                generated += self._step_all(slots, live)
                bar.set_postfix(live=len(live), generated_tokens=generated)
                still = []
                for i in live:
                    if self._check_done(slots[i]):
                        episodes[i] = self._finish(slots[i], i, tasks, indices)
                        bar.update(1)
                    else:
                        still.append(i)
                live = still
        except BaseException:
            self.policy.reset()
            raise
        finally:
            bar.close()
        return [e for e in episodes if e is not None]

    def _step_all(self, slots: list[_Slot], live: list[int]) -> int:
        """One env step of every live episode; returns the tokens generated for it."""
        requests = []
        for i in live:
            slot = slots[i]
            acting = [a for a in slot.env.agents if slot.infos.get(a, {}).get("needs_action", True)]
            if not acting:
                raise RuntimeError(
                    f"episode {i}: no live agent needs an action but the episode is not over "
                    f"(agents: {list(slot.env.agents)})"
                )
            tool_schemas = getattr(slot.env, "tool_schemas", None)
            if getattr(slot.env, "tools_in_prompt", False):
                tool_schemas = None  # already in the system prompt: shown once
            for agent in acting:
                requests.append(AgentRequest(
                    key=(i, agent),
                    role=slot.roles.get(agent, "agent"),
                    messages=slot.obs[agent],
                    tools=tool_schemas(agent) if tool_schemas is not None else (),
                    info={"agent_id": agent},
                ))
        actions: dict[int, dict[str, Any]] = {}
        made_turn: dict[int, list[str]] = {}  # agents whose action was a generated turn
        generated = 0
        for req, act in zip(requests, self.policy.act(requests)):
            actions.setdefault(req.key[0], {})[req.key[1]] = act.action
            generated += act.completion_tokens or 0
            if act.completion_tokens:
                made_turn.setdefault(req.key[0], []).append(req.key[1])
        for i, acts in actions.items():
            slot = slots[i]
            before = {a: slot.infos.get(a, {}).get("format_errors") for a in made_turn.get(i, ())}
            obs, rewards, _, _, infos = slot.env.step(acts)
            slot.steps += 1
            if slot.steps > self.max_env_steps:
                raise RuntimeError(f"episode {i} exceeded {self.max_env_steps} env steps")
            if self.reward_agent is None:
                slot.score += float(sum(rewards.values()))
            else:
                slot.score += float(rewards.get(self.reward_agent, 0.0))
            self._observe(slot, obs, infos)
            for agent, n in before.items():
                after = slot.infos.get(agent, {}).get("format_errors")
                flag = n is not None and after is not None and after > n
                slot.format_errors.setdefault(agent, []).append(flag)
        return generated

    @staticmethod
    def _observe(slot: _Slot, obs: Mapping[str, Any], infos: Mapping[str, Any]) -> None:
        slot.obs.update(obs)
        for agent, info in infos.items():
            slot.infos[agent] = dict(info)
            if "role" in info:
                slot.roles[agent] = str(info["role"])

    @staticmethod
    def _check_done(slot: _Slot) -> bool:
        slot.done = not slot.env.agents
        return slot.done

    def _finish(self, slot: _Slot, i: int, tasks: Sequence[Mapping[str, Any]],
                indices: Sequence[int]) -> Episode:
        traces = []
        for agent in slot.infos:
            turns = self._mark_format_errors(
                self.policy.take_turns((i, agent)), slot.format_errors.get(agent, []), agent)
            failure = agent_failure(slot.infos[agent])
            if turns or failure:
                traces.append(AgentTrace(agent, slot.roles.get(agent, "agent"), turns, failure))
        final = slot.infos.get(self.reward_agent, {}) if self.reward_agent else {}
        episode = Episode(
            task_id=task_id_of(tasks[slot.task_index], slot.task_index),
            task_index=indices[slot.task_index],
            group=slot.group,
            seed=slot.seed,
            score=slot.score,
            agents=tuple(traces),
            final_info=final,
            env_steps=slot.steps,
        )
        return assign_credit(episode, self.turn_selection, lead=self.reward_agent or "lead",
                             keep_format_errors=self.keep_format_errors)

    @staticmethod
    def _mark_format_errors(turns: tuple[Turn, ...], flags: Sequence[bool],
                            agent: str) -> tuple[Turn, ...]:
        """`turns` with `format_error` set from the env's count, one flag per generated turn."""
        if not any(flags):
            return turns
        if len(flags) != len(turns):
            raise RuntimeError(f"agent {agent}: {len(turns)} recorded turns but {len(flags)} "
                               "generated actions; the policy and the rollout disagree")
        return tuple(replace(t, format_error=f) if f else t for t, f in zip(turns, flags))
