"""Does a chat model copy the query's entity names where an episode needs them? Greedy probes.

Every WideSeek answer starts with two copies: the lead copies the entity names of the user's
query into its subtasks, and a subagent copies the name of its subtask into its searches. A
model that writes other names scores item F1 0 whatever else it learnt. This probe measures
both copies on any saved chat model (the nano recipe's stages, a pretrained model), greedy:

- **subagent**: the first subagent turn of a trace (its system prompt and subtask) with the
  subtask's entity replaced by each of `--names` (countries, a town, an element, an airport and
  a made-up name by default); a hit is the name, whole, in the reply. `--no-system` leaves the
  system prompt out (the rows of `--sft.drop-system` drills).
- **lead**: the lead's first turn on `--tasks` test tasks spread over the world's test split
  (those whose query lists its entities), with the lead's system prompt of the trace
  (`--lead-no-system`: without it); a hit is
  one of those names in the reply.

Results: ``benchmarks/results/name_copy_probe_<label>.{json,md}`` (every reply is kept).

Usage::

    python benchmarks/name_copy_probe.py --model runs/nano_recipe/sft/final \\
        --world runs/nano_recipe/world --traces runs/nano_recipe/traces/w4 --label sft
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
NAMES = ("Mali", "Norway", "Mongolia", "Mumbai", "Tellurium", "Benson Municipal Airport",
         "Qorvath")
ENTITY_LINE = re.compile(r"(Entities:\n- )([^\n]+)")


def first_episode(traces: Path) -> dict[str, Any]:
    """The first episode of a trace folder (or `episodes.jsonl` file) with a lead and a
    subagent whose subtask lists its entities (the scripted lead's format)."""
    from wideseek_env.trace import iter_traces  # the project's reader: file:line on a bad line

    path = traces / "episodes.jsonl" if traces.is_dir() else traces
    for record in iter_traces(path):
        agents = record.get("agents") or []
        subs = [a for a in agents if a.get("role") == "subagent"]
        if agents and subs and ENTITY_LINE.search(subs[0]["messages"][1]["content"]):
            return record
    raise SystemExit(f"{path}: no episode with a subagent whose subtask has an "
                     "'Entities:' list (a scripted trace has one)")


def greedy(model: Any, tokenizer: Any, messages: list[dict[str, str]], max_new_tokens: int) -> str:
    import torch

    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                        return_tensors="pt")
    if not isinstance(ids, torch.Tensor):
        ids = ids["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=False)


def probe(model_dir: Path, world_dir: Path, traces: Path, *, names: list[str], tasks: int,
          system: bool, lead_system: bool = True, lead_tokens: int = 512) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from wideseek_env.worlds import World

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    record = first_episode(traces)
    lead = record["agents"][0]
    sub = next(a for a in record["agents"] if a.get("role") == "subagent")
    sub_system, subtask = sub["messages"][0], sub["messages"][1]["content"]
    subagent = []
    for name in names:
        text = ENTITY_LINE.sub(lambda m, name=name: m.group(1) + name, subtask, count=1)
        messages = ([sub_system] if system else []) + [{"role": "user", "content": text}]
        reply = greedy(model, tokenizer, messages, 40)
        subagent.append({"name": name, "reply": reply, "copied": name in reply})
        print(f"[subagent] {name!r} -> {reply[:160]!r}", file=sys.stderr, flush=True)
    # Tasks whose query lists its entities (the only names a lead can copy), spread over the split.
    test = [t for t in World.load(world_dir).tasks("test")
            if any(str(row[0]) in t.query for row in t.gold.rows)]
    if not test:
        raise SystemExit(f"{world_dir}: no test task lists its entities in the query")
    picked = test[:: max(1, len(test) // tasks)][:tasks]
    leads = []
    for task in picked:
        reply = greedy(model, tokenizer, ([lead["messages"][0]] if lead_system else [])
                       + [{"role": "user", "content": task.query}], lead_tokens)
        gold = [str(row[0]) for row in task.gold.rows if str(row[0]) in task.query]
        leads.append({"task": task.instance_id, "names": gold, "copied": [g for g in gold if g in reply],
                      "reply": reply})
        print(f"[lead] {gold} -> {leads[-1]['copied']}", file=sys.stderr, flush=True)
    return {
        "model": str(model_dir), "world": str(world_dir), "traces": str(traces),
        "system_prompt": system, "lead_system_prompt": lead_system, "lead_tokens": lead_tokens,
        "subagent": {"copied": sum(p["copied"] for p in subagent), "of": len(subagent),
                     "probes": subagent},
        "lead": {"copied": sum(len(p["copied"]) for p in leads),
                 "of": sum(len(p["names"]) for p in leads), "probes": leads},
    }


def markdown(d: dict[str, Any]) -> str:
    sub, lead = d["subagent"], d["lead"]
    lines = [f"# Name-copy probe: `{d['model']}`", "",
             f"Greedy. Subagent first turn ({'with' if d['system_prompt'] else 'without'} its "
             f"system prompt): **{sub['copied']} of {sub['of']}** names copied whole. Lead first "
             f"turn on {len(lead['probes'])} test tasks"
             f"{'' if d.get('lead_system_prompt', True) else ' (without its system prompt)'}: "
             f"**{lead['copied']} of {lead['of']}** entity names.", "",
             "| probe | name(s) | copied | reply (start) |", "|---|---|---|---|"]

    def cell(reply: str) -> str:  # from the entity list on, where the names belong
        start = max(reply.find("Entities:"), 0)
        return "`" + reply[start:start + 100].replace("\n", " ").replace("|", "\\|") + "`"

    for p in sub["probes"]:
        lines.append(f"| subagent | {p['name']} | {int(p['copied'])} | {cell(p['reply'])} |")
    for p in lead["probes"]:
        lines.append(f"| lead | {', '.join(p['names'])} | {len(p['copied'])} | "
                     f"{cell(p['reply'])} |")
    return "\n".join(lines) + "\n"


def probe_parser(doc: str) -> argparse.ArgumentParser:
    """The options every greedy probe of a saved model has (`--model`, `--world`, `--label`,
    `--results`, `--threads`); the probe adds its own."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a saved chat model directory")
    ap.add_argument("--world", type=Path, required=True, help="the world folder (test tasks)")
    ap.add_argument("--label", default=None, help="results name (default: the model folder's)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="results folder")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    return ap


def parse_probe_args(ap: argparse.ArgumentParser, argv: list[str] | None,
                     **paths: str) -> argparse.Namespace:
    """Parsed options; a missing model, world or `paths` option's path (its dest: flag) is a
    usage error that names the option. Sets the torch threads."""
    a = ap.parse_args(argv)
    for what, path in (("--model", a.model / "config.json"), ("--world", a.world),
                       *((flag, getattr(a, dest)) for dest, flag in paths.items())):
        if not path.exists():
            ap.error(f"{what}: {path} does not exist")
    if a.tasks < 1:
        ap.error("--tasks must be at least 1")
    import torch

    torch.set_num_threads(a.threads)
    return a


def save_probe(a: argparse.Namespace, name: str, d: dict[str, Any], md: str) -> Path:
    """`<results>/<name>_<label>.{json,md}`; returns the markdown file."""
    a.results.mkdir(parents=True, exist_ok=True)
    stem = a.results / f"{name}_{a.label or a.model.name}"
    stem.with_suffix(".json").write_text(json.dumps(d, indent=1, ensure_ascii=False) + "\n")
    stem.with_suffix(".md").write_text(md)
    return stem.with_suffix(".md")


def main(argv: list[str] | None = None) -> int:
    ap = probe_parser(__doc__)
    ap.add_argument("--traces", type=Path, required=True,
                    help="a scripted run folder (or episodes.jsonl): prompts and subtask format")
    ap.add_argument("--names", nargs="+", default=list(NAMES), help="subagent probe names")
    ap.add_argument("--tasks", type=int, default=6, help="test tasks of the lead probe")
    ap.add_argument("--no-system", action="store_true", help="subagent turns without the "
                    "system prompt")
    ap.add_argument("--lead-no-system", action="store_true", help="lead turns without the "
                    "system prompt")
    ap.add_argument("--lead-tokens", type=int, default=512, help="new tokens of a lead turn "
                    "(a delegation of several subtasks needs hundreds; results before this "
                    "option used 160, which cut the later subtasks off)")
    a = parse_probe_args(ap, argv, traces="--traces")
    d = probe(a.model, a.world, a.traces, names=a.names, tasks=a.tasks, system=not a.no_system,
              lead_system=not a.lead_no_system, lead_tokens=a.lead_tokens)
    md = save_probe(a, "name_copy_probe", d, markdown(d))
    print(f"subagent: {d['subagent']['copied']} of {d['subagent']['of']} names; lead: "
          f"{d['lead']['copied']} of {d['lead']['of']}; {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
