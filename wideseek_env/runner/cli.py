"""``wideseek eval``: evaluate a policy on a world's split; also the world/policy options shared
with ``wideseek bench``.

Examples::

    wideseek eval --split test --policy scripted --width 8 --out runs/scripted-w8
    wideseek eval --world worlds/hybridqa --split test --policy openai \\
        --base-url http://gpu0:8000/v1 --base-url http://gpu1:8000/v1 --model Qwen/Qwen3-4B \\
        --width 10 --repeats 4 --out runs/qwen3-4b-w10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from wideseek_env.errors import ConfigError, UserError
from wideseek_env.runner.sources import (
    add_interface_args,
    add_task_args,
    build_reader,
    load_task_source,
)

POLICIES = ("scripted", "openai", "random")
KEY_IN_ARGV = ("{flag} would put the key in the command line, where `ps` and the run's files show "
               "it; put it in an environment variable and pass {env_flag} NAME instead")


class _KeyInArgv(argparse.Action):
    """Refuses ``--api-key VALUE`` with the reason and the flag to use instead."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        parser.error(KEY_IN_ARGV.format(flag=option_string, env_flag=f"{option_string}-env"))


# ------------------------------------------------------------------------------ shared options


def add_world_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("world")
    g.add_argument("--world", default="default",
                   help="a built world folder, 'default' for the embedded default world (tier "
                        "v2) or 'default-easy' for its easy tier (built into the cache on first "
                        "use; see `wideseek world build`)")
    g.add_argument("--split", default="test", help="task split: train or test (default test)")
    g.add_argument("--limit", type=int, default=None,
                   help="use N tasks spread evenly over the split (default: all)")
    g.add_argument("--task-id", action="append", default=None,
                   help="run only this task (repeatable)")
    g.add_argument("--search-url", default=None,
                   help="use a retrieval server instead of the local index: `wideseek serve-search`"
                        " or any Search-R1-style server (base URL, .../retrieve URL or host:port)")
    g.add_argument("--no-search-coalesce", dest="search_coalesce", action="store_false",
                   help="with --search-url: one request per search call, instead of sending the "
                        "searches of concurrent episodes together (docs/search.md)")
    add_task_args(g)


def add_policy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", default="scripted",
                   help="who plays the agents: scripted (default), random, openai, or your own "
                        "as MODULE:FACTORY (a callable returning a Policy; docs/eval.md)")
    p.add_argument("--policy-kwargs", default=None,
                   help="MODULE:FACTORY policies: keyword arguments as a JSON object")
    add_interface_args(p)
    g = p.add_argument_group("scripted / random policy")
    g.add_argument("--entities-per-subtask", type=int, default=2,
                   help="scripted lead: entities per subagent (default 2)")
    g.add_argument("--policy-seed", type=int, default=0,
                   help="random policy and --mistakes: seed (default 0)")
    p.add_argument("--mistakes", type=float, default=0.0, metavar="RATE",
                   help="turn this share of the policy's tool calls into deliberate mistakes "
                        "(broken JSON, a wrong argument, two calls, too many subtasks) that it "
                        "recovers from on its next turn, never on an agent's last turn: traces "
                        "that teach a model to recover (docs/training.md; default 0)")
    o = p.add_argument_group("openai policy (any OpenAI-compatible /v1/chat/completions server)")
    o.add_argument("--base-url", action="append", default=None,
                   help="server root such as http://host:8000/v1; repeat (or comma-separate) to "
                        "spread requests round-robin over several servers")
    o.add_argument("--model", default=None, help="model name at the server")
    o.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="NAME",
                   help="environment variable holding the bearer token, if the server needs one "
                        "(default OPENAI_API_KEY); keys never go in the command line or any file")
    o.add_argument("--api-key", action=_KeyInArgv, help=argparse.SUPPRESS)
    o.add_argument("--tool-mode", choices=("native", "text"), default="native",
                   help="native: tools/tool_calls (vLLM: --enable-auto-tool-choice "
                        "--tool-call-parser hermes); text: <tool_call> text protocol")
    o.add_argument("--temperature", type=float, default=0.7)
    o.add_argument("--top-p", type=float, default=1.0)
    o.add_argument("--max-tokens", type=int, default=2048,
                   help="completion tokens per turn (sent as max_completion_tokens)")
    o.add_argument("--timeout-s", type=float, default=600.0, help="per request")
    o.add_argument("--max-retries", type=int, default=5)
    o.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    o.add_argument("--extra-body", default=None,
                   help='JSON merged into every request, e.g. \'{"chat_template_kwargs": '
                        '{"enable_thinking": false}}\'')
    j = p.add_argument_group("judge for llm_judge columns (optional; else exact match)")
    j.add_argument("--judge-url", default=None, help="OpenAI-compatible endpoint")
    j.add_argument("--judge-model", default=None)
    j.add_argument("--judge-api-key-env", default="OPENAI_API_KEY", metavar="NAME",
                   help="environment variable holding the judge's bearer token (default "
                        "OPENAI_API_KEY)")
    j.add_argument("--judge-api-key", action=_KeyInArgv, help=argparse.SUPPRESS)


def add_run_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--repeats", type=int, default=1, help="episodes per task, for Avg/Max/Pass@N")
    g.add_argument("--seed", type=int, default=0, help="base seed of the episodes")
    g.add_argument("--episodes-at-once", type=int, default=16,
                   help="episodes running together; all their waiting agents form one policy batch")
    g.add_argument("--lead-turns", type=int, default=10, help="turns of the lead (default 10)")
    g.add_argument("--subagent-turns", type=int, default=20,
                   help="turns of each subagent (default 20)")
    g.add_argument("--max-context-tokens", type=int, default=32_768,
                   help="context budget per agent (default 32768)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-explain", action="store_true",
                   help="leave the cell-level score explanation out of the trace records")


def spread(items: Sequence[Any], n: int | None) -> list[Any]:
    """``n`` items spread evenly over ``items`` (all of them if ``n`` is None or too large)."""
    if n is None or n >= len(items):
        return list(items)
    if n < 1:
        raise ConfigError("--limit must be >= 1")
    return [items[(i * len(items)) // n] for i in range(n)]


def resolve_world(arg: str | Path, *, progress: bool = True) -> Path:
    """The folder of ``--world``: ``default`` and ``default-easy`` are the embedded default
    world's tiers (built on first use), anything else a folder."""
    from wideseek_env.progress import is_terminal
    from wideseek_env.worlds import cache_root
    from wideseek_env.worlds import resolve_world as resolve
    from wideseek_env.worlds.world import WORLD_NAMES

    if str(arg) in WORLD_NAMES and not is_terminal():  # bars would fill a log with \r
        print(f"wideseek: the default world (built once into {cache_root()}, about a minute)",
              file=sys.stderr, flush=True)
    return resolve(arg, progress=progress and is_terminal())


def load_world(args: argparse.Namespace) -> tuple[list[Any], Any, dict[str, Any]]:
    """Tasks, search backend and the world's record for run.json, from the world options.

    With ``--search-url`` the server must answer ``/health`` and, when it reports a world id,
    serve the very world named by ``--world`` (the tasks come from there)."""
    from wideseek_env.search.base import DamagedWorldError, SearchError
    from wideseek_env.worlds import World

    if args.tasks is not None:
        return load_task_source(args)
    path = resolve_world(args.world, progress=not args.no_progress)
    world = World.load(path)
    tasks = world.tasks(args.split, task_set=args.task_set)
    if args.task_id:
        by_id = {t.instance_id: t for t in tasks}
        missing = [t for t in args.task_id if t not in by_id]
        if missing:
            raise ConfigError(f"--task-id {missing[0]!r} is not in split {args.split!r} of {path}")
        tasks = [by_id[t] for t in args.task_id]
    tasks = spread(tasks, args.limit)
    world_id = world.card.get("world_id")
    if args.search_url:
        from wideseek_env.search.http import HttpSearchBackend

        backend = HttpSearchBackend(args.search_url, coalesce=args.search_coalesce)
        try:
            health = backend.health()
        except SearchError as err:
            raise SearchError(f"--search-url: {err}") from None
        if health.get("status") == "damaged":
            problems = health.get("integrity", {}).get("problems") or ["unknown damage"]
            raise DamagedWorldError(f"the search server at {backend.base_url} reports its world "
                                    f"as damaged: {problems[0]}")
        served = health.get("world_id")
        if served and world_id and served != world_id:
            raise ConfigError(f"the search server at {backend.base_url} serves world "
                              f"{health.get('world')!r} (id {served}) but --world {args.world} is "
                              f"{world.name!r} (id {world_id}); point both at the same world")
        search_url = backend.base_url
    else:
        backend = world.backend()
        search_url = None
    info = {"name": world.name, "world_id": world_id, "path": str(path), "split": args.split,
            "tasks": len(tasks), "source": world.card.get("source"),
            "builder_version": world.card.get("builder_version"), "search_url": search_url}
    if args.task_set != "width":
        info["task_set"] = args.task_set
    return tasks, backend, info


def _api_key(env_name: str | None) -> str | None:
    """The key in environment variable ``env_name`` (None when unset or empty)."""
    return os.environ.get(env_name) or None if env_name else None


def build_policy(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The policy and the settings that identify it (recorded in run.json; no URLs or keys),
    with `--mistakes` wrapped around it."""
    rate = args.mistakes
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"--mistakes must be a share in [0, 1], got {rate}")
    policy, info = _build_policy(args)
    if rate > 0:
        from wideseek_env.policies.mistakes import MistakesPolicy

        policy = MistakesPolicy(policy, rate, seed=args.policy_seed)
        info = {**info, "mistakes": rate, "mistakes_seed": args.policy_seed}
    return policy, info


def _build_policy(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    if args.policy != "openai":
        given = [flag for flag, value in (("--base-url", args.base_url), ("--model", args.model),
                                          ("--extra-body", args.extra_body)) if value]
        if given:
            raise ConfigError(f"{given[0]} only applies to --policy openai (the policy is "
                              f"{args.policy!r})")
    if args.policy_kwargs and ":" not in args.policy:
        raise ConfigError("--policy-kwargs only applies to a MODULE:FACTORY policy")
    if args.policy == "scripted":
        from wideseek_env.policies.scripted import ScriptedPolicy

        return (ScriptedPolicy(entities_per_subtask=args.entities_per_subtask),
                {"name": "scripted", "entities_per_subtask": args.entities_per_subtask})
    if args.policy == "random":
        from wideseek_env.policies.random import RandomPolicy

        return RandomPolicy(seed=args.policy_seed), {"name": "random", "seed": args.policy_seed}
    if args.policy != "openai":
        from wideseek_env.policies.factory import load_policy

        return load_policy(args.policy, _json_arg(args.policy_kwargs, "--policy-kwargs"))
    from wideseek_env.policies.openai import OpenAIPolicy

    urls = [u.strip() for arg in (args.base_url or []) for u in arg.split(",") if u.strip()]
    if not urls or not args.model:
        raise ConfigError("--policy openai needs --base-url and --model")
    extra = _json_arg(args.extra_body, "--extra-body")
    policy = OpenAIPolicy(
        urls, args.model, api_key=_api_key(args.api_key_env),
        tool_mode=args.tool_mode, temperature=args.temperature, top_p=args.top_p,
        max_tokens=args.max_tokens, timeout_s=args.timeout_s, max_retries=args.max_retries,
        concurrency=args.concurrency, extra_body=extra)
    for warning in policy.check_server():  # the model is served; native tools are rendered
        print(f"wideseek: warning: {warning}", file=sys.stderr)
    info = {"name": "openai", "model": args.model, "tool_mode": args.tool_mode,
            "temperature": args.temperature, "top_p": args.top_p, "max_tokens": args.max_tokens,
            "extra_body": extra}
    return policy, info


def _json_arg(text: str | None, flag: str) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{flag} is not valid JSON ({err})") from err
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object, got {type(value).__name__}")
    return value


def build_judge(args: argparse.Namespace) -> Any:
    if (args.judge_url is None) != (args.judge_model is None):
        raise ConfigError("--judge-url and --judge-model go together")
    if not args.judge_url:
        return None
    from wideseek_env.scoring.judge import OpenAIJudge

    return OpenAIJudge(args.judge_url, args.judge_model, api_key=_api_key(args.judge_api_key_env))


def tools_in_prompt(args: argparse.Namespace) -> bool:
    """List tools in system prompts unless the policy passes them natively (never twice)."""
    return not (args.policy == "openai" and args.tool_mode == "native")


# ------------------------------------------------------------------------------ wideseek eval


def configure(parser: argparse.ArgumentParser) -> None:
    add_world_args(parser)
    add_policy_args(parser)
    add_run_args(parser)
    parser.add_argument("--width", type=int, default=10,
                        help="subagents per delegate call (default 10)")
    parser.add_argument("--single-agent", action="store_true",
                        help="evaluate the single-agent env (search + access, no subagents)")
    parser.add_argument("--turns", type=int, default=50,
                        help="turns of the single agent (with --single-agent; default 50)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (run.json, episodes.jsonl, summary.json); "
                             "running again resumes")


@contextlib.contextmanager
def checking_inputs() -> Iterator[None]:
    """Turn a ``ValueError`` raised while reading the user's settings into a :class:`ConfigError`
    (one line, status 2): at this stage nothing but the input can be wrong."""
    try:
        yield
    except ValueError as err:
        if isinstance(err, UserError) or type(err).__name__ in ("DamagedWorldError",
                                                                  "TaskFormatError"):
            raise
        raise ConfigError(str(err)) from err


def resumable(err: Exception, out: Path) -> Exception:
    """``err`` (a server that failed mid-run) with the resume hint appended to its message."""
    return type(err)(f"{err} -- the finished episodes are saved; re-run with the same --out "
                     f"({out}) to go on")


def run(args: argparse.Namespace) -> int:
    from wideseek_env.policies.openai import PolicyError
    from wideseek_env.runner.evaluate import EvalSpec, evaluate
    from wideseek_env.scoring.judge import JudgeError

    with checking_inputs():
        tasks, backend, world_info = load_world(args)
        judge = build_judge(args)
        spec = EvalSpec(
            mode="single" if args.single_agent else "multi", width=args.width,
            lead_max_turns=args.lead_turns, subagent_max_turns=args.subagent_turns,
            max_turns=args.turns, max_context_tokens=args.max_context_tokens,
            tools_in_prompt=tools_in_prompt(args), repeats=args.repeats, seed=args.seed,
            interface=args.interface, reward=args.reward)
        spec.check()
        reader = build_reader(args)
        policy, policy_info = build_policy(args)
    try:
        summary = evaluate(spec, tasks, backend, policy, args.out, policy_info=policy_info,
                           world_info=world_info, judge=judge,
                           episodes_at_once=args.episodes_at_once, progress=not args.no_progress,
                           explain=not args.no_explain, reader=reader)
    except (JudgeError, PolicyError) as err:
        raise resumable(err, args.out) from err
    finally:
        if hasattr(policy, "close"):
            policy.close()
    print(format_summary(summary))
    print(f"traces: {args.out / 'episodes.jsonl'}  summary: {args.out / 'summary.json'}")
    print(f"see the episodes in a browser: wideseek view {args.out}")
    return 0


def format_summary(summary: dict[str, Any]) -> str:
    s, c, q = summary["scores"], summary["cost_per_episode"], summary.get("qa_scores")
    lines = []
    if s is not None:
        n = int(s["runs_per_task"])
        lines += [
            f"{int(s['tasks'])} {'table tasks' if q else 'tasks'} x {n} repeat(s) = "
            f"{int(s['runs'])} episodes",
            f"item F1   avg@{n} {s['item_f1_avg@n']:.4f}   max@{n} {s['item_f1_max@n']:.4f}",
            f"row F1    avg@{n} {s['row_f1_avg@n']:.4f}   max@{n} {s['row_f1_max@n']:.4f}",
            f"success   avg@{n} {s['success_avg@n']:.4f}   pass@{n} {s['success_pass@n']:.4f}",
        ]
    if q is not None:
        n = int(q["runs_per_task"])
        lines += [
            f"{int(q['tasks'])} QA tasks x {n} repeat(s) = {int(q['runs'])} episodes",
            f"accuracy  avg@{n} {q['accuracy_avg@n']:.4f}   pass@{n} {q['accuracy_pass@n']:.4f}"
            f"   (exact match {q['exact_match_avg@n']:.4f}, token F1 {q['token_f1_avg@n']:.4f})",
        ]
    lines += [
        "per episode: " + ", ".join(
            f"{k} {v:.1f}" for k, v in c.items() if isinstance(v, (int, float)) and not isinstance(v, bool)),
    ]
    if c.get("tokens_estimated"):
        lines.append("(generated tokens estimated from text: the policy does not report them)")
    return "\n".join(lines)
