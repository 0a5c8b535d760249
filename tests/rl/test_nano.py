"""The nano model builder: tokenizer from a world and traces, a Qwen3-shaped model, the command."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from wideseek_env.trace import read_traces
from wideseek_rl.nano import NanoSpec, build_nano_model, main, parameter_count

SMALL = NanoSpec(vocab_size=1024, hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1,
                 head_dim=32, intermediate_size=128, max_context_tokens=2048)


@pytest.fixture(scope="module")
def nano_dir(tmp_path_factory, scripted_traces) -> Path:
    out = tmp_path_factory.mktemp("nano") / "model"
    return build_nano_model(out, SMALL, world=scripted_traces.parent / "world",
                            traces=[scripted_traces], seed=3)


def test_the_tokenizer_knows_the_chat_markup_and_round_trips_the_traces(nano_dir, scripted_traces):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(nano_dir)
    assert len(tok) == SMALL.vocab_size and tok.model_max_length == SMALL.max_context_tokens
    for mark in ("<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>", "<think>"):
        assert len(tok.encode(mark, add_special_tokens=False)) == 1, mark
    assert tok.eos_token == "<|im_end|>"
    record = read_traces(scripted_traces / "episodes.jsonl")[0]
    texts = [m["content"] for a in record["agents"] for m in a["messages"]]
    for text in texts:
        assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    # Merges learnt from these traces: well under one token per byte.
    n_bytes = sum(len(t.encode()) for t in texts)
    assert sum(len(tok.encode(t, add_special_tokens=False)) for t in texts) < n_bytes / 2.5
    rendered = tok.apply_chat_template(record["agents"][0]["messages"], tokenize=False)
    assert rendered.startswith("<|im_start|>system\n") and "<tool_call>" in rendered


def test_isolated_spaces_give_a_word_the_same_tokens_wherever_it_stands(scripted_traces):
    from wideseek_rl.nano import corpus_texts
    from wideseek_rl.tiny import train_chat_tokenizer

    lines = list(corpus_texts(scripted_traces.parent / "world", [scripted_traces], 2_000_000))
    plain = train_chat_tokenizer(lines, 1024)
    isolated = train_chat_tokenizer(lines, 1024, isolate_spaces=True)
    record = read_traces(scripted_traces / "episodes.jsonl")[0]
    texts = [m["content"] for a in record["agents"] for m in a["messages"]]
    texts.append("two  spaces, a tab\there,\n  indented \" quote\" and trailing ")
    for text in texts:
        assert isolated.decode(isolated.encode(text, add_special_tokens=False)) == text

    def ids(tok, text):
        return tok.encode(text, add_special_tokens=False)

    name = "Benson Municipal Airport"
    settings = [f"- {name}", f'["{name}', f"/{name}", f"\n{name}"]
    word = ids(isolated, name)
    for text in settings:
        assert ids(isolated, text)[-len(word):] == word, text
    # GPT-2's pre-tokenization (the default) does not: the space is part of the word's first token.
    assert ids(plain, settings[0])[-len(ids(plain, name)):] != ids(plain, name)
    n_plain = sum(len(ids(plain, t)) for t in texts)
    assert n_plain < sum(len(ids(isolated, t)) for t in texts) < 2 * n_plain


def test_the_model_has_the_spec_shape_and_generates(nano_dir):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(nano_dir)
    cfg = model.config
    assert cfg.model_type == "qwen3" and cfg.head_dim == 32 >= 32
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.max_position_embeddings) == (64, 2, 2048)
    assert parameter_count(nano_dir) == model.num_parameters()
    out = model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=4, do_sample=False)
    assert out.shape == (1, 7)


def test_the_same_inputs_reuse_the_model_and_others_are_refused(nano_dir, scripted_traces):
    stamp = (nano_dir / "model.safetensors").stat().st_mtime_ns
    assert build_nano_model(nano_dir, SMALL, world=scripted_traces.parent / "world",
                            traces=[scripted_traces], seed=3) == nano_dir
    assert (nano_dir / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="other inputs"):
        build_nano_model(nano_dir, SMALL, traces=[scripted_traces], seed=4)
    with pytest.raises(FileExistsError, match="other inputs"):
        build_nano_model(nano_dir, replace(SMALL, isolate_spaces=True),
                         world=scripted_traces.parent / "world", traces=[scripted_traces], seed=3)
    meta = json.loads((nano_dir / "wideseek_nano.json").read_text())
    assert meta["spec"]["hidden_size"] == 64 and meta["traces"]


def test_the_default_spec_has_a_few_million_parameters():
    s = NanoSpec()
    per_layer = (s.hidden_size * s.num_heads * s.head_dim * 2
                 + s.hidden_size * s.num_kv_heads * s.head_dim * 2
                 + 3 * s.hidden_size * s.intermediate_size + 2 * s.hidden_size + 2 * s.head_dim)
    total = s.vocab_size * s.hidden_size + s.num_layers * per_layer + s.hidden_size
    assert 4e6 < total < 20e6 and s.head_dim >= 32 and s.max_context_tokens == 4096


@pytest.mark.parametrize(("field", "kwargs"), [
    ("nano.head_dim", {"head_dim": 16}),
    ("nano.num_heads", {"num_heads": 3, "num_kv_heads": 2}),
    ("nano.vocab_size", {"vocab_size": 100}),
])
def test_bad_shapes_are_refused_naming_the_field(field, kwargs):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        NanoSpec(**kwargs)


def test_the_command_builds_and_reports_errors(tmp_path, scripted_traces, capsys):
    args = ["--out", str(tmp_path / "m"), "--traces", str(scripted_traces),
            "--spec.vocab-size", "600", "--spec.hidden-size", "32", "--spec.num-layers", "1",
            "--spec.num-heads", "1", "--spec.num-kv-heads", "1", "--spec.head-dim", "32",
            "--spec.intermediate-size", "64"]
    assert main(args) == 0
    assert "M parameters, 600 tokens" in capsys.readouterr().out
    assert main(["--out", str(tmp_path / "x"), "--traces", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
