"""Supervised fine-tuning on traces (`--stage sft`): what is trained, that it learns, and that a
killed run resumes exactly."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from wideseek_env.trace import read_traces
from wideseek_rl.checkpoint import CRASH_ENV, latest_checkpoint
from wideseek_rl.config import PRESETS, SFTConfig
from wideseek_rl.envs import WideSeekEnvSpec
from wideseek_rl.sft import cut_record, error_replies, load_records, trace_rows
from wideseek_rl.train import main, train


def test_the_loss_mask_covers_exactly_the_assistant_tokens(scripted_traces, tiny_tokenizer):
    """Every row is its agent's whole conversation as the chat template renders it, and its
    trained tokens are exactly each reply's tokens plus the end-of-turn token after it."""
    tok = tiny_tokenizer
    records = read_traces(scripted_traces / "episodes.jsonl")
    ts = trace_rows(records, tok, max_context_tokens=32768)
    agents = [a for r in records for a in r["agents"]]
    assert len(ts.rows) == len(agents) > len(records) and ts.dropped_turns == 0
    for row, agent in zip(ts.rows, agents):
        messages = agent["messages"]
        full = tok.apply_chat_template(messages, tokenize=False)
        assert tok.decode(row.input_ids) == full.removesuffix("\n")
        g = row.generated.astype(int)
        starts = np.flatnonzero(np.diff(np.r_[0, g]) == 1)
        ends = np.flatnonzero(np.diff(np.r_[g, 0]) == -1) + 1
        replies = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        assert len(starts) == len(replies)
        for s, e, i in zip(starts, ends, replies):
            assert tok.decode(row.input_ids[s:e]) == messages[i]["content"] + "<|im_end|>"
            prompt = tok.apply_chat_template(messages[:i], tokenize=False,
                                             add_generation_prompt=True)
            assert tok.decode(row.input_ids[:s]) == prompt
        assert row.n_generated == int(g.sum()) and np.all(row.old_logprobs[~row.generated] == 0)


def test_a_context_budget_ends_a_row_where_the_next_reply_no_longer_fits(scripted_traces,
                                                                         tiny_tokenizer):
    records = read_traces(scripted_traces / "episodes.jsonl")
    full = trace_rows(records, tiny_tokenizer, max_context_tokens=32768)
    longest = max(len(r.input_ids) for r in full.rows)
    cut = trace_rows(records, tiny_tokenizer, max_context_tokens=longest - 1)
    assert cut.dropped_turns >= 1 and cut.turns == full.turns - cut.dropped_turns
    assert max(len(r.input_ids) for r in cut.rows) <= longest - 1


def test_the_score_filter_keeps_episodes_at_or_above_the_threshold(scripted_traces):
    records = read_traces(scripted_traces / "episodes.jsonl")
    f1 = sorted(r["metrics"]["item_f1"] for r in records)
    threshold = f1[len(f1) // 2]
    kept, read = load_records([str(scripted_traces)], min_score=threshold, score_field="item_f1")
    assert read == len(records)
    assert len(kept) == sum(x >= threshold for x in f1) < len(records)
    assert all(r["metrics"]["item_f1"] >= threshold for r in kept)
    with pytest.raises(ValueError, match="score_field"):
        load_records([str(scripted_traces)], min_score=0, score_field="nope")


def test_the_validity_filter_drops_episodes_with_more_format_errors_than_allowed(
        scripted_traces, tmp_path):
    """`max_format_errors` keeps an episode by the errors of all its agents together (the
    record's `cost.format_errors`), and a record without the count is an error naming the file
    and the episode."""
    records = read_traces(scripted_traces / "episodes.jsonl")
    errors = [i % 3 for i in range(len(records))]  # 0, 1, 2, 0, …
    for record, n in zip(records, errors):
        record["cost"]["format_errors"] = n
    path = tmp_path / "episodes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    for allowed in (0, 1, 2):
        kept, read = load_records([str(path)], min_score=0, score_field="item_f1",
                                  max_format_errors=allowed)
        assert read == len(records)
        assert [r["task_id"] for r in kept] == [
            r["task_id"] for r, n in zip(records, errors) if n <= allowed]
    kept, _ = load_records([str(path)], min_score=0, score_field="item_f1")
    assert len(kept) == len(records)
    del records[1]["cost"]["format_errors"]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(ValueError, match=r"episodes\.jsonl: episode 2: cost\.format_errors"):
        load_records([str(path)], min_score=0, score_field="item_f1", max_format_errors=0)


def trained_spans(row, tok) -> list[str]:
    g = row.generated.astype(int)
    starts = np.flatnonzero(np.diff(np.r_[0, g]) == 1)
    ends = np.flatnonzero(np.diff(np.r_[g, 0]) == -1) + 1
    return [tok.decode(row.input_ids[s:e]).removesuffix("<|im_end|>") for s, e in zip(starts, ends)]


def test_replies_the_env_could_not_use_are_context_and_never_trained(mistake_traces,
                                                                      tiny_tokenizer):
    """With `skip_error_replies`, every reply the env answered with an error is in the rows
    after it as context, no row trains on it, and every other reply is trained once."""
    tok = tiny_tokenizer
    records = read_traces(mistake_traces / "episodes.jsonl")
    bad, good = [], []
    for record in records:
        for agent in record["agents"]:
            replies = [m["content"] for m in agent["messages"] if m["role"] == "assistant"]
            marked = error_replies(agent)
            bad += [replies[k] for k in sorted(marked)]
            good += [r for k, r in enumerate(replies) if k not in marked]
    assert len(bad) >= 5  # the fixture has mistakes to skip
    ts = trace_rows(records, tok, max_context_tokens=32768, skip_error_replies=True)
    trained = [t for row in ts.rows for t in trained_spans(row, tok)]
    assert sorted(trained) == sorted(good) and ts.error_replies == len(bad)
    context = [tok.decode(row.input_ids) for row in ts.rows]
    recovered = [b for b in bad if any(b in c for c in context)]
    assert len(recovered) >= 0.8 * len(bad)  # all but the agents' last replies
    everything = trace_rows(records, tok, max_context_tokens=32768)
    assert sorted(t for row in everything.rows for t in trained_spans(row, tok)) == sorted(
        bad + good) and everything.error_replies == 0


def test_error_replies_reads_error_messages_the_last_turn_and_a_cut_agent():
    def agent(contents, answers, **extra):
        messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
        for c, a in zip(contents, answers):
            messages.append({"role": "assistant", "content": c})
            if a is not None:
                messages.append({"role": "tool", "name": a, "content": a})
        return {"messages": messages, **extra}

    ok = agent(["a", "b", "c"], ["search", "error", None], format_errors=1, end_reason="final")
    assert error_replies(ok) == {1}
    assert error_replies(dict(ok, end_reason="turns")) == {1, 2}  # a call on the last turn
    assert error_replies(dict(ok, format_errors=2)) == {1, 2}  # counted without a message
    cut = cut_record({"agents": [ok]}, max_replies=2)["agents"][0]
    assert [m["role"] for m in cut["messages"]][-1] == "assistant"  # its error message is cut
    assert error_replies(cut) == {1}
    first = cut_record({"agents": [ok]}, max_replies=1)["agents"][0]
    assert error_replies(first) == set()  # its one reply ran; the error came later


def sft_config(out: Path, model: Path, traces: Path, steps: int):
    return replace(PRESETS["toy"][1], stage="sft", env=WideSeekEnvSpec(), output_dir=out,
                   steps=steps, save_every=2, progress=False, tensorboard=False,
                   torch_threads=1, seed=5,
                   model=replace(PRESETS["toy"][1].model, path=str(model)),
                   rollout=replace(PRESETS["toy"][1].rollout, max_context_tokens=32768),
                   sft=SFTConfig(traces=(str(traces),), rows_per_step=4))


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_tiny_models_loss_falls_on_a_fixed_trace_set(tmp_path, tiny_model_dir, scripted_traces):
    """One episode's rows, all of them in every step: the loss must fall well below the
    untrained model's (about ln 1536 = 7.3 nats per token)."""
    config = sft_config(tmp_path / "run", tiny_model_dir, scripted_traces, steps=8)
    n_rows = len(read_traces(scripted_traces / "episodes.jsonl")[0]["agents"])
    config = replace(config, save_every=0, optim=replace(config.optim, lr=1e-2),
                     sft=replace(config.sft, max_episodes=1, rows_per_step=n_rows))
    result = train(config)
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    nll = [r["loss/nll"] for r in rows]
    assert len(nll) == 8 and rows[0]["loss/tokens"] == rows[-1]["loss/tokens"] > 0
    assert nll[0] > 6.5 and nll[-1] < nll[0] - 1.5, nll
    assert (tmp_path / "run" / "final" / "config.json").is_file() and result.model is not None


def test_epochs_set_the_number_of_steps(tmp_path, tiny_model_dir, scripted_traces):
    config = sft_config(tmp_path / "run", tiny_model_dir, scripted_traces, steps=100)
    config = replace(config, save_every=0, sft=replace(config.sft, epochs=0.5, rows_per_step=8))
    train(config)
    n_rows = sum(len(r["agents"]) for r in read_traces(scripted_traces / "episodes.jsonl"))
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert len(rows) == -(-n_rows // 16) and rows[-1]["sft/epoch"] >= 0.5
    assert json.loads((tmp_path / "run" / "config.json").read_text())["steps"] == len(rows)


def test_resume_after_a_kill_replays_the_uninterrupted_run(tmp_path, tiny_model_dir,
                                                           scripted_traces):
    from test_train import run_cli  # tests/rl is on sys.path (rootdir conftest, prepend mode)

    def args(out: Path) -> list[str]:
        return ["toy", "--stage", "sft", "--sft.traces", str(scripted_traces),
                "--sft.rows-per-step", "3", "--sft.max-episodes", "2",
                "--model.path", str(tiny_model_dir), "--rollout.max-context-tokens", "32768",
                "--output-dir", str(out), "--steps", "6", "--save-every", "2",
                "--optim.lr", "0.003", "--seed", "5", "--no-progress", "--no-tensorboard",
                "--torch-threads", "1"]

    volatile = ("time/", "memory/")

    def metrics(out: Path) -> list[dict]:
        return [{k: v for k, v in r.items() if not k.startswith(volatile)}
                for r in read_metrics(out / "metrics.jsonl")]

    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert main(args(reference)) == 0
    expected = metrics(reference)
    assert [r["step"] for r in expected] == list(range(1, 7))
    assert run_cli(args(killed), env_extra={CRASH_ENV: "4"}) == 75  # killed while saving step 4
    assert latest_checkpoint(killed / "checkpoints").name == "step_00000002"
    assert run_cli([*args(killed), "--resume"]) == 0
    assert metrics(killed) == expected  # every step, bit for bit


@pytest.mark.parametrize(("args", "field"), [
    (["toy", "--stage", "sft"], "sft.traces"),
    (["toy", "--stage", "sft", "--sft.traces", "x", "--sft.rows-per-step", "0"],
     "sft.rows-per-step"),
    (["toy", "--stage", "sft", "--sft.traces", "x", "--sft.epochs", "0"], "sft.epochs"),
    (["toy", "--stage", "sft", "--sft.traces", "x", "--sft.max-replies", "0"],
     "sft.max-replies"),
    (["toy", "--stage", "sft", "--sft.traces", "x", "--sft.max-format-errors", "-1"],
     "sft.max-format-errors"),
    (["toy", "--stage", "sft", "--sft.traces", "x", "--sft.rename-entities", "1.5"],
     "sft.rename-entities"),
    (["toy", "--stage", "sft", "--sft.traces", "x", "--sft.last-replies", "0"],
     "sft.last-replies"),
    (["toy", "--stage", "sft", "--sft.traces", "x", "--sft.last-reply-weight", "2",
      "--sft.train-on", "all"], "sft.last-reply-weight"),
])
def test_bad_sft_values_fail_at_once_with_one_line(tmp_path, capsys, args, field):
    assert main([*args, "--output-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {field}") and "\n" not in err, err


def test_the_sft_loss_is_the_weighted_nll_of_the_assistant_tokens_only():
    """By hand: −Σ_rows w_row Σ_{masked t} log p_t; tokens outside the mask (prompts) count for
    nothing even when the policy hands log-probs for them."""
    import torch

    from wideseek_rl.sft import SFTLearner

    logprobs = torch.tensor([[-1.0, -2.0, -3.0, -4.0], [-0.5, -0.25, -8.0, -16.0]])
    mask = torch.tensor([[False, True, True, False], [True, False, False, True]])
    weights = torch.tensor([0.25, 2.0])
    loss, part = SFTLearner.micro_batch_loss(None, {"mask": mask}, logprobs, weights)
    assert loss.item() == pytest.approx(0.25 * (2 + 3) + 2.0 * (0.5 + 16))
    assert part["tokens"].item() == 4 and part["nll"].item() == pytest.approx(2 + 3 + 0.5 + 16)
    # Token weights (`sft.last_reply_weight`) scale each token's term of the loss, not the NLL.
    c = torch.tensor([[1.0, 1.0, 3.0, 1.0], [1.0, 1.0, 1.0, 3.0]])
    loss, part = SFTLearner.micro_batch_loss(None, {"mask": mask, "token_weights": c}, logprobs,
                                             weights)
    assert loss.item() == pytest.approx(0.25 * (2 + 3 * 3) + 2.0 * (0.5 + 3 * 16))
    assert part["nll"].item() == pytest.approx(2 + 3 + 0.5 + 16)


def test_train_on_all_covers_every_token_but_the_first_and_the_loss_counts_them(
        tmp_path, tiny_model_dir, tiny_tokenizer, scripted_traces):
    """`sft.train_on = "all"` (the nano recipe's warm-up): the same rows, each trained on all
    its tokens but the first; a step's loss counts exactly those tokens."""
    from wideseek_rl.sft import load_trace_set

    config = sft_config(tmp_path / "run", tiny_model_dir, scripted_traces, steps=1)
    config = replace(config, save_every=0,
                     sft=replace(config.sft, max_episodes=1, rows_per_step=64))
    replies = load_trace_set(config, tiny_tokenizer, None, log=False)
    lm_config = replace(config, sft=replace(config.sft, train_on="all"))
    every = load_trace_set(lm_config, tiny_tokenizer, None, log=False)
    assert len(every.rows) == len(replies.rows) > 1
    for a, b in zip(replies.rows, every.rows):
        assert np.array_equal(a.input_ids, b.input_ids)
        assert not b.generated[0] and b.generated[1:].all()
        assert b.n_generated == len(b.input_ids) - 1 > a.n_generated
    assert every.trained_tokens == sum(len(r.input_ids) - 1 for r in every.rows)
    train(replace(lm_config, sft=replace(lm_config.sft, rows_per_step=len(every.rows))))
    step = read_metrics(tmp_path / "run" / "metrics.jsonl")[0]
    assert step["loss/tokens"] == every.trained_tokens


def _texts(record) -> list[str]:
    return [str(m.get("content")) for a in record["agents"] for m in a["messages"]]


def test_renaming_replaces_every_entity_name_everywhere_in_the_episode_and_nothing_else(
        scripted_traces):
    """`sft.rename_entities`: each gold key of the episode gets one made-up name, written in
    every agent's messages where the real one was (as written and lower-cased, as in
    addresses); undoing the replacements gives the original text back exactly (nothing else
    changed), and the same seed gives the same names."""
    import random
    import re

    from wideseek_rl.sft import entity_names, rename_entities

    def words(keys):
        return re.compile(r"(?<!\w)(" + "|".join(
            map(re.escape, sorted(keys, key=len, reverse=True))) + r")(?!\w)")

    for record in read_traces(scripted_traces / "episodes.jsonl"):
        names = entity_names(record)
        gold = {c["gold"] for row in record["explanation"]["rows"] for c in row["cells"]
                if c["verdict"] == "key"}
        assert names and set(names) <= gold
        out, used = rename_entities(record, random.Random(7))
        before, after = _texts(record), _texts(out)
        assert set(names) <= set(used) and all(new != old for old, new in used.items())
        assert not any(words(names).search(t) for t in after)
        assert not any(words([n.lower() for n in names]).search(t) for t in after)
        undo = {new: old for old, new in used.items()}
        assert len(undo) == len(used)  # one made-up name per written form
        assert [words(undo).sub(lambda m, u=undo: u[m.group(1)], t) for t in after] == before
        assert rename_entities(record, random.Random(7)) == (out, used)  # seeded
        assert out["reward"] == record["reward"] and out["task_id"] == record["task_id"]


def test_cut_records_keep_the_first_replies_without_system_prompts(scripted_traces):
    from wideseek_rl.sft import cut_record

    record = read_traces(scripted_traces / "episodes.jsonl")[0]
    out = cut_record(record, drop_system=True, max_replies=1)
    for a, b in zip(record["agents"], out["agents"]):
        first = next(i for i, m in enumerate(a["messages"]) if m["role"] == "assistant")
        assert b["messages"] == [m for m in a["messages"][: first + 1] if m["role"] != "system"]
        assert b["messages"][-1]["role"] == "assistant"
    assert cut_record(record) == record


def test_a_role_filter_keeps_only_those_agents_rows(tmp_path, tiny_model_dir, tiny_tokenizer,
                                                    scripted_traces):
    """`sft.roles`: the rows of the named agents only, each whole; a bad role fails at once."""
    from wideseek_rl.sft import cut_record, load_trace_set

    record = read_traces(scripted_traces / "episodes.jsonl")[0]
    lead = cut_record(record, roles=("lead",))
    assert lead["agents"] == [a for a in record["agents"] if a["role"] == "lead"] != []
    subs = cut_record(record, roles=("subagent",))["agents"]
    assert subs == [a for a in record["agents"] if a["role"] == "subagent"] != []
    config = sft_config(tmp_path / "run", tiny_model_dir, scripted_traces, steps=1)
    full = load_trace_set(config, tiny_tokenizer, None, log=False)
    leads = load_trace_set(replace(config, sft=replace(config.sft, roles=("lead",))),
                           tiny_tokenizer, None, log=False)
    assert leads.agents == leads.episodes_kept == full.episodes_kept < full.agents
    assert all("You are the lead agent" in tiny_tokenizer.decode(r.input_ids) for r in leads.rows)
    with pytest.raises(ValueError, match=r"sft\.roles"):
        load_trace_set(replace(config, sft=replace(config.sft, roles=("judge",))),
                       tiny_tokenizer, None, log=False)


def test_last_replies_trains_each_agents_last_answer_with_the_rest_as_context(
        tmp_path, tiny_model_dir, tiny_tokenizer, scripted_traces):
    """`sft.last_replies 1`: the same rows, token for token, with the loss on each agent's last
    reply only (the lead's final answer, each subagent's report); the count goes back over an
    agent's rows when its turns fill more than one; bad values fail at once."""
    from wideseek_rl.sft import keep_last_replies, load_trace_set

    config = sft_config(tmp_path / "run", tiny_model_dir, scripted_traces, steps=1)
    full = load_trace_set(config, tiny_tokenizer, None, log=False)
    last = load_trace_set(replace(config, sft=replace(config.sft, last_replies=1)),
                          tiny_tokenizer, None, log=False)
    assert len(last.rows) == len(full.rows) == full.agents
    records = [r for r in read_traces(scripted_traces / "episodes.jsonl")]
    finals = [str([m for m in a["messages"] if m["role"] == "assistant"][-1]["content"])
              for r in records for a in r["agents"]]
    for a, b, final in zip(full.rows, last.rows, finals):
        assert (a.input_ids == b.input_ids).all() and 0 < b.generated.sum() < a.generated.sum()
        trained = tiny_tokenizer.decode(b.input_ids[b.generated.astype(bool)])
        assert trained.strip().startswith(final.strip()[:40]), (trained[:80], final[:80])
    twice = load_trace_set(replace(config, sft=replace(config.sft, last_replies=2)),
                           tiny_tokenizer, None, log=False)
    assert last.trained_tokens < twice.trained_tokens <= full.trained_tokens
    # One agent whose three replies (runs of the mask) fill two rows: the last two replies are
    # the second row's one and the first row's last.
    row = full.rows[0]
    split = [replace(row, generated=np.array([0, 1, 1, 0, 1, 0], bool)),
             replace(row, generated=np.array([0, 0, 1, 1], bool))]
    kept = keep_last_replies(split, [r.generated for r in split], 2)
    assert [m.tolist() for m in kept] == [[0, 0, 0, 0, 1, 0], [0, 0, 1, 1]]
    for bad in (replace(config.sft, last_replies=0),
                replace(config.sft, last_replies=1, train_on="all")):
        with pytest.raises(ValueError, match=r"sft\.last_replies"):
            load_trace_set(replace(config, sft=bad), tiny_tokenizer, None, log=False)


def test_last_reply_weight_weighs_each_agents_last_reply_and_trains_every_reply(
        tmp_path, tiny_model_dir, tiny_tokenizer, scripted_traces):
    """`sft.last_reply_weight 3`: the same rows and masks, each agent's last reply weighing 3 in
    the loss and every other token 1; a training step's loss grows by exactly the weighted part
    while its NLL (the model is the same before the step) does not change."""
    from wideseek_rl.sft import keep_last_replies, load_trace_set

    config = sft_config(tmp_path / "a", tiny_model_dir, scripted_traces, steps=1)
    config = replace(config, save_every=0, sft=replace(config.sft, max_episodes=1, rows_per_step=64))
    full = load_trace_set(config, tiny_tokenizer, None, log=False)
    heavy = replace(config, output_dir=tmp_path / "b",
                    sft=replace(config.sft, last_reply_weight=3.0))
    weighted = load_trace_set(heavy, tiny_tokenizer, None, log=False)
    last = keep_last_replies(full.rows, [r.generated for r in full.rows], 1)
    for a, b, m in zip(full.rows, weighted.rows, last, strict=True):
        assert (a.generated == b.generated).all() and (a.input_ids == b.input_ids).all()
        assert a.token_weights is None
        assert (b.token_weights == np.where(m, 3.0, 1.0)).all() and m.any()
    train(config)
    train(heavy)
    one, three = (read_metrics(tmp_path / d / "metrics.jsonl")[0] for d in ("a", "b"))
    assert three["loss/nll"] == pytest.approx(one["loss/nll"], rel=1e-5)
    trained = sum(r.n_generated for r in full.rows)
    last_nll = three["loss/sft"] - one["loss/sft"]  # = 2 × the last replies' NLL / all tokens
    assert 0 < last_nll < 2 * one["loss/sft"]
    assert one["loss/tokens"] == three["loss/tokens"] and one["loss/tokens"] % trained == 0
    for bad in (replace(config.sft, last_reply_weight=0.0),
                replace(config.sft, last_reply_weight=2.0, train_on="all")):
        with pytest.raises(ValueError, match=r"sft\.last_reply_weight"):
            load_trace_set(replace(config, sft=bad), tiny_tokenizer, None, log=False)


def test_a_copy_drill_renames_and_cuts_the_rows_it_trains_on(tmp_path, tiny_model_dir,
                                                             tiny_tokenizer, scripted_traces):
    """The copy stage's options reach the rows: one reply per agent, no system prompt, every
    episode renamed (`sft/renamed`), and bad values fail at once."""
    from wideseek_rl.sft import load_trace_set

    config = sft_config(tmp_path / "run", tiny_model_dir, scripted_traces, steps=1)
    full = load_trace_set(config, tiny_tokenizer, None, log=False)
    drill = replace(config, sft=replace(config.sft, drop_system=True, max_replies=1,
                                        rename_entities=1.0))
    rows = load_trace_set(drill, tiny_tokenizer, None, log=False)
    assert rows.renamed == rows.episodes_kept == full.episodes_kept > 0
    assert rows.turns == rows.agents == full.agents
    assert rows.tokens < full.tokens / 3
    assert not any("You are" in tiny_tokenizer.decode(r.input_ids) for r in rows.rows)
    assert any("You are" in tiny_tokenizer.decode(r.input_ids) for r in full.rows)
    half = replace(config, sft=replace(config.sft, rename_entities=0.5))
    assert 0 < load_trace_set(half, tiny_tokenizer, None, log=False).renamed < rows.renamed
    for bad in (replace(config.sft, rename_entities=1.5), replace(config.sft, max_replies=0)):
        with pytest.raises(ValueError, match=r"sft\.rename_entities|sft\.max_replies"):
            load_trace_set(replace(config, sft=bad), tiny_tokenizer, None, log=False)


def test_renaming_covers_addresses_and_leaves_longer_words_alone():
    """Every written form of a name is renamed (as written, lower-cased, with `_` for spaces, as
    in addresses) and only as a whole word: "Niger" inside "Nigeria" or "Nigerien" stays."""
    import random

    from wideseek_rl.sft import rename_entities

    cell = {"verdict": "key", "gold": "South Africa"}
    record = {"task_id": "t", "explanation": {"rows": [
        {"cells": [cell]}, {"cells": [{"verdict": "key", "gold": "Niger"}]}]},
        "agents": [{"id": "lead", "messages": [
            {"role": "user", "content": "South Africa and Niger, not Nigeria."},
            {"role": "tool", "content": "https://en.wikipedia.org/wiki/south_africa "
                                        "https://w.local/countries/South_Africa the Nigerien "
                                        "capital of niger; south africa"}]}]}
    out, used = rename_entities(record, random.Random(0))
    new_sa, new_niger = used["South Africa"], used["Niger"]
    user, tool = (m["content"] for m in out["agents"][0]["messages"])
    assert user == f"{new_sa} and {new_niger}, not Nigeria."
    assert tool == (f"https://en.wikipedia.org/wiki/{new_sa.lower().replace(' ', '_')} "
                    f"https://w.local/countries/{new_sa.replace(' ', '_')} the Nigerien "
                    f"capital of {new_niger.lower()}; {new_sa.lower()}")
