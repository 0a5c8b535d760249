"""The copy drill (`wideseek_rl.copydrill`): its sequences label exactly the copies, its pool
grows only when the copies are learnt, and the induction score measures copying."""

from __future__ import annotations

import json
import random

import pytest

from wideseek_rl.copydrill import (
    IGNORE,
    CopyDrill,
    induction_score,
    lookup_example,
    recall_example,
    repeat_example,
    run_copy_drill,
)

IDS = list(range(100, 400))


def labelled(y: list[int]) -> list[tuple[int, int]]:
    return [(i, t) for i, t in enumerate(y) if t != IGNORE]


def test_repeat_labels_the_second_copy_after_its_first_token():
    rng = random.Random(0)
    for _ in range(100):
        x, y = repeat_example(rng, IDS, 8)
        n = len(x) // 2
        assert len(y) == len(x) and x[:n] == x[n:] and set(x) <= set(IDS[:8])
        assert labelled(y) == [(i, x[i]) for i in range(n + 1, 2 * n)]


def test_lookup_and_recall_label_exactly_the_second_name():
    rng = random.Random(1)
    a, b, c, d = IDS[:4]
    for _ in range(100):
        x, y = lookup_example(rng, IDS, 5)
        assert x.count(a) == x.count(b) == x.count(c) == x.count(d) == 1
        name = x[x.index(a) + 1: x.index(b)]
        assert 1 <= len(name) <= 4 and set(name) <= set(IDS[4:9])
        assert x[x.index(c) + 1:] == [*name, d]
        assert labelled(y) == [(i, x[i]) for i in range(x.index(c) + 1, len(x))]

        x, y = recall_example(rng, IDS, 5)
        labels = labelled(y)
        start = labels[0][0]
        name = [t for _, t in labels]
        cue = x[start - 1]
        assert cue in IDS[:5] and set(name) <= set(IDS[:5])
        assert [i for i, _ in labels] == list(range(start, len(x)))  # the name ends the sequence
        first = x.index(cue)  # the first occurrence of the cue is followed by the same name
        assert first < start - 1 and x[first + 1: first + 1 + len(name)] == name


class Inductor:
    """A perfect induction 'model': predicts the token that followed the last earlier occurrence
    of the current token (and token 0 when there is none)."""

    training = False

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def __call__(self, input_ids):
        import torch

        b, n = input_ids.shape
        logits = torch.zeros((b, n, 500))
        for r in range(b):
            row = input_ids[r].tolist()
            for i, t in enumerate(row):
                j = max((k for k in range(i) if row[k] == t), default=None)
                logits[r, i, row[j + 1] if j is not None else 0] = 1.0

        class Out:
            pass

        out = Out()
        out.logits = logits
        return out


def test_the_induction_score_is_one_for_a_perfect_inductor_and_zero_for_a_random_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from wideseek_rl.copydrill import copyable_ids

    # sequences of 40 distinct-ish tokens from 300 ids: the inductor gets every repeated token
    # whose token did not occur twice in the first half; 0.9 is far above any other predictor.
    assert induction_score(Inductor(), IDS, sequences=8) > 0.9
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = copyable_ids(AutoTokenizer.from_pretrained(tiny_model_dir))
    assert induction_score(model, ids, sequences=8) < 0.1


def test_copyable_ids_leave_out_special_and_markup_tokens(tiny_model_dir):
    from transformers import AutoTokenizer

    from wideseek_rl.copydrill import copyable_ids

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = copyable_ids(tok)
    names = set(tok.convert_ids_to_tokens(ids))
    assert "<|im_end|>" not in names and "<tool_call>" not in names
    assert len(ids) == len(tok) - len(set(tok.get_added_vocab().values()))


def test_the_pool_grows_only_when_the_copies_are_learnt(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    ids = list(range(50, 450))
    # With two ids to copy from, guessing alone is right about half the time: the pool grows.
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    record = run_copy_drill(model, ids, CopyDrill(steps=40, batch=8, pool_start=2, grow_at=0.3),
                            every=10, log=lambda _: None)
    pools = [p["pool"] for p in record["curve"][1:]]
    assert pools[0] >= 2 and pools[-1] > 2 and pools == sorted(pools)
    assert record["curve"][0]["step"] == 0 and [p["step"] for p in record["curve"][1:]] == [10, 20, 30, 40]
    json.dumps(record)  # the record goes to the model's metadata
    # A bar that is never reached keeps the pool where it started.
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    record = run_copy_drill(model, ids, CopyDrill(steps=20, batch=8, pool_start=2, grow_at=1.0),
                            every=10, log=lambda _: None)
    assert {p["pool"] for p in record["curve"][1:]} == {2}


def test_the_drill_ends_once_the_induction_score_is_reached(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    ids = list(range(50, 58))  # eight ids: the tiny model's induction score moves within steps

    def drill(until):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        start = [p.detach().clone() for p in model.parameters()]
        record = run_copy_drill(model, ids, CopyDrill(steps=12, batch=8, pool_start=2, lr=1e-2,
                                                      until_induction=until),
                                every=1, log=lambda _: None)
        moved = any(not torch.equal(a, b) for a, b in zip(start, model.parameters()))
        return record, moved

    full, moved = drill(None)  # no bar: every step
    assert [p["step"] for p in full["curve"]] == list(range(13))
    assert full["stopped"] == "steps" and moved
    scores = [p["induction"] for p in full["curve"]]
    # The first point that beats the untrained score; the same drill with that bar ends there.
    k = next(i for i, v in enumerate(scores) if v > scores[0])
    assert 0 < k < 12, scores
    ended, _ = drill(scores[k])
    assert [p["step"] for p in ended["curve"]] == list(range(k + 1)), (k, scores)
    assert ended["stopped"] == "induction"
    assert [p["induction"] for p in ended["curve"]] == scores[:k + 1]
    # A bar the model clears before training: no step at all.
    record, moved = drill(0.0)
    assert [p["step"] for p in record["curve"]] == [0] and record["stopped"] == "induction"
    assert not moved
    # One it never reaches: every step, and the record says so.
    record, _ = drill(1.0)
    assert len(record["curve"]) == 13 and record["stopped"] == "steps"


@pytest.mark.parametrize("kwargs, field", [
    ({"steps": -1}, "copy_drill.steps"), ({"batch": 0}, "copy_drill.batch"),
    ({"lr": 0.0}, "copy_drill.lr"), ({"grow_at": 0.0}, "copy_drill.grow_at"),
    ({"lookup_share": 0.7, "recall_share": 0.5}, "lookup_share + copy_drill.recall_share"),
    ({"until_induction": 1.5}, "copy_drill.until_induction"),
])
def test_bad_drill_settings_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field.replace("+", r"\+")):
        CopyDrill(**kwargs)


def test_the_command_drills_a_saved_model_and_refuses_bad_paths(tiny_model_dir, tmp_path, capsys):
    from wideseek_rl.copydrill import main

    out = tmp_path / "drilled"
    assert main(["--model", str(tiny_model_dir), "--out", str(out), "--drill.steps", "3",
                 "--drill.batch", "4", "--every", "1", "--threads", "1"]) == 0
    assert "3 steps" in capsys.readouterr().out
    record = json.loads((out / "copy_drill.json").read_text())
    assert [p["step"] for p in record["curve"]] == [0, 1, 2, 3]
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    assert main(["--model", str(tiny_model_dir), "--out", str(out)]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "none"), "--out", str(tmp_path / "o2")]) == 2
    assert "--model" in capsys.readouterr().err
