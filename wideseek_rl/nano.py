"""A nano chat model for CPUs, built from a world and its traces (no download).

`build_nano_model(out_dir, NanoSpec(...), world=..., traces=[...])` writes a Hugging Face model
directory that `AutoModelForCausalLM`, the trainer and vLLM load:

- a byte-level BPE tokenizer trained with `tokenizers` on the world's pages and task queries and
  on every message of the given traces (`episodes.jsonl` of any run: the system prompts, tool
  calls, search results and answers the model will read and write), with the chat special tokens
  and the tool-call markup as single tokens, and the Qwen/Hermes chat template of the tiny test
  model (`wideseek_rl.tiny.CHAT_TEMPLATE`: tool calls as `<tool_call>` JSON, prefix-stable);
  with `--spec.isolate-spaces` every space is a token of its own, so a name has the same tokens
  in a list and in a JSON string (by default, GPT-2's way, " Norway" and "Norway" differ);
- a randomly initialised (seeded) Qwen3-shaped decoder of a few million parameters with tied
  embeddings, `max_context_tokens` positions, and heads of at least 32 dimensions (vLLM's CPU
  build needs that);
- optionally (`copy_drill=CopyDrill(steps=N)`, `--copy-drill.steps N`) trained first on the copy
  drill (`wideseek_rl.copydrill`), which teaches it to copy by content: the skill every
  WideSeek answer needs and that a model this small does not learn from transcripts alone. The
  model's `wideseek_nano.json` records the drill's curve and the model's induction score (next-
  token accuracy on the second half of repeated random token sequences; 0 before the drill).

The default `NanoSpec` (vocabulary 6,144, hidden 256, 4 layers of 4 heads × 64, 2 KV heads,
4,096 positions) has 4.7 M parameters: small enough that SFT and GRPO run on two CPU cores (see
`benchmarks/nano_recipe.py`). Any Hugging Face chat model (SmolLM2, Qwen3) goes through the same
recipe instead, with `--model.path`.

Command: `python -m wideseek_rl.nano --out models/nano --world WORLD --traces RUN …` (`--help`
lists the shape fields). A directory already built with the same spec and inputs is reused; one
built otherwise is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wideseek_rl.copydrill import CopyDrill, copyable_ids, induction_score, run_copy_drill
from wideseek_rl.tiny import train_chat_tokenizer, write_qwen3_model

META_FILE = "wideseek_nano.json"


@dataclass(frozen=True)
class NanoSpec:
    """Shape of the nano model and its tokenizer."""

    vocab_size: int = 6144
    """Tokens in the vocabulary, special and markup tokens included."""
    hidden_size: int = 256
    """Width of the residual stream."""
    num_layers: int = 4
    """Decoder layers."""
    num_heads: int = 4
    """Attention heads."""
    num_kv_heads: int = 2
    """Key/value heads (grouped-query attention)."""
    head_dim: int = 64
    """Dimensions per head (at least 32, for vLLM's CPU build)."""
    intermediate_size: int = 768
    """Hidden size of the MLP."""
    max_context_tokens: int = 4096
    """Positions of the model and the tokenizer's `model_max_length`."""
    max_corpus_chars: int = 20_000_000
    """The tokenizer is trained on at most this many characters of text."""
    isolate_spaces: bool = False
    """Every space is a token of its own, so a word has the same tokens after a space, a quote,
    a slash or a line start (a name in a list and the same name in a JSON string are the same
    tokens, which copying needs); about 1.5 times as many tokens per text. Off: GPT-2's
    pre-tokenization, where a word carries the space before it."""

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads",
                     "head_dim", "intermediate_size", "max_context_tokens", "max_corpus_chars"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"nano.{name} must be a positive int, got {value!r}")
        if self.head_dim < 32:
            raise ValueError(f"nano.head_dim must be at least 32 (vLLM's CPU build), got {self.head_dim}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"nano.num_heads ({self.num_heads}) must be a multiple of "
                             f"nano.num_kv_heads ({self.num_kv_heads})")
        if self.vocab_size < 512:
            raise ValueError(f"nano.vocab_size must be at least 512 (256 bytes plus merges), "
                             f"got {self.vocab_size}")

    def qwen3_shape(self) -> dict[str, Any]:
        """The Qwen3Config fields of this shape."""
        return {"hidden_size": self.hidden_size, "intermediate_size": self.intermediate_size,
                "num_hidden_layers": self.num_layers, "num_attention_heads": self.num_heads,
                "num_key_value_heads": self.num_kv_heads, "head_dim": self.head_dim,
                "max_position_embeddings": self.max_context_tokens}


def trace_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """`episodes.jsonl` files from run folders or file paths (each must exist)."""
    out = []
    for p in map(Path, paths):
        f = p / "episodes.jsonl" if p.is_dir() else p
        if not f.is_file():
            raise FileNotFoundError(f"{p}: no trace file (a run folder with episodes.jsonl, or "
                                    "an episodes.jsonl file)")
        out.append(f)
    return out


def corpus_texts(world: str | os.PathLike[str] | None, traces: Sequence[str | os.PathLike[str]],
                 max_chars: int) -> Iterator[str]:
    """Text to train the tokenizer on: every message of the traces (first: they are what the
    model reads and writes), then the world's task queries and pages, up to `max_chars`."""
    from wideseek_env.trace import iter_traces

    left = max_chars

    def take(text: str) -> str | None:
        nonlocal left
        if left <= 0 or not text:
            return None
        text = text[:left]
        left -= len(text)
        return text

    for f in trace_files(traces):
        for record in iter_traces(f):
            for agent in record.get("agents", []):
                for msg in agent.get("messages", []):
                    if (t := take(str(msg.get("content") or ""))) is not None:
                        yield t
    if world is None:
        return
    from wideseek_env.search.docstore import DocStore
    from wideseek_env.worlds import World, resolve_world

    w = World.load(resolve_world(str(world), progress=False))
    for split in ("train", "test"):
        for task in w.tasks(split):
            if (t := take(task.query)) is not None:
                yield t
    store = DocStore(w.path / "corpus")
    try:
        for page in store:
            if (t := take(f"{page.title}\n{page.text}")) is None:
                return
            yield t
    finally:
        store.close()


#: Fields added after models were built, with the value that means "as before": left out of the
#: digest at that value, so the models built before them keep their digest.
_LATER_FIELDS = {"isolate_spaces": False, "until_induction": None}


def _without_later_defaults(settings: Any) -> dict[str, Any]:
    return {k: v for k, v in asdict(settings).items()
            if not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])}


def _inputs_digest(spec: NanoSpec, world: Any, traces: Sequence[Any], seed: int,
                   drill: CopyDrill) -> str:
    """A digest of what the model is built from (spec, seed, drill, and the inputs' names and
    sizes)."""
    files = [(str(f.resolve()), f.stat().st_size) for f in trace_files(traces)]
    what = {"spec": _without_later_defaults(spec), "seed": seed, "world": str(world),
            "traces": files}
    if drill.steps:
        what["copy_drill"] = _without_later_defaults(drill)
    blob = json.dumps(what, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_nano_model(out_dir: str | os.PathLike[str], spec: NanoSpec = NanoSpec(), *,
                     world: str | os.PathLike[str] | None = None,
                     traces: Sequence[str | os.PathLike[str]] = (), seed: int = 0,
                     copy_drill: CopyDrill | None = None) -> Path:
    """Build (or reuse) the nano model in `out_dir` and return its path (see the module doc).

    With `copy_drill.steps` > 0 the random model is first trained on the copy drill
    (`wideseek_rl.copydrill`); its curve goes to the model's `wideseek_nano.json`, whose
    `induction` is the model's induction score either way."""
    if world is None and not traces:
        raise ValueError("the nano tokenizer needs text: give a world, traces, or both")
    out = Path(out_dir)
    copy_drill = copy_drill or CopyDrill()
    stamp = _inputs_digest(spec, world, traces, seed, copy_drill)
    if (out / META_FILE).is_file():
        if json.loads((out / META_FILE).read_text()).get("inputs") == stamp:
            return out
        raise FileExistsError(f"{out} holds a nano model built from other inputs; remove it first")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a nano-model directory")
    tokenizer = train_chat_tokenizer(corpus_texts(world, traces, spec.max_corpus_chars),
                                     spec.vocab_size, model_max_length=spec.max_context_tokens,
                                     isolate_spaces=spec.isolate_spaces)
    meta = {"inputs": stamp, "seed": seed, "spec": asdict(spec),
            "world": None if world is None else str(world),
            "traces": [str(f) for f in trace_files(traces)]}
    ids = copyable_ids(tokenizer)

    def train(model: Any) -> dict[str, Any]:
        record: dict[str, Any] = {}
        if copy_drill.steps:
            record["copy_drill"] = run_copy_drill(model, ids, copy_drill)
        record["induction"] = round(induction_score(model, ids), 4)
        return record

    return write_qwen3_model(out, tokenizer, spec.qwen3_shape(), seed=seed, meta_file=META_FILE,
                             meta=meta, train=train)


@dataclass(frozen=True)
class NanoCommand:
    """Build the nano model: tokenizer from a world and traces, random Qwen3-shaped weights."""

    out: Path
    """Output model directory."""
    world: str | None = None
    """A built world folder, or 'default' / 'default-easy'."""
    traces: tuple[str, ...] = ()
    """Run folders (or episodes.jsonl files) whose messages the tokenizer is trained on."""
    seed: int = 0
    """Seed of the weights."""
    spec: NanoSpec = field(default_factory=NanoSpec)
    """Shape of the model."""
    copy_drill: CopyDrill = field(default_factory=CopyDrill)
    """The copy drill run on the random model before it is saved (`--copy-drill.steps 0`: none)."""


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m wideseek_rl.nano --out DIR --world W --traces RUN …`."""
    import tyro

    cmd = tyro.cli(NanoCommand, args=list(argv) if argv is not None else None,
                   description=__doc__.split("\n\n")[0])
    try:
        path = build_nano_model(cmd.out, cmd.spec, world=cmd.world, traces=cmd.traces,
                                seed=cmd.seed, copy_drill=cmd.copy_drill)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from transformers import AutoConfig

    n = parameter_count(path)
    meta = json.loads((path / META_FILE).read_text())
    print(f"nano model: {path} ({n / 1e6:.2f} M parameters, "
          f"{AutoConfig.from_pretrained(path).vocab_size} tokens, induction score "
          f"{meta.get('induction', 'not measured')})")
    return 0


def parameter_count(path: str | os.PathLike[str]) -> int:
    """Parameters of a saved model (tied weights counted once)."""
    from safetensors import safe_open

    total = 0
    for f in sorted(Path(path).glob("*.safetensors")):
        with safe_open(str(f), "pt") as st:
            for name in st.keys():  # noqa: SIM118 - safe_open has no __iter__
                shape = st.get_slice(name).get_shape()
                n = 1
                for d in shape:
                    n *= d
                total += n
    return total


if __name__ == "__main__":
    raise SystemExit(main())
