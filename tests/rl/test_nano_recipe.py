"""The nano recipe's quick version runs every stage, each from the checkpoint the one before it
wrote (the full recipe is `benchmarks/nano_recipe.py`; its results are in benchmarks/results)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
STAGES = ["world", "traces_w2", "nano", "lm", "sft", "first", "first_sys", "resft", "answers",
          "grpo", "eval_scripted_w1", "eval_scripted_w2",
          "eval_sft", "eval_grpo"]


def weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_every_stage_runs_and_hands_its_checkpoint_to_the_next(tmp_path):
    out = tmp_path / "recipe"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "nano_recipe.py"), "--quick", "--out",
         str(out), "--results", str(tmp_path / "results" / "nano_recipe"),
         # The options (the defaults run in the other tests): vLLM and the trainer get a
         # tokenizer with spaces of their own, the warm-up and SFT renamed entities, and the copy
         # drill a bar it does not reach in its steps, and SFT is followed by both first-reply
         # stages and SFT again.
         "--isolate-spaces", "--rename-entities", "0.5", "--copy-until", "0.99",
         "--first-reply-steps", "5", "--first-reply-system-steps", "5", "--resft-steps", "5",
         "--answer-steps", "5", "--answer-weight", "3", "--grpo-skip-without-signal",
         "--grpo-format-error-advantage", "0.5", "--trace-mistakes", "0.3"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    stages = json.loads((out / "stages.json").read_text())
    assert list(stages) == STAGES
    assert all(s["cpu_s"] > 0 and s["max_rss_gib"] > 0 for s in stages.values())
    # SFT starts from the nano model, GRPO from SFT's final model, each evaluation from its model.
    lm = json.loads((out / "lm" / "config.json").read_text())
    sft = json.loads((out / "sft" / "config.json").read_text())
    first = json.loads((out / "first" / "config.json").read_text())
    first_sys = json.loads((out / "first_sys" / "config.json").read_text())
    resft = json.loads((out / "resft" / "config.json").read_text())
    answers = json.loads((out / "answers" / "config.json").read_text())
    grpo = json.loads((out / "grpo" / "config.json").read_text())
    # The teacher slipped (and SFT read the slips as context only).
    run = json.loads((out / "traces" / "w2" / "run.json").read_text())
    assert run["policy"]["mistakes"] == 0.3
    data = re.search(r"^sft data: (\{.*\}) in", (out / "logs" / "sft.log").read_text(), re.M)
    assert json.loads(data.group(1))["sft/error_replies"] > 0
    assert lm["stage"] == "sft" and lm["sft"]["train_on"] == "all"
    assert lm["sft"]["rename_entities"] == 0.5
    assert json.loads((out / "nano" / "wideseek_nano.json").read_text())["spec"]["isolate_spaces"]
    assert lm["model"]["path"] == str(out / "nano")
    assert sft["stage"] == "sft" and sft["sft"]["train_on"] == "assistant"
    assert sft["model"]["path"] == str(out / "lm" / "final")
    # The first-reply stages: one reply per agent, without and then with the system prompts.
    assert first["model"]["path"] == str(out / "sft" / "final")
    assert first_sys["model"]["path"] == str(out / "first" / "final")
    assert first["sft"]["max_replies"] == first_sys["sft"]["max_replies"] == 1
    assert first["sft"]["drop_system"] and not first_sys["sft"]["drop_system"]
    assert first["sft"]["rename_entities"] == first_sys["sft"]["rename_entities"] == 0.5
    assert first["steps"] == first_sys["steps"] == resft["steps"] == 1  # --quick caps them
    # SFT again: every reply, with the system prompts, from the first-reply model.
    assert resft["model"]["path"] == str(out / "first_sys" / "final")
    assert resft["sft"]["max_replies"] is None and not resft["sft"]["drop_system"]
    assert resft["sft"]["train_on"] == "assistant" and resft["optim"]["lr"] == 5e-4
    # The answers stage: every reply, each agent's last one weighing 3, from SFT again.
    assert answers["model"]["path"] == str(out / "resft" / "final")
    assert answers["sft"]["last_reply_weight"] == 3.0 and answers["sft"]["last_replies"] is None
    assert answers["steps"] == 1 and answers["sft"]["train_on"] == "assistant"
    # Each supervised stage reads its own row stream (the recipe's seed plus its place).
    assert [c["seed"] for c in (lm, sft, first, first_sys, resft, answers)] == [0, 1, 2, 3, 4, 5]
    assert grpo["stage"] == "grpo" and grpo["model"]["path"] == str(out / "answers" / "final")
    assert grpo["loss"]["skip_steps_without_signal"]
    assert grpo["rollout"]["format_error_advantage"] == 0.5
    assert grpo["rollout"]["turn_selection"] == "paper" and grpo["env"]["config"]["reward"] == "paper"
    for name, model in (("sft", out / "answers" / "final"), ("grpo", out / "grpo" / "final")):
        for w in (1, 2):
            run = json.loads((out / "eval" / name / f"w{w}" / "run.json").read_text())
            assert run["policy"]["model"] == str(model) and run["spec"]["width"] == w
    # Each training stage moved the weights it was handed.
    nano, first_sft, after_sft, after_first, after_sys, after_resft, after_answers, after_grpo = (
        weights(p) for p in (out / "nano", out / "lm" / "final", out / "sft" / "final",
                             out / "first" / "final", out / "first_sys" / "final",
                             out / "resft" / "final", out / "answers" / "final",
                             out / "grpo" / "final"))
    key = "model.layers.0.mlp.up_proj.weight"
    assert not torch.equal(nano[key], first_sft[key])
    assert not torch.equal(first_sft[key], after_sft[key])
    assert not torch.equal(after_sft[key], after_first[key])
    assert not torch.equal(after_first[key], after_sys[key])
    assert not torch.equal(after_sys[key], after_resft[key])
    assert not torch.equal(after_resft[key], after_answers[key])
    after_sft = after_answers  # the model GRPO starts from
    # GRPO ran its step from the SFT weights: they moved unless every advantage was zero (a
    # group of equal rewards, likely with 16-token turns), in which case they are SFT's exactly.
    steps = [json.loads(line) for line in (out / "grpo" / "metrics.jsonl").read_text().splitlines()]
    steps = [s for s in steps if "loss/grad_norm" in s]
    assert len(steps) == 1, "GRPO logged no training step"
    moved = not torch.equal(after_sft[key], after_grpo[key])
    assert moved == (steps[0]["rollout/groups_with_signal"] > 0 and steps[0]["loss/grad_norm"] > 0)
    assert steps[0]["loss/step_skipped"] == float(steps[0]["rollout/groups_with_signal"] == 0)
    assert (out / "sft" / "checkpoints" / "latest").is_file()
    for suffix in (".json", ".md", ".png"):
        assert (tmp_path / "results" / f"nano_recipe{suffix}").is_file()
    result = json.loads((tmp_path / "results" / "nano_recipe.json").read_text())
    assert set(result["eval"]) == {"scripted", "sft", "grpo"}
    assert result["eval"]["scripted"]["1"]["episodes"] == 2
    # The scripted lead delegates every entity of the query by name.
    assert result["eval"]["scripted"]["2"]["names_delegated"] > 0.9
    # The nano model was built with the copy drill, and every model's induction score is reported.
    assert result["model"]["copy_drill"]["steps"] == 2
    assert set(result["model"]["induction"]) == {"nano", "lm", "sft", "first", "first_sys",
                                                "resft", "answers", "grpo"}
    assert all(0.0 <= v <= 1.0 for v in result["model"]["induction"].values())
    md = (tmp_path / "results" / "nano_recipe.md").read_text()
    assert "Copy drill: 2 steps" in md and "spaces as tokens of their own" in md
    assert "50% of episodes renamed" in md
    assert ("1 steps on first replies without system prompts at lr 0.001, then 1 steps on first "
            "replies with system prompts at lr 0.0005, then 1 steps on all replies again at lr "
            "0.0005, then 1 steps on all replies with each agent's last weighing 3 at lr 0.0005"
            in md)
    assert "first replies with system prompts: NLL per assistant token" in md
    assert "ended at its step limit before induction 0.99" in md  # 2 steps do not get there


def test_each_supervised_stage_reads_its_own_row_stream(load_benchmark):
    recipe_module = load_benchmark("nano_recipe")
    supervised = recipe_module.SUPERVISED
    recipe = recipe_module.Recipe(out=Path("/nonexistent"), first_reply_steps=5,
                                  first_reply_system_steps=5, resft_steps=5, answer_steps=5,
                                  seed=7)
    commands = {s.name: s.command for s, _ in recipe_module.stages(recipe)}

    def seed(command: list[str]) -> int:
        return int(command[command.index("--seed") + 1])

    seeds = {name: seed(c) for name, c in commands.items() if name in supervised}
    assert list(seeds) == list(supervised)
    # A stage's seed orders its rows: with one seed for all, each stage would first train on the
    # rows the one before it trained on first.
    assert len(set(seeds.values())) == len(supervised)
    assert seeds["lm"] == 7  # the recipe's own seed for the first, as for GRPO and evaluation
    assert seed(commands["grpo"]) == 7


def test_grpo_has_no_format_error_credit_or_mixed_widths_unless_asked(load_benchmark):
    """The recipe's GRPO is the paper's at one width by default; `--grpo-format-error-advantage`
    and `--grpo-train-widths` add the per-turn credit and the mixed widths."""
    recipe_module = load_benchmark("nano_recipe")

    def grpo(**options) -> list[str]:
        recipe = recipe_module.Recipe(out=Path("/nonexistent"), **options)
        return next(s.command for s, _ in recipe_module.stages(recipe) if s.name == "grpo")

    assert "--rollout.format-error-advantage" not in grpo()
    assert "--env.train-widths" not in grpo()
    command = grpo(grpo_format_error_advantage=1.0, grpo_train_widths=(1, 4))
    flag = command.index("--rollout.format-error-advantage")
    assert command[flag + 1] == "1.0"
    flag = command.index("--env.train-widths")
    assert command[flag + 1 : flag + 3] == ["1", "4"]


def test_the_teacher_makes_mistakes_only_when_asked(load_benchmark):
    """`--trace-mistakes` turns a share of the scripted teacher's calls into mistakes, with a
    seed of each width's own; by default the teacher never errs."""
    recipe_module = load_benchmark("nano_recipe")

    def traces(**options) -> dict[str, list[str]]:
        recipe = recipe_module.Recipe(out=Path("/nonexistent"), **options)
        return {s.name: s.command for s, _ in recipe_module.stages(recipe)
                if s.name.startswith("traces_")}

    assert all("--mistakes" not in c for c in traces().values())
    commands = traces(trace_mistakes=0.2)
    assert set(commands) == {"traces_w1", "traces_w2", "traces_w4", "traces_w8"}
    seeds = set()
    for command in commands.values():
        flag = command.index("--mistakes")
        assert command[flag + 1] == "0.2"
        seeds.add(command[command.index("--policy-seed") + 1])
    assert len(seeds) == 4
