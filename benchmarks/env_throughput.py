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

import gc
import json
import os
import platform
import statistics
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
    episodes: int = 60
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
    """The in-memory backend, adding up the wall-clock and CPU time spent inside it."""

    def __init__(self, documents: Sequence[Document]) -> None:
        super().__init__(documents)
        self.wall_s = self.cpu_s = 0.0

    def search(self, queries: Sequence[str], k: int = 3) -> list[list[Hit]]:
        w0, c0 = time.perf_counter(), time.thread_time()
        try:
            return super().search(queries, k)
        finally:
            self.wall_s += time.perf_counter() - w0
            self.cpu_s += time.thread_time() - c0

    def access(self, url: str, *, offset: int = 0, max_chars: int = 25_000) -> Page:
        w0, c0 = time.perf_counter(), time.thread_time()
        try:
            return super().access(url, offset=offset, max_chars=max_chars)
        finally:
            self.wall_s += time.perf_counter() - w0
            self.cpu_s += time.thread_time() - c0


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


def play_episode(env: WideSeekEnv, backend: TimedBackend, seed: int, lead_script: list[str],
                 sub_script: dict[str, list[str]]) -> dict[str, float]:
    """One scripted episode; its agent-steps and timings (thread CPU time, and wall-clock)."""
    backend.wall_s = backend.cpu_s = 0.0
    c0 = time.thread_time()
    env.reset(seed=seed, options={"task_id": "toy-rivers-kestland"})
    t = {"reset_cpu": time.thread_time() - c0, "cpu": 0.0, "wall": 0.0, "score_cpu": 0.0,
         "agent_steps": 0}
    turn = dict.fromkeys(env.possible_agents, 0)
    needs = {"lead": True}
    while env.agents:
        actions = {}
        for agent in env.agents:
            if needs.get(agent, True):
                actions[agent] = (lead_script if agent == "lead" else sub_script[agent])[turn[agent]]
                turn[agent] += 1
        w0, c0 = time.perf_counter(), time.thread_time()
        _, _, _, _, infos = env.step(actions)
        t["wall"] += time.perf_counter() - w0
        dt = time.thread_time() - c0
        t["cpu"] += dt
        if not env.agents:  # the lead's answer: almost all of this step is scoring
            t["score_cpu"] = dt
        t["agent_steps"] += len(actions)
        needs = {a: info["needs_action"] for a, info in infos.items()}
    assert infos["lead"]["episode_end"] == "answer"
    t["env_cpu"] = t["cpu"] - backend.cpu_s
    t["env_wall"] = t["wall"] - backend.wall_s
    t["backend_cpu"] = backend.cpu_s
    return t


def measure(args: Args, width: int) -> dict[str, float]:
    """Play ``args.episodes`` scripted episodes (after one warm-up) and time every step.

    Overheads use the thread's CPU time (pages are read inline, on this thread), which a busy
    machine inflates less than wall-clock time, and are medians over episodes, so a stall caused
    by another process does not decide the result; throughput uses total wall-clock time.
    """
    backend = TimedBackend(corpus(args.pages, args.page_chars))
    env = WideSeekEnv(tasks=toy_tasks(), backend=backend, width=width)
    lead_script, sub_script = script(width, args.rounds, args.pages)
    play_episode(env, backend, args.seed, lead_script, sub_script)  # warm-up: imports the scorer
    gc.collect()  # do not bill the env for collecting the previous width's garbage
    runs = [play_episode(env, backend, args.seed + 1 + e, lead_script, sub_script)
            for e in range(args.episodes)]
    steps = runs[0]["agent_steps"]

    def per_step_us(key: str) -> float:
        return 1e6 * statistics.median(r[key] for r in runs) / steps

    return {
        "width": width,
        "episodes": args.episodes,
        "agent_steps_per_episode": steps,
        "agent_steps_per_s": sum(r["agent_steps"] for r in runs) / sum(r["wall"] for r in runs),
        "overhead_us_per_agent_step": per_step_us("env_cpu"),
        "overhead_without_scoring_us_per_agent_step": 1e6 * statistics.median(
            r["env_cpu"] - r["score_cpu"] for r in runs) / steps,
        "scoring_us_per_episode": 1e6 * statistics.median(r["score_cpu"] for r in runs),
        "backend_us_per_agent_step": per_step_us("backend_cpu"),
        "overhead_wall_us_per_agent_step": per_step_us("env_wall"),
        "reset_us": 1e6 * statistics.median(r["reset_cpu"] for r in runs),
    }


def cpu_model() -> str:
    """The CPU's model name (Linux), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    except OSError:
        pass
    return platform.machine()


def main(args: Args) -> None:
    import gymnasium
    import pettingzoo

    rows = [measure(args, w) for w in tqdm(args.widths, desc="widths")]
    meta = {
        "command": " ".join(["python", *sys.argv]),
        "machine": cpu_model(),
        "cpus": os.cpu_count(),
        "load_average": "/".join(f"{x:.1f}" for x in os.getloadavg()),
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
        "| width | agent-steps/episode | agent-steps/s (wall) | env overhead (us CPU/agent-step) | "
        "... without the final scoring step | scoring (us CPU/episode) | backend (us CPU/agent-step) "
        "| env overhead (us wall/agent-step) | reset (us CPU) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['width']} | {r['agent_steps_per_episode']} | {r['agent_steps_per_s']:,.0f} | "
                     f"{r['overhead_us_per_agent_step']:.1f} | "
                     f"{r['overhead_without_scoring_us_per_agent_step']:.1f} | "
                     f"{r['scoring_us_per_episode']:.0f} | {r['backend_us_per_agent_step']:.1f} | "
                     f"{r['overhead_wall_us_per_agent_step']:.1f} | {r['reset_us']:.1f} |")
    lines += ["", "Env overhead = time in `env.step` minus time inside the backend, per agent action "
              "(median over episodes of the thread's CPU time; wall-clock alongside); it includes the end-of-episode "
              "scoring, also shown on its own. One warm-up episode per width is not counted. "
              f"Load average during the run: {meta['load_average']} on {meta['cpus']} CPUs "
              "(other jobs share the machine, which inflates the wall-clock columns)."]
    text = "\n".join(lines) + "\n"
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main(tyro.cli(Args))
