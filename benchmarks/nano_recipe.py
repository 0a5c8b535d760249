"""The nano recipe: scripted traces → SFT → multi-agent GRPO → evaluation, on two CPU cores.

Every stage is the project's own command, run as a child process whose wall time, CPU time
(user + system, from `wait4`) and peak resident memory are recorded:

1. **world**: the easy tier of the default world (`build_default_world(tier="easy")`: templated
   pages that state each attribute in the query's words), with short tasks (`--rows`, 2-4 rows),
   `--max-entities-per-domain` entities per domain and `--max-other-pages` unrelated pages; its
   test split holds out `--holdout` `entities` (a quarter of every domain's entities, asked about
   only in test tasks that name them: the default) or whole `domains` (a model trained from
   scratch on three domains meets two others it has never read about);
2. **traces**: `wideseek eval --policy scripted` on the train split at every `--trace-widths`
   width (one entity per subagent; lead and subagent turn budgets `--lead-turns`,
   `--subagent-turns`, sized for a 4k context);
3. **nano**: `python -m wideseek_rl.nano` builds the tokenizer (world + traces) and the model,
   and trains it on the copy drill (`wideseek_rl.copydrill`: synthetic sequences in which a
   name follows a repeated cue) until its induction score reaches `--copy-until` (at most
   `--copy-steps` steps), which teaches the random model to copy by content -- what every
   answer needs and what transcripts alone did not teach it;
4. **lm**: `wideseek-train nano-sft --sft.train-on all` for `--lm-steps` steps: language modelling
   on the whole transcripts (task, tool results and replies), where most tokens are copies of
   earlier ones (0 steps skips it);
5. **sft**: `wideseek-train nano-sft` from the warm-up's model on the replies only (episodes with
   item F1 ≥ `--sft-min-f1`), `--sft-steps` steps at `--sft-lr`; then, if asked, **first** and
   **first_sys**: the same on every agent's first reply alone (`--sft.max-replies 1`), the turns
   that copy names, first without the system prompts (`--first-reply-steps`, short rows) and then
   with them (`--first-reply-system-steps`), as an episode shows them, and **resft**: SFT again
   on all replies (`--resft-steps`), which the first-reply stages unlearn, and **answers**: SFT
   on all replies with each agent's last one (the lead's table, the reports) weighing
   `--answer-weight` (`--answer-steps`);
6. **grpo**: `wideseek-train nano-grpo` from the last of those models (the "SFT model") (the paper's reward and turn
   selection) at width `--grpo-width`, evaluating `--grpo-eval-tasks` test tasks every few steps;
7. **eval**: the scripted teacher (`wideseek eval`), the SFT and the GRPO model
   (`python -m wideseek_rl.evaluate`, greedy) on `--eval-tasks` held-out test tasks at every
   `--eval-widths` width.

Results: item F1 with 95 % confidence intervals, format-error rate (of turns), subagents used and
critical-path turns per policy and width, the SFT loss and GRPO curves, and each stage's time and
memory, in `benchmarks/results/nano_recipe.{json,md,png}`. A stage whose output exists is
skipped (its earlier measurement is kept), so a killed recipe continues where it stopped.
`--quick` is the few-minute version the test suite runs (tiny shapes, a handful of tasks).

    nice -n 10 python benchmarks/nano_recipe.py --out runs/nano_recipe
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent
SUPERVISED = ("lm", "sft", "first", "first_sys", "resft", "answers")
"""The supervised stages, in order; each starts from the model of the one before it that ran."""


@dataclass(frozen=True)
class Recipe:
    """Sizes of the nano recipe (the defaults are the measured run)."""

    out: Path = Path("runs/nano_recipe")
    """Working folder (world, traces, models, runs, logs)."""
    results: Path = field(default_factory=lambda: RESULTS / "nano_recipe")
    """Results stem: `.json`, `.md` and `.png` are written."""
    quick: bool = False
    """The minutes-long version: tiny shapes, a few tasks, one or two steps per stage."""
    seed: int = 0
    """Seed of the world, the model and training (supervised stage k of `SUPERVISED` uses seed
    + k, so that each stage reads rows the one before it has not: `stage_seed`)."""
    rows: tuple[int, int] = (2, 4)
    """Rows per task (min, max)."""
    max_entities_per_domain: int = 150
    """Entities per domain of the world."""
    tasks_scale: float = 0.5
    """Scale of the number of tasks per domain."""
    max_other_pages: int = 2000
    """Unrelated pages in the corpus."""
    holdout: str = "entities"
    """What the test split holds out: "entities" (of the training domains) or "domains"."""
    lead_turns: int = 3
    """Turns of the lead: two delegations and the answer."""
    subagent_turns: int = 4
    """Turns of a subagent: search, access, report and one spare."""
    max_context_tokens: int = 4096
    """Context of every agent (and positions of the model)."""
    trace_widths: tuple[int, ...] = (1, 2, 4, 8)
    """Widths of the scripted traces."""
    trace_tasks: int | None = None
    """Training tasks per trace width (None: the whole train split)."""
    trace_mistakes: float = 0.0
    """Share of the scripted teacher's tool calls turned into deliberate mistakes it recovers
    from on its next turn (`wideseek eval --mistakes`); SFT keeps them as context and trains on
    the recovery (`sft.skip_error_replies`). 0: the teacher never errs."""
    sft_min_f1: float = 0.5
    """Rejection sampling: SFT keeps episodes with item F1 at least this."""
    copy_steps: int = 4000
    """Most steps of the copy drill the nano model is built with (`--copy-drill.steps`; 0: none):
    synthetic sequences that teach the random model to copy by content (wideseek_rl.copydrill)."""
    copy_until: float | None = 0.8
    """End the drill once the model's induction score reaches this (`--copy-drill.until-induction`;
    `copy_steps` is then the most): how many steps widening the copies to the whole vocabulary
    takes varies from run to run. None: exactly `copy_steps`."""
    isolate_spaces: bool = False
    """Build the tokenizer with every space a token of its own (`--spec.isolate-spaces`), so a
    name has the same tokens in the query's list and in a JSON string."""
    rename_entities: float = 0.0
    """Share of the warm-up's and SFT's episodes whose entities get made-up names
    (`--sft.rename-entities`): names the model cannot memorise, only copy."""
    lm_steps: int = 100
    """Steps of the language-modelling warm-up on whole transcripts (16 rows each; 0: none)."""
    lm_lr: float = 1e-3
    """Peak learning rate of the warm-up."""
    sft_steps: int = 150
    """SFT steps on the replies (16 agent rows each), from the warm-up's model."""
    sft_lr: float = 1e-3
    """Peak learning rate of SFT."""
    first_reply_steps: int = 0
    """Steps, after SFT, on every agent's first reply alone, without its system prompt
    (`--sft.max-replies 1 --sft.drop-system`, 32 rows each; 0: none): the turns that copy the
    query's names into the subtasks and a subtask's name into the search, on short rows."""
    first_reply_lr: float = 1e-3
    """Peak learning rate of the first-reply stage."""
    first_reply_system_steps: int = 0
    """Steps, after that, on the first replies with their system prompts, as an episode shows
    them (`--sft.max-replies 1`, 32 rows each; 0: none): a model drilled without the prompts
    copies less with them."""
    first_reply_system_lr: float = 5e-4
    """Peak learning rate of the first-reply stage with system prompts."""
    resft_steps: int = 0
    """Steps of SFT again on all replies, after the first-reply stages (16 agent rows each; 0:
    none): training on first replies alone unlearns the later turns (reading a page, reporting,
    the answer), and this brings them back while the copies stay."""
    resft_lr: float = 5e-4
    """Peak learning rate of SFT again."""
    answer_steps: int = 0
    """Steps, last of the supervised stages, on all replies with each agent's last reply (the
    lead's answer table, a subagent's report) weighing `answer_weight` (`--sft.last-reply-weight`,
    16 agent rows each; 0: none): the header of the answer's table is what most answers miss."""
    answer_weight: float = 4.0
    """Loss weight of each agent's last reply in the answers stage (the other replies weigh 1)."""
    answer_lr: float = 5e-4
    """Peak learning rate of the answers stage."""
    grpo_width: int = 4
    """Width of the GRPO episodes."""
    grpo_steps: int = 12
    """GRPO steps (`grpo_tasks` tasks × G = 8 episodes each)."""
    grpo_tasks: int = 2
    """Tasks per GRPO step (each one a group of 8 episodes)."""
    grpo_skip_without_signal: bool = False
    """No optimiser step in a GRPO step without a reward spread in any group
    (`--loss.skip-steps-without-signal`; off: the reference's rule)."""
    grpo_train_widths: tuple[int, ...] = ()
    """Train GRPO at several widths (`--env.train-widths`: each task at one of them, evaluated
    at `grpo_width`); empty: every task at `grpo_width`."""
    grpo_format_error_advantage: float | None = None
    """When set to c: GRPO trains every turn the env counted as a format error at advantage −c
    (`--rollout.format-error-advantage`; not the paper's, which has no per-turn credit)."""
    grpo_eval_tasks: int = 40
    """Test tasks evaluated every 4 GRPO steps (the learning curve)."""
    eval_widths: tuple[int, ...] = (1, 4, 8)
    """Widths of the final evaluation."""
    eval_tasks: int = 200
    """Held-out test tasks of the final evaluation (one greedy episode each)."""
    threads: int = 2
    """Torch threads of the training and evaluation processes."""
    engine: str = "vllm"
    """Generation engine of GRPO's rollouts and of the models' evaluation: "vllm" (in process,
    on the CPU: about 3.5 times the episodes per second of "hf" here) or "hf"."""

    def quick_version(self) -> Recipe:
        """The test-suite sizes."""
        from dataclasses import replace

        return replace(self, max_entities_per_domain=30, tasks_scale=0.02, max_other_pages=50,
                       trace_widths=(2,), trace_tasks=6, sft_min_f1=0.0, copy_steps=2, lm_steps=1,
                       sft_steps=2, first_reply_steps=min(self.first_reply_steps, 1),
                       first_reply_system_steps=min(self.first_reply_system_steps, 1),
                       resft_steps=min(self.resft_steps, 1),
                       answer_steps=min(self.answer_steps, 1),
                       grpo_width=2, grpo_steps=1, grpo_eval_tasks=2, eval_widths=(1, 2),
                       eval_tasks=2, threads=1)


@dataclass
class Stage:
    """One measured child process."""

    name: str
    command: list[str]
    wall_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_gib: float = 0.0


def run_stage(stage: Stage, log_dir: Path) -> Stage:
    """Run `stage.command` (stdout and stderr to its log), measure it, fail loudly."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{stage.name}.log"
    print(f"[nano-recipe] {stage.name}: {' '.join(stage.command)}", flush=True)
    env = {"VLLM_CPU_KVCACHE_SPACE": "2", "TORCH_COMPILE_DISABLE": "1", **os.environ,
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    with open(log, "wb") as f:
        proc = subprocess.Popen(stage.command, stdout=f, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    stage.wall_s = time.perf_counter() - t0
    stage.cpu_s = usage.ru_utime + usage.ru_stime
    stage.max_rss_gib = usage.ru_maxrss / 2**20
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"stage {stage.name} failed (exit {proc.returncode}); {log}:\n{tail}")
    print(f"[nano-recipe] {stage.name}: {stage.wall_s:.0f} s wall, {stage.cpu_s:.0f} s CPU, "
          f"{stage.max_rss_gib:.2f} GiB peak", flush=True)
    return stage


def stage_seed(r: Recipe, name: str) -> int:
    """The seed of supervised stage `name`: the recipe's seed plus the stage's place in
    `SUPERVISED`. A stage's seed orders its row stream and draws its renamed names, so with one
    seed for all, every stage would start over on the rows the stage before it trained on first
    (in a run of a few hundred steps, the same quarter of the trace set each time)."""
    return r.seed + SUPERVISED.index(name)


def stages(r: Recipe) -> list[tuple[Stage, Path]]:
    """Every stage with the path whose existence means it is done."""
    out, py = r.out.resolve(), sys.executable
    world, traces = out / "world", [out / "traces" / f"w{w}" for w in r.trace_widths]
    budgets = ["--lead-turns", str(r.lead_turns), "--subagent-turns", str(r.subagent_turns),
               "--max-context-tokens", str(r.max_context_tokens)]
    build = (f"from wideseek_env.worlds import build_default_world; build_default_world("
             f"{str(world)!r}, seed={r.seed}, tier='easy', max_entities_per_domain="
             f"{r.max_entities_per_domain}, tasks_scale={r.tasks_scale}, max_other_pages="
             f"{r.max_other_pages}, rows={tuple(r.rows)}, holdout={r.holdout!r}, progress=False)")
    todo = [(Stage("world", [py, "-c", build]), world / "world.json")]
    for w, path in zip(r.trace_widths, traces):
        limit = ["--limit", str(r.trace_tasks)] if r.trace_tasks else []
        todo.append((Stage(f"traces_w{w}", [
            str(BIN / "wideseek"), "eval", "--world", str(world), "--split", "train", "--policy",
            "scripted", "--entities-per-subtask", "1", "--width", str(w), *budgets, *limit,
            *(["--mistakes", str(r.trace_mistakes), "--policy-seed", str(r.seed + w)]
              if r.trace_mistakes else []),
            "--seed", str(r.seed), "--no-progress", "--out", str(path)]), path / "summary.json"))
    shape = ["--spec.vocab-size", "1024", "--spec.hidden-size", "64", "--spec.num-layers", "2",
             "--spec.num-heads", "2", "--spec.num-kv-heads", "1", "--spec.head-dim", "32",
             "--spec.intermediate-size", "128"] if r.quick else []
    todo.append((Stage("nano", [py, "-m", "wideseek_rl.nano", "--out", str(out / "nano"),
                                "--world", str(world), "--traces", *map(str, traces),
                                "--seed", str(r.seed), "--spec.max-context-tokens",
                                str(r.max_context_tokens), *shape,
                                "--copy-drill.steps", str(r.copy_steps),
                                *(["--copy-drill.until-induction", str(r.copy_until)]
                                  if r.copy_until is not None else []),
                                *(["--spec.isolate-spaces"] if r.isolate_spaces else [])]),
                 out / "nano" / "config.json"))
    common = ["--env.world", str(world), "--no-progress",
              "--torch-threads", str(r.threads), "--rollout.max-context-tokens",
              str(r.max_context_tokens), "--env.config.lead-max-turns", str(r.lead_turns),
              "--env.config.subagent-max-turns", str(r.subagent_turns)]
    sft_extra = ["--save-every", "1"] if r.quick else []
    first = ["--sft.max-replies", "1"]
    start = out / "nano"
    for name, steps, lr, train_on, rows, extra in (
            ("lm", r.lm_steps, r.lm_lr, "all", 16, []),
            ("sft", r.sft_steps, r.sft_lr, "assistant", 16, []),
            ("first", r.first_reply_steps, r.first_reply_lr, "assistant", 32,
             [*first, "--sft.drop-system"]),
            ("first_sys", r.first_reply_system_steps, r.first_reply_system_lr, "assistant", 32,
             first),
            ("resft", r.resft_steps, r.resft_lr, "assistant", 16, []),
            ("answers", r.answer_steps, r.answer_lr, "assistant", 16,
             ["--sft.last-reply-weight", str(r.answer_weight)])):
        assert name in SUPERVISED
        if not steps:
            continue
        todo.append((Stage(name, [
            str(BIN / "wideseek-train"), "nano-sft", "--model.path", str(start),
            "--output-dir", str(out / name), *common, "--seed", str(stage_seed(r, name)),
            "--sft.traces", *map(str, traces),
            "--sft.min-score", str(r.sft_min_f1), "--sft.train-on", train_on,
            "--sft.rows-per-step", str(4 if r.quick else rows), *extra,
            "--steps", str(steps), "--optim.lr", str(lr),
            *(["--sft.rename-entities", str(r.rename_entities)] if r.rename_entities else []),
            *sft_extra]),
            out / name / "final" / "config.json"))
        start = out / name / "final"
    sft_final = start
    grpo_extra = ["--rollout.tasks-per-step", "1", "--rollout.group-size", "2",
                  "--rollout.max-new-tokens", "16", "--eval-every", "1"] if r.quick else []
    todo.append((Stage("grpo", [str(BIN / "wideseek-train"), "nano-grpo", "--model.path",
                                str(sft_final), "--output-dir", str(out / "grpo"),
                                *common, "--seed", str(r.seed),
                                "--env.config.width", str(r.grpo_width), "--steps",
                                str(r.grpo_steps), "--eval-tasks", str(r.grpo_eval_tasks),
                                "--rollout.tasks-per-step", str(r.grpo_tasks),
                                *(["--loss.skip-steps-without-signal"]
                                  if r.grpo_skip_without_signal else []),
                                *(["--env.train-widths", *map(str, r.grpo_train_widths)]
                                  if r.grpo_train_widths else []),
                                *(["--rollout.format-error-advantage",
                                   str(r.grpo_format_error_advantage)]
                                  if r.grpo_format_error_advantage is not None else []),
                                "--engine.kind", r.engine, *(["--engine.vllm-enforce-eager"]
                                                             if r.engine == "vllm" else []),
                                *grpo_extra]),
                 out / "grpo" / "final" / "config.json"))
    for w in r.eval_widths:
        path = out / "eval" / "scripted" / f"w{w}"
        todo.append((Stage(f"eval_scripted_w{w}", [
            str(BIN / "wideseek"), "eval", "--world", str(world), "--split", "test", "--policy",
            "scripted", "--entities-per-subtask", "1", "--width", str(w), *budgets, "--limit",
            str(r.eval_tasks), "--seed", str(r.seed), "--no-progress", "--out", str(path)]),
            path / "summary.json"))
    new_tokens = ["--max-new-tokens", "16"] if r.quick else []
    for name, model in (("sft", sft_final), ("grpo", out / "grpo" / "final")):
        done = out / "eval" / name / f"w{r.eval_widths[-1]}" / "summary.json"
        todo.append((Stage(f"eval_{name}", [
            py, "-m", "wideseek_rl.evaluate", "--model", str(model), "--world", str(world),
            "--split", "test", "--widths", *map(str, r.eval_widths), "--limit", str(r.eval_tasks),
            *budgets, "--seed", str(r.seed), "--torch-threads", str(r.threads), "--no-progress",
            "--engine", r.engine,
            *new_tokens, "--out", str(out / "eval" / name)]), done))
    return todo


def run(r: Recipe) -> dict[str, Any]:
    """Run (or continue) every stage; return the measurements and results."""
    r.out.mkdir(parents=True, exist_ok=True)
    record_file = r.out / "stages.json"
    done: dict[str, Any] = json.loads(record_file.read_text()) if record_file.is_file() else {}
    for stage, marker in stages(r):
        if stage.name in done and marker.exists():
            print(f"[nano-recipe] {stage.name}: done before, skipped", flush=True)
            continue
        if stage.name in (*SUPERVISED, "grpo") and (r.out / stage.name).exists():
            shutil.rmtree(r.out / stage.name)  # an interrupted run: start the stage again
        done[stage.name] = asdict(run_stage(stage, r.out / "logs"))
        record_file.write_text(json.dumps(done, indent=1))
    from nano_recipe_report import collect

    return collect(r, done)


def main(argv: list[str] | None = None) -> int:
    import tyro

    r = tyro.cli(Recipe, args=argv)
    if r.quick:
        r = r.quick_version()
    from nano_recipe_report import write

    write(r, run(r))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
