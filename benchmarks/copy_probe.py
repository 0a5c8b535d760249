"""Can the nano model learn to copy? Positional against content-based copying, from random init.

The nano recipe's model must copy names from the query into its subtasks and values from pages
into its reports, found by *content* (what precedes them differs between the two places): an
induction-head circuit. This probe trains a randomly initialised model of the nano shape
(`wideseek_rl.nano.NanoSpec`, Qwen3-shaped; `--set field=value` overrides Qwen3Config fields) on
synthetic token sequences, 32 per step, loss on the copy only:

- ``fixed``: filler(10) · A · name · B · filler(30) · C · name — the name always at the same
  offset, so attending by position suffices;
- ``content``: filler(3–30) · A · name · B · filler(3–30) · C · name · D, names of 1–4 random
  tokens — only a lookup by content finds it.

`--name-vocab N` draws the names from N token ids only (the filler still from all): the small
pool the copy drill (`wideseek_rl.copydrill`) starts from.

Every `--every` steps it prints and records the accuracy of the first copied token (found only
by the lookup) and of the rest on 128 fresh sequences. Results:
``benchmarks/results/copy_probe_<task>[_<overrides>][_lr<lr> unless 1e-3][_names<N>].{json,md}``.

Usage::

    python benchmarks/copy_probe.py --task content --steps 4000 --lr 1e-3
    python benchmarks/copy_probe.py --task content --set num_attention_heads=8 head_dim=32
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
MARKERS = (5, 6, 7, 8)  # token ids used as the A, B, C, D markers (never sampled otherwise)
FIRST_ID = 300  # names and filler are drawn from ids FIRST_ID .. vocab - 1


def example(task: str, rng: random.Random, vocab: int,
            name_vocab: int = 0) -> tuple[list[int], list[int]]:
    def draw(n: int, pool: int = 0) -> list[int]:
        top = FIRST_ID + pool if pool else vocab
        return [rng.randrange(FIRST_ID, top) for _ in range(n)]

    a, b, c, d = MARKERS
    if task == "fixed":
        name, f1, f2 = draw(6), draw(10), draw(30)
        x = [*f1, a, *name, b, *f2, c, *name]
        return x, [-100] * (len(x) - len(name)) + name
    name = draw(rng.randint(1, 4), name_vocab)
    f1, f2 = draw(rng.randint(3, 30)), draw(rng.randint(3, 30))
    x = [*f1, a, *name, b, *f2, c, *name, d]
    return x, [-100] * (len(x) - len(name) - 1) + name + [d]


def main() -> int:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from wideseek_rl.nano import NanoSpec

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", choices=("fixed", "content"), default="content")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name-vocab", type=int, default=0,
                    help="draw names from only this many token ids (0: the whole vocabulary)")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="Qwen3Config overrides of the nano shape (integers)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    spec = NanoSpec()
    shape = spec.qwen3_shape()
    overrides = dict(kv.split("=", 1) for kv in args.set)
    for key, value in overrides.items():
        if key not in shape:
            raise SystemExit(f"error: --set {key}: not a field of the nano shape "
                             f"({', '.join(sorted(shape))})")
        shape[key] = int(value)
    vocab = spec.vocab_size
    model = Qwen3ForCausalLM(Qwen3Config(vocab_size=vocab, tie_word_embeddings=True, **shape))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)

    def batch(n: int):
        rows = [example(args.task, rng, vocab, args.name_vocab) for _ in range(n)]
        width = max(len(x) for x, _ in rows)
        x = torch.zeros((n, width), dtype=torch.long)
        y = torch.full((n, width), -100)
        for i, (xs, ys) in enumerate(rows):
            x[i, : len(xs)] = torch.tensor(xs)
            y[i, : len(ys)] = torch.tensor(ys)
        return x, y

    curve = []
    t0 = time.perf_counter()
    print(f"copy probe: task {args.task}, {sum(p.numel() for p in model.parameters()):,} "
          f"parameters, overrides {overrides or 'none'}", flush=True)
    for step in range(1, args.steps + 1):
        x, y = batch(args.batch)
        loss = model(input_ids=x, labels=y).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        if step % args.every == 0 or step == args.steps:
            with torch.no_grad():
                x, y = batch(128)
                pred = model(input_ids=x).logits[:, :-1].argmax(-1)
            target = y[:, 1:]
            copied = target != -100
            first = copied & (copied.cumsum(1) == 1)
            rest = copied & ~first & ~(target == MARKERS[3])
            ok = pred == target
            point = {"step": step, "loss": round(loss.item(), 4),
                     "first_token_acc": round(ok[first].float().mean().item(), 4),
                     "rest_acc": round(ok[rest].float().mean().item(), 4) if rest.any() else None,
                     "seconds": round(time.perf_counter() - t0, 1)}
            curve.append(point)
            print(json.dumps(point), flush=True)
    suffix = "".join(f"_{k}{v}" for k, v in sorted(overrides.items()))
    if args.lr != 1e-3:
        suffix += f"_lr{args.lr:g}"
    if args.name_vocab:
        suffix += f"_names{args.name_vocab}"
    stem = args.out / f"copy_probe_{args.task}{suffix}"
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"task": args.task, "lr": args.lr, "batch": args.batch, "steps": args.steps,
              "seed": args.seed, "threads": args.threads, "overrides": overrides,
              "name_vocab": args.name_vocab,
              "shape": shape, "curve": curve, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Copy probe: {args.task} copying, nano shape{suffix or ''}", "",
             f"lr {args.lr}, {args.batch} sequences per step, seed {args.seed}, "
             f"{args.threads} thread(s), {result['date']}", "",
             "| step | loss | first copied token acc | rest acc | s |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {p['step']} | {p['loss']} | {p['first_token_acc']} | {p['rest_acc']} | "
              f"{p['seconds']} |" for p in curve]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
