"""Run by `accelerate launch --num_processes 2` in test_train.py: two training steps of the tiny
model, then every rank writes a hash of its parameters to `<out>/params_rank<k>.json`."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

from wideseek_rl.config import PRESETS, OptimConfig, RolloutConfig
from wideseek_rl.envs import ToyEnvSpec
from wideseek_rl.train import train


def param_hash(model) -> str:
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    out = Path(sys.argv[1])
    config = replace(
        PRESETS["toy"][1],
        env=ToyEnvSpec(keywords=("blue", "apple", "plum")),
        rollout=RolloutConfig(tasks_per_step=3, group_size=2, max_new_tokens=4,
                              max_context_tokens=512),
        optim=OptimConfig(lr=1e-2, weight_decay=0.0, micro_batch_tokens=1024),
        steps=2, save_every=0, output_dir=out, progress=False, tensorboard=False, torch_threads=1,
    )
    result = train(config)
    from accelerate import PartialState
    from transformers import AutoModelForCausalLM

    rank = PartialState().process_index
    initial = AutoModelForCausalLM.from_pretrained(out / "tiny-model")
    (out / f"params_rank{rank}.json").write_text(json.dumps({
        "rank": rank, "world": PartialState().num_processes, "hash": param_hash(result.model),
        "initial_hash": param_hash(initial), "episodes": result.metrics["rollout/episodes"],
    }))


if __name__ == "__main__":
    main()
