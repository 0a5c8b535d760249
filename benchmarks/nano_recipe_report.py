"""Collect and write the nano recipe's results (`benchmarks/nano_recipe.py`): tables, curves, the
checks of what the recipe must show, and a figure."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from nano_recipe import SUPERVISED

from wideseek_env.trace import read_traces
from wideseek_rl.evaluate import episode_table, mean_ci

POLICIES = ("scripted", "sft", "grpo")
"""The evaluated policies; "sft" is the model of the last supervised stage that ran."""
CURVES = {"lm": "warm-up (LM on whole transcripts): NLL per token",
          "sft": "SFT: NLL per assistant token",
          "first": "first replies without system prompts: NLL per assistant token",
          "first_sys": "first replies with system prompts: NLL per assistant token",
          "resft": "SFT again on all replies: NLL per assistant token",
          "answers": "all replies, the last ones weighted: NLL per assistant token (unweighted)"}


def _metrics(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _records(r: Any, policy: str, width: int) -> list[dict[str, Any]]:
    return read_traces(r.out / "eval" / policy / f"w{width}" / "episodes.jsonl")


def names_delegated(records: list[dict[str, Any]], gold_keys: dict[str, list[str]]) -> float:
    """The share of the test tasks' entity names (their gold key cells) that the lead wrote,
    verbatim, in a turn before its last (its delegations): whether a model copies the names of
    the query into its subtasks, the first thing a table answer needs."""
    found = total = 0
    for rec in records:
        lead = next((a for a in rec.get("agents", []) if a.get("role") == "lead"), None)
        said = [m.get("content") or "" for m in (lead or {}).get("messages", [])
                if m.get("role") == "assistant"][:-1]
        for name in gold_keys.get(rec["task_id"], []):
            total += 1
            found += any(name in text for text in said)
    return found / total if total else float("nan")


def paired(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> tuple[float, float]:
    """Mean and 95 % CI half-width of the per-task difference of item F1, b − a."""
    fa = {x["task_id"]: x["metrics"]["item_f1"] for x in a}
    diffs = [x["metrics"]["item_f1"] - fa[x["task_id"]] for x in b if x["task_id"] in fa]
    return mean_ci(diffs)


def induction(model_dir: Path) -> float:
    """The induction score of a saved model (`wideseek_rl.copydrill.induction_score`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from wideseek_rl.copydrill import copyable_ids, induction_score

    ids = copyable_ids(AutoTokenizer.from_pretrained(model_dir))
    return round(induction_score(AutoModelForCausalLM.from_pretrained(model_dir), ids), 4)


def _drill_summary(nano_dir: Path) -> dict[str, Any] | None:
    """Steps, last pool and seconds of the copy drill the nano model was built with."""
    from wideseek_rl.nano import META_FILE

    drill = json.loads((nano_dir / META_FILE).read_text()).get("copy_drill")
    if not drill:
        return None
    last = drill["curve"][-1]
    return {"steps": last["step"], "pool": last["pool"], "copy_acc": last.get("copy_acc"),
            "stopped": drill.get("stopped", "steps"), "seconds": drill["seconds"],
            "settings": drill["settings"], "curve": drill["curve"]}


def collect(r: Any, stages: dict[str, Any]) -> dict[str, Any]:
    """Everything the report shows, from the recipe's working folder."""
    from wideseek_rl.nano import parameter_count

    out = r.out
    card = json.loads((out / "world" / "world.json").read_text())
    sft_rows: list[dict[str, Any]] = []
    for stage in SUPERVISED:  # the warm-up, then SFT (and the first replies) continuing its curve
        last = sft_rows[-1]["step"] if sft_rows else 0
        sft_rows += [{**x, "step": last + x["step"], "stage": stage}
                     for x in (_metrics(out / stage / "metrics.jsonl")
                               if (out / stage / "metrics.jsonl").is_file() else [])]
    grpo_rows = _metrics(out / "grpo" / "metrics.jsonl")
    data_line = re.search(r"sft data: (\{.*\})", (out / "logs" / "sft.log").read_text())
    from episode_funnel import world_keys

    keys = world_keys(out / "world")  # task id → its entity names (gold key cells)
    evals = {p: {w: {**episode_table(recs), "names_delegated": names_delegated(recs, keys)}
                 for w in r.eval_widths for recs in [_records(r, p, w)]} for p in POLICIES}
    w1, wn = r.eval_widths[0], r.eval_widths[-1]
    checks = {
        "sft_format_errors_below_10pct": all(evals["sft"][w]["format_error_rate"] < 0.10
                                             for w in r.eval_widths),
        "sft_item_f1_above_0": all(evals["sft"][w]["item_f1"] > 0 for w in r.eval_widths),
        "grpo_minus_sft": {w: paired(_records(r, "sft", w), _records(r, "grpo", w))
                           for w in r.eval_widths},
        f"grpo_w{wn}_minus_w{w1}": paired(_records(r, "grpo", w1), _records(r, "grpo", wn)),
        f"sft_w{wn}_minus_w{w1}": paired(_records(r, "sft", w1), _records(r, "sft", wn)),
    }
    checks["grpo_above_sft_beyond_ci"] = {w: d > ci for w, (d, ci) in
                                          checks["grpo_minus_sft"].items()}
    checks["width_pays_for_grpo"] = checks[f"grpo_w{wn}_minus_w{w1}"][0] > 0
    return {
        "recipe": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(r).items()},
        "world": {"splits": card["splits"], "counts": card["counts"], "options": card["options"]},
        "traces": {w: json.loads((out / "traces" / f"w{w}" / "summary.json").read_text())["scores"]
                   for w in r.trace_widths},
        "sft_data": json.loads(data_line.group(1)) if data_line else {},
        "model": {"parameters": parameter_count(out / "nano"),
                  "config": json.loads((out / "nano" / "config.json").read_text()),
                  "copy_drill": _drill_summary(out / "nano"),
                  "induction": {name: induction(out / path) for name, path in (
                      ("nano", "nano"), *((s, f"{s}/final") for s in SUPERVISED),
                      ("grpo", "grpo/final")) if (out / path / "config.json").is_file()}},
        "sft_curve": [{"step": x["step"], "stage": x["stage"], "nll": x["loss/nll"],
                       "lr": x["loss/lr"], "epoch": x["sft/epoch"],
                       "tokens_per_s": x["time/tokens_per_s"]} for x in sft_rows],
        "grpo_curve": [{k: x[k] for k in (
            "step", "score/mean", "env/item_f1", "env/reward_format", "loss/ratio_mean",
            "rollout/groups_with_signal", "loss/step_skipped", "credit/episodes_ok",
            "credit/episodes_invalid_format",
            "eval/score_mean", "eval/env/item_f1", "time/step_s") if k in x} for x in grpo_rows],
        "eval": evals,
        "checks": checks,
        "stages": stages,
        "total": {"wall_s": sum(s["wall_s"] for s in stages.values()),
                  "cpu_s": sum(s["cpu_s"] or 0.0 for s in stages.values()),
                  "max_rss_gib": max(s["max_rss_gib"] for s in stages.values())},
    }


def _copying(model: dict[str, Any]) -> str:
    """One sentence on the copy drill and the models' induction scores."""
    cd = model.get("copy_drill")
    until = (cd or {}).get("settings", {}).get("until_induction")
    end = ("" if until is None else
           f", ended {'on reaching' if cd['stopped'] == 'induction' else 'at its step limit before'}"
           f" induction {until:g}")
    drill = (f"Copy drill: {cd['steps']} steps ({cd['seconds']:.0f} s{end}), token pool grown to "
             f"{cd['pool']}, running copy accuracy {cd['copy_acc']}." if cd else "No copy drill.")
    scores = ", ".join(f"{k} {v:.3f}" for k, v in model.get("induction", {}).items())
    return f"{drill} Induction score (repeated random tokens, 0 = no copying): {scores}."


def _first_replies(r: dict[str, Any]) -> str:
    """The first-reply stages of the header (none in runs recorded before they existed)."""
    parts = [f"{r[f'{key}_steps']} steps on {how} at lr {r[f'{key}_lr']:g}"
             for key, how in (("first_reply", "first replies without system prompts"),
                              ("first_reply_system", "first replies with system prompts"),
                              ("resft", "all replies again"),
                              ("answer", "all replies with each agent's last weighing "
                               f"{r.get('answer_weight', 1.0):g}"))
             if r.get(f"{key}_steps")]
    return "".join(", then " + part for part in parts)


def markdown(d: dict[str, Any]) -> str:
    r, ev, ch = d["recipe"], d["eval"], d["checks"]
    widths = list(next(iter(ev.values())).keys())
    lines = ["# Nano recipe: scripted traces → SFT → multi-agent GRPO on 2 CPU cores", "",
             f"World: easy tier of the default world, {r['rows'][0]}-{r['rows'][1]} rows per "
             f"task, {d['world']['splits']['train']['tasks']} train / "
             f"{d['world']['splits']['test']['tasks']} test tasks, "
             f"{d['world']['counts']['pages']} pages. Budgets: lead {r['lead_turns']} turns, "
             f"subagent {r['subagent_turns']} turns, {r['max_context_tokens']}-token context. "
             f"Model: {d['model']['parameters'] / 1e6:.2f} M parameters"
             f"{', spaces as tokens of their own' if r.get('isolate_spaces') else ''}. "
             f"Warm-up {r['lm_steps']} steps at lr {r['lm_lr']:g}, SFT {r['sft_steps']} steps "
             f"at lr {r['sft_lr']:g}"
             f"{_first_replies(r)}"
             f"{', ' + format(r['rename_entities'], '.0%') + ' of episodes renamed' if r.get('rename_entities') else ''}"
             f". {_copying(d['model'])}",
             "",
             "## Held-out test tasks (greedy, one episode per task; ± = 95 % CI)", "",
             "| policy | width | episodes | item F1 | format errors (of turns) | subagents | "
             "critical-path turns | answered | query names in delegations |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p, by_w in ev.items():
        for w, t in by_w.items():
            lines.append(f"| {p} | {w} | {int(t['episodes'])} | {t['item_f1']:.3f} ± "
                         f"{t['item_f1_ci95']:.3f} | {t['format_error_rate']:.3f} | "
                         f"{t['subagents_used']:.2f} | {t['critical_path_turns']:.2f} | "
                         f"{t['answered']:.2f} | {t.get('names_delegated', float('nan')):.3f} |")
    lines += ["", "## What the recipe must show", ""]
    lines.append(f"- SFT format errors below 10 % of turns at every width: "
                 f"{ch['sft_format_errors_below_10pct']}; SFT item F1 above 0 at every width: "
                 f"{ch['sft_item_f1_above_0']}.")
    for w in widths:
        dlt, ci = ch["grpo_minus_sft"][w]
        lines.append(f"- GRPO − SFT at width {w} (paired by task): {dlt:+.3f} ± {ci:.3f} "
                     f"({'above' if ch['grpo_above_sft_beyond_ci'][w] else 'not above'} the CI).")
    for key in [k for k in ch if k.endswith(f"_minus_w{widths[0]}")]:
        dlt, ci = ch[key]
        lines.append(f"- {key.replace('_', ' ')}: {dlt:+.3f} ± {ci:.3f}.")
    lines += ["", "## Stages", "", "| stage | wall s | CPU s | peak RSS GiB |", "|---|---:|---:|---:|"]
    for name, s in d["stages"].items():
        cpu = "–" if s.get("cpu_s") is None else f"{s['cpu_s']:.0f}"
        lines.append(f"| {name}{' (by hand)' if s.get('by_hand') else ''} | {s['wall_s']:.0f} | "
                     f"{cpu} | {s['max_rss_gib']:.2f} |")
    t = d["total"]
    lines += [f"| **total** | **{t['wall_s']:.0f}** | **{t['cpu_s']:.0f}** | "
              f"{t['max_rss_gib']:.2f} |", ""]
    hand = [name for name, s in d["stages"].items() if s.get("by_hand")]
    if hand:
        lines += [f"Stages marked by hand ({', '.join(hand)}) were run outside the recipe with "
                  "its commands and handed to it as done; their wall time and peak memory are "
                  "read from their logs and metrics, their CPU time was not measured (the total "
                  "CPU is of the other stages).", ""]
    lines += [f"- {name}: {s['note']}" for name, s in d["stages"].items() if s.get("note")]
    if any(s.get("note") for s in d["stages"].values()):
        lines.append("")
    sd = d["sft_data"]
    if sd:
        lines.append(f"SFT data: {int(sd['sft/episodes_kept'])} of {int(sd['sft/episodes_read'])} "
                     f"scripted episodes kept (item F1 ≥ {r['sft_min_f1']}), {int(sd['sft/rows'])} "
                     f"agent rows, {int(sd['sft/tokens'])} tokens of which "
                     f"{int(sd['sft/trained_tokens'])} assistant tokens.")
    sc, gc = d["sft_curve"], d["grpo_curve"]
    for stage, what in CURVES.items():
        xs = [x for x in sc if x["stage"] == stage]
        if xs:
            lines.append(f"{what} {xs[0]['nll']:.3f} → {xs[-1]['nll']:.3f} in {len(xs)} steps.")
    skipped = sum(x.get("loss/step_skipped", 0.0) for x in gc)
    lines.append(f"GRPO: {len(gc)} steps of {r.get('grpo_tasks', 2)} tasks × 8 episodes, "
                 f"{sum(x['rollout/groups_with_signal'] > 0 for x in gc)} with a reward spread"
                 f"{f' ({skipped:.0f} without one skipped)' if skipped else ''}, "
                 f"training reward {gc[0]['score/mean']:.3f} at step 1, "
                 f"{gc[-1]['score/mean']:.3f} at step {gc[-1]['step']}.")
    return "\n".join(lines) + "\n"


def plot(d: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    sc = d["sft_curve"]
    for stage in SUPERVISED:
        xs = [x for x in sc if x["stage"] == stage]
        if xs:
            ax[0].plot([x["step"] for x in xs], [x["nll"] for x in xs],
                       label=CURVES[stage].split(":")[0])
    ax[0].set(title="NLL per trained token", xlabel="step", yscale="log")
    ax[0].legend()
    gc = d["grpo_curve"]
    ax[1].plot([x["step"] for x in gc], [x["score/mean"] for x in gc], label="train reward")
    ax[1].plot([x["step"] for x in gc], [x.get("env/item_f1", 0) for x in gc],
               label="train item F1")
    ev = [x for x in gc if "eval/env/item_f1" in x]
    ax[1].plot([x["step"] for x in ev], [x["eval/env/item_f1"] for x in ev], "o-",
               label="test item F1 (eval)")
    ax[1].set(title="GRPO", xlabel="step")
    ax[1].legend()
    for p, by_w in d["eval"].items():
        ws = list(by_w)
        ax[2].errorbar([int(w) for w in ws], [by_w[w]["item_f1"] for w in ws],
                       yerr=[by_w[w]["item_f1_ci95"] for w in ws], marker="o", capsize=3,
                       label=p)
    ax[2].set(title="Test item F1 by width (95 % CI)", xlabel="width", xscale="log")
    ax[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(r: Any, d: dict[str, Any]) -> None:
    stem = Path(r.results)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(d, indent=1) + "\n")
    text = markdown(d)
    stem.with_suffix(".md").write_text(text)
    plot(d, stem.with_suffix(".png"))
    print(text)
