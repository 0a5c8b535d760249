"""Env throughput: agent-steps per second and the env's own overhead per agent-step.

A scripted policy plays full WideSeekEnv episodes at widths 1-16: the lead delegates ``width``
subtasks; every subagent searches, reads pages and reports; the lead delegates a second round and
then answers with a table, which is scored. Completions are prepared before the clock starts, so
the policy costs nothing; the backend's time is measured separately and subtracted, so the
overhead is what the env itself adds per agent-step (parsing, validation, transcript, context
counting, infos, observations, delivering reports, scoring). Target: <= 100 us per agent-step.

Pages are synthetic (``page_chars`` characters, in the size range of real cut pages) and served
from memory, so the measurement does not depend on a search index.

    python benchmarks/env_throughput.py                      # all widths, results in benchmarks/results/
    python benchmarks/env_throughput.py --widths 4 --episodes 50
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tyro
from tqdm import tqdm

from wideseek_env.env.parallel import WideSeekEnv
from wideseek_env.env.protocol import format_tool_call
from wideseek_env.env.toy import Document, InMemoryBackend, toy_tasks
from wideseek_env.search.base import Hit, Page

RESULTS = Path(__file__).parent / "results"


@dataclass
class Args:
    widths: tuple[int, ...] = (1, 2, 4, 8, 10, 16)
    """Widths N to measure (subagents per delegate call)."""
    episodes: int = 30
    """Episodes per width."""
    rounds: int = 2
    """Delegate calls per episode."""
    pages: int = 200
    """Synthetic pages in the in-memory corpus."""
    page_chars: int = 8_000
    """Characters per page (pages are cut at 25,000 by default, like the paper's access tool)."""
    seed: int = 0
    """Seed of the env resets."""
    out: Path = field(default_factory=lambda: RESULTS / "env_throughput")
    """Output path stem (``.json`` and ``.md`` are written)."""


class TimedBackend(InMemoryBackend):
    """The in-memory backend, adding up the time spent inside it."""

    def __init__(self, documents: Sequence[Document]) -> None:
        super().__init__(documents)
        self.seconds = 0.0

    def search(self, queries: Sequence[str], k: int = 3) -> list[list[Hit]]:
        t0 = time.perf_counter()
        try:
            return super().search(queries, k)
        finally:
            self.seconds += time.perf_counter() - t0

    def access(self, url: str, *, offset: int = 0, max_chars: int = 25_000) -> Page:
        t0 = time.perf_counter()
        try:
            return super().access(url, offset=offset, max_chars=max_chars)
        finally:
            self.seconds += time.perf_counter() - t0


def corpus(n: int, chars: int) -> list[Document]:
    words = ("river", "length", "mouth", "valley", "bridge", "north", "delta", "source", "basin")
    docs = []
    for i in range(n):
        body = " ".join(words[(i + j) % len(words)] for j in range(chars // 6))
        docs.append(Document(f"https://bench.wiki/page/{i}", f"Page {i}", body[:chars]))
    return docs


def script(width: int, rounds: int, n_pages: int) -> tuple[list[str], dict[str, list[str]]]:
    """Completions of the lead and of every subagent (think + text + one tool call, as LLMs write)."""
    lead = [
        f"<think>Split the table into {width} parts.</think>Delegating round {r}.\n"
        + format_tool_call("delegate", {"subtasks": [f"Find rows of part {i} (round {r})."
                                                     for i in range(width)]})
        for r in range(rounds)
    ]
    lead.append("<think>Done.</think>\n```markdown\n| River | Length km | Mouth |\n| --- | --- | --- |\n"
                "| Duskmere | 630 | Northern Sea |\n| Emberlyn | 94 | Duskmere |\n```")
    subs = {}
    for s in range(width * rounds):
        urls = [f"https://bench.wiki/page/{(s * 3 + j) % n_pages}" for j in range(2)]
        subs[f"sub_{s}"] = [
            "<think>Search first.</think>\n" + format_tool_call(
                "search", {"queries": [f"river part {s}", "river mouth length"]}),
            "<think>Read the best two.</think>\n" + format_tool_call("access", {"urls": urls}),
            f"<think>Report.</think>Part {s}: Duskmere, 630 km, Northern Sea; Emberlyn, 94 km.",
        ]
    return lead, subs


def measure(args: Args, width: int) -> dict[str, float]:
    backend = TimedBackend(corpus(args.pages, args.page_chars))
    env = WideSeekEnv(tasks=toy_tasks(), backend=backend, width=width)
    lead_script, sub_script = script(width, args.rounds, args.pages)
    agent_steps, env_steps, step_s, reset_s = 0, 0, 0.0, 0.0
    for episode in range(args.episodes):
        t0 = time.perf_counter()
        env.reset(seed=args.seed + episode, options={"task_id": "toy-rivers-kestland"})
        reset_s += time.perf_counter() - t0
        turn = {a: 0 for a in env.possible_agents}
        infos = {"lead": {"needs_action": True}}
        while env.agents:
            actions = {}
            for agent in env.agents:
                if agent == "lead" and not infos.get("lead", {"needs_action": False})["needs_action"]:
                    continue
                script_of = lead_script if agent == "lead" else sub_script[agent]
                actions[agent] = script_of[turn[agent]]
                turn[agent] += 1
            t0 = time.perf_counter()
            _, _, _, _, infos = env.step(actions)
            step_s += time.perf_counter() - t0
            agent_steps += len(actions)
            env_steps += 1
        final = infos["lead"]
        assert final["episode_end"] == "answer" and final["subagents_used"] == width * args.rounds
    env_s = step_s - backend.seconds
    return {
        "width": width,
        "episodes": args.episodes,
        "agent_steps": agent_steps,
        "env_steps": env_steps,
        "agent_steps_per_s": agent_steps / step_s,
        "overhead_us_per_agent_step": 1e6 * env_s / agent_steps,
        "backend_us_per_agent_step": 1e6 * backend.seconds / agent_steps,
        "reset_us": 1e6 * reset_s / args.episodes,
    }


def main(args: Args) -> None:
    import gymnasium
    import pettingzoo

    rows = [measure(args, w) for w in tqdm(args.widths, desc="widths")]
    meta = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "pettingzoo": pettingzoo.__version__,
        "gymnasium": gymnasium.__version__,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(args).items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    lines = [
        "# Env throughput (scripted policy, in-memory pages)", "",
        f"`{meta['command']}` on {meta['machine']}, Python {meta['python']}, PettingZoo "
        f"{meta['pettingzoo']}, Gymnasium {meta['gymnasium']}; {args.episodes} episodes per width, "
        f"{args.rounds} delegate rounds, pages of {args.page_chars} characters.", "",
        "| width | agent-steps | agent-steps/s | env overhead (us/agent-step) | backend (us/agent-step) | reset (us) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['width']} | {r['agent_steps']} | {r['agent_steps_per_s']:,.0f} | "
                     f"{r['overhead_us_per_agent_step']:.1f} | {r['backend_us_per_agent_step']:.1f} | "
                     f"{r['reset_us']:.1f} |")
    text = "\n".join(lines) + "\n"
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main(tyro.cli(Args))
