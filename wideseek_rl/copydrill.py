"""The copy drill: teach a model from random init to copy by content (induction), on synthetic tokens.

Every answer in WideSeekEnv is a copy found by content: names from the query into delegations
and searches, values from pages into reports. A model trained from scratch on a few million
tokens of transcripts never learns it (`benchmarks/copy_probe.py`: a first copied token right
0.00 of the time after 2,700 steps when the copied tokens are drawn from the whole vocabulary).
What unlocks it is a small pool first: with names drawn from 64 token ids the nano shape copies
within a few hundred steps, and the circuit it learns (attend to what followed the earlier
occurrence of the current token, write that token) is then widened to the whole vocabulary.

The drill trains on two kinds of synthetic sequences of the model's own (non-special) tokens,
loss on the copies only:

- ``repeat``: a random span and then the same span again (the second copy from its second token
  on is predictable only by induction);
- ``lookup``: filler · A · name · B · filler · C · name · D with four fixed marker tokens (the
  first four ids): the name (1-4 tokens) is found by the marker before it, the simplest lookup by
  content and the stepping stone to the other two (a fixed query feature matching a fixed key);
- ``recall``: filler · cue · name · filler · cue · name: a random cue token repeated, the name
  after it must be copied, its first token found only by what followed the cue before.

The pool of token ids the spans and names are drawn from starts at `pool_start` and doubles
each time the copies of the last steps are right often enough (a running mean of the batches'
copy accuracy at least `grow_at`) until it is the whole vocabulary: a curriculum that waits for
the circuit to form at each size instead of a fixed schedule. `induction_score` is the figure the
nano model's card reports: next-token accuracy on the second half of repeated random sequences
(0 for a model that cannot copy; the first half is unpredictable by construction).
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CopyDrill:
    """Sizes of the copy drill (`steps=0` skips it)."""

    steps: int = 0
    """Optimizer steps (0: no drill)."""
    batch: int = 32
    """Sequences per step."""
    lr: float = 1e-3
    """Adam learning rate (constant; 2e-3 already slows copying several-fold on the nano shape)."""
    pool_start: int = 64
    """Token ids the copied spans are drawn from at the start."""
    grow_at: float = 0.5
    """Running copy accuracy at which the pool doubles (until it is the whole vocabulary)."""
    lookup_share: float = 0.0
    """Share of `lookup` sequences."""
    recall_share: float = 1.0
    """Share of `recall` sequences (the rest are `repeat`)."""
    seed: int = 0
    """Seed of the sequences."""
    until_induction: float | None = None
    """Stop once the induction score reaches this (checked at the start and at every point of
    the curve; `steps` is then the most): how long the drill takes to widen to the whole
    vocabulary varies from run to run (the recipe's seed reached it in 900 steps on one
    machine and was still at a pool of 512 ids after 1,200 on another), so a fixed count can
    stop before the model copies. None: all `steps`."""

    def __post_init__(self) -> None:
        for name in ("steps",):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"copy_drill.{name} must be an int >= 0, got {getattr(self, name)!r}")
        for name in ("batch", "pool_start"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"copy_drill.{name} must be a positive int, "
                                 f"got {getattr(self, name)!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"copy_drill.lr must be a positive number, got {self.lr!r}")
        if not 0.0 < self.grow_at <= 1.0:
            raise ValueError(f"copy_drill.grow_at must be in (0, 1], got {self.grow_at!r}")
        for name in ("lookup_share", "recall_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"copy_drill.{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.until_induction is not None and not 0.0 <= self.until_induction <= 1.0:
            raise ValueError("copy_drill.until_induction must be in [0, 1] or None, "
                             f"got {self.until_induction!r}")
        if self.lookup_share + self.recall_share > 1.0 + 1e-9:
            raise ValueError("copy_drill.lookup_share + copy_drill.recall_share must be at most 1, "
                             f"got {self.lookup_share} + {self.recall_share}")


IGNORE = -100


def repeat_example(rng: random.Random, ids: Sequence[int], pool: int, *,
                   length: tuple[int, int] = (10, 40)) -> tuple[list[int], list[int]]:
    """A random span of `length` tokens from the first `pool` of `ids`, twice; labels on the
    second copy's tokens after its first."""
    span = [ids[rng.randrange(pool)] for _ in range(rng.randint(*length))]
    return [*span, *span], [IGNORE] * (len(span) + 1) + span[1:]


def lookup_example(rng: random.Random, ids: Sequence[int], pool: int, *,
                   name_len: tuple[int, int] = (1, 4),
                   filler: tuple[int, int] = (3, 30)) -> tuple[list[int], list[int]]:
    """filler · A · name · B · filler · C · name · D (A-D the first four of `ids`, the name from
    the first `pool` after them, the filler from all); labels on the second name and D."""
    a, b, c, d = ids[:4]
    rest = ids[4:]

    def draw(n: int, top: int) -> list[int]:
        return [rest[rng.randrange(top)] for _ in range(n)]

    name = draw(rng.randint(*name_len), max(1, min(pool, len(rest))))
    x = [*draw(rng.randint(*filler), len(rest)), a, *name, b,
         *draw(rng.randint(*filler), len(rest)), c, *name, d]
    return x, [IGNORE] * (len(x) - len(name) - 1) + name + [d]


def recall_example(rng: random.Random, ids: Sequence[int], pool: int, *,
                   name_len: tuple[int, int] = (1, 4),
                   filler: tuple[int, int] = (3, 30)) -> tuple[list[int], list[int]]:
    """filler · cue · name · filler · cue · name, every token a random one of `ids` (the cue and
    the name from the first `pool`, the filler never the cue); labels on the second name."""
    def draw(n: int, top: int) -> list[int]:
        return [ids[rng.randrange(top)] for _ in range(n)]

    cue = draw(1, pool)
    name = draw(rng.randint(*name_len), pool)

    def fill() -> list[int]:  # never the cue, which must point at one place only
        return [t if t != cue[0] else ids[(ids.index(t) + 1) % len(ids)]
                for t in draw(rng.randint(*filler), len(ids))]

    x = [*fill(), *cue, *name, *fill(), *cue, *name]
    return x, [IGNORE] * (len(x) - len(name)) + name


def drill_batch(drill: CopyDrill, rng: random.Random, ids: Sequence[int], pool: int,
                n: int) -> tuple[Any, Any]:
    """`n` padded sequences (input ids, labels) as tensors."""
    import torch

    def one() -> tuple[list[int], list[int]]:
        u = rng.random()
        if u < drill.lookup_share:
            return lookup_example(rng, ids, pool)
        if u < drill.lookup_share + drill.recall_share:
            return recall_example(rng, ids, pool)
        return repeat_example(rng, ids, pool)

    rows = [one() for _ in range(n)]
    width = max(len(x) for x, _ in rows)
    x = torch.zeros((n, width), dtype=torch.long)
    y = torch.full((n, width), IGNORE, dtype=torch.long)
    for i, (xs, ys) in enumerate(rows):
        x[i, : len(xs)] = torch.tensor(xs)
        y[i, : len(ys)] = torch.tensor(ys)
    return x, y


def induction_score(model: Any, ids: Sequence[int], *, sequences: int = 64, length: int = 40,
                    seed: int = 12345) -> float:
    """Next-token accuracy on the second half of `sequences` random sequences of `length` tokens
    of `ids` repeated twice (greedy; 0 for a model that does not copy)."""
    import torch

    rng = random.Random(seed)
    x = torch.tensor([[ids[rng.randrange(len(ids))] for _ in range(length)] * 2
                      for _ in range(sequences)])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            pred = model(input_ids=x).logits[:, length:-1].argmax(-1)
    finally:
        model.train(was_training)
    return (pred == x[:, length + 1:]).float().mean().item()


def copyable_ids(tokenizer: Any) -> list[int]:
    """Every id of `tokenizer` that is not a special or added token."""
    added = set(tokenizer.get_added_vocab().values()) | set(tokenizer.all_special_ids)
    return [i for i in range(len(tokenizer)) if i not in added]


def run_copy_drill(model: Any, ids: Sequence[int], drill: CopyDrill, *,
                   every: int = 50, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train `model` in place on the drill; return its record (settings, curve, seconds).

    The curve has, every `every` steps and at the end, the step, the pool, the loss and the
    induction score on the whole of `ids`. With `drill.until_induction` the drill ends at the
    first point of the curve (step 0 included) whose score reaches it; the record's `stopped`
    says why it ended ("induction" or "steps")."""
    import torch

    if not ids:
        raise ValueError("the copy drill needs token ids to copy")
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    rng = random.Random(drill.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=drill.lr, weight_decay=0.0)
    model.train()
    curve = [{"step": 0, "pool": 0, "loss": None, "copy_acc": None,
              "induction": round(induction_score(model, ids), 4)}]
    pool, running = min(drill.pool_start, len(ids)), 0.0
    t0 = time.perf_counter()

    def reached() -> bool:
        return drill.until_induction is not None and curve[-1]["induction"] >= drill.until_induction

    for step in range(1, 0 if reached() else drill.steps + 1):
        x, y = drill_batch(drill, rng, ids, pool, drill.batch)
        out = model(input_ids=x, labels=y)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            target = y[:, 1:]
            mask = target != IGNORE
            acc = (out.logits[:, :-1].argmax(-1)[mask] == target[mask]).float().mean().item()
        running = 0.9 * running + 0.1 * acc
        if step % every == 0 or step == drill.steps:
            point = {"step": step, "pool": pool, "loss": round(out.loss.item(), 4),
                     "copy_acc": round(running, 4),
                     "induction": round(induction_score(model, ids), 4),
                     "seconds": round(time.perf_counter() - t0, 1)}
            curve.append(point)
            log(f"copy drill: step {step}/{drill.steps}, pool {pool}, loss {point['loss']}, "
                f"copy accuracy {point['copy_acc']}, induction {point['induction']}, "
                f"{point['seconds']} s")
            if reached():
                break
        if running >= drill.grow_at and pool < len(ids):
            pool, running = min(2 * pool, len(ids)), 0.0
    model.eval()
    return {"settings": asdict(drill), "curve": curve,
            "stopped": "induction" if reached() else "steps",
            "seconds": round(time.perf_counter() - t0, 1)}


@dataclass(frozen=True)
class CopyDrillCommand:
    """Run the copy drill on a saved Hugging Face causal LM and save the drilled model."""

    model: str
    """Model directory to start from (any causal LM with its tokenizer)."""
    out: str
    """Directory the drilled model, its tokenizer and `copy_drill.json` (the curve) go to."""
    drill: CopyDrill = CopyDrill(steps=1200)
    """The drill."""
    every: int = 50
    """Steps between two points of the curve."""
    threads: int | None = None
    """Torch threads (None: torch's default)."""


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m wideseek_rl.copydrill --model DIR --out DIR [--drill.steps N …]`."""
    import json
    from pathlib import Path

    import tyro

    cmd = tyro.cli(CopyDrillCommand, args=list(argv) if argv is not None else None,
                   description=__doc__.split("\n\n")[0])
    out = Path(cmd.out)
    if out.exists() and any(out.iterdir()):
        print(f"error: {out} exists and is not empty", file=sys.stderr)
        return 2
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if cmd.threads:
        torch.set_num_threads(cmd.threads)
    try:
        tokenizer = AutoTokenizer.from_pretrained(cmd.model)
        model = AutoModelForCausalLM.from_pretrained(cmd.model, dtype=torch.float32)
    except (OSError, ValueError) as err:
        print(f"error: --model {cmd.model}: {err}", file=sys.stderr)
        return 2
    record = run_copy_drill(model, copyable_ids(tokenizer), cmd.drill, every=cmd.every)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "copy_drill.json").write_text(json.dumps(record, indent=1) + "\n")
    last = record["curve"][-1]
    print(f"copy drill: {out} ({last['step']} steps, pool {last['pool']}, induction score "
          f"{last['induction']}, {record['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
