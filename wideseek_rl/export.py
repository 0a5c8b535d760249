"""Export a training checkpoint as a Hugging Face model directory.

A run writes `final/` (a Hugging Face model directory) only at its end; its checkpoints
(`checkpoints/step_XXXXXXXX/`) hold the trainer's state for `--resume`, with the weights under
the trainer's wrapper (every key prefixed `model.`), which vLLM and `from_pretrained` cannot
read. This command turns one into a directory that `python -m wideseek_rl.evaluate --model`,
vLLM and `--model.path` take, for scoring a learning curve's points::

    python -m wideseek_rl.export runs/grpo/checkpoints/step_00000016 --out models/grpo_step16

The architecture and tokenizer come from the model the run started from (the run's
`config.json`, `model.path`); every weight must come from the checkpoint (tied weights apart),
else nothing is written and the error names the keys.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

WRAPPER_PREFIX = "model."


def _start_model(run_dir: Path) -> tuple[str, dict[str, str]]:
    config_file = run_dir / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"{config_file}: not found (a checkpoint lives in "
                                "RUN/checkpoints/step_XXXXXXXX, next to RUN/config.json)")
    model = json.loads(config_file.read_text()).get("model") or {}
    path = model.get("path")
    if not path:
        raise ValueError(f"{config_file}: no model.path")
    if path == "tiny":
        path = str(run_dir / "tiny-model")
    extra = {"gguf_file": model["gguf_file"]} if model.get("gguf_file") else {}
    return path, extra


def export_checkpoint(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the weights of `checkpoint` as a Hugging Face model directory `out`."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    ckpt, out = Path(checkpoint), Path(out)
    weights = ckpt / "model.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"{weights}: not found (give a checkpoint directory of "
                                "wideseek-train, RUN/checkpoints/step_XXXXXXXX)")
    path, extra = _start_model(ckpt.parent.parent)
    state = load_file(str(weights))
    foreign = sorted(k for k in state if not k.startswith(WRAPPER_PREFIX))
    if foreign:
        raise ValueError(f"{weights}: keys without the trainer's {WRAPPER_PREFIX!r} prefix: "
                         f"{foreign[:3]}")
    state = {k[len(WRAPPER_PREFIX):]: v for k, v in state.items()}
    config = AutoConfig.from_pretrained(path, **extra)
    model = AutoModelForCausalLM.from_config(config, dtype=next(iter(state.values())).dtype)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if unexpected or set(missing) - tied:
        raise ValueError(f"{weights} does not fit the model of {path}: missing "
                         f"{sorted(set(missing) - tied)[:3]}, unexpected {sorted(unexpected)[:3]}")
    model.tie_weights()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(path, **extra).save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path, help="RUN/checkpoints/step_XXXXXXXX")
    ap.add_argument("--out", type=Path, required=True, help="the model directory to write")
    args = ap.parse_args(argv)
    try:
        out = export_checkpoint(args.checkpoint, args.out)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
