"""Can a chat model write the final table when everything before it was right? A greedy probe.

An episode's last step is the lead's answer: a markdown table whose header repeats the query's
column line and whose cells copy the subagents' reports. The scorer, like WideSearch's, finds no
table when a required column is missing, so a header written from memory scores 0 whatever the
cells say. This probe measures that step alone, on any saved chat model: it replays the lead's
conversation of a teacher's episode on the test split (`wideseek eval --policy scripted`: the
query, the delegation and every report) up to its answer, lets the model write the answer
(greedy), and counts

- **header right**: the table's first line names the task's columns, in order (case aside);
- **re-delegated**: the model called a tool instead of answering;
- **parsed** and **item F1**: the scorer's verdict on the reply, as the env scores an answer.

Results: ``benchmarks/results/answer_probe_<label>.{json,md}`` (every reply is kept).

Usage::

    python benchmarks/answer_probe.py --model runs/nano_recipe/sft/final \\
        --world runs/nano_recipe/world --episodes runs/nano_recipe/eval/scripted/w4 --label sft
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from name_copy_probe import greedy, parse_probe_args, probe_parser, save_probe


def header_of(reply: str) -> list[str]:
    """The cells of the first table line of `reply` (none: no table line)."""
    line = next((ln.strip() for ln in reply.splitlines() if ln.strip().startswith("|")), "")
    return [c.strip() for c in line.strip("|").split("|")] if line else []


def judge(task: Any, reply: str, end_of_turn: str = "") -> dict[str, Any]:
    """How one answer fares: the header, a tool call instead of an answer, the scorer's verdict."""
    from wideseek_env.scoring.explain import explain_response

    text = reply.replace(end_of_turn, "") if end_of_turn else reply
    record, _ = explain_response(task, text)
    header = header_of(text)
    return {"header": header,
            "header_right": [h.lower() for h in header] == [c.lower() for c in task.gold.columns],
            "redelegated": "<tool_call>" in text, "parsed": bool(record.parse_ok),
            "item_f1": float(record.item_f1)}


def answer_prompts(episodes: Path, limit: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """(task id, the lead's messages before its last reply) of the first `limit` episodes of a
    run whose lead ended with an answer."""
    from wideseek_env.trace import iter_traces  # the project's reader: file:line on a bad line

    path = episodes / "episodes.jsonl" if episodes.is_dir() else episodes
    out = []
    for record in iter_traces(path):
        if record.get("episode_end") != "answer":
            continue
        lead = next(a for a in record["agents"] if a.get("role") == "lead")
        last = max(i for i, m in enumerate(lead["messages"]) if m.get("role") == "assistant")
        out.append((str(record["task_id"]), lead["messages"][:last]))
        if len(out) == limit:
            break
    if not out:
        raise SystemExit(f"{path}: no episode ends with the lead's answer")
    return out


def probe(model_dir: Path, world_dir: Path, episodes: Path, *, tasks: int,
          max_new_tokens: int = 300, split: str = "test") -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from wideseek_env.worlds import World

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    by_id = {t.instance_id: t for t in World.load(world_dir).tasks(split)}
    probes = []
    for task_id, messages in answer_prompts(episodes, tasks):
        if task_id not in by_id:
            raise SystemExit(f"{episodes}: task {task_id!r} is not a {split} task of {world_dir}")
        reply = greedy(model, tokenizer, messages, max_new_tokens)
        probes.append({"task": task_id, "columns": list(by_id[task_id].gold.columns),
                       **judge(by_id[task_id], reply, tokenizer.eos_token or ""),
                       "reply": reply})
        p = probes[-1]
        print(f"[answer] {task_id}: header {'right' if p['header_right'] else 'wrong'}, "
              f"parsed {p['parsed']}, item F1 {p['item_f1']:.2f}", file=sys.stderr, flush=True)
    n = len(probes)
    return {"model": str(model_dir), "world": str(world_dir), "split": split,
            "episodes": str(episodes),
            "max_new_tokens": max_new_tokens, "answers": n,
            **{k: sum(bool(p[k]) for p in probes) for k in ("header_right", "redelegated",
                                                            "parsed")},
            "item_f1": sum(p["item_f1"] for p in probes) / n, "probes": probes}


def markdown(d: dict[str, Any]) -> str:
    n = d["answers"]
    lines = [f"# Answer probe: `{d['model']}`", "",
             f"Greedy, the lead's conversation of {n} teacher episodes (`{d['episodes']}`) up to "
             f"its answer. Header right **{d['header_right']} of {n}**, answers parsed by the "
             f"scorer **{d['parsed']} of {n}**, item F1 **{d['item_f1']:.3f}**; "
             f"{d['redelegated']} delegated again instead of answering.", "",
             "| task | header right | parsed | item F1 | header written (task's columns) |",
             "|---|---|---|---|---|"]
    for p in d["probes"]:
        written = " / ".join(p["header"])[:90] or ("(a tool call)" if p["redelegated"]
                                                   else "(no table)")
        lines.append(f"| {p['task']} | {int(p['header_right'])} | {int(p['parsed'])} | "
                     f"{p['item_f1']:.2f} | {written.replace('|', '/')} "
                     f"({' / '.join(p['columns'])}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = probe_parser(__doc__)
    ap.add_argument("--episodes", type=Path, required=True,
                    help="a teacher's run folder (or episodes.jsonl) on the world's test split "
                    "(--split)")
    ap.add_argument("--split", default="test", help="the split the episodes' tasks are from")
    ap.add_argument("--tasks", type=int, default=40, help="episodes to probe (the run's first)")
    ap.add_argument("--max-new-tokens", type=int, default=300, help="new tokens of an answer")
    a = parse_probe_args(ap, argv, episodes="--episodes")
    d = probe(a.model, a.world, a.episodes, tasks=a.tasks, max_new_tokens=a.max_new_tokens,
              split=a.split)
    md = save_probe(a, "answer_probe", d, markdown(d))
    print(f"header right {d['header_right']} of {d['answers']}, parsed {d['parsed']}, item F1 "
          f"{d['item_f1']:.3f}; {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
